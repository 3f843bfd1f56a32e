"""Per-user directories (platformdirs). Tests redirect them with ``RAVAS_HOME``.

``RAVAS_HOME`` (if set) puts config, cache, data, log and runtime dirs under one folder, so
tests and portable installs never touch the real user profile.
"""
from __future__ import annotations

import os
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


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Like :func:`atomic_write_text`, for binary files (snapshots)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
