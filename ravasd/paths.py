"""Per-user directories (platformdirs). Tests redirect them with ``RAVAS_HOME``.

``RAVAS_HOME`` (if set) puts config, cache, data, log and runtime dirs under one folder, so
tests and portable installs never touch the real user profile.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import platformdirs

APP = "ravas"


def _base(kind: str) -> Path:
    home = os.environ.get("RAVAS_HOME")
    if home:
        return Path(home) / kind
    fn = {
        "config": platformdirs.user_config_dir,
        "cache": platformdirs.user_cache_dir,
        "data": platformdirs.user_data_dir,
        "log": platformdirs.user_log_dir,
    }[kind]
    return Path(fn(APP, appauthor=False))


def config_dir() -> Path:
    return _base("config")


def config_file() -> Path:
    return config_dir() / "config.yaml"


def cache_dir() -> Path:
    return _base("cache")


def data_dir() -> Path:
    return _base("data")


def log_dir() -> Path:
    return _base("log")


def runtime_dir() -> Path:
    """Owner-only directory for the control socket and the lock file."""
    home = os.environ.get("RAVAS_HOME")
    if home:
        path = Path(home) / "run"
    else:
        path = Path(platformdirs.user_runtime_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def private_files() -> None:
    """Make every file and folder this process creates private to the user (0600 / 0700): config,
    logs, recordings, caches, runtime files. Called once by the command line at start."""
    os.umask(0o077)


def replace_dir(stage: Path, dest: Path) -> None:
    """Put the finished folder ``stage`` at ``dest`` (a sibling): readers see the old folder or the new
    one, never a mix; the old one is removed after the swap."""

    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    stage.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never half.
    The new file has ``mode`` (owner-only by default, whatever the old one had)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Like :func:`atomic_write_text`, for binary files (snapshots)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
