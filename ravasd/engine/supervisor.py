"""Supervisor: one worker process per stream, control messages in, status out.

Frames never cross a process boundary: each worker owns its source, converter and sink. Only
small control messages (pause, resume, delay, swap, stop) and status dicts travel over pipes.
The supervisor restarts a worker process that died, forwards the audio path's latency to the
video worker (A/V sync), and stops both within ~2 s. It is the one owner of "paused" in the main
process (a restarted worker is paused again at once).

The engine knows no stages: what a worker runs comes from the :class:`Wiring` the daemon passes
in (``ravasd.wiring.WIRING``), whose functions pickle by reference into the spawned worker.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .. import logs
from ..config import Config
from . import messages as msg
from .runner import StreamRunner
from .snapshot import SharedFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wiring:
    """What the workers build, given by the layer above the engine (module-level functions, so
    they pickle into a spawned process by reference).

    ``build(kind, cfg, routes, on_eof)`` → a ready :class:`StreamRunner`; ``converter(kind, cfg,
    routes)`` → a converter factory for a live swap (raises ``ConfigError`` for a bad name);
    ``preview()`` → a factory for the preview sink.
    """

    build: Callable[[str, Config, msg.Routes, Callable[[], None] | None], StreamRunner]
    converter: Callable[[str, Config, msg.Routes], Callable[[], Any]]
    preview: Callable[[], Callable[[], Any]]


def _worker_main(kind: str, cfg: Config, conn: Any, log_level: int, routes: msg.Routes, wiring: Wiring) -> None:
    """Entry point of a stream worker process (spawned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when we stop
    # the default 5 ms GIL switch interval is a whole audio block: hand the GIL over sooner so the
    # PortAudio callbacks and the convert thread keep their deadlines
    sys.setswitchinterval(0.001)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    logs.setup(log_level, f"ravasd-{kind}.log")

    from .priority import lower_video_priority, raise_audio_priority

    # before any thread exists (they inherit it): audio first, video gives way under load
    priority = raise_audio_priority(cfg.engine.audio_realtime) if kind == "audio" else lower_video_priority()
    eof = threading.Event()
    try:
        runner = wiring.build(kind, cfg, routes, eof.set)
    except Exception as err:
        conn.send(msg.Fatal(f"{type(err).__name__}: {err}"))
        return
    runner.start()
    interval = cfg.engine.status_interval_ms / 1000
    try:
        while True:
            if conn.poll(interval):
                match conn.recv():
                    case msg.Stop():
                        break
                    case msg.Pause():
                        runner.pause()
                    case msg.Resume():
                        runner.resume()
                    case msg.Delay(seconds):
                        runner.set_delay(seconds)
                    case msg.Swap(new_cfg):
                        try:
                            runner.swap_converter(wiring.converter(kind, new_cfg, routes))
                        except Exception as err:  # validated by the supervisor; keep the old one
                            runner.status.last_error = f"swap failed: {err}"
                    case msg.Calibrate():
                        runner.calibrate()
                    case msg.Preview(on):
                        runner.set_preview(wiring.preview() if on else None)
                    case msg.Record(path, seconds):
                        runner.record_output(path, seconds)
            conn.send(msg.Status(dict(runner.snapshot(), priority=priority)))
            if eof.is_set():
                conn.send(msg.EndOfFile())
                break
    except (EOFError, BrokenPipeError, OSError):
        pass  # supervisor went away: stop fail-closed
    finally:
        runner.stop(timeout=1.0)  # inside the supervisor's 1.4 s: the sink gets its card, then the process exits
        try:
            conn.send(msg.Status(runner.snapshot()))
            conn.send(msg.Stopped())
        except Exception:
            pass


@dataclass
class _Worker:
    kind: str
    proc: Any = None
    conn: Any = None
    status: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    fatal: str = ""
    finished: bool = False
    replacing: bool = False  # a settings change is restarting it (not a crash)
    started: float = 0.0  # monotonic time of the last spawn
    progress: int = -1  # items its sink got (published + placeholders), from its last status
    progress_t: float = 0.0  # when ``progress`` last grew (or the spawn)
    stalls: int = 0


class Supervisor:
    """Starts/stops stream workers; thread-safe control methods; ``poll()`` from one thread."""

    STARTUP_S = 60.0  # a worker may take this long to publish its first item (model loads, a busy box)

    def __init__(
        self, cfg: Config, wiring: Wiring, log_level: int = logging.INFO, routes: msg.Routes | None = None
    ) -> None:
        self.cfg = cfg
        #: no sink progress for this long → the worker is stalled and replaced
        self.stall_s = max(5.0, 6 * cfg.engine.status_interval_ms / 1000)
        self.wiring = wiring
        self._ctx = mp.get_context("spawn")
        # the converted voice's shape (level, open, spread, round), written by the audio worker and read
        # by the avatar's mouth when no face is seen: four floats, no audio crosses processes
        # the published frame (anonymized only) for snapshots and the settings preview, and the
        # microphone's input level (one float, dBFS) for the settings meter
        self.routes = replace(
            routes or msg.Routes(),
            audio_level=self._ctx.Array("f", 4, lock=False),
            video_frame=SharedFrame(self._ctx),
            mic_level=self._ctx.Array("f", 1, lock=False),
        )
        self.routes.mic_level[0] = -120.0
        self.log_level = log_level
        self.workers = {k: _Worker(k) for k in ("video", "audio") if getattr(cfg, k).enabled}
        self.paused = False
        self._lock = threading.Lock()
        self._stopping = False

    def start(self) -> None:
        for w in self.workers.values():
            self._spawn(w)

    def _spawn(self, w: _Worker) -> None:
        parent, child = self._ctx.Pipe()
        w.proc = self._ctx.Process(
            target=_worker_main,
            args=(w.kind, self.cfg, child, self.log_level, self.routes, self.wiring),
            name=f"ravasd-{w.kind}",
            daemon=True,
        )
        w.proc.start()
        child.close()
        w.conn = parent
        w.started = w.progress_t = time.monotonic()
        w.progress = -1
        if self.paused:
            self._send(w, msg.Pause())

    def _send(self, w: _Worker, command: msg.Command) -> None:
        try:
            w.conn.send(command)
        except (OSError, BrokenPipeError, AttributeError):
            pass

    def broadcast(self, command: msg.Command) -> None:
        with self._lock:
            for w in self.workers.values():
                self._send(w, command)

    def pause(self) -> None:
        self.paused = True
        self.broadcast(msg.Pause())

    def resume(self) -> None:
        self.paused = False
        self.broadcast(msg.Resume())

    def swap(self, kind: str, cfg: Config) -> None:
        """Switch the converter of ``kind`` live (voice/avatar changed)."""
        self.cfg = cfg
        w = self.workers.get(kind)
        if w:
            self._send(w, msg.Swap(cfg))

    def send(self, kind: str, command: msg.Command) -> bool:
        """Send a command to one stream's worker; False when that stream is not running."""
        w = self.workers.get(kind)
        if w is None or w.conn is None:
            return False
        self._send(w, command)
        return True

    def restart(self, kind: str, cfg: Config, timeout: float = 1.8) -> bool:
        """Restart one stream's worker with ``cfg`` (a device or size changed); the other stream
        keeps running. The old worker's sink ends on its placeholder. False when ``kind`` is off."""
        w = self.workers.get(kind)
        if w is None:
            return False
        with self._lock:
            self.cfg = cfg
            w.replacing = True
            try:
                self._send(w, msg.Stop())
                if w.proc is not None:
                    w.proc.join(timeout)
                    if w.proc.is_alive():
                        log.warning("%s worker did not stop in time; terminating", kind)
                        w.proc.terminate()
                        w.proc.join(0.5)
                w.fatal, w.finished, w.status = "", False, {}
                self._spawn(w)
            finally:
                w.replacing = False
        return True

    def frame(self):
        """(image, placeholder, wall time) of the latest published frame, or None."""
        return self.routes.video_frame.read()

    def mic_level_db(self) -> float:
        """The microphone's recent input level in dBFS (−120 when silent or not running)."""
        return float(self.routes.mic_level[0])

    def poll(self, timeout: float = 0.2) -> None:
        """Drain worker messages, forward A/V delay, restart dead workers."""
        conns = {w.conn: w for w in self.workers.values() if w.conn is not None and not w.replacing}
        for conn in mp.connection.wait(list(conns), timeout):
            w = conns[conn]
            if w.conn is not conn or w.replacing:
                continue  # a restart replaced this worker since the wait began
            try:
                while conn.poll():
                    match conn.recv():
                        case msg.Status(status):
                            w.status = status
                            done = int(status.get("published", 0)) + int(status.get("placeholders", 0))
                            if done != w.progress:
                                w.progress, w.progress_t = done, time.monotonic()
                        case msg.Fatal(reason):
                            w.fatal = reason
                            log.error("%s stream cannot start: %s", w.kind, reason)
                        case msg.EndOfFile():
                            w.finished = True
                        case msg.Stopped():
                            pass
            except (EOFError, OSError):
                if w.conn is conn:
                    w.conn = None
        if self.cfg.engine.sync and "video" in self.workers and "audio" in self.workers:
            lat = self.workers["audio"].status.get("latency_ms", 0.0) / 1000
            self._send(self.workers["video"], msg.Delay(float(lat)))
        if not self._stopping:
            with self._lock:
                self._restart_dead()

    def _restart_dead(self) -> None:
        now = time.monotonic()
        for w in self.workers.values():
            if w.proc is not None and w.proc.is_alive() and not w.replacing and not w.finished and not w.fatal:
                # liveness: a worker whose sink got nothing for ``stall_s`` (or that stopped reporting)
                # is stuck — stopped by a signal, deadlocked in a driver — and is replaced
                limit = self.STARTUP_S if w.progress < 0 else self.stall_s
                if now - w.progress_t > limit:
                    w.stalls += 1
                    w.restarts += 1
                    log.warning("%s worker made no progress for %.0f s; restarting it", w.kind, now - w.progress_t)
                    w.status = dict(w.status, state="stalled")
                    w.proc.kill()  # a stopped process cannot handle SIGTERM
                    w.proc.join(1.0)
                    self._spawn(w)
                    continue
            if w.proc is not None and not w.replacing and not w.proc.is_alive() and not w.fatal and not w.finished:
                w.restarts += 1
                log.warning("%s worker exited (code %s); restarting", w.kind, w.proc.exitcode)
                self._spawn(w)

    @property
    def done(self) -> bool:
        """True when every stream has ended (finite sources) or failed fatally."""
        return all(w.finished or w.fatal for w in self.workers.values())

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"paused": self.paused}
        for k, w in self.workers.items():
            out[k] = dict(
                w.status,
                worker_restarts=w.restarts,
                alive=bool(w.proc and w.proc.is_alive()),
                fatal=w.fatal,
                stalls=w.stalls,
                pid=w.proc.pid if w.proc else None,
            )
        return out

    def stop(self, timeout: float | None = None) -> None:
        """Stop the workers: 1.8 s for live devices, longer when a file is being written."""
        if timeout is None:
            recording = any(getattr(self.cfg, k).sink == "file" for k in self.workers)
            timeout = 25.0 if recording else 1.4
        self._stopping = True
        self.broadcast(msg.Stop())
        t_end = time.monotonic() + timeout
        for w in self.workers.values():
            if w.proc is not None:
                w.proc.join(max(0.05, t_end - time.monotonic()))
        late = [w for w in self.workers.values() if w.proc is not None and w.proc.is_alive()]
        for w in late:
            log.warning("%s worker did not stop in time; killing it", w.kind)
            w.proc.kill()  # its sink already ended on the placeholder, or dies with it (fail closed)
        for w in late:  # a worker at nice +10 on a saturated CPU needs a moment to be reaped
            w.proc.join(0.5)
        self.poll(0)
