"""Control channel: JSON lines over an owner-only Unix-domain socket (a named pipe on Windows).

One request per line, ``{"cmd": "status"}`` / ``{"cmd": "voice", "name": "…"}``; one reply per
line, ``{"ok": true, …}`` or ``{"ok": false, "error": "…"}``. No TCP port is ever opened.
The single-instance lock lives beside the socket.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Listener
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import RavasError
from . import protocol

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]

MAX_LINE = 64 * 1024  # a request is a few dozen bytes; a longer line is refused, never buffered whole
IDLE_TIMEOUT = 60.0  # a client that sends nothing for this long is disconnected
BACKLOG = 128


def format_status(st: dict) -> str:
    """One line of a status reply (``ctl status``, the daemon's periodic log line)."""
    parts = ["paused" if st.get("paused") else "live"]
    for kind in ("video", "audio"):
        s = st.get(kind)
        if not s:
            continue
        unit = "fps" if kind == "video" else "blk/s"
        shed = ""
        if s.get("shedding"):
            scale = (
                f", rendering at {s['render_scale']:.2f}×" if s.get("render_scale", 1) < s.get("top_scale", 1) else ""
            )
            shed = f" (giving way to audio: CPU busy{scale})"
        if s.get("voice_late_ms"):
            shed += f" (voice late for {s['voice_late_ms']:.0f} ms in all: CPU busy, those spans were silence)"
        if s.get("voice_margin_ms") is not None:  # a neural voice: its compute margin follows its measured waits
            shed += f" (voice margin {s['voice_margin_ms']:.0f} ms, waits up to {s.get('voice_wait_ms', 0):.0f} ms)"
        state = s.get("state", "?") + shed
        parts.append(
            f"{kind}: {state} {s.get('rate', 0):.0f} {unit}, "
            f"{s.get('latency_ms', 0):.0f} ms, dropped {s.get('dropped', 0)}, "
            f"restarts {s.get('restarts', 0) + s.get('worker_restarts', 0)}"
        )
    return " | ".join(parts)


def socket_path() -> Path:
    """The control socket: in the runtime dir, or — when that path is too long for a Unix socket
    (108 bytes) — in an owner-only folder under /tmp named after it, which client and daemon agree on."""
    path = paths.runtime_dir() / "ravasd.sock"
    if len(os.fsencode(path)) < 100:
        return path

    uid = os.getuid() if hasattr(os, "getuid") else 0
    short = Path(tempfile.gettempdir()) / f"ravasd-{uid}-{hashlib.sha1(os.fsencode(path)).hexdigest()[:12]}"
    short.mkdir(mode=0o700, exist_ok=True)
    st = short.stat()
    if (hasattr(os, "getuid") and st.st_uid != uid) or st.st_mode & 0o077:
        raise RavasError(
            f"{short} (for the control socket) is not private to this user.", "remove it, or use a shorter RAVAS_HOME."
        )
    return short / "ravasd.sock"


def pipe_name() -> str:
    return rf"\\.\pipe\ravasd-{os.environ.get('USERNAME', 'user')}"


class InstanceLock:
    """One daemon per user: an exclusive lock on ``ravasd.lock`` in the runtime dir."""

    def __init__(self) -> None:
        self.path = paths.runtime_dir() / "ravasd.lock"
        self.fh: Any = None

    def acquire(self) -> None:
        self.fh = open(self.path, "a+")
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                import msvcrt  # Windows only

                msvcrt.locking(self.fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl  # POSIX only

                fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.seek(0)
            pid = self.fh.read().strip() or "?"
            self.fh.close()
            self.fh = None
            raise RavasError(
                f"ravasd is already running for this user (pid {pid}).",
                "use `ravasd ctl status`, or stop it with `ravasd ctl quit`.",
            ) from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()

    def release(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


class ControlServer:
    """Serves ``handler`` on the control socket; each client connection gets a thread."""

    def __init__(self, handler: Handler, path: Path | None = None) -> None:
        self.handler = handler
        self.path = path or socket_path()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

    def start(self) -> None:
        if sys.platform == "win32":  # pragma: no cover
            self._thread = threading.Thread(target=self._serve_pipe, daemon=True, name="control")
            self._thread.start()
            return
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # stale: the instance lock proved no daemon owns it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # created 0600: owner only, from the first instant
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(BACKLOG)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="control")
        self._thread.start()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._closing:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                break
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="control-client").start()

    def _serve(self, conn: socket.socket) -> None:
        """One client: a reply per request line; a line over :data:`MAX_LINE` is answered with an
        error and the connection closed; an idle client is dropped after :data:`IDLE_TIMEOUT`."""
        conn.settimeout(IDLE_TIMEOUT)
        try:
            with conn, conn.makefile("rwb") as f:
                while not self._closing:
                    line = f.readline(MAX_LINE + 1)
                    if not line:
                        break
                    if len(line) > MAX_LINE and not line.endswith(b"\n"):
                        f.write(
                            json.dumps({"ok": False, "error": f"request longer than {MAX_LINE} bytes"}).encode() + b"\n"
                        )
                        f.flush()
                        break
                    f.write(json.dumps(self.dispatch(line)).encode() + b"\n")
                    f.flush()
        except OSError:  # timeout, client gone: nothing to answer
            pass

    def dispatch(self, line: bytes | str) -> dict[str, Any]:
        try:
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                raise ValueError("expected an object with a 'cmd' string")
        except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
            return {"ok": False, "error": f"bad request: {type(err).__name__}: {str(err)[:200]}"}
        try:
            return self.handler(req)
        except RavasError as err:
            return {"ok": False, "error": str(err)}
        except Exception as err:  # a bug must not kill the control thread; it is logged and flagged
            log.exception("control command %s failed", req.get("cmd"))
            return {
                "ok": False,
                "error": f"internal error ({type(err).__name__}: {str(err)[:200]}); see the log",
                "internal": True,
            }

    def _serve_pipe(self) -> None:  # pragma: no cover - Windows only
        with Listener(pipe_name(), family="AF_PIPE") as listener:
            while not self._closing:
                with listener.accept() as conn:
                    for raw in conn.recv_bytes().splitlines():
                        conn.send_bytes(json.dumps(self.dispatch(raw)).encode() + b"\n")

    def close(self) -> None:
        self._closing = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if sys.platform != "win32":
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def _connect(s: socket.socket, path: str, deadline: float) -> None:
    """Connect ``s`` to ``path``; while the daemon's backlog is full (EAGAIN: a Unix socket with a
    timeout does not wait for room), try again every few ms until ``deadline`` (monotonic s)."""
    pause = 0.002
    while True:
        try:
            s.connect(path)
            return
        except BlockingIOError:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(0.05, pause * 2)


def request(cmd: str, timeout: float | None = None, **args: Any) -> dict[str, Any]:
    """Send one command (a verb of :mod:`.protocol`, checked here first: ConfigError) to the running
    daemon and wait ``timeout`` s (default: the verb's) for the reply; raises :class:`RavasError` when
    none runs."""
    verb, _ = protocol.check({"cmd": cmd, **args})
    timeout = verb.timeout if timeout is None else timeout
    msg = json.dumps({"cmd": cmd, **args}).encode() + b"\n"
    if sys.platform == "win32":  # pragma: no cover
        try:
            with Client(pipe_name(), family="AF_PIPE") as c:
                c.send_bytes(msg)
                return json.loads(c.recv_bytes())
        except OSError:
            raise RavasError("ravasd is not running.", "start it with `ravasd run`.") from None
    path = socket_path()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            _connect(s, str(path), time.monotonic() + timeout)
            s.sendall(msg)
            parts: list[bytes] = []
            while not parts or not parts[-1].endswith(b"\n"):
                chunk = s.recv(1 << 20)  # a snapshot reply is a few MB of base64
                if not chunk:
                    break
                parts.append(chunk)
            buf = b"".join(parts)
    except (FileNotFoundError, ConnectionRefusedError):
        raise RavasError("ravasd is not running (no control socket).", "start it with `ravasd run`.") from None
    except TimeoutError:
        raise RavasError(f"ravasd did not answer within {timeout:.0f} s.") from None
    except OSError as err:  # e.g. EAGAIN: the daemon's backlog is full
        raise RavasError(
            f"ravasd's control socket cannot be reached ({err.strerror or err}).",
            "try again in a moment; `ravasd doctor` checks the daemon.",
        ) from None
    try:
        reply = json.loads(buf or b'{"ok": false, "error": "no reply"}')
    except ValueError:
        raise RavasError("ravasd sent a reply that is not JSON.", "see the daemon's log.") from None
    return reply if isinstance(reply, dict) else {"ok": False, "error": "malformed reply"}
