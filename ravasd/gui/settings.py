"""``ravasd settings``: one window to set RAVAS up without a terminal (Qt via PySide6, the ``gui`` extra).

A client of the running daemon over the control socket (no TCP port): every change goes through
the daemon's verbs, which validate it with the typed config, apply it live and persist it
atomically; the window keeps no settings of its own. Several windows may be open; closing one
never touches the daemon. When no daemon answers, a banner offers to start it.

Pages: *Camera* (device, size, frame rate, the live output at ~10 fps), *Microphone* (device,
input meter, "Test my voice", RAVAS Mic status), *Avatar* (gallery, add, background, calibrate),
*Voice* (each voice with latency and measured figures, a sample), *General* (start at login,
pause, where files live, the doctor's checks with their fixes). Everything runs in the GUI thread
except requests that take seconds (voice test, samples, checks), which run in worker threads and
report back through :class:`_Bridge` signals.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from .. import config as config_mod
from .. import paths
from ..audio.voices import VOICES, figures, latency_ms
from ..audio.voices import neural as neural_voices
from ..config import Config, block_size, load_config
from ..config import from_dict as config_from_dict
from ..daemon import autostart
from ..daemon.tray import open_path
from ..devices.virtual import is_microphone
from ..errors import RavasError
from ..video.avatar import library
from ..video.converters import VIDEO_CONVERTERS, video_choices
from . import client

PAGES = ("Camera", "Microphone", "Avatar", "Voice", "General")
SIZES = ((640, 360), (960, 540), (1280, 720), (1920, 1080))
RATES = (15, 24, 30, 60)
PREVIEW_W, PREVIEW_H = 480, 270
THUMB_W, THUMB_H = 192, 108
SAMPLE_TEXT = "Hello, this is how my voice sounds on the call today."


class _Bridge(QtCore.QObject):
    """Carries a worker thread's result back to the GUI thread (queued signal)."""

    done = QtCore.Signal(object, object, object)  # callback, result, error


def _live(widget: QtWidgets.QWidget) -> QtWidgets.QWidget:
    """Mark a widget whose pixels change by themselves (preview, meters, status): screenshot tests mask it."""
    widget.setProperty("live", True)
    return widget


def _labelled(form: QtWidgets.QFormLayout, text: str, widget: QtWidgets.QWidget) -> QtWidgets.QWidget:
    label = QtWidgets.QLabel(text)
    label.setBuddy(widget)  # Alt+letter focus and the accessible name come from the label
    widget.setAccessibleName(text.replace("&", "").rstrip(":"))
    form.addRow(label, widget)
    return widget


