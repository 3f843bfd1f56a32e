"""User-facing errors.

Every error a user can cause (bad config, missing file, unusable device) is raised as a
:class:`RavasError` whose text is one paragraph naming the file/field and the fix. The CLI
prints it without a traceback and exits with ``exit_code``.
"""

from __future__ import annotations


class RavasError(Exception):
    """An error the user can fix; ``str(err)`` is the message shown to them."""

    exit_code = 2

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if not fix else f"{message} Fix: {fix}")


class ConfigError(RavasError):
    """Invalid configuration value, key or file."""


class MediaError(RavasError):
    """A media file that cannot be read or written."""


class DeviceError(RavasError):
    """A camera, microphone or virtual device that cannot be opened."""


class ModelError(RavasError):
    """A model file that is missing or corrupt."""
