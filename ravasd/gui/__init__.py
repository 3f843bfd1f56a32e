"""The settings window (``ravasd settings``): a Qt client of the running daemon. Needs the ``gui``
extra (PySide6); :func:`available` says whether it is installed without importing Qt."""

from __future__ import annotations

import importlib.util

from ..errors import RavasError


def available() -> bool:
    return importlib.util.find_spec("PySide6") is not None


def open_settings(page: str | None = None) -> int:
    """Open the window (blocks until it is closed); a clear error when Qt is not installed."""
    if not available():
        raise RavasError(
            "The settings window needs Qt for Python (PySide6), which is not installed.",
            "install the gui extra: `pip install 'ravasd[gui]'` (./bootstrap.sh run does this).",
        )
    from .settings import main

    return main(page)
