"""The tray under a real X server (Xvfb) with the GTK backend: every menu item, on a real daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ravasd.daemon.tray import tray_state


def test_tray_menu_items_work_on_a_real_daemon(desktop, tmp_path, ravas_home):
    out = tmp_path / "tray.json"
    env = {
        "PATH": "/usr/bin:/bin",
        "RAVAS_MODELS_DIR": os.environ["RAVAS_MODELS_DIR"],
        "RAVAS_HOME": str(ravas_home),
        "HOME": str(tmp_path / "home"),
        "PULSE_SERVER": "unix:/nonexistent",
        **desktop,
    }
    r = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("tray_harness.py")), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert "error" not in res, res
    assert res["backend"].endswith("_gtk") and res["has_menu"]
    items = [t for t in res["top"][1:] if not t.startswith("- -")]
    assert items == [
        "Avatar",
        "Voice",
        "Pause (privacy curtain)",
        "Calibrate face",
        "Show preview",
        "Settings…",
        "Start at login",
        "Open settings file",
        "Open log folder",
        "Quit",
    ]
    assert res["top"][0].startswith("RAVAS — ")
    for key in (
        "k_menu_hidden",
        "running",
        "voice_radio",
        "voice_saved",
        "avatar_checked",
        "paused",
        "paused_icon",
        "resumed",
        "autostart_on",
        "autostart_off",
        "preview_on",
        "settings_window_running",
    ):
        assert res[key] is True, (key, res.get("not_running_status"))
    assert res["opened"] == [str(ravas_home / "config" / "config.yaml"), str(ravas_home / "log")]
    assert res["returned_after_quit"] < 3


def test_tray_state_from_status():
    run = {"state": "running"}
    assert tray_state({"paused": True, "video": run}) == "paused"
    assert tray_state({"video": run, "audio": run}) == "running"
    assert tray_state({"video": {"state": "starting"}, "audio": run}) == "waiting"
    assert tray_state({"video": dict(run, face=False), "audio": run}) == "waiting"
    assert tray_state({"video": {"fatal": "boom"}}) == "error"


def test_headless_without_display(monkeypatch):
    from ravasd.daemon import tray

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert tray.start_tray(object()) is None
