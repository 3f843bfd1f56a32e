"""The settings window itself: navigation, the daemon link, status polling, worker threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from .. import config as config_mod
from ..config import Config
from ..config import from_dict as config_from_dict
from ..errors import RavasError
from . import client
from .page import PAGES, Bridge, live, load_or_default
from .pages.avatar import AvatarPage
from .pages.camera import CameraPage
from .pages.general import GeneralPage
from .pages.microphone import MicrophonePage
from .pages.voice import VoicePage


class SettingsWindow(QtWidgets.QMainWindow):
    """The settings window. ``poll_ms``: how often status/preview/meter refresh (0: only on demand,
    for tests that drive :meth:`refresh` themselves)."""

    def __init__(self, poll_ms: int = 100, ask_to_start: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("RAVAS Settings")
        self.setWindowIcon(_app_icon())
        self.bridge = Bridge()
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
        live(self.statusBar())  # status and transient messages
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
            return load_or_default()

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


def _app_icon() -> QtGui.QIcon:
    from ..daemon.tray import icon_image

    img = icon_image("running", 64)
    data = img.tobytes("raw", "RGBA")
    qimg = QtGui.QImage(data, img.width, img.height, QtGui.QImage.Format_RGBA8888).copy()
    return QtGui.QIcon(QtGui.QPixmap.fromImage(qimg))
