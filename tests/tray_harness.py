"""Runs a real daemon with its tray under Xvfb and clicks every menu item (see test_tray.py).

Usage: python tray_harness.py RESULT.json — exits 0 after Quit; the JSON says what happened.
"""

import json
import os
import sys
import time

os.environ.setdefault("PYSTRAY_BACKEND", "gtk")

from ravasd import paths  # noqa: E402
from ravasd.config import load_config  # noqa: E402
from ravasd.daemon import autostart  # noqa: E402
from ravasd.daemon.service import Daemon  # noqa: E402
from ravasd.daemon.tray import Tray, open_settings_window, tray_state  # noqa: E402


def main():
    global res, daemon, tray, opened, T0
    out = sys.argv[1]
    cfg = load_config(
        overrides={
            "video.source": "demo",
            "audio.source": "demo",
            "video.sink": "null",
            "audio.sink": "null",
            "video.width": 320,
            "video.height": 240,
        }
    )
    daemon = Daemon(cfg)
    daemon.start()
    opened = []
    windows = []  # the real `ravasd settings` processes the tray started
    tray = Tray(daemon, opener=opened.append, settings_opener=lambda: windows.append(open_settings_window()))
    res = {"backend": type(tray.icon).__module__, "steps": []}

    def item(menu, text):
        for it in menu.items:
            if it.text == text:
                return it
        raise KeyError(f"{text!r} not in {[i.text for i in menu.items]}")

    def wait(pred, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            daemon.sup.poll(0.05)
            if pred():
                return True
        return False

    T0 = time.monotonic()

    def mark(name):
        res["steps"].append((name, round(time.monotonic() - T0, 2)))

    def setup(t):
        icon = t.icon
        mark("setup")
        try:
            res["has_menu"] = icon.HAS_MENU and icon.HAS_MENU_RADIO
            res["top"] = [i.text for i in icon.menu.items if i.visible]
            # the neighbour count is offered only while a neural voice is in use
            res["k_menu_hidden"] = not item(icon.menu, "Voice neighbours (k)").visible
            mark("running")
            # start-up (MediaPipe, EGL, the voice) takes seconds, many on a loaded machine
            res["running"] = wait(lambda: tray_state(daemon.status()) == "running", 90.0)
            if not res["running"]:
                st = daemon.status()
                res["not_running_status"] = {k: st.get(k) for k in ("paused", "video", "audio")}
            voice = item(item(icon.menu, "Voice").submenu, "ringmod")
            voice(icon)
            res["voice_radio"] = voice.radio and voice.checked
            mark("voice_saved")
            res["voice_saved"] = "voice: ringmod" in paths.config_file().read_text()
            avatar = item(item(icon.menu, "Avatar").submenu, "card")
            avatar(icon)
            res["avatar_checked"] = avatar.checked
            pause = item(icon.menu, "Pause (privacy curtain)")
            pause(icon)
            res["paused"] = (
                wait(
                    lambda: (
                        daemon.status()["video"].get("state") == "paused"
                        and daemon.status()["audio"].get("state") == "paused"
                    )
                )
                and pause.checked
            )
            tray.refresh()
            mark("paused_icon")
            res["paused_icon"] = tray._state == "paused" and "paused" in icon.title
            pause(icon)
            mark("resumed")
            res["resumed"] = wait(lambda: daemon.status()["video"].get("state") == "running") and not pause.checked
            start = item(icon.menu, "Start at login")
            start(icon)
            res["autostart_on"] = autostart.status()["enabled"] and start.checked
            start(icon)
            mark("autostart_off")
            res["autostart_off"] = not autostart.status()["enabled"]
            item(icon.menu, "Open settings file")(icon)
            item(icon.menu, "Open log folder")(icon)
            res["opened"] = [str(p) for p in opened]
            preview = item(icon.menu, "Show preview")
            preview(icon)
            mark("preview_on")
            res["preview_on"] = daemon.preview and preview.checked
            preview(icon)
            item(icon.menu, "Calibrate face")(icon)
            item(icon.menu, "Settings…")(icon)
            mark("settings")
            time.sleep(4)  # a window that could not open would have exited by now
            res["settings_window_running"] = len(windows) == 1 and windows[0].poll() is None
            windows[0].terminate()
            windows[0].wait(5)
            res["quit_at"] = time.monotonic()
            item(icon.menu, "Quit")(icon)
        except Exception as err:  # report instead of hanging the GUI loop
            res["error"] = f"{type(err).__name__}: {err}"
            daemon.stop_event.set()

    tray.run_until(daemon.stop_event, setup=setup)
    res["returned_after_quit"] = round(time.monotonic() - res.get("quit_at", time.monotonic()), 2)
    mark("stopping")
    daemon.stop()
    mark("stopped")
    with open(out, "w") as fh:
        json.dump(res, fh)


if __name__ == "__main__":  # worker processes are spawned: they re-import this module
    main()
