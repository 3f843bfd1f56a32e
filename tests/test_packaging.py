"""What a user installs is the wheel (or pipx), not the checkout: build it, install it into a fresh
venv outside the checkout and run every kind of command there, with the checkout's files watched."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SHARED_MODELS

BUNDLED = [
    "ravasd/bundled/avatars/sol.glb",
    "ravasd/bundled/avatars/previews/sol.png",
    "ravasd/bundled/service/ravasd.desktop.in",
    "ravasd/bundled/service/org.ravas.ravasd.desktop.in",
    "ravasd/bundled/service/ravasd.service.in",
    "ravasd/bundled/service/org.ravas.ravasd.plist.in",
    "ravasd/bundled/service/ravasd.svg",
    "ravasd/bundled/drivers/linux/setup-v4l2loopback.sh",
    "ravasd/bundled/drivers/README.md",
    "ravasd/video/avatar/shaders/avatar.frag",
    "ravasd/audio/voices/targets/baritone.npz",
    "ravasd/audio/voices/figures.json",
    "ravasd/audio/neural/speech/alto.opus",
    "ravasd/audio/neural/speech/tenor.opus",
    "ravasd/audio/viseme.json",
]

# Loaded into the installed venv's interpreter: every file opened under the checkout (other than the
# dependencies' venv, which lives there too) is written down; the test fails on any.
WATCH = """
import os, sys
_repo, _log = os.environ["RAVAS_TEST_REPO"], os.environ["RAVAS_TEST_OPENED"]
_skip = (os.path.join(_repo, ".venv") + os.sep,)
def _hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        p = os.path.abspath(os.fsdecode(args[0]))
        if p.startswith(_repo + os.sep) and not p.startswith(_skip):
            with open(_log, "a") as fh:
                fh.write(p + "\\n")
