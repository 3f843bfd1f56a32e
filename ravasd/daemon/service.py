"""``ravasd run``: the daemon.

The main process holds the single-instance lock, opens the virtual mic, runs the supervisor (one
worker process per stream), serves the control socket and, when a display exists, the tray.
Every way out — Ctrl-C, SIGTERM, ``ravasd ctl quit``, tray Quit, a fatal error — goes through
:meth:`Daemon.stop`, which stops the workers (their sinks end on a placeholder/silence), removes
the virtual mic and releases the lock.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .. import config as config_mod
from .. import logs
from ..config import Config
from ..engine.supervisor import Supervisor
from ..errors import RavasError
from ..media.writer import mux
from ..pipelines import WIRING, converter_factory, output_parts
from ..video.avatar.library import available as avatars_available
from ..video.avatar.library import find as find_avatar
from ..video.converters import VIDEO_CONVERTERS
from .control import ControlServer, InstanceLock, format_status
from .resolve import Resources, resolve
from .tray import start_tray

log = logging.getLogger(__name__)


class Daemon:
    """The running service. Control methods are thread-safe (control socket and tray threads)."""

    def __init__(self, cfg: Config, out=sys.stderr) -> None:
        self.requested = cfg
        self.cfg = cfg
        self.out = out
        self.lock = InstanceLock()
        self.resources = Resources()
        self.sup: Supervisor | None = None
        self.control: ControlServer | None = None
        self.stop_event = threading.Event()
        self.notes: list[str] = []
        self.preview = False
        self.started = time.time()
        self.listeners: list[Any] = []  # callables notified on state changes (the tray)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.lock.acquire()
        try:
            self.cfg, self.notes, self.resources = resolve(self.requested)
            for note in self.notes:
                print(note, file=self.out)
            self.sup = Supervisor(self.cfg, WIRING, log_level=logs.stderr_level(),
                                  routes=self.resources.routes())
            self.sup.start()
            self.control = ControlServer(self.handle)
            self.control.start()
        except BaseException:
            self._cleanup()
            raise
        streams = ", ".join(f"{k} {getattr(self.cfg, k).source}→{getattr(self.cfg, k).sink}"
                            for k in ("video", "audio") if getattr(self.cfg, k).enabled)
        print(f"ravasd running ({streams or 'no streams enabled'}); Ctrl-C or `ravasd ctl quit` stops.",
              file=self.out, flush=True)

    def loop(self, duration: float | None = None, status_every: float = 10.0) -> int:
        """Poll the supervisor until stopped; returns the exit code."""
        assert self.sup is not None
        t0 = last = time.monotonic()
        while not self.stop_event.is_set():
            self.sup.poll(0.2)
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            if self.sup.done:
                fatal = [f"{k}: {w.fatal}" for k, w in self.sup.workers.items() if w.fatal]
                if fatal:
                    print("ravasd: a stream could not start: " + "; ".join(fatal), file=self.out)
                    return 1
                break
            if status_every and now - last >= status_every:
                last = now
                log.info(format_status(self.sup.status()))
                self._notify()
        return 0

    def stop(self) -> None:
        self.stop_event.set()
        self._cleanup()

    def _cleanup(self) -> None:
        t0 = time.monotonic()
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.sup is not None:
            self.sup.stop()
            self.sup = None
            _finish_recording(self.cfg)
        self.resources.close()  # the virtual mic disappears only after its writer stopped
        self.lock.release()
        log.info("stopped in %.2f s", time.monotonic() - t0)

    # ------------------------------------------------------------------ control API
    @property
    def paused(self) -> bool:
        """The supervisor owns the curtain; a daemon that is not running shows none."""
        return bool(self.sup and self.sup.paused)

    def status(self) -> dict[str, Any]:
        st = self.sup.status() if self.sup else {}
        st.update({"paused": self.paused, "voice": self.cfg.audio.voice, "video_converter": self.cfg.video.converter,
                   "avatar": self.cfg.video.avatar,
                   "preview": self.preview, "uptime_s": round(time.time() - self.started, 1),
                   "virtual_mic": getattr(self.resources.mic, "shown_as", None),
                   "video_sink": self.cfg.video.sink, "audio_sink": self.cfg.audio.sink,
                   "notes": self.notes})
        return st

    def pause(self) -> None:
        if self.sup:
            self.sup.pause()
        self._notify()

    def resume(self) -> None:
        if self.sup:
            self.sup.resume()
        self._notify()

    def set_voice(self, name: str) -> None:
        self._select("audio", {"audio.voice": name})

    def set_video_converter(self, name: str) -> None:
        self._select("video", {"video.converter": name})

    def set_avatar(self, name: str) -> None:
        """An avatar by name (→ the avatar converter), or a converter name (facemask, card)."""
        if name in VIDEO_CONVERTERS and name not in avatars_available():
            self._select("video", {"video.converter": name})
        else:
            find_avatar(name)  # ConfigError listing the avatars for an unknown name
            self._select("video", {"video.converter": "avatar", "video.avatar": name})

    def _select(self, kind: str, changes: dict[str, str]) -> None:
        new = self.cfg.replace(**changes)
        converter_factory(kind, new)  # raises ConfigError listing the choices for an unknown name
        self.cfg = new
        if self.sup:
            self.sup.swap(kind, new)
        for key, value in changes.items():
            try:
                config_mod.save_user_setting(key, value)  # persists across restarts, atomically
            except RavasError as err:
                log.warning("could not save %s: %s", key, err)
        self._notify()

    def calibrate(self) -> bool:
        return bool(self.sup and self.sup.send("video", "call", "calibrate"))

    def set_preview(self, on: bool) -> None:
        self.preview = on
        if self.sup:
            self.sup.send("video", "preview", on)
        self._notify()

    def _notify(self) -> None:
        for fn in list(self.listeners):
            try:
                fn()
            except Exception:
                log.debug("listener failed", exc_info=True)

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """Control-socket dispatcher (JSON in, JSON out)."""
        cmd = req["cmd"]
        if cmd == "status":
            return {"ok": True, "status": self.status()}
        if cmd == "pause":
            self.pause()
        elif cmd == "resume":
            self.resume()
        elif cmd == "voice":
            self.set_voice(str(req.get("name", "")))
        elif cmd == "avatar":
            self.set_avatar(str(req.get("name", "")))
        elif cmd == "converter":
            self.set_video_converter(str(req.get("name", "")))
        elif cmd == "calibrate":
            if not self.calibrate():
                return {"ok": False, "error": "the video stream is not running"}
        elif cmd == "preview":
            self.set_preview(bool(req.get("on", True)))
        elif cmd == "quit":
            self.stop_event.set()  # the loop (and the tray, which watches the event) ends
        else:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        return {"ok": True}


def run(cfg: Config, duration: float | None = None, status_every: float = 10.0, tray: bool | None = None,
        out=sys.stderr) -> int:
    """Run until a signal, ``ctl quit``, tray Quit, ``duration`` s, or the end of a non-looping file."""
    daemon = Daemon(cfg, out=out)

    def on_signal(signum, frame):
        daemon.stop_event.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        daemon.start()
        icon = None
        if tray is not False:
            icon = start_tray(daemon, required=bool(tray))
            if icon is None:
                print("tray: no display; running headless (control with `ravasd ctl`).", file=out)
        if icon is not None:
            code = [0]
            worker = threading.Thread(target=lambda: code.__setitem__(0, daemon.loop(duration, status_every)),
                                      name="daemon-loop", daemon=True)
            worker.start()
            icon.run_until(daemon.stop_event)  # GTK wants the main thread
            daemon.stop_event.set()
            worker.join(2.0)
            rc = code[0]
        else:
            rc = daemon.loop(duration, status_every)
    finally:
        daemon.stop()
        for s, h in old.items():
            signal.signal(s, h)
    print("ravasd stopped.", file=out)
    return rc


def _finish_recording(cfg: Config) -> None:
    if not cfg.files.output or "file" not in (cfg.video.sink, cfg.audio.sink):
        return
    parts = output_parts(cfg)
    out = Path(cfg.files.output)
    if parts["video"] != parts["audio"]:
        missing = [k for k, p in parts.items() if not p.exists()]
        if missing:
            log.error("recording %s is incomplete: the %s part was not written", out, " and ".join(missing))
            print(f"ravasd: error: the recording {out} is incomplete ({', '.join(missing)} missing); "
                  "see the log.", file=sys.stderr)
            return
        mux(parts["video"], parts["audio"], out)
    print(f"recording written to {out}", file=sys.stderr)
