"""``ravasd run``: the daemon.

The main process holds the single-instance lock, opens the virtual mic, runs the supervisor (one
worker process per stream), serves the control socket and, when a display exists, the tray.
Every way out — Ctrl-C, SIGTERM, ``ravasd ctl quit``, tray Quit, a fatal error — goes through
:meth:`Daemon.stop`, which stops the workers (their sinks end on a placeholder/silence), removes
the virtual mic and releases the lock.
"""

from __future__ import annotations

import base64
import io
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .. import config as config_mod
from .. import logs, paths
from ..config import Config
from ..devices import pulse
from ..devices.display import NO_DISPLAY_FIX, display_available
from ..engine import messages
from ..engine.supervisor import Supervisor
from ..errors import ConfigError, DeviceError, RavasError
from ..media.writer import mux
from ..name_checks import check_names
from ..video.avatar.library import available as avatars_available
from ..video.avatar.library import find as find_avatar
from ..video.converters import VIDEO_CONVERTERS
from ..wiring import WIRING, converter_factory, output_parts
from . import protocol
from .control import ControlServer, InstanceLock, format_status
from .resolve import Resources, resolve, resolve_source
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
        self.recording_ok = True  # False when a recording was asked for and not (fully) written
        self.mic_ok = True  # False while RAVAS Mic is being re-created
        self._mic_events: pulse.ServerEvents | None = None  # wakes _check_mic (no polling pactl)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.lock.acquire()
        try:
            self.cfg, self.notes, self.resources = resolve(self.requested)
            for note in self.notes:
                print(note, file=self.out)
            self.sup = Supervisor(self.cfg, WIRING, log_level=logs.stderr_level(), routes=self.resources.routes())
            self.sup.start()
            self.control = ControlServer(self.handle)
            self.control.start()
        except BaseException:
            self._cleanup()
            raise
        streams = ", ".join(
            f"{k} {getattr(self.cfg, k).source}→{getattr(self.cfg, k).sink}"
            for k in ("video", "audio")
            if getattr(self.cfg, k).enabled
        )
        print(
            f"ravasd running ({streams or 'no streams enabled'}); Ctrl-C or `ravasd ctl quit` stops.",
            file=self.out,
            flush=True,
        )

    def loop(self, duration: float | None = None, status_every: float = 10.0) -> int:
        """Poll the supervisor until stopped; returns the exit code."""
        assert self.sup is not None
        t0 = last = time.monotonic()
        live_since: float | None = None  # ``duration`` counts from when every stream's sink gets items
        mic_checked = t0
        while not self.stop_event.is_set():
            self.sup.poll(0.2)
            now = time.monotonic()
            if live_since is None and (self._streams_flowing() or now - t0 > 60):
                live_since = now
            if duration is not None and live_since is not None and now - live_since >= duration:
                break
            if self.sup.done:
                fatal = [f"{k}: {w.fatal}" for k, w in self.sup.workers.items() if w.fatal]
                if fatal:
                    print("ravasd: a stream could not start: " + "; ".join(fatal), file=self.out)
                    return 1
                break
            if self._mic_due(now - mic_checked):
                mic_checked = now
                self._check_mic()
            if status_every and now - last >= status_every:
                last = now
                log.info(format_status(self.sup.status()))
                self._notify()
        return 0

    MIC_RECHECK_S = 30.0  # a slow safety net behind the server's events

    def _mic_due(self, since: float) -> bool:
        """Whether to look at RAVAS Mic now: at a module/sink/source event of the sound server, when
        its event stream ended (server gone), each second while re-creating, else every 30 s."""
        if self.resources.mic_backend is None or not hasattr(self.resources.mic_backend, "healthy"):
            return False
        if not self.mic_ok:
            return since >= 1.0
        ev = self._mic_events
        if ev is None:  # subscribe first, then look: no event falls between the two
            self._mic_events = pulse.ServerEvents(("module", "sink", "source"))
            return True
        if not ev.alive:
            ev.close()
            self._mic_events = None
            return True
        if ev.poke.is_set():
            ev.poke.clear()
            return True
        return since >= self.MIC_RECHECK_S

    def _check_mic(self) -> None:
        """RAVAS Mic still there? When the sound server restarted or our sink vanished, re-create
        it (retried each second) and restart the audio worker onto it; status says the truth meanwhile."""
        backend = self.resources.mic_backend
        if backend is None or not hasattr(backend, "healthy"):
            return
        try:
            ok = backend.healthy()
        except Exception:
            ok = False
        if ok:
            return
        if self.mic_ok:
            self.mic_ok = False
            log.warning("RAVAS Mic vanished (sound server restarted or module unloaded); re-creating it")
            self._notify()
        try:
            backend.reopen()
        except Exception as err:  # server not back yet: try again in a second
            log.debug("RAVAS Mic not re-created yet: %s", err)
            return
        self.mic_ok = True
        if self.sup:
            self.sup.restart("audio", self.cfg)  # fresh streams on the (new) server
        log.info("RAVAS Mic is back")
        self._notify()

    def _streams_flowing(self) -> bool:
        st = self.sup.status() if self.sup else {}
        streams = [st[k] for k in ("video", "audio") if isinstance(st.get(k), dict)]
        return bool(streams) and all(
            s.get("published", 0) + s.get("placeholders", 0) > 0 or s.get("fatal") for s in streams
        )

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
            statuses = self.sup.status()
            self.sup = None
            self.recording_ok = _finish_recording(self.cfg, statuses, self.out)
        if self._mic_events is not None:
            self._mic_events.close()
            self._mic_events = None
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
        v = st.get("video")
        if isinstance(v, dict) and v.get("state") == "running":
            # under load the video worker (nice +10) gives way first: say so instead of hiding it
            low_rate = v.get("rate", 0) < 0.8 * self.cfg.video.fps
            lower_scale = v.get("render_scale", 1.0) < v.get("top_scale", 1.0) - 0.01
            v["shedding"] = bool(low_rate or lower_scale)
        st.update(
            {
                "paused": self.paused,
                "voice": self.cfg.audio.voice,
                "video_converter": self.cfg.video.converter,
                "avatar": self.cfg.video.avatar,
                "framing": self.cfg.video.framing,
                "preview": self.preview,
                "uptime_s": round(time.time() - self.started, 1),
                "virtual_mic": getattr(self.resources.mic, "shown_as", None) if self.mic_ok else None,
                "virtual_mic_state": (
                    "none" if self.resources.mic is None else "ready" if self.mic_ok else "re-creating"
                ),
                "video_sink": self.cfg.video.sink,
                "audio_sink": self.cfg.audio.sink,
                "video_size": [self.cfg.video.width, self.cfg.video.height],
                "video_fps": self.cfg.video.fps,
                "background": self.cfg.video.background,
                "background_image": self.cfg.video.background_image,
                "notes": self.notes,
            }
        )
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
        return bool(self.sup and self.sup.send("video", messages.Calibrate()))

    def set_preview(self, on: bool) -> None:
        if on and not display_available():
            # the window would abort the video worker; say so instead of crash-looping it
            raise DeviceError("There is no display to show the preview window on.", NO_DISPLAY_FIX + ".")
        self.preview = on
        if self.sup:
            self.sup.send("video", messages.Preview(bool(on)))
        self._notify()

    # ------------------------------------------------------------------ settings window API
    def frame(self) -> tuple[Any, bool, float]:
        """The latest frame the virtual camera got (anonymized or a placeholder card)."""
        got = self.sup.frame() if self.sup else None
        if got is None:
            raise RavasError(
                "No frame has been published yet (the video stream is off or starting).",
                "wait a moment, or check `ravasd ctl status`.",
            )
        return got

    def set_settings(self, changes: dict[str, Any]) -> str:
        """Validate ``{key: value}`` with the typed config, persist it atomically and apply it: returns
        ``"live"`` (converter swapped in place), ``"restarted"`` (the changed streams' workers
        restarted) or ``"next start"`` (saved; the running daemon cannot change it). Nothing is saved
        or applied when any value is refused."""
        if not changes:
            raise ConfigError("set: name at least one setting (section.key).")
        if len(changes) == 1 and next(iter(changes)) in ("audio.voice", "video.avatar"):
            key, value = next(iter(changes.items()))
            (self.set_voice if key == "audio.voice" else self.set_avatar)(str(value))
            return "live"
        requested = self.requested.replace(**changes)  # ConfigError naming the key
        check_names(requested)
        new, kinds, effects = self.cfg, set(), set()
        for key, value in changes.items():
            how = settings_effect(key)
            effects.add(how)
            if how == config_mod.NEXT_START:
                continue
            new = new.replace(**{key: value})
            if key in SOURCE_KEYS:  # probing a device the worker holds would fail: only when it changes
                new = resolve_source(key, requested, new)  # DeviceError for a camera/mic that is not there
            kinds.add((key.split(".")[0], how))
        for kind, how in kinds:
            if how == config_mod.LIVE:
                converter_factory(kind, new)  # a bad avatar/background file is refused here
        path = paths.config_file()
        before = path.read_bytes() if path.exists() else None
        try:
            for key, value in changes.items():
                config_mod.save_user_setting(key, value, check=check_names)
        except RavasError:
            if before is not None:
                paths.atomic_write_bytes(path, before)  # all or nothing
            raise
        self.requested, self.cfg = requested, new
        restart = {k for k, how in kinds if how == config_mod.RESTART}
        if self.sup:
            for kind in sorted({k for k, _ in kinds} - restart):
                self.sup.swap(kind, new)
            for kind in sorted(restart):
                self.sup.restart(kind, new)
        self._notify()
        return next(how for how in (config_mod.RESTART, config_mod.LIVE, config_mod.NEXT_START) if how in effects)

    def record_sample(self, seconds: float) -> Path:
        """Record ``seconds`` of the converted voice (what RAVAS Mic plays) into an owner-only WAV in
        the runtime dir and return its path; blocks until it is written (control thread)."""
        if not 0.5 <= seconds <= 15:
            raise ConfigError(f"seconds: must be 0.5..15, got {seconds}.")
        path = paths.runtime_dir() / "voice-sample.wav"
        path.unlink(missing_ok=True)
        if not (self.sup and self.sup.send("audio", messages.Record(str(path), float(seconds)))):
            raise RavasError("The audio stream is not running.", "enable it (audio.enabled: true) and restart ravasd.")
        deadline = time.monotonic() + seconds + 3.0
        while time.monotonic() < deadline:
            if path.exists():
                return path
            time.sleep(0.05)
        raise RavasError(
            "The voice sample was not recorded in time (the audio stream is stalled).",
            "see `ravasd ctl status` and the audio log.",
        )

    def _notify(self) -> None:
        for fn in list(self.listeners):
            try:
                fn()
            except Exception:
                log.debug("listener failed", exc_info=True)

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """Control-socket dispatcher (JSON in, JSON out): the verbs of :mod:`.protocol`, checked there."""
        verb, a = protocol.check(req)
        match verb.name:
            case "status":
                return {"ok": True, "status": self.status()}
            case "config":  # the effective settings: the file as the daemon read it, defaults filled in
                return {"ok": True, "config": config_mod.to_dict(self.cfg)}
            case "pause":
                self.pause()
            case "resume":
                self.resume()
            case "voice":
                self.set_voice(a["name"])
            case "avatar":
                self.set_avatar(a["name"])
            case "converter":
                self.set_video_converter(a["name"])
            case "calibrate":
                if not self.calibrate():
                    return {"ok": False, "error": "the video stream is not running"}
            case "preview":
                self.set_preview(a["on"])
            case "snapshot" | "frame":
                return {"ok": True, **self._encoded_frame(int(a["max_width"]), png=verb.name == "snapshot")}
            case "devices":
                from ..devices.listing import list_all

                return {
                    "ok": True,
                    "devices": list_all(),
                    "current": {
                        "camera": self.cfg.video.camera,
                        "video_source": self.cfg.video.source,
                        "input_device": self.cfg.audio.input_device,
                        "audio_source": self.cfg.audio.source,
                    },
                }
            case "set":
                changes = a["changes"]
                if changes is None:
                    if a["key"] is None:
                        raise ConfigError("set: give 'changes', or 'key' and 'value'.")
                    value = a["value"]
                    if isinstance(value, str) and a["parse"]:
                        value = config_mod.parse_value(value)
                    changes = {a["key"]: value}
                if len(changes) > 64:
                    raise ConfigError("set: 'changes' must be an object of at most 64 settings.")
                return {"ok": True, "applied": self.set_settings({str(k): v for k, v in changes.items()})}
            case "level":
                return {
                    "ok": True,
                    "mic_db": self.sup.mic_level_db() if self.sup else -120.0,
                    "voice_level": float(self.sup.routes.audio_level[0]) if self.sup else 0.0,
                }
            case "sample":
                return {"ok": True, "path": str(self.record_sample(a["seconds"]))}
            case "quit":
                self.stop_event.set()  # the loop (and the tray, which watches the event) ends
        return {"ok": True}

    def _encoded_frame(self, max_w: int, png: bool) -> dict[str, Any]:
        """The latest frame as base64 PNG (full size) or JPEG (scaled to ``max_width``)."""

        from PIL import Image

        img, placeholder, t = self.frame()
        pic = Image.fromarray(img)
        if max_w and pic.width > max_w:
            pic = pic.resize((max_w, max(1, round(pic.height * max_w / pic.width))), Image.BILINEAR)
        buf = io.BytesIO()
        pic.save(buf, "PNG" if png else "JPEG", **({} if png else {"quality": 82}))
        return {
            "image": base64.b64encode(buf.getvalue()).decode("ascii"),
            "format": "png" if png else "jpeg",
            "width": pic.width,
            "height": pic.height,
            "placeholder": placeholder,
            "age_s": round(max(0.0, time.time() - t), 3),
        }


