"""System-tray icon and menu (pystray).

Backend: ``PYSTRAY_BACKEND`` if set, else AppIndicator when its GObject bindings exist, else GTK
(both support menus and radio items; Xorg's does not). Without a display the daemon runs
headless. Menu actions call :class:`~ravasd.daemon.service.Daemon` methods, which apply live and
persist the selection. The icon's colour shows the state: green running, grey paused, amber
waiting (starting / no face / stalled), red error.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from typing import Any

from PIL import Image, ImageDraw

from .. import config as config_mod
from .. import paths
from ..audio.voices import VOICES, voice_names
from ..devices.display import display_available
from ..errors import DeviceError, RavasError
from ..video.converters import video_choices
from . import autostart

log = logging.getLogger(__name__)
#: the neighbour counts the tray offers for neural voices (audio.knn_k; any 1..32 via the config)
K_CHOICES = (1, 2, 4, 8, 16)

COLORS = {"running": (46, 160, 67), "paused": (130, 130, 140), "waiting": (230, 160, 30), "error": (210, 50, 50)}


def _pick_backend() -> None:
    """AppIndicator, else GTK (both have menus), else X11's icon without a menu: the GObject
    bindings are a system package that a pipx venv or a frozen build may not see."""
    if os.environ.get("PYSTRAY_BACKEND") or not sys.platform.startswith("linux"):
        return
    try:
        import gi  # optional: Debian's python3-gi

        try:
            gi.require_version("AyatanaAppIndicator3", "0.1")
            os.environ["PYSTRAY_BACKEND"] = "appindicator"
        except ValueError:
            gi.require_version("Gtk", "3.0")
            os.environ["PYSTRAY_BACKEND"] = "gtk"
    except (ImportError, ValueError):
        os.environ["PYSTRAY_BACKEND"] = "xorg"
        log.info("tray: no GTK bindings (python3-gi); the icon has no menu — use `ravasd ctl`")


def icon_image(state: str, size: int = 64):
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((2, 2, size - 3, size - 3), fill=COLORS.get(state, COLORS["waiting"]) + (255,))
    # a simple head-and-shoulders mark: "a person, anonymized"
    d.ellipse((size * 0.36, size * 0.2, size * 0.64, size * 0.48), fill=(255, 255, 255, 235))
    d.pieslice((size * 0.22, size * 0.52, size * 0.78, size * 1.05), 180, 360, fill=(255, 255, 255, 235))
    return img


def tray_state(status: dict[str, Any]) -> str:
    if status.get("paused"):
        return "paused"
    streams = [status[k] for k in ("video", "audio") if isinstance(status.get(k), dict)]
    if any(s.get("fatal") for s in streams):
        return "error"
    if any(s.get("state") in ("error",) for s in streams):
        return "error"
    if (
        streams
        and all(s.get("state") == "running" for s in streams)
        and not any(s.get("face") is False for s in streams)
    ):
        return "running"
    return "waiting"


def open_path(path) -> None:
    """Open a file or folder with the desktop's default app (no shell)."""
    if sys.platform == "win32":  # pragma: no cover
        os.startfile(str(path))  # type: ignore[attr-defined]
    else:
        subprocess.Popen(
            ["open" if sys.platform == "darwin" else "xdg-open", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def open_settings_window() -> subprocess.Popen:
    """The settings window in its own process: Qt and the tray's GTK loop never share one, and
    closing the window cannot disturb the daemon."""
    return autostart.spawn_detached("settings")


class Tray:
    """Owns the pystray icon; built and run in the main thread."""

    def __init__(self, daemon: Any, opener=open_path, settings_opener=None) -> None:
        import pystray  # needs a display at import time: loaded only when a tray is shown

        self.daemon = daemon
        self.opener = opener
        self.settings_opener = settings_opener or open_settings_window
        self._state = "waiting"
        d = daemon
        item, Menu = pystray.MenuItem, pystray.Menu

        def looks() -> list[str]:
            return video_choices()

        def current_look() -> str:
            return d.cfg.video.avatar if d.cfg.video.converter == "avatar" else d.cfg.video.converter

        def radio(key_get, setter, name):
            return item(str(name), lambda icon, it: setter(name), checked=lambda it: key_get() == name, radio=True)

        ensure_config = config_mod.ensure_file

        def set_k(k):
            try:
                d.set_settings({"audio.knn_k": k})
            except RavasError as err:
                log.warning("tray: %s", err)

        def toggle_pause(icon, it):
            d.resume() if d.status().get("paused") else d.pause()

        def toggle_autostart(icon, it):
            autostart.disable() if autostart.status()["enabled"] else autostart.enable()

        def log_dir():
            paths.log_dir().mkdir(parents=True, exist_ok=True)
            return paths.log_dir()

        self.menu = Menu(
            item(lambda it: f"RAVAS — {self._state_text()}", None, enabled=False),
            Menu.SEPARATOR,
            item("Avatar", Menu(*(radio(current_look, d.set_avatar, n) for n in looks()))),
            # built when opened: a neural voice made with `voices build` while running appears at once
            item(
                "Voice",
                Menu(
                    lambda: tuple(
                        radio(lambda: d.cfg.audio.voice, d.set_voice, n) for n in voice_names(d.cfg, usable_only=True)
                    )
                ),
            ),
            item(
                "Voice neighbours (k)",
                Menu(*(radio(lambda: d.cfg.audio.knn_k, set_k, k) for k in K_CHOICES)),
                visible=lambda it: d.cfg.audio.voice not in VOICES,
            ),
            item("Pause (privacy curtain)", toggle_pause, checked=lambda it: bool(d.status().get("paused"))),
            item("Calibrate face", lambda icon, it: d.calibrate()),
            item("Show preview", lambda icon, it: d.set_preview(not d.preview), checked=lambda it: d.preview),
            Menu.SEPARATOR,
            item("Settings…", lambda icon, it: self.settings_opener()),
            item("Start at login", toggle_autostart, checked=lambda it: autostart.status()["enabled"]),
            item("Open settings file", lambda icon, it: self.opener(ensure_config())),
            item("Open log folder", lambda icon, it: self.opener(log_dir())),
            Menu.SEPARATOR,
            item("Quit", lambda icon, it: self.quit()),
        )
        self.icon = pystray.Icon("ravasd", icon_image("waiting"), "RAVAS", self.menu)
        daemon.listeners.append(self.refresh)

    def _state_text(self) -> str:
        return {
            "running": "running",
            "paused": "paused (curtain closed)",
            "waiting": "waiting for input",
            "error": "error — see log",
        }[self._state]

    def refresh(self) -> None:
        state = tray_state(self.daemon.status())
        if state != self._state:
            self._state = state
            self.icon.icon = icon_image(state)
            self.icon.title = f"RAVAS — {self._state_text()}"
        try:
            self.icon.update_menu()
        except Exception:
            pass

    def quit(self) -> None:
        self.daemon.stop_event.set()

    def run_until(self, stop: threading.Event, setup=None) -> None:
        """Show the icon and run the GUI loop until ``stop`` is set. Main thread only."""

        def _setup(icon):
            icon.visible = True
            self.refresh()
            if setup is not None:
                setup(self)
            stop.wait()
            icon.stop()

        try:
            self.icon.run(setup=_setup)
        except Exception as err:  # e.g. GDBus notification errors on exit without a notification daemon
            if not stop.is_set():
                raise
            log.debug("tray exit: %s", err)


def start_tray(daemon: Any, required: bool = False) -> Tray | None:
    """A :class:`Tray` when a display exists (and pystray loads), else None (headless)."""
    if not display_available():
        if required:
            raise DeviceError("--tray was given but there is no display (DISPLAY/WAYLAND_DISPLAY unset).")
        return None
    _pick_backend()
    try:
        return Tray(daemon)
    except Exception as err:
        if required:
            raise
        log.warning("tray unavailable (%s); running headless", err)
        return None
