"""Shared fixtures. Every test runs with RAVAS_HOME in a temp dir, so no user profile is touched."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"


@pytest.fixture(autouse=True)
def _pulse_routing_is_per_test(monkeypatch):
    """Opening a device in this process sets PULSE_SOURCE/PULSE_SINK (devices.pulse.route, by design:
    PortAudio reads them): whatever a test leaves there is undone after it. Left behind, they named
    devices of the session's server to every later child process — a browser on another server then
    failed to open any microphone (eval call, in whole-suite runs only)."""
    for key in ("PULSE_SOURCE", "PULSE_SINK"):
        monkeypatch.setenv(key, "-")  # records what was there (or that nothing was) for the undo
        monkeypatch.delenv(key)
    yield


@pytest.fixture(autouse=True)
def ravas_home(tmp_path, monkeypatch):
    home = tmp_path / "ravas-home"
    monkeypatch.setenv("RAVAS_HOME", str(home))
    # tests use the shared model copy and never download (no network here)
    monkeypatch.setenv("RAVAS_MODELS_DIR", str(SHARED_MODELS))
    return home


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session", params=["pulseaudio", "pipewire"])
def sound_server(request, tmp_path_factory):
    """Each real sound server in turn (for end-to-end tests that must work on both)."""
    if request.param == "pulseaudio":
        yield request.getfixturevalue("pulse")
        return
    from pulse import PipeWireServer

    server = PipeWireServer(tmp_path_factory.mktemp("pipewire"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """A real PulseAudio server for the session; sets PULSE_SERVER for this process too."""
    from pulse import PulseServer

    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    old = os.environ.get("PULSE_SERVER")
    os.environ["PULSE_SERVER"] = server.env["PULSE_SERVER"]
    _reinit_portaudio()  # PortAudio lists ALSA's "pulse" device only if a server answered at init
    yield server
    server.stop()
    if old is None:
        os.environ.pop("PULSE_SERVER", None)
    else:
        os.environ["PULSE_SERVER"] = old
    _reinit_portaudio()


def _reinit_portaudio():
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


@pytest.fixture(scope="session")
def desktop(tmp_path_factory):
    """Xvfb + a D-Bus session bus; yields the env that reaches them."""
    import shutil
    import subprocess

    if not shutil.which("Xvfb"):
        raise RuntimeError("Xvfb is not installed (./bootstrap.sh test installs it)")
    root = tmp_path_factory.mktemp("desktop")
    r, w = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    display = b""
    while not display.endswith(b"\n"):
        chunk = os.read(r, 16)
        if not chunk:
            break
        display += chunk
    os.close(r)
    bus = root / "bus"
    dbus = subprocess.Popen(
        ["dbus-daemon", "--session", f"--address=unix:path={bus}", "--nofork", "--nopidfile"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if bus.exists():
            break
        import time

        time.sleep(0.05)
    env = {"DISPLAY": f":{display.decode().strip()}", "DBUS_SESSION_BUS_ADDRESS": f"unix:path={bus}"}
    yield env
    dbus.terminate()
    xvfb.terminate()