class SettingsWindow(QtWidgets.QMainWindow):
    """The settings window. ``poll_ms``: how often status/preview/meter refresh (0: only on demand,
    for tests that drive :meth:`refresh` themselves)."""

    def __init__(self, poll_ms: int = 100, ask_to_start: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("RAVAS Settings")
        self.setWindowIcon(_app_icon())
        self.bridge = _Bridge()
        self.bridge.done.connect(self._finish_async)
        self.status: dict[str, Any] = {}
        self.connected: bool | None = None  # unknown until the first status poll
        self.ask_to_start = ask_to_start
        self.last_error = ""
        self.played: np.ndarray | None = None  # the last thing "Test my voice" / "Play sample" played
        self._tick = 0
        self._devices: tuple[float, dict[str, Any]] | None = None
        self.cfg = self.effective_config()

        central = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(central)
        self.banner = QtWidgets.QFrame(objectName="banner")
        self.banner.setStyleSheet("#banner { background: #fff4ce; border: 1px solid #e0c060; border-radius: 4px; }")
        bl = QtWidgets.QHBoxLayout(self.banner)
        self.banner_text = QtWidgets.QLabel("RAVAS is not running, so nothing can be changed or seen yet.")
        self.start_button = QtWidgets.QPushButton("&Start RAVAS")
        self.start_button.clicked.connect(self.start_daemon)
        bl.addWidget(self.banner_text, 1)
        bl.addWidget(self.start_button)
        outer.addWidget(self.banner)

        body = QtWidgets.QHBoxLayout()
        self.nav = QtWidgets.QListWidget()
        self.nav.setAccessibleName("Pages")
        self.nav.addItems(PAGES)
        self.nav.setFixedWidth(140)
        self.stack = QtWidgets.QStackedWidget()
        self.pages = {
            "Camera": CameraPage(self),
            "Microphone": MicrophonePage(self),
            "Avatar": AvatarPage(self),
            "Voice": VoicePage(self),
            "General": GeneralPage(self),
        }
        for name in PAGES:
            self.stack.addWidget(self.pages[name])
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.setCurrentRow(0)
        body.addWidget(self.nav)
        body.addWidget(self.stack, 1)
        outer.addLayout(body, 1)
        self.setCentralWidget(central)
        self.status_label = QtWidgets.QLabel()
        self.statusBar().addWidget(self.status_label, 1)
        _live(self.statusBar())  # status and transient messages
        self.resize(900, 600)

        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        if poll_ms:
            self.timer.start(poll_ms)
        self.refresh(full=True)

    # ---------------------------------------------------------------- daemon link
    def effective_config(self) -> Config:
        """The settings in force: the running daemon's (what it read, defaults filled in), else the
        config file's (defaults where it is missing or unreadable — the General page's checks say why).
        Pages read this, never built-in defaults of their own."""
        try:
            return config_from_dict(client.call("config", timeout=2.0)["config"], "the daemon's settings")
        except (RavasError, KeyError):
            return _load_or_default()

    def request(self, cmd: str, quiet: bool = False, **args: Any) -> dict[str, Any] | None:
        """A control request; a refusal is shown in a dialog (unless ``quiet``) and returns None."""
        try:
            return client.call(cmd, **args)
        except RavasError as err:
            self.last_error = str(err)
            if not quiet:
                QtWidgets.QMessageBox.warning(self, "RAVAS", str(err))
            if not client.running():
                self._set_connected(False)
            return None

    def set(self, changes: dict[str, Any]) -> bool:
        """Change settings in the daemon (validated, applied, saved); True when accepted."""
        reply = self.request("set", changes=changes)
        self._devices = None  # the current camera/microphone may have changed
        if reply is not None:
            self.statusBar().showMessage(
                {
                    config_mod.LIVE: "Applied.",
                    config_mod.RESTART: "Applied (the stream restarted).",
                    config_mod.NEXT_START: "Saved; applies when RAVAS starts next.",
                }.get(reply["applied"], "Saved."),
                4000,
            )
            self.refresh(full=True)
        return reply is not None

    def run_async(self, fn: Callable[[], Any], then: Callable[[Any, Exception | None], None]) -> None:
        """Run ``fn`` in a worker thread; ``then(result, error)`` runs in the GUI thread."""

        def work():
            try:
                self.bridge.done.emit(then, fn(), None)
            except Exception as err:  # shown by ``then``
                self.bridge.done.emit(then, None, err)

        threading.Thread(target=work, daemon=True, name="settings-worker").start()

    @QtCore.Slot(object, object, object)
    def _finish_async(self, then, result, error) -> None:
        then(result, error)

    def run_button(
        self,
        button: QtWidgets.QAbstractButton,
        fn: Callable[[], Any],
        ok: Callable[[Any], None],
        failed: Callable[[], None] | None = None,
    ) -> None:
        """A button's long job: disabled while ``fn`` runs off the GUI thread, then ``ok(result)``, or
        ``failed()`` and the error in a message box."""
        button.setEnabled(False)

        def done(result, err):
            button.setEnabled(True)
            if err is None:
                ok(result)
                return
            if failed is not None:
                failed()
            QtWidgets.QMessageBox.warning(self, "RAVAS", str(err))

        self.run_async(fn, done)

    def start_daemon(self) -> None:
        self.banner_text.setText("Starting RAVAS…")

        def failed():
            self.banner_text.setText("RAVAS could not start.")
            self.refresh(full=True)

        self.run_button(self.start_button, client.start_daemon, lambda _: self.refresh(full=True), failed)

    def _set_connected(self, on: bool) -> None:
        if on != self.connected:
            self.connected = on
            self.banner.setVisible(not on)
            for name in ("Camera", "Microphone", "Avatar", "Voice"):
                self.pages[name].setEnabled(on)
        if not on and self.start_button.isEnabled():
            self.banner_text.setText("RAVAS is not running, so nothing can be changed or seen yet.")

    def devices(self) -> dict[str, Any] | None:
        """The daemon's ``devices`` reply, cached for a second (two pages ask at each full refresh)."""
        now = time.monotonic()
        if self._devices is None or now - self._devices[0] > 1.0:
            reply = self.request("devices", quiet=True)
            if reply is None:
                return None
            self._devices = (now, reply)
        return self._devices[1]

    def refresh(self, full: bool = False) -> None:
        """Poll the daemon: status every 0.5 s (and when ``full``), the visible page's live parts each tick."""
        self._tick += 1
        if full or self._tick % 5 == 1:
            try:
                self.status = client.call("status", timeout=2.0)["status"]
                self._set_connected(True)
            except RavasError:
                self.status = {}
                self._set_connected(False)
            self.status_label.setText(_status_text(self.status) if self.connected else "RAVAS is not running")
            for page in self.pages.values():
                page.update_status(self.status, full)
        if self.connected:
            page = self.stack.currentWidget()
            page.tick()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.timer.stop()  # the daemon keeps running: this window is only a client
        super().closeEvent(event)


def _status_text(st: dict[str, Any]) -> str:
    parts = ["Paused (privacy curtain closed)" if st.get("paused") else "Live"]
    v, a = st.get("video") or {}, st.get("audio") or {}
    if v:
        parts.append(f"camera {v.get('state', '?')} {v.get('rate', 0):.0f} fps")
    if a:
        parts.append(f"voice {st.get('voice')} {a.get('state', '?')}, {a.get('latency_ms', 0):.0f} ms")
    parts.append(f"RAVAS Mic: {'ready' if st.get('virtual_mic') else 'not available'}")
    return " · ".join(parts)


class Page(QtWidgets.QWidget):
    """A page of the window: ``update_status`` after each status poll, ``tick`` while visible."""

    title = ""

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__()
        self.win = win
        self.layout_ = QtWidgets.QVBoxLayout(self)
        head = QtWidgets.QLabel(f"<h2>{self.title}</h2>")
        self.layout_.addWidget(head)

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        pass

    def tick(self) -> None:
        pass


# ---------------------------------------------------------------------- camera
class CameraPage(Page):
    title = "Camera"

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        form = QtWidgets.QFormLayout()
        self.device = _labelled(form, "&Camera:", QtWidgets.QComboBox())
        self.size = _labelled(form, "Output &size:", QtWidgets.QComboBox())
        for w, h in SIZES:
            self.size.addItem(f"{w} × {h}", f"{w}x{h}")
        self.fps = _labelled(form, "&Frame rate:", QtWidgets.QComboBox())
        for r in RATES:
            self.fps.addItem(f"{r} fps", r)
        self.layout_.addLayout(form)
        self.preview = _live(QtWidgets.QLabel(objectName="preview"))
        self.preview.setFixedSize(PREVIEW_W, PREVIEW_H)
        self.preview.setAlignment(QtCore.Qt.AlignCenter)
        self.preview.setStyleSheet("background: #202020; color: #dddddd;")
        self.preview.setAccessibleName("What the call sees")
        self.layout_.addWidget(QtWidgets.QLabel("What the call sees (the RAVAS Camera output):"))
        self.layout_.addWidget(self.preview)
        self.state = _live(QtWidgets.QLabel())
        self.layout_.addWidget(self.state)
        self.layout_.addStretch(1)
        self.device.activated.connect(self._pick_device)
        self.size.activated.connect(self._pick_size)
        self.fps.activated.connect(lambda i: self.win.set({"video.fps": self.fps.itemData(i)}))
        self.frames_shown = 0

    def _pick_size(self, i: int) -> None:
        w, h = map(int, self.size.itemData(i).split("x"))
        self.win.set({"video.width": w, "video.height": h})

    def _pick_device(self, i: int) -> None:
        kind, value = self.device.itemData(i)
        if kind == "none":
            return
        if kind == "demo":
            self.win.set({"video.source": "demo"})
        else:
            self.win.set({"video.camera": value, "video.source": "auto"})

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        v = st.get("video") or {}
        if st.get("paused"):
            text = "Paused — the call sees the privacy-curtain card, and hears silence."
        elif not v:
            text = "The video stream is off."
        elif v.get("face") is False:
            text = "No face in view — the avatar idles (and its mouth follows your converted voice)."
        elif v.get("state") == "running":
            text = "Live — this is what the call sees."
        else:
            text = f"Video: {v.get('state', 'starting')}."
        self.state.setText(text)
        if full and self.win.connected:
            self._fill_devices()

    def _fill_devices(self) -> None:
        reply = self.win.devices()
        if reply is None:
            return
        cur = reply["current"]
        self.device.clear()
        for cam in reply["devices"].get("cameras", []):
            if cam.get("virtual"):
                continue  # never offer our own output (or another loopback) as the input
            self.device.addItem(f"{cam['name']} ({cam['path'] or cam['index']})", ("camera", cam["index"]))
        if self.device.count() == 0:
            self.device.addItem("No camera found", ("none", None))
            self.device.model().item(0).setEnabled(False)
        self.device.addItem("Built-in demo (no camera)", ("demo", None))
        want = ("demo", None) if cur["video_source"] == "demo" else ("camera", cur["camera"])
        for i in range(self.device.count()):
            if self.device.itemData(i) == want:
                self.device.setCurrentIndex(i)
        st = self.win.status
        idx = self.size.findData("x".join(map(str, st.get("video_size") or (1280, 720))))
        self.size.setCurrentIndex(idx if idx >= 0 else 2)
        idx = self.fps.findData(st.get("video_fps", 30))
        self.fps.setCurrentIndex(idx if idx >= 0 else 2)

    def tick(self) -> None:
        reply = self.win.request("frame", quiet=True, max_width=PREVIEW_W)
        if reply is None:
            self.preview.setText("No picture yet")
            return
        img = QtGui.QImage.fromData(base64.b64decode(reply["image"]), "JPEG")
        self.preview.setPixmap(
            QtGui.QPixmap.fromImage(img).scaled(
                PREVIEW_W, PREVIEW_H, QtCore.Qt.KeepAspectRatio, QtCore.Qt.SmoothTransformation
            )
        )
        self.frames_shown += 1


# ---------------------------------------------------------------------- microphone
class MicrophonePage(Page):
    title = "Microphone"

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        form = QtWidgets.QFormLayout()
        self.device = _labelled(form, "&Microphone:", QtWidgets.QComboBox())
        self.meter = _live(QtWidgets.QProgressBar(objectName="meter"))
        self.meter.setRange(0, 60)
        self.meter.setTextVisible(True)
        _labelled(form, "Input &level:", self.meter)
        self.layout_.addLayout(form)
        row = QtWidgets.QHBoxLayout()
        self.test_button = QtWidgets.QPushButton("&Test my voice")
        self.test_button.setToolTip("Records 3 s of what RAVAS Mic sends, then plays it to you")
        self.test_button.clicked.connect(self.test_voice)
        row.addWidget(self.test_button)
        self.test_state = QtWidgets.QLabel("Speak after pressing it: you hear what the call hears.")
        row.addWidget(self.test_state, 1)
        self.layout_.addLayout(row)
        self.mic_state = QtWidgets.QLabel(wordWrap=True)
        self.layout_.addWidget(self.mic_state)
        self.layout_.addStretch(1)
        self.device.activated.connect(self._pick_device)

    def _pick_device(self, i: int) -> None:
        kind, value = self.device.itemData(i)
        if kind == "demo":
            self.win.set({"audio.source": "demo"})
        else:
            self.win.set({"audio.input_device": value, "audio.source": "auto"})

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        mic = st.get("virtual_mic")
        if mic:
            self.mic_state.setText(f"RAVAS Mic is ready: in your call app, choose “{mic}” as the microphone.")
        else:
            why = next((n for n in st.get("notes", []) if n.startswith("virtual mic")), "")
            self.mic_state.setText("RAVAS Mic is not available" + (f": {why}" if why else "."))
        if full and self.win.connected:
            reply = self.win.devices()
            if reply is None:
                return
            cur = reply["current"]
            self.device.clear()
            self.device.addItem("System default", ("default", None))
            for src in (reply["devices"].get("pulse") or {}).get("sources", []):
                name = src["name"]
                if not is_microphone(name):
                    continue
                self.device.addItem(src["description"] or name, ("mic", name))
            self.device.addItem("Built-in demo voice (no microphone)", ("demo", None))
            want = (
                ("demo", None)
                if cur["audio_source"] == "demo"
                else ("mic", cur["input_device"])
                if cur["input_device"] is not None
                else ("default", None)
            )
            for i in range(self.device.count()):
                if self.device.itemData(i) == want:
                    self.device.setCurrentIndex(i)

    def tick(self) -> None:
        reply = self.win.request("level", quiet=True)
        if reply is not None:
            db = max(-60.0, min(0.0, float(reply["mic_db"])))
            self.meter.setValue(int(round(db + 60)))
            self.meter.setFormat(f"{db:.0f} dBFS" if db > -60 else "silence")

    def test_voice(self) -> None:
        if self.win.status.get("paused"):
            self.test_state.setText("RAVAS is paused: the call hears silence, and so will you. Resume first.")
        else:
            self.test_state.setText("Recording 3 s — speak now…")

        def ok(path):
            self.test_state.setText("Playing back what the call heard.")
            self.win.played = _play_wav(Path(path))
            Path(path).unlink(missing_ok=True)

        self.win.run_button(
            self.test_button,
            lambda: client.call("sample", timeout=20.0, seconds=3.0)["path"],
            ok,
            lambda: self.test_state.setText("The test did not work."),
        )


def _play_wav(path: Path) -> np.ndarray:
    """Play a 16-bit mono WAV on the default output (non-blocking); returns its samples."""

    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    _play(x, rate)
    return x


def _play(x: np.ndarray, rate: int) -> None:
    try:
        import sounddevice as sd  # PortAudio: only needed to play

        sd.play(x, rate)
    except Exception as err:  # no output device: say so, keep the window alive
        QtWidgets.QMessageBox.information(None, "RAVAS", f"Cannot play the sound here: {err}")


# ---------------------------------------------------------------------- avatar
class AvatarPage(Page):
    title = "Avatar"

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        self.gallery = QtWidgets.QListWidget(objectName="gallery")
        self.gallery.setViewMode(QtWidgets.QListView.IconMode)
        self.gallery.setIconSize(QtCore.QSize(THUMB_W, THUMB_H))
        self.gallery.setResizeMode(QtWidgets.QListView.Adjust)
        self.gallery.setMovement(QtWidgets.QListView.Static)
        self.gallery.setSpacing(6)
        self.gallery.setAccessibleName("Avatars")
        self.gallery.itemActivated.connect(self._pick)
        self.gallery.itemClicked.connect(self._pick)
        self.layout_.addWidget(self.gallery, 1)
        self.info = QtWidgets.QLabel(wordWrap=True)
        self.layout_.addWidget(self.info)
        row = QtWidgets.QHBoxLayout()
        self.add_button = QtWidgets.QPushButton("&Add avatar…")
        self.add_button.clicked.connect(self.add_avatar)
        self.colour_button = QtWidgets.QPushButton("Background &colour…")
        self.colour_button.clicked.connect(self.pick_colour)
        self.picture_button = QtWidgets.QPushButton("Background &picture…")
        self.picture_button.clicked.connect(self.pick_picture)
        self.no_picture_button = QtWidgets.QPushButton("&No picture")
        self.no_picture_button.clicked.connect(lambda: self.win.set({"video.background_image": None}))
        self.calibrate_button = QtWidgets.QPushButton("Ca&librate face")
        self.calibrate_button.setToolTip("Look at the camera with a relaxed face, then press")
        self.calibrate_button.clicked.connect(self.calibrate)
        for b in (
            self.add_button,
            self.colour_button,
            self.picture_button,
            self.no_picture_button,
            self.calibrate_button,
        ):
            row.addWidget(b)
        row.addStretch(1)
        self.layout_.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        self.framing = QtWidgets.QComboBox(objectName="framing")
        for value, text in (("close", "Close (face)"), ("bust", "Head and shoulders"), ("wide", "Wide")):
            self.framing.addItem(text, value)
        self.framing.setAccessibleName("Framing")
        label = QtWidgets.QLabel("F&raming:")
        label.setBuddy(self.framing)
        row.addWidget(label)
        row.addWidget(self.framing)
        row.addStretch(1)
        self.framing.activated.connect(lambda i: self.win.set({"video.framing": self.framing.itemData(i)}))
        self.layout_.addLayout(row)
        self._names: list[str] = []

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        current = st.get("avatar") if st.get("video_converter") == "avatar" else st.get("video_converter")
        names = video_choices()
        if names != self._names:
            self._names = names
            self.gallery.clear()
            for name in names:
                item = QtWidgets.QListWidgetItem(QtGui.QIcon(thumbnail(name)), name)
                item.setData(QtCore.Qt.UserRole, name)
                item.setToolTip(name)
                self.gallery.addItem(item)
        for i in range(self.gallery.count()):
            item = self.gallery.item(i)
            chosen = item.data(QtCore.Qt.UserRole) == current
            item.setSelected(chosen)
            f = item.font()
            f.setBold(chosen)
            item.setFont(f)
        if full and current:
            self.info.setText(_avatar_info(current))
        i = self.framing.findData(st.get("framing", "bust"))
        if i >= 0 and i != self.framing.currentIndex():
            self.framing.setCurrentIndex(i)

    def _pick(self, item: QtWidgets.QListWidgetItem) -> None:
        name = item.data(QtCore.Qt.UserRole)
        if self.win.request("avatar", name=name) is not None:
            self.win.refresh(full=True)

    def add_avatar(self, path: str | None = None) -> None:
        if not path:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "Add an avatar", str(Path.home()), "Avatars (*.glb *.vrm)"
            )
        if not path:
            return
        try:
            from ..video.avatar.model import load_avatar

            m = load_avatar(Path(path))
            meta = m.meta
            text = (
                f"<b>{meta.get('title') or Path(path).stem}</b> by {meta.get('author') or 'unknown'}<br>"
                f"Licence: {meta.get('licence') or 'not stated — make sure you may use it'}<br>"
                f"Face expressions: {len(m.arkit_coverage())} of 52 ARKit shapes"
            )
        except RavasError as err:
            QtWidgets.QMessageBox.warning(self, "RAVAS — this avatar cannot be used", str(err))
            return
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Question,
            "Add this avatar?",
            text,
            QtWidgets.QMessageBox.Ok | QtWidgets.QMessageBox.Cancel,
            self,
        )
        box.setObjectName("confirm-add")
        if getattr(self.win, "auto_confirm", False):
            box.setStandardButtons(QtWidgets.QMessageBox.Ok)
            QtCore.QTimer.singleShot(0, box.accept)
        if box.exec() not in (QtWidgets.QMessageBox.Ok, QtWidgets.QDialog.Accepted):
            return
        try:
            dest = library.add(path)
        except RavasError as err:
            QtWidgets.QMessageBox.warning(self, "RAVAS", str(err))
            return
        self.win.statusBar().showMessage(f"Added {dest.stem}.", 4000)
        self.win.refresh(full=True)

    def pick_colour(self) -> None:
        start = QtGui.QColor(self.win.status.get("background") or "#8cacc4")
        colour = QtWidgets.QColorDialog.getColor(start, self, "Background colour")
        if colour.isValid():
            self.win.set({"video.background": colour.name()})

    def pick_picture(self, path: str | None = None) -> None:
        if not path:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "Background picture", str(Path.home()), "Pictures (*.png *.jpg *.jpeg)"
            )
        if path:
            self.win.set({"video.background_image": str(path)})

    def calibrate(self) -> None:
        if self.win.request("calibrate") is not None:
            self.win.statusBar().showMessage("Calibrated: your relaxed face is the avatar's neutral face.", 4000)


