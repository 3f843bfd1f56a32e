"""The fail-closed stream runner: source → converter → sink for one stream, in threads.

One :class:`StreamRunner` runs inside each stream's worker process (see ``supervisor``). It owns
three threads:

* **capture** reads the source into a bounded inbox (drop oldest; counted). A source that raises
  is closed and reopened with back-off (device unplugged → output continues as placeholder).
* **convert** runs the converter. Converter instances are made in this thread (slow model loads
  never block the output). An exception → the instance is discarded and a fresh one made
  (``restarts``). Output made while paused, or by an abandoned instance, is discarded.
* **publish** owns the sink and its cadence. Video: one frame every ``period``; the newest
  anonymized frame whose capture time + ``delay`` has passed and that is not older than
  ``deadline``, else the placeholder card. Audio: each converted block as soon as it is ready;
  when none arrived within ``deadline``, silence for the elapsed time. It also watches the
  convert thread: a converter busy for ``hang_timeout`` is abandoned and replaced.

The sink therefore never sees a raw item (types are checked) and never stops: errors, hangs,
pause, start-up and shutdown all publish placeholders.
"""
from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from . import placeholder
from .frames import AnonAudio, AnonFrame

log = logging.getLogger(__name__)

Kind = Literal["video", "audio"]


@dataclass
class StreamStatus:
    """Counters a runner exposes; read by the supervisor (plain values, so they pickle)."""

    kind: str
    state: str = "starting"  # starting | running | paused | error | stopped
    published: int = 0  # anonymized items written to the sink
    placeholders: int = 0  # placeholder cards / silence blocks written
    dropped: int = 0  # items dropped by a full queue or latency bound
    restarts: int = 0  # converter instances replaced (exception or hang)
    hangs: int = 0
    source_errors: int = 0
    sink_errors: int = 0
    xruns: int = 0  # device overflows (input) + underruns (output)
    latency_ms: float = 0.0  # capture → publish, smoothed
    rate: float = 0.0  # anonymized items per second, smoothed
    last_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.update(d.pop("extra"))
        return d


