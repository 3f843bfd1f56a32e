"""What every page of the settings window shares: the page base class, layout helpers, sizes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtWidgets

from ..config import Config, load_config
from ..errors import RavasError

if TYPE_CHECKING:
    from .window import SettingsWindow

PAGES = ("Camera", "Microphone", "Avatar", "Voice", "General")
SIZES = ((640, 360), (960, 540), (1280, 720), (1920, 1080))
RATES = (15, 24, 30, 60)
PREVIEW_W, PREVIEW_H = 480, 270
THUMB_W, THUMB_H = 192, 108


class Bridge(QtCore.QObject):
    """Carries a worker thread's result back to the GUI thread (queued signal)."""

    done = QtCore.Signal(object, object, object)  # callback, result, error


def live(widget: QtWidgets.QWidget) -> QtWidgets.QWidget:
    """Mark a widget whose pixels change by themselves (preview, meters, status): screenshot tests mask it."""
    widget.setProperty("live", True)
    return widget


def labelled(form: QtWidgets.QFormLayout, text: str, widget: QtWidgets.QWidget) -> QtWidgets.QWidget:
    label = QtWidgets.QLabel(text)
    label.setBuddy(widget)  # Alt+letter focus and the accessible name come from the label
    widget.setAccessibleName(text.replace("&", "").rstrip(":"))
    form.addRow(label, widget)
    return widget


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


def load_or_default() -> Config:
    try:
        return load_config()
    except RavasError:
        return Config()


def home(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