def _avatar_info(name: str) -> str:
    if name in VIDEO_CONVERTERS:
        return {
            "facemask": "Face mask: your head shape is kept, your face is replaced by a mask.",
            "card": "Card: a still card instead of any picture of you.",
        }.get(name, name)
    try:
        info = library.describe(name, library.find(name))
    except RavasError as err:
        return str(err)
    if info.error:
        return info.error
    who = info.author or "unknown"
    licence = "" if info.licence and info.licence in who else f" · licence {info.licence or 'not stated'}"
    return f"{info.title or name} — by {who}{licence} · {info.coverage} of 52 face expressions"


def thumbnail(name: str) -> QtGui.QPixmap:
    """The gallery picture of ``name``: the bundled preview, else a render cached in the user cache
    dir (keyed by the file's size and time and the renderer's look version), else a drawn tile
    (converters, broken files)."""
    pix = QtGui.QPixmap(THUMB_W, THUMB_H)
    path = library.preview(name)
    if path is None and name not in VIDEO_CONVERTERS:
        path = _rendered_thumbnail(name)
    if path is not None and pix.load(str(path)):
        return pix.scaled(THUMB_W, THUMB_H, QtCore.Qt.KeepAspectRatio, QtCore.Qt.SmoothTransformation)
    pix = QtGui.QPixmap(THUMB_W, THUMB_H)
    pix.fill(QtGui.QColor("#5a6b7a"))
    p = QtGui.QPainter(pix)
    p.setPen(QtGui.QColor("white"))
    p.drawText(pix.rect(), QtCore.Qt.AlignCenter, name)
    p.end()
    return pix


