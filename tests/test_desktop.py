"""Desktop integration: virtual-device registries at the OS boundary, control socket, autostart,
doctor, models, logs. (The tray runs under Xvfb in test_tray.py; RAVAS Mic end to end in
test_virtual_mic_e2e.py.)"""

from __future__ import annotations

import json
import os
import plistlib
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED_MODELS
from helpers import ravasd

from ravasd import assets
from ravasd.errors import DeviceError, ModelError, RavasError


# ------------------------------------------------------------------ virtual camera registry
def test_v4l2_device_is_found_by_label(tmp_path):
    from ravasd.devices.virtual import find_v4l2_device

    for n, label in ((0, "Integrated Camera"), (10, "RAVAS Camera")):
        (tmp_path / f"video{n}").mkdir()
        (tmp_path / f"video{n}" / "name").write_text(label + "\n")
    assert find_v4l2_device(sysfs=str(tmp_path)) == "/dev/video10"
    assert find_v4l2_device("Other", sysfs=str(tmp_path)) is None


def test_camera_registry_passes_found_device_and_lists_failures(monkeypatch):
    import pyvirtualcam

    from ravasd.devices import virtual
    from ravasd.video.sinks import open_virtual_camera

    calls = []

    class FakeCam:
        def __init__(self, w, h, fps, **kw):
            calls.append(kw)
            if kw["backend"] == "obs":
                raise RuntimeError("OBS Virtual Camera is not installed")
            self.device = kw["device"] or "Unity Video Capture"

        def close(self):
            pass

    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCam)
    sink = open_virtual_camera(640, 480, 30, platform="win32")  # obs fails, unitycapture works
    assert [c["backend"] for c in calls] == ["obs", "unitycapture"] and sink.device == "Unity Video Capture"
    monkeypatch.setattr(pyvirtualcam, "Camera", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("nope")))
    with pytest.raises(DeviceError) as err:
        open_virtual_camera(640, 480, 30, platform="darwin")
    assert "'obs' backend" in str(err.value) and "OBS" in err.value.fix

    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCam)
    monkeypatch.setattr(virtual, "find_v4l2_device", lambda: "/dev/video10")
    monkeypatch.setattr(
        virtual,
        "CAMERA_BACKENDS",
        [virtual.CameraBackend("v4l2loopback", ("linux",), True, "fix", lambda: virtual.find_v4l2_device())],
    )
    calls.clear()
    open_virtual_camera(640, 480, 30, platform="linux")
    assert calls[0]["device"] == "/dev/video10" and calls[0]["backend"] == "v4l2loopback"


# ------------------------------------------------------------------ virtual mic registry (OS boundary)
@pytest.mark.parametrize(
    "platform, name, shown",
    [("darwin", "BlackHole 2ch", "BlackHole 2ch"), ("win32", "CABLE Input (VB-Audio Virtual Cable)", "CABLE Output")],
)
def test_named_virtual_cable_is_found_by_name(monkeypatch, platform, name, shown):
    import sounddevice as sd

    from ravasd.devices.virtual import open_virtual_mic

    devs = [
        {"index": 0, "name": "Built-in Output", "max_output_channels": 2},
        {"index": 3, "name": name, "max_output_channels": 2},
    ]
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: devs)
    backend, ep = open_virtual_mic(platform)
    assert ep.device == 3 and ep.shown_as == shown and ep.pulse_sink is None
    assert backend.needs_driver and not backend.creates_device
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: devs[:1])
    with pytest.raises(DeviceError) as err:
        open_virtual_mic(platform)
    assert "drivers/" in err.value.fix


def test_linux_virtual_mic_without_sound_server_is_a_clear_error(monkeypatch):
    from ravasd.devices.virtual import open_virtual_mic

    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/socket")
    with pytest.raises(DeviceError) as err:
        open_virtual_mic("linux")
    assert "'pulse' backend" in str(err.value) and "pipewire-pulse" in err.value.fix


# ------------------------------------------------------------------ control socket and lock
def test_control_socket_is_owner_only_and_speaks_json_lines():
    from ravasd.daemon.control import ControlServer, InstanceLock, request, socket_path

    lock = InstanceLock()
    lock.acquire()
    with pytest.raises(RavasError, match="already running"):
        InstanceLock().acquire()
    server = ControlServer(lambda req: {"ok": True, "echo": req})
    server.start()
    try:
        mode = stat.S_IMODE(os.stat(socket_path()).st_mode)
        assert mode == 0o600
        assert stat.S_IMODE(os.stat(socket_path().parent).st_mode) == 0o700
        assert request("status")["echo"] == {"cmd": "status"}
        assert request("voice", name="x")["echo"]["name"] == "x"
        assert server.dispatch(b"not json")["ok"] is False
        assert server.dispatch(b'{"no": "cmd"}')["ok"] is False
    finally:
        server.close()
        lock.release()
    assert not socket_path().exists()
    with pytest.raises(RavasError, match="not running"):
        request("status")


