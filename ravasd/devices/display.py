"""Whether a desktop display exists (the tray, the preview window and the settings window need one)."""

from __future__ import annotations

import os
import sys


def display_available() -> bool:
    """Linux: DISPLAY or WAYLAND_DISPLAY is set; macOS and Windows always have one."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


NO_DISPLAY_FIX = (
    "run it in a desktop session (DISPLAY/WAYLAND_DISPLAY set); without one, "
    "`ravasd ctl snapshot FILE.png` saves what the call sees"
)