class StreamRunner:
    """Run one stream; see the module docstring for the thread model.

    ``source``/``converter``/``sink`` are factories (called in the thread that uses the object).
    ``period``: output cadence (s) for video, block duration for audio. ``width``/``height`` size
    the video placeholder; ``rate``/``block`` the audio silence.
    """

    def __init__(self, kind: Kind, *, source: Callable[[], Any], converter: Callable[[], Any],
                 sink: Callable[[], Any], period: float, deadline: float, hang_timeout: float = 2.0,
                 width: int = 640, height: int = 480, rate: int = 48000, block: int = 480,
                 max_backlog: int = 2, clock: Callable[[], float] = time.monotonic,
                 on_eof: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._source_factory = source
        self._converter_factory = converter
        self._sink_factory = sink
        self.period = period
        self.deadline = deadline
        self.hang_timeout = hang_timeout
        self.width, self.height, self.rate, self.block = width, height, rate, block
        self.clock = clock
        self.delay = 0.0  # video only: A/V sync delay (s), set by the supervisor
        self.status = StreamStatus(kind)
        self._on_eof = on_eof
        self._inbox: collections.deque = collections.deque()
        self._max_backlog = max_backlog
        self._outbox: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._out_cv = threading.Condition()
        self._stop = threading.Event()
        self._closing = False
        self._paused = False
        self._epoch = 0  # bumped on pause/resume/converter swap: older outputs are discarded
        self._gen = 0  # convert-thread generation; a hung thread's late output is discarded
        self._busy_since: float | None = None
        self._source: Any = None
        self._converter: Any = None
        self._threads: list[threading.Thread] = []
        self.eof = threading.Event()
        self._last_out_t: float | None = None

    # ------------------------------------------------------------------ control (any thread)
    def start(self) -> "StreamRunner":
        self._spawn(self._publish_loop, "publish")
        self._spawn(self._capture_loop, "capture")
        self._spawn(self._convert_loop, "convert", self._gen)
        return self

    def pause(self) -> None:
        with self._cv:
            self._paused = True
            self._epoch += 1
            self._inbox.clear()
        with self._out_cv:
            self._outbox.clear()

    def resume(self) -> None:
        with self._cv:
            self._paused = False
            self._epoch += 1
            self._reset_pending = True

    def swap_converter(self, factory: Callable[[], Any]) -> None:
        """Use a new converter (voice/avatar changed live). Output of the old one is discarded."""
        with self._cv:
            self._converter_factory = factory
            self._epoch += 1
            self._swap_pending = True

    _reset_pending = False
    _swap_pending = False
    _preview: Any = None
    _calls: list[str] = []

    def call_converter(self, method: str) -> None:
        """Ask the converter to run ``method`` (e.g. ``calibrate``) in the convert thread, if it has one."""
        with self._cv:
            self._calls = [*self._calls, method]

    def set_preview(self, factory: Callable[[], Any] | None) -> None:
        """Mirror what the sink gets into a second sink (the preview window), or stop mirroring."""
        old, self._preview = self._preview, None
        _quiet_close(old)
        if factory is not None:
            try:
                self._preview = factory()
            except Exception as err:
                self._error(f"preview: {err}")

    def stop(self, timeout: float = 1.5) -> None:
        """Stop within ``timeout`` s; the sink's last item is a placeholder, then it is closed."""
        self._closing = True
        with self._cv:
            self._epoch += 1
            self._cv.notify_all()
        self._stop.set()
        with self._out_cv:
            self._out_cv.notify_all()
        deadline = time.monotonic() + timeout
        src = self._source
        if src is not None:
            _quiet_close(src)  # unblocks a read() that waits on a device
        for t in self._threads:
            # a file sink must finish writing its file (encoder flush) or the recording is lost
            extra = 20.0 if t.name.endswith("publish") and getattr(self._sink, "slow_close", False) else 0.0
            t.join(max(0.05, deadline + extra - time.monotonic()))
        self.status.state = "stopped"

    def snapshot(self) -> dict[str, Any]:
        """Status as a plain dict, with device xrun counters folded in (any thread)."""
        self.status.xruns = int(getattr(self._source, "overflows", 0) or 0) + int(
            getattr(self._sink, "underruns", 0) or 0)
        d = self.status.as_dict()
        # what the devices' own bounded buffers dropped (latency bound) counts as dropped too
        d["device_dropped"] = {"source": int(getattr(self._source, "dropped", 0) or 0),
                               "sink": int(getattr(self._sink, "dropped", 0) or 0)}
        d["dropped"] += sum(d["device_dropped"].values())
        face = getattr(self._converter, "face_visible", None)
        if face is not None:
            d["face"] = bool(face)  # the tray shows "no face"
        return d

    _sink: Any = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a finite source is exhausted and its output published."""
        return self.eof.wait(timeout)

    # ------------------------------------------------------------------ threads
    def _spawn(self, fn: Callable, name: str, *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, name=f"{self.kind}-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    def _capture_loop(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                if self._source is None:
                    self._source = self._source_factory()
                    if self.status.source_errors:  # a reopened device: the converter's state is stale
                        with self._cv:
                            self._reset_pending = True
                item = self._source.read()
                backoff = 0.2
            except Exception as err:  # device lost, file unreadable: keep the output alive
                if self._stop.is_set():
                    break
                self.status.source_errors += 1
                self._error(f"source: {err}")
                _quiet_close(self._source)
                self._source = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 3.0)
                continue
            if item is None:
                with self._cv:
                    self._source_done = True
                    self._cv.notify_all()
                break
            with self._cv:
                if self._paused:
                    continue
                if len(self._inbox) >= self._max_backlog:
                    self._inbox.popleft()
                    self.status.dropped += 1
                self._inbox.append(item)
                self._cv.notify_all()
        _quiet_close(self._source)

    _source_done = False
    _build_failures = 0

    def _take(self) -> tuple[Any, int] | None:
        with self._cv:
            while not self._inbox and not self._stop.is_set():
                if self._source_done:
                    return None
                self._cv.wait(0.1)
            if self._stop.is_set():
                return None
            if self.kind == "video":  # newest frame wins; older ones are stale
                while len(self._inbox) > 1:
                    self._inbox.popleft()
                    self.status.dropped += 1
            return self._inbox.popleft(), self._epoch

    def _convert_loop(self, gen: int) -> None:
        conv = None
        while not self._stop.is_set() and gen == self._gen:
            got = self._take()
            if got is None:
                if self._source_done and not self._stop.is_set():
                    self._finish_eof()
                break
            item, epoch = got
            with self._cv:
                if self._swap_pending or self._reset_pending:
                    if self._swap_pending and conv is not None:
                        _quiet_close(conv)
                        conv = None
                    elif conv is not None:
                        _try(conv.reset)
                    self._swap_pending = self._reset_pending = False
                factory = self._converter_factory
                calls, self._calls = self._calls, []
            for method in calls:
                fn = getattr(conv, method, None) if conv is not None else None
                if fn is None:
                    self._error(f"the current converter has no '{method}'")
                else:
                    _try(fn)
            try:
                if conv is None:
                    try:
                        conv = factory()
                    except Exception:
                        # a converter that cannot even be built (missing model…): back off, fail closed
                        self._build_failures += 1
                        self._stop.wait(min(5.0, 0.25 * 2 ** min(self._build_failures, 5)))
                        raise
                    self._build_failures = 0
                    self._converter = conv
                self._busy_since = self.clock()
                out = conv.process(item)
            except Exception as err:
                self._busy_since = None
                if gen != self._gen or self._stop.is_set():
                    break
                self.status.restarts += 1
                self._error(f"converter: {type(err).__name__}: {err}")
                _quiet_close(conv)
                conv = None
                self._stop.wait(0.05)
                continue
            self._busy_since = None
            if gen != self._gen or self._stop.is_set():
                break  # abandoned after a hang: the late result is never published
            want = AnonFrame if self.kind == "video" else AnonAudio
            if type(out) is not want:
                self.status.restarts += 1
                self._error(f"converter returned {type(out).__name__}, not {want.__name__}")
                _quiet_close(conv)
                conv = None
                continue
            with self._out_cv:
                if epoch != self._epoch or self._paused or self._closing:
                    continue
                self._outbox.append((out, epoch))
                if self.kind == "audio":
                    limit = max(1, int(self.deadline * 4 / self.period))
                    while len(self._outbox) > limit:
                        self._outbox.popleft()
                        self.status.dropped += 1
                self._out_cv.notify_all()
        if gen == self._gen:
            _quiet_close(conv)

    def _finish_eof(self) -> None:
        # let the publisher drain what was converted, then signal the end
        t_end = time.monotonic() + max(1.0, self.deadline * 2 + self.delay)
        while self._outbox and time.monotonic() < t_end and not self._stop.is_set():
            time.sleep(self.period / 2)
        self.eof.set()
        if self._on_eof:
            self._on_eof()

    def _watchdog(self) -> None:
        busy = self._busy_since
        if busy is not None and self.clock() - busy > self.hang_timeout:
            self.status.hangs += 1
            self.status.restarts += 1
            self._error(f"converter hung for more than {self.hang_timeout:.1f} s; replaced")
            with self._cv:
                self._gen += 1
                self._epoch += 1
                self._busy_since = None
            with self._out_cv:
                self._outbox.clear()
            self._spawn(self._convert_loop, "convert", self._gen)

    def _error(self, text: str) -> None:
        self.status.last_error = text
        log.warning("%s stream: %s", self.kind, text)

    def _open_sink(self) -> Any:
        while not self._stop.is_set():
            try:
                return self._sink_factory()
            except Exception as err:
                self.status.sink_errors += 1
                self._error(f"sink: {err}")
                self._stop.wait(1.0)
        return None

    def _publish_loop(self) -> None:
        sink = self._sink = self._open_sink()
        if sink is None:
            return
        try:
            if self.kind == "video":
                self._publish_video(sink)
            else:
                self._publish_audio(sink)
        finally:
            try:  # the last thing a device shows is the card, never a converted (or raw) frame
                if self.kind == "video":
                    sink.write(placeholder.card(self.width, self.height, "stopped", self.clock()))
            except Exception:
                pass
            _quiet_close(sink)

    def _write(self, sink: Any, item: Any) -> None:
        try:
            sink.write(item)
        except TypeError:
            raise
        except Exception as err:
            self.status.sink_errors += 1
            self._error(f"sink: {err}")
        preview = self._preview
        if preview is not None:
            try:
                preview.write(item)
            except Exception as err:
                self._error(f"preview: {err}")
                self.set_preview(None)

    def _smooth(self, name: str, value: float, a: float = 0.1) -> None:
        old = getattr(self.status, name)
        setattr(self.status, name, value if old == 0 else old + a * (value - old))

    def _publish_video(self, sink: Any) -> None:
        current: tuple[AnonFrame, int] | None = None
        next_t = self.clock()
        while not self._stop.is_set():
            now = self.clock()
            if next_t > now:
                self._stop.wait(next_t - now)
                now = self.clock()
            next_t = next_t + self.period if now - next_t < self.period else now + self.period
            self._watchdog()
            with self._out_cv:
                # delay line: frames become visible at capture time + A/V delay
                while self._outbox and self._outbox[0][0].ts + self.delay <= now:
                    current = self._outbox.popleft()
            if self._closing:
                break
            if self._paused:
                frame, self.status.state = placeholder.card(self.width, self.height, "paused", now), "paused"
            elif (current is not None and current[1] == self._epoch
                  and now - current[0].ts - self.delay <= self.deadline):
                frame = current[0]
                self.status.state = "running"
            else:
                state = "starting" if self.status.published == 0 else "no-signal"
                frame = placeholder.card(self.width, self.height, state, now)
                if self.status.published and self.status.state == "running":
                    self.status.state = "stalled"
            self._write(sink, frame)
            if frame.placeholder:
                self.status.placeholders += 1
            else:
                self.status.published += 1
                self._smooth("latency_ms", (now - frame.ts) * 1000)
                self._rate_tick(now)

    _mean_dt = 0.0

    def _rate_tick(self, now: float) -> None:
        # average the interval, not its inverse: bursty delivery must not inflate the rate
        if self._last_out_t is not None:
            dt = now - self._last_out_t
            self._mean_dt = dt if self._mean_dt == 0 else self._mean_dt + 0.02 * (dt - self._mean_dt)
            if self._mean_dt > 0:
                self.status.rate = 1.0 / self._mean_dt
        self._last_out_t = now

    def _publish_audio(self, sink: Any) -> None:
        covered = self.clock()  # the sink's timeline is filled up to this time
        clocked = bool(getattr(sink, "clocked", False))
        flushed = False
        while not self._stop.is_set():
            self._watchdog()
            with self._out_cv:
                if not self._outbox:
                    self._out_cv.wait(min(self.deadline, self.period))
                item = self._outbox.popleft() if self._outbox else None
            now = self.clock()
            if self._closing:
                break
            if item is not None and item[1] == self._epoch and not self._paused:
                block = item[0]
                self._write(sink, block)
                self.status.published += 1
                self.status.state = "running"
                sink_lat = getattr(sink, "latency", 0.0) or 0.0
                self._smooth("latency_ms", (now - block.ts + sink_lat) * 1000)
                self._rate_tick(now)
                covered = max(covered, now) + len(block.samples) / block.rate
                flushed = False
                continue
            # nothing fresh: once the deadline has passed, the output is silence. A clocked sink
            # (a device) plays silence by itself when starved; others get silence blocks.
            gap = now - covered
            if self._paused and clocked and not flushed:
                getattr(sink, "flush", lambda: None)()  # close the curtain now, not after the buffer
                flushed = True
            if gap >= self.deadline or (self._paused and gap >= 0):
                n = int(math.floor(gap / self.period)) + 1
                if not clocked:
                    for _ in range(n):
                        self._write(sink, placeholder.silence(self.block, self.rate, now))
                self.status.placeholders += n
                covered += n * self.period
                self.status.state = "paused" if self._paused else (
                    "starting" if self.status.published == 0 else "stalled")
        # shutdown: the device drains into silence


def _quiet_close(obj: Any) -> None:
    if obj is None:
        return
    _try(getattr(obj, "close", lambda: None))


def _try(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception as err:  # closing must never raise into the engine
        log.debug("ignored error on close: %s", err)
