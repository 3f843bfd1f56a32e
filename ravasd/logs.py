"""Logging: stderr plus, for the daemon, a rotating file in the platformdirs log dir.

Logs carry no personal data: no audio/video content is ever logged, and the user's home
directory is written as ``~`` (user names often appear in paths).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from . import paths

FORMAT = "%(asctime)s %(processName)s %(levelname)s %(name)s: %(message)s"


class RedactHome(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.home = str(Path.home())

    def filter(self, record: logging.LogRecord) -> bool:
        if self.home and len(self.home) > 1:
            msg = record.getMessage()
            if self.home in msg:
                record.msg, record.args = msg.replace(self.home, "~"), ()
        return True


_stderr_level = logging.WARNING


def stderr_level() -> int:
    """The level chosen for the terminal (worker processes use the same)."""
    return _stderr_level


def setup(level: int, file_name: str | None = None) -> Path | None:
    """Configure the root logger; with ``file_name`` also a rotating log file (returned)."""
    global _stderr_level
    _stderr_level = level
    root = logging.getLogger()
    root.setLevel(min(level, logging.INFO) if file_name else level)
    for h in list(root.handlers):
        root.removeHandler(h)
    redact = RedactHome()
    err = logging.StreamHandler()
    err.setLevel(level)
    err.setFormatter(logging.Formatter(FORMAT))
    err.addFilter(redact)
    root.addHandler(err)
    if not file_name:
        return None
    path = paths.log_dir() / file_name
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)  # logs are the user's own, also when an older version made them 0644
        for old in path.parent.glob(f"{path.name}*"):
            os.chmod(old, 0o600)
        fh = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        os.chmod(path, 0o600)
    except OSError:
        return None
    fh.setLevel(logging.INFO)
    fh.setFormatter(logging.Formatter(FORMAT))
    fh.addFilter(redact)
    root.addHandler(fh)
    return path