def _rendered_thumbnail(name: str) -> Path | None:
    try:
        src = library.find(name)
        st = src.stat()
        from ..video.avatar.renderer import LOOK_VERSION

        out = paths.cache_dir() / "thumbnails" / f"{name}-{st.st_size}-{int(st.st_mtime)}-r{LOOK_VERSION}.png"
        if not out.exists():
            from PIL import Image

            from ..video.avatar.converter import renderer_from_config

            # a gallery tile looks the same whatever the settings: its cache key holds none of them
            r = renderer_from_config(Config(), 640, 360, name)
            try:
                img = r.render(np.zeros(52, np.float32))
            finally:
                r.release()
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            Image.fromarray(img).save(tmp, "PNG")
            tmp.replace(out)
        return out
    except Exception:  # a file that does not render gets the drawn tile; `avatars list` says why
        return None


# ---------------------------------------------------------------------- voice
class VoicePage(Page):
    title = "Voice"
    COLUMNS = ("Voice", "Latency", "Words lost", "Disguise (EER)", "Description")

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        # the built-in voices, then the neural voices usable now (`ravasd voices list` shows the others)
        entries = [(v.name, v.description) for v in VOICES.values()] + [
            (n, nv.description) for n, nv in neural_voices(win.cfg).items() if nv.available
        ]
        self.table = QtWidgets.QTableWidget(len(entries), len(self.COLUMNS), objectName="voices")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setAccessibleName("Voices")
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        measured = figures.load()
        for row, (name, desc) in enumerate(entries):
            f = figures.summary(name, measured)
            wer = "–" if f["wer_increase_points"] is None else f"+{f['wer_increase_points']:.1f} pts"
            eer = "–" if f["eer_lazy_informed"] is None else f"{f['eer_lazy_informed']:.0f} %"
            cells = (name, "…", wer, eer, desc)  # latency filled in by a worker thread
            for col, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(desc if col == 4 else text)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(1, 70)
        self.table.setColumnWidth(4, 320)
        self.latencies_done = threading.Event()
        cfg = win.cfg  # the configured rate and block size: the latency the daemon would add
        # live: a neural voice's latency includes its compute margin, as the daemon runs it
        win.run_async(lambda: {name: latency_ms(cfg, name, live=True) for name, _ in entries}, self._show_latencies)
        self.layout_.addWidget(self.table, 1)
        note = QtWidgets.QLabel(
            "Words lost: extra word errors of a speech recogniser on the converted voice. "
            "Disguise: how often a speaker-recognition attacker who knows the voice "
            "confuses speakers (50 % = pure chance). Measured by `ravasd eval voice`.",
            wordWrap=True,
        )
        self.layout_.addWidget(note)
        row = QtWidgets.QHBoxLayout()
        self.sample_button = QtWidgets.QPushButton("&Play sample")
        self.sample_button.clicked.connect(self.play_sample)
        self.use_button = QtWidgets.QPushButton("&Use this voice")
        self.use_button.clicked.connect(self.use_voice)
        row.addWidget(self.sample_button)
        row.addWidget(self.use_button)
        self.current = QtWidgets.QLabel()
        row.addWidget(self.current, 1)
        self.layout_.addLayout(row)

    def _show_latencies(self, latencies, err) -> None:
        for row in range(self.table.rowCount()):
            ms = (latencies or {}).get(self.table.item(row, 0).text())
            self.table.item(row, 1).setText("?" if ms is None or ms != ms else f"{ms:.1f} ms")
        self.latencies_done.set()

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).text() if rows else None

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        voice = st.get("voice")
        self.current.setText(f"In use: <b>{voice}</b>" if voice else "")
        if full and voice and self.selected() is None:
            for r in range(self.table.rowCount()):
                if self.table.item(r, 0).text() == voice:
                    self.table.selectRow(r)

    def use_voice(self) -> None:
        name = self.selected()
        if name and self.win.request("voice", name=name) is not None:
            self.win.refresh(full=True)

    def play_sample(self) -> None:
        name = self.selected()
        if not name:
            return

        def ok(x):
            self.win.played = x
            _play(x, 48000)

        cfg = self.win.cfg
        self.win.run_button(self.sample_button, lambda: voice_sample(name, cfg=cfg), ok)