def test_no_tcp_port_is_opened_by_the_daemon(ravas_home):
    env = {
        "RAVAS_HOME": str(ravas_home),
        "PATH": "/usr/bin:/bin",
        "RAVAS_MODELS_DIR": os.environ["RAVAS_MODELS_DIR"],
        "PULSE_SERVER": "unix:/nonexistent",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ravasd", "run", "--no-tray"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in proc.stdout:
            if "ravasd running" in line:
                break
        time.sleep(1.0)
        pids = {str(proc.pid)} | set(
            subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        )
        inodes = set()
        for pid in pids:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        listening = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # state LISTEN
                    listening.append(cols[1])
        assert listening == []
        r = ravasd(env, "ctl", "quit")
        assert r.returncode == 0, r.stderr
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


# ------------------------------------------------------------------ autostart
@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_autostart_xdg_and_systemd(home):
    from ravasd.daemon import autostart

    assert autostart.status("linux")["enabled"] is False
    msg = autostart.enable(platform="linux")
    desktop = home / ".config" / "autostart" / "ravasd.desktop"
    assert str(desktop) in msg
    text = desktop.read_text()
    assert f"Exec={sys.executable} -m ravasd run" in text and "[Desktop Entry]" in text
    assert autostart.status("linux") == {"enabled": True, "where": [str(desktop)]}
    autostart.enable(systemd=True, platform="linux")
    unit = home / ".config" / "systemd" / "user" / "ravasd.service"
    assert f"ExecStart={sys.executable} -m ravasd run --no-tray" in unit.read_text()
    assert "removed" in autostart.disable("linux")
    assert not desktop.exists() and not unit.exists() and autostart.status("linux")["enabled"] is False


def test_desktop_entry_icon_and_path_link(home, monkeypatch, tmp_path):
    """`ravasd desktop install` (run by ./bootstrap.sh run): a valid menu entry whose commands run this
    installation, the icon, and ~/.local/bin/ravasd; a foreign file there is left alone; remove undoes it."""
    import shutil

    from ravasd.daemon import desktop

    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    exe = tmp_path / "my apps" / "bin" / "ravasd"  # a path with a space: Exec= must quote it
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    monkeypatch.setattr(desktop, "launcher", lambda: exe)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    lines = desktop.install()
    entry = home / ".local" / "share" / "applications" / "org.ravas.ravasd.desktop"
    text = entry.read_text()
    assert f'Exec="{exe}" run' in text and f'Exec="{exe}" ctl pause' in text and "Icon=org.ravas.ravasd" in text
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr
    svg, png = desktop.icon_files()
    assert svg.read_text().lstrip().startswith("<?xml") and png.read_bytes()[:4] == b"\x89PNG"
    link = home / ".local" / "bin" / "ravasd"
    assert os.readlink(link) == str(exe)
    assert any("not on your PATH" in line for line in lines)  # the note says how to fix it
    assert desktop.status()["menu_entry"] == str(entry)
    assert desktop.install()  # again: nothing breaks, the link stays
    assert os.readlink(link) == str(exe)
    removed = desktop.remove()
    assert not entry.exists() and not svg.exists() and not link.exists() and len(removed) == 4
    link.write_text("someone else's ravasd")  # not ours: never replaced, never removed
    assert any("left as it is" in line for line in desktop.install())
    desktop.remove()
    assert link.read_text() == "someone else's ravasd"
    with pytest.raises(RavasError, match="PyInstaller"):
        desktop.install(platform="win32")


def test_autostart_macos_launch_agent(home):
    from ravasd.daemon import autostart

    autostart.enable(platform="darwin")
    plist = plistlib.loads((home / "Library" / "LaunchAgents" / "org.ravas.ravasd.plist").read_bytes())
    assert plist["Label"] == "org.ravas.ravasd" and plist["RunAtLoad"] is True
    assert plist["ProgramArguments"] == [sys.executable, "-m", "ravasd", "run"]
    autostart.disable("darwin")
    assert autostart.status("darwin")["enabled"] is False


def test_autostart_windows_run_key(monkeypatch):
    from ravasd.daemon import autostart

    store: dict[str, str] = {}

    class Key:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    class FakeWinreg:
        HKEY_CURRENT_USER, KEY_SET_VALUE, KEY_READ, REG_SZ = 1, 2, 3, 4

        @staticmethod
        def OpenKey(root, path, reserved, access):
            assert root == 1 and path == autostart.RUN_KEY
            return Key()

        @staticmethod
        def SetValueEx(key, name, reserved, kind, value):
            store[name] = value

        @staticmethod
        def QueryValueEx(key, name):
            if name not in store:
                raise FileNotFoundError(name)
            return store[name], 4

        @staticmethod
        def DeleteValue(key, name):
            if name not in store:
                raise FileNotFoundError(name)
            del store[name]

    monkeypatch.setattr(autostart, "_winreg", lambda: FakeWinreg)
    monkeypatch.setattr(sys, "executable", r"C:\RAVAS\venv\Scripts\python.exe")
    autostart.enable(platform="win32")
    assert store["RAVAS"] == r"C:\RAVAS\venv\Scripts\pythonw.exe -m ravasd run"
    assert autostart.status("win32")["enabled"] is True
    autostart.disable("win32")
    assert store == {} and autostart.status("win32")["enabled"] is False


# ------------------------------------------------------------------ doctor, models, logs
def test_doctor_on_this_machine_names_v4l2loopback_and_passes_the_rest(pulse, ravas_home):
    env = dict(pulse.env, RAVAS_HOME=str(ravas_home), RAVAS_MODELS_DIR=str(SHARED_MODELS))
    env.pop("DISPLAY", None)
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "doctor", "--json", "--set", "audio.input_device=fake_mic"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert [n for n, c in checks.items() if c["status"] == "fail"] == ["virtual camera"]
    assert "v4l2loopback" in checks["virtual camera"]["detail"]
    assert "setup-v4l2loopback.sh" in checks["virtual camera"]["fix"]
    assert checks["virtual mic"]["status"] == "ok" and checks["model files"]["status"] == "ok"
    assert checks["OpenGL"]["status"] == "ok" and checks["microphone"]["status"] == "ok"
    assert not [m for m in pulse.pactl("list", "short", "modules").splitlines() if "ravas" in m]
    text = subprocess.run(
        [sys.executable, "-m", "ravasd", "doctor"], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    script = assets.path("drivers", "linux", "setup-v4l2loopback.sh")  # the installed copy, named in full
    assert script.is_file() and "FAIL  virtual camera" in text and f"fix: run `sudo sh {script}` once" in text


def test_model_lookup_checksum_and_fetch(tmp_path, monkeypatch):
    from ravasd import model_files

    spec = model_files.FACE_LANDMARKER
    monkeypatch.delenv("RAVAS_MODELS_DIR")
    assert model_files.find(spec) is None
    monkeypatch.setenv("RAVAS_MODELS_DIR", str(SHARED_MODELS))
    assert model_files.find(spec) == SHARED_MODELS / spec.name
    with pytest.raises(ModelError, match="models.face_landmarker: .* does not exist"):
        model_files.find(spec, str(tmp_path / "missing.task"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / spec.name).write_bytes(b"not a model")
    monkeypatch.setenv("RAVAS_MODELS_DIR", str(bad))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        model_files.find(spec)
    monkeypatch.delenv("RAVAS_MODELS_DIR")
    # the download path, from a local URL (no network here): progress, checksum, atomic move
    local = model_files.ModelSpec(spec.name, (SHARED_MODELS / spec.name).as_uri(), spec.sha256, spec.config_key, "x")
    path = model_files.fetch(local, progress=False)
    assert path == model_files.cache_path(spec) and model_files.find(spec) == path
    path.unlink()
    wrong = model_files.ModelSpec(spec.name, local.url, "0" * 64, spec.config_key, "x")
    with pytest.raises(ModelError, match="sha256"):
        model_files.fetch(wrong, progress=False)
    unreachable = model_files.ModelSpec(
        spec.name, "http://127.0.0.1:9/face_landmarker.task", spec.sha256, spec.config_key, "x"
    )
    with pytest.raises(ModelError) as err:
        model_files.resolve(unreachable, None, allow_download=True, progress=False)
    assert "RAVAS_MODELS_DIR" in err.value.fix and not model_files.cache_path(spec).exists()
    with pytest.raises(ModelError, match="downloads are switched off"):
        model_files.resolve(spec, None, allow_download=False)


def test_logs_rotate_in_log_dir_and_redact_home(monkeypatch, tmp_path):
    import logging

    from ravasd import logs, paths

    monkeypatch.setenv("HOME", str(tmp_path / "alice"))
    path = logs.setup(logging.WARNING, "ravasd.log")
    logging.getLogger("t").info("opened %s", str(tmp_path / "alice" / "videos" / "x.mp4"))
    for h in logging.getLogger().handlers:
        h.flush()
    assert path == paths.log_dir() / "ravasd.log"
    text = path.read_text()
    assert "~/videos/x.mp4" in text and "alice" not in text
    logs.setup(logging.WARNING)
