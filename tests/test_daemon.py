"""`ravasd run` on a machine without camera, mic, display or virtual devices."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import av
import pytest
from helpers import wait_until

from ravasd.config import load_config
from ravasd.engine.supervisor import Supervisor
from ravasd.wiring import WIRING


def _env(home):
    return {
        "RAVAS_HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "RAVAS_MODELS_DIR": os.environ["RAVAS_MODELS_DIR"],
        "PULSE_SERVER": "unix:/nonexistent",
    }


def _start(home, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "ravasd", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(home),
    )


def _wait_line(proc, needle, timeout=60):
    lines = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not printed; got:\n{''.join(lines)}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_falls_back_to_demo_and_stops_within_2s(sig, ravas_home):
    proc = _start(ravas_home)  # plain `ravasd` = run
    lines = _wait_line(proc, "ravasd running")
    text = "".join(lines)
    assert "camera:" in text and "demo source" in text
    assert "virtual camera:" in text and "Fix:" in text
    time.sleep(2.0)  # workers up and publishing
    t0 = time.monotonic()
    proc.send_signal(sig)
    rest = proc.communicate(timeout=10)[0]
    assert time.monotonic() - t0 < 2.0 + 0.5  # 2 s budget plus interpreter exit
    assert proc.returncode == 0, rest
    assert "ravasd stopped." in rest and "Traceback" not in rest


def test_run_records_anonymized_output(ravas_home, tmp_path):
    out = tmp_path / "rec.mp4"
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "run", "--duration", "4", "--record", str(out)],
        capture_output=True,
        text=True,
        env=_env(ravas_home),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        assert c.streams.video and c.streams.audio
        n = sum(1 for _ in c.decode(video=0))
    assert n > 30
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "ravas-home") == ["rec.mp4"]  # parts merged, removed


def test_bad_config_is_one_clear_line(ravas_home, tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("audio:\n  block_ms: 0\n")
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        env=_env(ravas_home),
        timeout=30,
    )
    assert r.returncode == 2
    assert f"{bad}: audio.block_ms: must be 5..200, got 0" in r.stderr and "Traceback" not in r.stderr


def test_supervisor_restarts_a_crashed_worker(monkeypatch):
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent")
    cfg = load_config(
        overrides={
            "video.source": "demo",
            "video.sink": "null",
            "audio.source": "demo",
            "audio.sink": "null",
            "video.width": 320,
            "video.height": 240,
        }
    )
    sup = Supervisor(cfg, WIRING)
    sup.start()
    try:
        assert wait_until(lambda: (sup.poll(0.05), sup.status()["video"].get("published", 0) > 3)[1], 30)
        os.kill(sup.workers["video"].proc.pid, signal.SIGKILL)
        assert wait_until(lambda: (sup.poll(0.05), sup.workers["video"].restarts == 1)[1], 10)
        assert wait_until(
            lambda: (
                sup.poll(0.05),
                sup.status()["video"].get("alive") and sup.status()["video"].get("published", 0) > 3,
            )[1],
            30,
        )
        sup.pause()
        assert wait_until(
            lambda: (
                sup.poll(0.05),
                sup.status()["video"].get("state") == "paused" and sup.status()["audio"].get("state") == "paused",
            )[1],
            10,
        )
        lat = sup.status()["audio"]["latency_ms"]
        assert lat >= 0
    finally:
        t0 = time.monotonic()
        sup.stop()
        assert time.monotonic() - t0 < 2.5
    assert wait_until(lambda: not any(w.proc.is_alive() for w in sup.workers.values()), 5)
