"""``ravasd run``: resolve devices, start the supervisor, stop cleanly on Ctrl-C / SIGTERM."""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path

from .config import Config
from .engine.supervisor import Supervisor
from .pipelines import output_parts, resolve

log = logging.getLogger(__name__)


def format_status(st: dict) -> str:
    parts = ["paused" if st.get("paused") else "live"]
    for kind in ("video", "audio"):
        s = st.get(kind)
        if not s:
            continue
        unit = "fps" if kind == "video" else "blk/s"
        parts.append(f"{kind}: {s.get('state', '?')} {s.get('rate', 0):.0f} {unit}, "
                     f"{s.get('latency_ms', 0):.0f} ms, dropped {s.get('dropped', 0)}, "
                     f"restarts {s.get('restarts', 0) + s.get('worker_restarts', 0)}")
    return " | ".join(parts)


def run(cfg: Config, duration: float | None = None, status_every: float = 10.0,
        out=sys.stderr) -> int:
    """Run until a signal (or ``duration`` seconds, or the end of a non-looping input file)."""
    cfg, notes = resolve(cfg)
    for note in notes:
        print(note, file=out)
    sup = Supervisor(cfg, log_level=logging.getLogger().level or logging.WARNING)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    sources = ", ".join(f"{k} {getattr(cfg, k).source}→{getattr(cfg, k).sink}"
                        for k in ("video", "audio") if getattr(cfg, k).enabled)
    print(f"ravasd running ({sources or 'no streams enabled'}); Ctrl-C stops.", file=out)
    sup.start()
    t0 = last = time.monotonic()
    try:
        while not stop.is_set():
            sup.poll(0.2)
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            if sup.done:
                fatal = [f"{k}: {w.fatal}" for k, w in sup.workers.items() if w.fatal]
                if fatal:
                    print("ravasd: a stream could not start: " + "; ".join(fatal), file=out)
                    return 1
                break
            if status_every and now - last >= status_every:
                last = now
                print(format_status(sup.status()), file=out)
    finally:
        t_stop = time.monotonic()
        sup.stop()
        for s, h in old.items():
            signal.signal(s, h)
        _finish_recording(cfg)
        log.info("stopped in %.2f s", time.monotonic() - t_stop)
    print("ravasd stopped.", file=out)
    return 0


def _finish_recording(cfg: Config) -> None:
    parts = output_parts(cfg)
    if parts["video"] == parts["audio"] or not cfg.files.output:
        return
    from .media.writer import mux

    out = Path(cfg.files.output)
    if parts["video"].exists() and parts["audio"].exists():
        mux(parts["video"], parts["audio"], out)
        print(f"recording written to {out}", file=sys.stderr)