sys.addaudithook(_hook)
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist, and the wheel built from that sdist (as a release would), in a temp folder."""
    out = tmp_path_factory.mktemp("dist")
    code = f"import sys; from setuptools import build_meta as b; print(b.build_sdist({str(out)!r}))"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    sdist = out / r.stdout.strip().splitlines()[-1]
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(sdist)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return sdist, next(out.glob("ravasd-*.whl"))


def test_wheel_and_sdist_carry_every_file_ravasd_reads(dist):
    sdist, wheel = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [n for n in BUNDLED if n not in names] == []
    assert not [n for n in names if n.startswith("ravasd/bundled/") and n.endswith(".py")]  # data only
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}
    for n in [*BUNDLED, "avatars/generate.py", "bootstrap.sh", "tests/test_packaging.py", "packaging/ravasd.spec"]:
        assert n in members, n
        assert not members[n].issym(), f"{n} is a link in the sdist"


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """A fresh venv outside the checkout with the wheel installed; its dependencies come from the
    test venv's site-packages (a path line: that venv's editable ravasd is not seen)."""
    _, wheel = dist
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    deps = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]  # this venv's and the system's
    (site / "zz_ravas_deps.pth").write_text("\n".join(deps) + "\n")
    (site / "ravas_watch.py").write_text(WATCH)  # a .pth import line loads it at start-up
    (site / "aa_ravas_watch.pth").write_text("import ravas_watch\n")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return venv


def _run(venv: Path, cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAVAS_", "XDG_", "PYTHON"))}
    env.update(
        HOME=str(home),
        RAVAS_MODELS_DIR=str(SHARED_MODELS),
        RAVAS_TEST_REPO=str(REPO),
        RAVAS_TEST_OPENED=str(cwd / "opened.txt"),
        OPENBLAS_NUM_THREADS="1",
    )
    return subprocess.run(
        [str(venv / "bin" / "ravasd"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_installed_wheel_runs_every_command_outside_the_checkout(installed, tmp_path):
    from mediagen import make_audio, make_video

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import ravasd; print(ravasd.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed)), where  # the wheel's copy, not the checkout's

    r = _run(installed, work, "--version")
    assert r.returncode == 0 and r.stdout.startswith("ravasd ")
    r = _run(installed, work, "voices", "list")
    assert r.returncode == 0 and "baritone" in r.stdout, r.stderr
    r = _run(installed, work, "avatars", "list")
    assert r.returncode == 0 and all(n in r.stdout for n in ("sol", "mira", "pixel", "tabby")), r.stderr
    r = _run(installed, work, "render", "--avatar", "sol", "--width", "320", "--height", "240", "-o", "sol.png")
    assert r.returncode == 0 and (work / "sol.png").stat().st_size > 1000, r.stderr
    make_audio(work / "speech.wav", seconds=1.5)
    r = _run(installed, work, "anonymize", "speech.wav", "-o", "voice.wav", "--no-progress")
    assert r.returncode == 0 and (work / "voice.wav").exists(), r.stderr
    make_video(work / "face.mp4", seconds=1.0)
    r = _run(installed, work, "anonymize", "face.mp4", "-o", "anon.mp4", "--no-progress", timeout=300)
    assert r.returncode == 0 and (work / "anon.mp4").exists(), r.stderr
    r = _run(installed, work, "autostart", "enable")
    entry = work / "home" / ".config" / "autostart" / "ravasd.desktop"
    assert r.returncode == 0 and entry.exists(), r.stderr
    assert f"Exec={installed}/bin/python -m ravasd run" in entry.read_text()
    r = _run(installed, work, "desktop", "install")
    assert r.returncode == 0, r.stderr
    menu = work / "home" / ".local" / "share" / "applications" / "org.ravas.ravasd.desktop"
    assert f"Exec={installed}/bin/ravasd run" in menu.read_text()
    assert os.readlink(work / "home" / ".local" / "bin" / "ravasd") == str(installed / "bin" / "ravasd")
    opened = (work / "opened.txt").read_text().split() if (work / "opened.txt").exists() else []
    assert opened == [], f"the installed ravasd read the checkout: {sorted(set(opened))[:10]}"


def test_the_checker_of_checkout_reads_can_fail(installed, tmp_path):
    """The audit hook sees a read of the checkout (the instrument, checked on a known read)."""
    env = dict(os.environ, RAVAS_TEST_REPO=str(REPO), RAVAS_TEST_OPENED=str(tmp_path / "opened.txt"))
    subprocess.run(
        [str(installed / "bin" / "python"), "-c", f"open({str(REPO / 'README.md')!r}).read()"],
        env=env,
        check=True,
        timeout=60,
    )
    assert (tmp_path / "opened.txt").read_text().split() == [str(REPO / "README.md")]


@pytest.mark.slow
def test_pipx_install_gives_a_working_ravasd(tmp_path):
    """`pipx install .` as the README says: an isolated venv with the core dependencies from the
    package index (the pip cache makes it quick after ./bootstrap.sh), ravasd on pipx's PATH."""
    pipx = Path(sys.executable).with_name("pipx")
    if not pipx.exists():
        pytest.skip("pipx is in the test extra; run ./bootstrap.sh test")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAVAS_", "PIPX_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        PIPX_HOME=str(tmp_path / "pipx"),
        PIPX_BIN_DIR=str(tmp_path / "bin"),
        PIPX_MAN_DIR=str(tmp_path / "man"),
        HOME=str(tmp_path / "home"),
        PIPX_DEFAULT_PYTHON="/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable,
    )
    r = subprocess.run([str(pipx), "install", str(REPO)], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    exe = tmp_path / "bin" / "ravasd"
    env.update(RAVAS_MODELS_DIR=str(SHARED_MODELS))
    r = subprocess.run([str(exe), "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ravasd "), r.stderr
    r = subprocess.run(
        [str(exe), "render", "--width", "160", "--height", "120", "-o", str(tmp_path / "r.png")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    from PIL import Image

    img = np.asarray(Image.open(tmp_path / "r.png"))
    assert img.shape == (120, 160, 3) and img.std() > 5  # a picture, not a blank
