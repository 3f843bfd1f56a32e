"""Drives the settings window under Xvfb against a real daemon (see test_settings.py).

Starts with no daemon (the banner must offer to start it), presses *Start RAVAS*, then works every
page's controls and checks each change in the daemon's status and the config file. Writes a JSON
result and one screenshot per page with the rectangles of its live widgets (masked by the test).
Usage: settings_harness.py OUT_DIR FAKE_MIC_WAV
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import yaml
from PySide6 import QtCore, QtGui, QtWidgets

from ravasd import paths
from ravasd.daemon import autostart
from ravasd.gui import client
from ravasd.gui.settings import PAGES, SettingsWindow

out = Path(sys.argv[1])
speech = sys.argv[2]
res: dict = {"dialogs": []}
app = QtWidgets.QApplication([])
QtWidgets.QMessageBox.warning = lambda parent, title, text, *a: res["dialogs"].append(text)  # modal: recorded
QtWidgets.QMessageBox.information = lambda parent, title, text, *a: res["dialogs"].append(text)


def pump(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def wait_for(pred, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def status() -> dict:
    return client.call("status")["status"]


def saved() -> dict:
    return yaml.safe_load(paths.config_file().read_text()) if paths.config_file().exists() else {}


def shot(win: SettingsWindow, page: str) -> None:
    win.nav.setCurrentRow(PAGES.index(page))
    pump(1.2)
    img = win.grab().toImage()
    img.save(str(out / f"{page}.png"))
    live = []
    for w in win.findChildren(QtWidgets.QWidget):
        if w.property("live") and w.isVisible():
            top_left = w.mapTo(win, QtCore.QPoint(0, 0))
            live.append([top_left.x(), top_left.y(), w.width(), w.height()])
    res.setdefault("live", {})[page] = live
    res.setdefault("size", [img.width(), img.height()])


def main() -> None:
    win = SettingsWindow(poll_ms=100, ask_to_start=False)
    win.no_open = True
    win.auto_confirm = True
    win.setFixedSize(920, 600)  # the golden images' size, whatever the paths or fonts ask for
    win.show()
    pump(0.5)
    res["banner_without_daemon"] = win.banner.isVisible() and not win.pages["Camera"].isEnabled()
    win.start_button.click()
    res["started_from_window"] = wait_for(lambda: win.connected, 90)
    assert res["started_from_window"], "the window could not start the daemon"
    wait_for(lambda: (status().get("video") or {}).get("state") == "running", 60)

    # ---- a second window opened and closed must not disturb the daemon
    other = SettingsWindow(poll_ms=100, ask_to_start=False)
    other.show()
    pump(0.5)
    other.close()
    other.deleteLater()
    pump(0.3)
    res["daemon_alive_after_other_window_closed"] = client.running()

    # ---- Camera: size and frame rate restart the video stream; the preview shows frames
    cam = win.pages["Camera"]
    win.nav.setCurrentRow(PAGES.index("Camera"))
    res["camera_items"] = [cam.device.itemText(i) for i in range(cam.device.count())]
    cam.size.setCurrentIndex(cam.size.findData("640x360"))
    cam.size.activated.emit(cam.size.currentIndex())
    cam.fps.setCurrentIndex(cam.fps.findData(15))
    cam.fps.activated.emit(cam.fps.currentIndex())
    st = status()
    res["camera_size_applied"] = st["video_size"] == [640, 360] and st["video_fps"] == 15
    s = saved().get("video", {})
    res["camera_size_saved"] = (s.get("width"), s.get("height"), s.get("fps")) == (640, 360, 15)
    frames0 = cam.frames_shown
    res["preview_frames"] = wait_for(lambda: cam.frames_shown >= frames0 + 10, 20)
    res["preview_text"] = cam.state.text()
    shot(win, "Camera")

    # ---- Microphone: pick the fake microphone, see its level, test the converted voice
    mic = win.pages["Microphone"]
    win.nav.setCurrentRow(PAGES.index("Microphone"))
    win.refresh(full=True)
    res["mic_items"] = [mic.device.itemText(i) for i in range(mic.device.count())]
    player = subprocess.Popen(
        ["sh", "-c", f"while true; do paplay --device=fake_cam_mic '{speech}'; done"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        idx = next(i for i in range(mic.device.count()) if mic.device.itemData(i) == ("mic", "fake_mic"))
        mic.device.setCurrentIndex(idx)
        mic.device.activated.emit(idx)
        cur = client.call("devices")["current"]
        res["mic_applied"] = cur["input_device"] == "fake_mic" and cur["audio_source"] == "mic"
        res["mic_saved"] = saved().get("audio", {}).get("input_device") == "fake_mic"
        res["meter_moves"] = wait_for(lambda: mic.meter.value() > 15, 20)  # above −45 dBFS: speech
        res["mic_state"] = mic.mic_state.text()
        mic.test_button.click()
        res["voice_test_played"] = wait_for(lambda: win.played is not None, 30)
        if win.played is not None:
            import numpy as np

            res["voice_test_rms"] = float(np.sqrt(np.mean(win.played**2)))
            res["voice_test_seconds"] = len(win.played) / 48000
        mic.meter.setValue(0)
        shot(win, "Microphone")
    finally:
        player.terminate()
        subprocess.run(["pkill", "-f", f"paplay --device=fake_cam_mic '{speech}'"], check=False)

    # ---- Avatar: choose one, add one (with its licence shown), background colour and picture
    av = win.pages["Avatar"]
    win.nav.setCurrentRow(PAGES.index("Avatar"))
    names = [av.gallery.item(i).data(QtCore.Qt.UserRole) for i in range(av.gallery.count())]
    res["gallery"] = names
    av._pick(av.gallery.item(names.index("pixel")))
    res["avatar_applied"] = status()["avatar"] == "pixel"
    res["avatar_saved"] = saved().get("video", {}).get("avatar") == "pixel"
    friend = out / "friend.glb"
    from ravasd.video.avatar.library import find

    shutil.copyfile(find("tabby"), friend)
    av.add_avatar(str(friend))
    wait_for(lambda: "friend" in [av.gallery.item(i).data(QtCore.Qt.UserRole) for i in range(av.gallery.count())], 10)
    names = [av.gallery.item(i).data(QtCore.Qt.UserRole) for i in range(av.gallery.count())]
    res["added_in_gallery"] = "friend" in names
    res["added_thumbnail_rendered"] = any((paths.cache_dir() / "thumbnails").glob("friend-*.png"))
    broken = out / "broken.glb"
    broken.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    n_dialogs = len(res["dialogs"])
    av.add_avatar(str(broken))
    res["broken_refused"] = len(res["dialogs"]) == n_dialogs + 1 and "broken" not in [
        av.gallery.item(i).data(QtCore.Qt.UserRole) for i in range(av.gallery.count())
    ]
    res["broken_message"] = res["dialogs"][-1] if len(res["dialogs"]) > n_dialogs else ""
    QtWidgets.QColorDialog.getColor = staticmethod(lambda *a, **k: QtGui.QColor("#336699"))
    av.pick_colour()
    res["background_applied"] = status()["background"] == "#336699"
    res["background_saved"] = saved().get("video", {}).get("background") == "#336699"
    pic = out / "bg.png"
    QtGui.QImage(64, 36, QtGui.QImage.Format_RGB32).save(str(pic))
    av.pick_picture(str(pic))
    res["picture_applied"] = status()["background_image"] == str(pic)
    av.no_picture_button.click()
    res["picture_removed"] = status()["background_image"] is None
    av.framing.activated.emit(av.framing.findData("close"))
    res["framing_applied"] = status()["framing"] == "close"
    res["framing_saved"] = saved().get("video", {}).get("framing") == "close"
    av.framing.activated.emit(av.framing.findData("bust"))
    win.refresh(full=True)
    res["framing_shown"] = av.framing.currentData() == status()["framing"] == "bust"
    av.calibrate_button.click()
    win.refresh(full=True)
    shot(win, "Avatar")

    # ---- Voice: choose one, play a sample through another
    vp = win.pages["Voice"]
    win.nav.setCurrentRow(PAGES.index("Voice"))
    rows = {vp.table.item(r, 0).text(): r for r in range(vp.table.rowCount())}
    res["voice_rows"] = list(rows)
    wait_for(vp.latencies_done.is_set, 60)
    res["latency_cells"] = {name: vp.table.item(r, 1).text() for name, r in rows.items()}
    vp.table.selectRow(rows["baritone"])
    vp.use_button.click()
    res["voice_applied"] = status()["voice"] == "baritone"
    res["voice_saved"] = saved().get("audio", {}).get("voice") == "baritone"
    win.played = None
    vp.table.selectRow(rows["alto"])
    vp.sample_button.click()
    res["sample_played"] = wait_for(lambda: win.played is not None, 60)
    if win.played is not None:
        import numpy as np

        res["sample_rms"] = float(np.sqrt(np.mean(win.played**2)))
    vp.table.selectRow(rows["baritone"])
    shot(win, "Voice")

    # ---- General: pause (the call sees the card), autostart, files, checks
    gp = win.pages["General"]
    win.nav.setCurrentRow(PAGES.index("General"))
    gp.pause.click()
    res["paused"] = status()["paused"] is True
    res["paused_frame_is_card"] = wait_for(lambda: client.call("frame", max_width=160)["placeholder"], 5)
    gp.pause.click()
    res["resumed"] = status()["paused"] is False
    gp.autostart.click()
    res["autostart_on"] = autostart.status()["enabled"]
    gp.autostart.click()
    res["autostart_off"] = not autostart.status()["enabled"]
    for b in gp.findChildren(QtWidgets.QPushButton):
        if b.text() == "Open":
            b.click()
    res["opened"] = getattr(win, "opened", [])
    gp.check_button.click()
    res["checks_shown"] = wait_for(gp.checks_done.is_set, 60) and gp.checks.topLevelItemCount() >= 6
    win.refresh(full=True)
    shot(win, "General")

    # ---- closing the window leaves the daemon running; then stop it
    win.close()
    pump(0.3)
    res["daemon_alive_after_close"] = client.running()
    client.call("quit")
    res["stopped"] = wait_for(lambda: not client.running(), 15)


try:
    out.mkdir(parents=True, exist_ok=True)
    main()
except Exception:
    res["error"] = traceback.format_exc()
    try:
        client.call("quit")
    except Exception:
        pass
(out / "result.json").write_text(json.dumps(res, indent=1))
os._exit(0)
