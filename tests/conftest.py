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
def ravas_home(tmp_path, monkeypatch):
    home = tmp_path / "ravas-home"
    monkeypatch.setenv("RAVAS_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """A real PulseAudio server for the session; sets PULSE_SERVER for this process too."""
    from pulse import PulseServer

    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    old = os.environ.get("PULSE_SERVER")
    os.environ["PULSE_SERVER"] = server.env["PULSE_SERVER"]
    yield server
    server.stop()
    if old is None:
        os.environ.pop("PULSE_SERVER", None)
    else:
        os.environ["PULSE_SERVER"] = old
