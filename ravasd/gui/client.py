"""The settings window's link to the daemon: control-socket requests, and starting the daemon.

The window is only a client: everything it changes goes through the daemon's control verbs
(``set``, ``avatar``, ``voice``, ``pause``…), which validate, apply live and persist. Called from
the GUI thread (short requests) and from worker threads (``sample``, which takes seconds).
"""

from __future__ import annotations

import time
from typing import Any

from .. import paths
from ..daemon.autostart import spawn_detached
from ..daemon.control import request
from ..errors import RavasError


class DaemonError(RavasError):
    """The daemon refused a request (its one-paragraph reason is the message)."""


def call(cmd: str, timeout: float | None = None, **args: Any) -> dict[str, Any]:
    """One control request; raises :class:`RavasError` when no daemon runs, :class:`DaemonError`
    when it refuses."""
    reply = request(cmd, timeout=timeout, **args)
    if not reply.get("ok"):
        raise DaemonError(str(reply.get("error", "unknown error")))
    return reply


def running() -> bool:
    try:
        call("status", timeout=2.0)
        return True
    except RavasError:
        return False


def start_daemon(wait: float = 30.0) -> None:
    """Start the daemon detached from this window (closing the window never stops it) and wait
    until it answers; its console output goes to ``ravasd-start.log`` in the log dir."""
    log_dir = paths.log_dir()
    proc = spawn_detached("run", log_path=log_dir / "ravasd-start.log")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if running():
            return
        if proc.poll() is not None:
            raise RavasError(
                f"ravasd exited at start (code {proc.returncode}).",
                f"see {log_dir / 'ravasd-start.log'}, or run `ravasd run` in a terminal.",
            )
        time.sleep(0.2)
    raise RavasError(f"ravasd did not answer within {wait:.0f} s of starting.", f"see {log_dir / 'ravasd-start.log'}.")