_SPEECH: dict[int, np.ndarray] = {}


def sample_speech(rate: int = 48000) -> np.ndarray:
    """A sentence to demonstrate voices with: spoken by flite or espeak-ng when installed (no one's
    real voice), else the demo source's speech-like signal."""
    if rate not in _SPEECH:
        import soxr

        from ..audio.sources import synth_speech
        from ..evaluation.corpus import RATE, synthesize

        x = None
        for synth, voice in (("flite", "slt"), ("espeak-ng", "en-us")):
            try:
                x = soxr.resample(synthesize(SAMPLE_TEXT, synth, voice), RATE, rate).astype(np.float32)
                break
            except Exception:
                continue
        _SPEECH[rate] = x if x is not None else synth_speech(rate, seconds=3.0)
    return _SPEECH[rate]


def voice_sample(name: str, rate: int = 48000, cfg: Config | None = None) -> np.ndarray:
    """The sample sentence through voice ``name``, streamed block by block as the daemon would with
    settings ``cfg`` (its models and block size; default: built-in defaults)."""
    from ..audio.voices import make_voice, stream

    cfg = cfg or Config()
    block = block_size(cfg)
    conv = make_voice(cfg, rate, name, block=block)
    try:
        return stream(conv, sample_speech(rate), rate, block).astype(np.float32)
    finally:
        conv.close()