def settings_effect(key: str) -> str:
    """How the running daemon applies a changed setting: live, by restarting that stream, or next start
    (the field's ``apply`` in :mod:`ravasd.config`)."""
    return config_mod.apply_policy(key)


#: Settings naming a device: checked before saving only when they change (the worker holds the device).
SOURCE_KEYS = {"video.source", "video.camera", "audio.source", "audio.input_device"}
#: Settings that reopen a device or resize the stream: that stream's worker restarts (≈ 1 s of placeholder).
RESTART_KEYS = {
    "video.source",
    "video.camera",
    "video.width",
    "video.height",
    "video.fps",
    "video.deadline_ms",
    "audio.source",
    "audio.input_device",
    "audio.deadline_ms",
    "audio.max_latency_ms",
}


def run(
    cfg: Config, duration: float | None = None, status_every: float = 10.0, tray: bool | None = None, out=sys.stderr
) -> int:
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
            worker = threading.Thread(
                target=lambda: code.__setitem__(0, daemon.loop(duration, status_every)), name="daemon-loop", daemon=True
            )
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
    return rc or (0 if daemon.recording_ok else 1)


def _finish_recording(cfg: Config, statuses: dict[str, Any], out=sys.stderr) -> bool:
    """After the workers stopped: mux a two-stream recording and say in one line what was kept.
    Returns False when a recording was asked for and is missing or incomplete (exit status 1)."""
    if not cfg.files.output or "file" not in (cfg.video.sink, cfg.audio.sink):
        return True
    parts = output_parts(cfg)
    final = Path(cfg.files.output)
    errors = {
        k: (statuses.get(k) or {}).get("recording_error")
        for k in ("video", "audio")
        if getattr(cfg, k).enabled and getattr(cfg, k).sink == "file"
    }
    failed = {k: e for k, e in errors.items() if e}
    missing = [k for k in errors if not parts[k].exists()]
    if failed or missing:
        why = "; ".join(f"{k}: {e}" for k, e in failed.items()) or f"the {' and '.join(missing)} part was not written"
        for p in {parts[k] for k in errors}:
            if p != final:
                p.unlink(missing_ok=True)  # hidden parts of a broken two-stream recording
        kept = (
            "nothing was kept"
            if not final.exists() or final in (parts[k] for k in failed)
            else f"{final} is incomplete"
        )
        log.error("recording %s failed: %s", final, why)
        print(f"ravasd: error: the recording {final} failed ({why}); {kept}.", file=out)
        return False
    if parts["video"] != parts["audio"]:
        try:
            mux(parts["video"], parts["audio"], final)
        except Exception as err:  # FFmpeg, disk: reported, never a traceback
            print(
                f"ravasd: error: the recording {final} could not be put together ({err}); nothing was kept.", file=out
            )
            return False
        finally:
            for k in ("video", "audio"):
                parts[k].unlink(missing_ok=True)
    print(f"recording written to {final}", file=out)
    return True
