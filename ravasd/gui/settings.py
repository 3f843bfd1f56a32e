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

import os
import sys

from PySide6 import QtWidgets

from ..errors import RavasError
from .page import PAGES
from .window import SettingsWindow

__all__ = ["PAGES", "SettingsWindow", "main"]


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