# ---------------------------------------------------------------------- general
class GeneralPage(Page):
    title = "General"

    def __init__(self, win: SettingsWindow) -> None:
        super().__init__(win)
        self.autostart = QtWidgets.QCheckBox("Start RAVAS when I &log in")
        self.autostart.toggled.connect(self._autostart)
        self.pause = QtWidgets.QCheckBox("&Pause — close the privacy curtain (card and silence)")
        self.pause.toggled.connect(self._pause)
        self.layout_.addWidget(self.autostart)
        self.layout_.addWidget(self.pause)
        grid = QtWidgets.QGridLayout()
        for r, (what, where, folder) in enumerate(
            (("Settings file", paths.config_file(), False), ("Log folder", paths.log_dir(), True))
        ):
            grid.addWidget(QtWidgets.QLabel(f"{what}:"), r, 0)
            label = _live(QtWidgets.QLabel(_home(where)))  # per-user paths
            label.setToolTip(str(where))
            # a long path must not widen the window: it is cut, the tooltip has it whole
            label.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
            label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
            grid.addWidget(label, r, 1)
            button = QtWidgets.QPushButton("Open")
            button.setAccessibleName(f"Open {what.lower()}")
            button.clicked.connect(lambda _=False, p=where, d=folder: self._open(p, d))
            grid.addWidget(button, r, 2)
        grid.setColumnStretch(1, 1)
        self.layout_.addLayout(grid)
        head = QtWidgets.QHBoxLayout()
        head.addWidget(QtWidgets.QLabel("<b>Checks</b> (what `ravasd doctor` finds on this computer)"), 1)
        self.check_button = QtWidgets.QPushButton("&Check again")
        self.check_button.clicked.connect(self.run_checks)
        head.addWidget(self.check_button)
        self.layout_.addLayout(head)
        self.checks = _live(QtWidgets.QTreeWidget(objectName="checks"))  # this computer's findings
        self.checks.setHeaderLabels(("Part", "", "What was found, and the fix"))
        self.checks.setRootIsDecorated(False)
        self.checks.setWordWrap(True)
        self.checks.setAccessibleName("Checks")
        self.layout_.addWidget(self.checks, 1)
        self.checks_done = threading.Event()
        self._syncing = False
        self.run_checks()

    def update_status(self, st: dict[str, Any], full: bool) -> None:
        self._syncing = True
        try:
            self.pause.setEnabled(bool(st))
            self.pause.setChecked(bool(st.get("paused")))
            if full:
                self.autostart.setChecked(bool(autostart.status()["enabled"]))
        finally:
            self._syncing = False

    def _pause(self, on: bool) -> None:
        if not self._syncing:
            self.win.request("pause" if on else "resume")
            self.win.refresh(full=True)

    def _autostart(self, on: bool) -> None:
        if self._syncing:
            return
        try:
            autostart.enable() if on else autostart.disable()
        except RavasError as err:
            QtWidgets.QMessageBox.warning(self, "RAVAS", str(err))

    def _open(self, path: Path, folder: bool) -> None:
        if folder:
            path.mkdir(parents=True, exist_ok=True)
        elif path == paths.config_file():
            config_mod.ensure_file()
        self.win.opened = [*getattr(self.win, "opened", []), str(path)]
        if not getattr(self.win, "no_open", False):
            open_path(path)

    def run_checks(self) -> None:
        from ..daemon.doctor import run_checks

        self.checks_done.clear()
        self.check_button.setEnabled(False)

        def done(checks, err):
            self.check_button.setEnabled(True)
            self.checks.clear()
            if err is not None:
                self.checks.addTopLevelItem(QtWidgets.QTreeWidgetItem(("checks", "error", str(err))))
            for c in checks or []:
                text = c.detail + (f"\nFix: {c.fix}" if c.fix and c.status != "ok" else "")
                item = QtWidgets.QTreeWidgetItem((c.name, c.status.upper(), text))
                item.setForeground(
                    1, QtGui.QColor({"ok": "#2e7d32", "warn": "#b26a00", "fail": "#c62828"}.get(c.status, "#555555"))
                )
                self.checks.addTopLevelItem(item)
            self.checks.resizeColumnToContents(0)
            self.checks.resizeColumnToContents(1)
            self.checks_done.set()

        self.win.run_async(lambda: run_checks(_load_or_default()), done)


def _load_or_default() -> Config:
    try:
        return load_config()
    except RavasError:
        return Config()


def _home(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _app_icon() -> QtGui.QIcon:
    from ..daemon.tray import icon_image

    img = icon_image("running", 64)
    data = img.tobytes("raw", "RGBA")
    qimg = QtGui.QImage(data, img.width, img.height, QtGui.QImage.Format_RGBA8888).copy()
    return QtGui.QIcon(QtGui.QPixmap.fromImage(qimg))


def main(page: str | None = None) -> int:
    """Open the window (``page``: one of :data:`PAGES`); returns when it is closed."""

    from ..devices.display import NO_DISPLAY_FIX, display_available

    if not display_available() and os.environ.get("QT_QPA_PLATFORM") not in ("offscreen", "minimal", "vnc"):
        raise RavasError("The settings window needs a display, and there is none.", NO_DISPLAY_FIX + ".")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("RAVAS Settings")
    app.setDesktopFileName("ravasd")
    win = SettingsWindow()
    if page:
        win.nav.setCurrentRow(PAGES.index(page))
    win.show()
    if not win.connected and win.ask_to_start:
        answer = QtWidgets.QMessageBox.question(
            win,
            "RAVAS is not running",
            "RAVAS is not running. Start it now?\n\n"
            "It keeps running in the background (tray icon) after this window is closed.",
        )
        if answer == QtWidgets.QMessageBox.Yes:
            win.start_daemon()
    return app.exec()
