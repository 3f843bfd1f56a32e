"""The fail-closed stream runner: source → converter → sink for one stream, in threads.

One :class:`StreamRunner` runs inside each stream's worker process (see ``supervisor``). Its core
is the same for both streams and owns three threads:

* **capture** reads the source into a bounded inbox (drop oldest; counted). A source that raises
  is closed and reopened with back-off (device unplugged → output continues as placeholder).
* **convert** runs the converter. Converter instances are made in this thread (slow model loads
  never block the output). An exception → the instance is discarded and a fresh one made
  (``restarts``). Output made while paused, or by an abandoned instance, is discarded.
* **publish** owns the sink and runs the stream's :class:`Publisher`, which sets the cadence:
  :class:`VideoPublisher` writes one frame every ``period`` — the newest anonymized frame whose
  capture time + ``delay`` has passed and that is not older than ``deadline``, else the placeholder
  card; :class:`AudioPublisher` writes each converted block as soon as it is ready and, when none
  arrived within ``deadline``, silence for the elapsed time. The publish thread also runs the
  watchdog: a converter busy for ``hang_timeout`` is abandoned and replaced.

The sink therefore never sees a raw item (types are checked) and never stops: errors, hangs,
pause, start-up and shutdown all publish placeholders. The runner is the one owner of "paused"
inside a worker; the status only reports it.
"""

from __future__ import annotations

import collections
import logging
import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import placeholder
from .frames import AnonAudio, AnonFrame
from .guard import ConverterFailed, ConverterGuard, quiet
from .stage import (
    AudioConverter,
    AudioSink,
    AudioSource,
    Calibrating,
    ClockedSink,
    Delaying,
    DeviceCounters,
    FaceAware,
    FailingSink,
    LoadShedding,
    OffloadedVoice,
    SlowClosingSink,
    StagedVoice,
    StallCounter,
    VideoConverter,
    VideoSink,
    VideoSource,
    find_trait,
)

log = logging.getLogger(__name__)


@dataclass
class StreamStatus:
    """Counters a runner exposes; read by the supervisor (plain values, so they pickle)."""

    kind: str
    state: str = "starting"  # starting | running | paused | stalled | no-signal | error | stopped
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


class Tap(Protocol):
    """Sees every item the sink got (anonymized only), in the publish thread; e.g. the voice level
    for the avatar's mouth. ``close()`` at shutdown."""

    def write(self, item: Any) -> None: ...

    def close(self) -> None: ...


class Publisher(Protocol):
    """The per-stream publish strategy, run in the publish thread by :meth:`StreamRunner._publish_loop`.

    ``item_type``: the only type the converter may return. ``newest_only``: the converter gets the
    newest input only (older ones are stale). ``outbox_limit``: converted items kept waiting, or None.
    """

    kind: str
    item_type: type
    period: float  # output cadence (video) or block duration (audio), s
    delay: float  # shown this long after capture (A/V sync; video only)
    newest_only: bool

    def outbox_limit(self, deadline: float) -> int | None: ...

    def run(self, core: StreamRunner, sink: Any) -> None:
        """Publish until the core stops; every write goes through ``core.write``."""

    def finish(self, core: StreamRunner, sink: Any) -> None:
        """The last thing the sink gets before it closes (never a converted or raw item)."""


class StreamRunner:
    """Run one stream; see the module docstring for the thread model.

    ``source``/``converter``/``sink`` are factories (called in the thread that uses the object).
    ``publisher`` decides the output cadence and placeholders (:class:`VideoPublisher`,
    :class:`AudioPublisher`); ``deadline`` (s): older converted output is not shown; ``hang_timeout``
    (s): a converter busy longer is replaced; ``max_backlog``: raw items waiting for the converter;
    ``on_eof``: called once when a finite source is exhausted and its output published.
    """

    def __init__(
        self,
        *,
        source: Callable[[], VideoSource | AudioSource],
        converter: Callable[[], VideoConverter | AudioConverter],
        sink: Callable[[], VideoSink | AudioSink],
        publisher: Publisher,
        deadline: float,
        hang_timeout: float = 2.0,
        max_backlog: int = 2,
        clock: Callable[[], float] = time.monotonic,
        on_eof: Callable[[], None] | None = None,
        tap: Tap | None = None,
    ) -> None:
        self.publisher = publisher
        self.kind = publisher.kind
        self.period = publisher.period
        self.deadline = deadline
        self.hang_timeout = hang_timeout
        self.clock = clock
        self.status = StreamStatus(self.kind)
        self.eof = threading.Event()
        self._source_factory = source
        self._converter_factory = converter
        self._sink_factory = sink
        self._on_eof = on_eof
        self._tap = tap
        self._max_backlog = max_backlog
        self._inbox: collections.deque = collections.deque()
        self._outbox: collections.deque = collections.deque()
        self._cv = threading.Condition()  # guards the inbox and the convert thread's requests
        self._out_cv = threading.Condition()  # guards the outbox
        self._stop = threading.Event()
        self._closing = False
        self._paused = False
        self._epoch = 0  # bumped on pause/resume/converter swap: older outputs are discarded
        self._gen = 0  # convert-thread generation; a hung thread's late output is discarded
        self._busy_since: float | None = None
        self._last_watch: float | None = None
        self._reset_pending = False
        self._swap_pending = False
        self._calibrate_pending = False
        self._source_done = False
        self._build_failures = 0
        self._source: Any = None
        self._converter: Any = None
        self._sink: Any = None
        self._preview: Any = None
        self._sample: Any = None  # an AudioSample being recorded ("Test my voice")
        self._threads: list[threading.Thread] = []
        self._last_out_t: float | None = None
        self._mean_dt = 0.0

    # ------------------------------------------------------------------ control (any thread)
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def closing(self) -> bool:
        return self._closing

    def start(self) -> StreamRunner:
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

    def set_delay(self, seconds: float) -> None:
        """A/V sync: video frames are shown ``seconds`` after capture (audio is never delayed)."""
        if isinstance(self.publisher, VideoPublisher):
            self.publisher.delay = seconds

    def swap_converter(self, factory: Callable[[], VideoConverter | AudioConverter]) -> None:
        """Use a new converter (voice/avatar changed live). Output of the old one is discarded."""
        with self._cv:
            self._converter_factory = factory
            self._epoch += 1
            self._swap_pending = True

    def calibrate(self) -> None:
        """Ask the converter (a :class:`Calibrating` one) to calibrate, in the convert thread."""
        with self._cv:
            self._calibrate_pending = True

    def set_preview(self, factory: Callable[[], VideoSink] | None) -> None:
        """Mirror what the sink gets into a second sink (the preview window), or stop mirroring."""
        old, self._preview = self._preview, None
        _quiet_close(old)
        if factory is not None:
            try:
                self._preview = factory()
            except Exception as err:
                self._error(f"preview: {err}")

    def record_output(self, path: str, seconds: float) -> None:
        """Write the next ``seconds`` of what the sink gets to the WAV ``path`` (audio only)."""
        from .snapshot import AudioSample

        self._sample = AudioSample(path, seconds)

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
        slow = isinstance(self._sink, SlowClosingSink) and self._sink.slow_close
        for t in self._threads:
            # a file sink must finish writing its file (encoder flush) or the recording is lost
            extra = 20.0 if t.name.endswith("publish") and slow else 0.0
            t.join(max(0.05, deadline + extra - time.monotonic()))
        self.status.state = "stopped"

    @property
    def converter_ready(self) -> bool:
        """Whether a converter has been built (a neural voice loads for a second or two)."""
        return self._converter is not None

    @property
    def converter_latency(self) -> int | None:
        """The current converter's reported latency (stream samples), None before it is built."""
        return self._converter.latency if isinstance(self._converter, Delaying) else None

    def snapshot(self) -> dict[str, Any]:
        """Status as a plain dict, with device xrun counters folded in (any thread)."""
        src = self._source if isinstance(self._source, DeviceCounters) else None
        sink = self._sink if isinstance(self._sink, DeviceCounters) else None
        self.status.xruns = (src.xruns if src else 0) + (sink.xruns if sink else 0)
        d = self.status.as_dict()
        # what the devices' own bounded buffers dropped (latency bound) counts as dropped too
        d["device_dropped"] = {"source": src.dropped if src else 0, "sink": sink.dropped if sink else 0}
        d["dropped"] += sum(d["device_dropped"].values())
        if isinstance(self._sink, StallCounter):  # an output device that stopped asking for data
            d["device_stalls"] = {"count": self._sink.stalls, "longest_ms": round(self._sink.longest_stall_ms, 1)}
        conv = self._converter
        if isinstance(conv, FaceAware):
            d["face"] = bool(conv.face_visible)  # the tray shows "no face"
        if isinstance(conv, LoadShedding):  # below video.render_scale = giving way to audio
            d["render_scale"] = round(float(conv.render_scale), 2)
            d["top_scale"] = round(float(conv.top_scale), 2)
        live = find_trait(conv, OffloadedVoice)  # through a resampler to the voice
        if live is not None:  # a neural voice on its own thread: how much it was late (played as silence)
            d["voice_late_ms"] = round(live.late_samples / live.rate * 1000, 1)
            d["voice_margin_ms"] = round(live.margin / live.rate * 1000, 1)
            d["voice_wait_ms"] = round(live.wait_ms, 1)
        staged = find_trait(conv, StagedVoice)
        if staged is not None and (paths := list(staged.path_ms)):  # median of recent frames, per part
            d["voice_path_ms"] = {k: round(statistics.median(p[k] for p in paths), 1) for k in paths[-1]}
        d["recording_error"] = str(self._sink.failed or "") if isinstance(self._sink, FailingSink) else ""
        return d

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a finite source is exhausted and its output published."""
        return self.eof.wait(timeout)

    # ------------------------------------------------------------------ what publishers call
    def stopped(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the runner stops."""
        self._stop.wait(seconds)

    def current_epoch(self, epoch: int) -> bool:
        """Whether output tagged ``epoch`` may still be shown (no pause/swap/hang since)."""
        return epoch == self._epoch

    def take_due(self, until: float) -> tuple[Any, int] | None:
        """Pop converted items due by ``until`` (their ``ts`` + ``delay``), return the newest one."""
        got = None
        delay = self.publisher.delay
        with self._out_cv:
            while self._outbox and self._outbox[0][0].ts + delay <= until:
                got = self._outbox.popleft()
        return got

    def take_next(self, wait: float) -> tuple[Any, int] | None:
        """The oldest converted item, waiting up to ``wait`` s for one."""
        with self._out_cv:
            if not self._outbox:
                self._out_cv.wait(wait)
            return self._outbox.popleft() if self._outbox else None

    def write(self, sink: Any, item: Any) -> None:
        """Write to the sink (a ``TypeError`` — a raw item — propagates), then to the tap and preview."""
        try:
            sink.write(item)
        except TypeError:
            raise
        except Exception as err:
            self.status.sink_errors += 1
            self._error(f"sink: {err}")
        if self._tap is not None:
            self._tap.write(item)
        sample = self._sample
        if sample is not None:
            try:
                if sample.write(item):
                    self._sample = None
            except Exception as err:
                self._sample = None
                self._error(f"voice sample: {err}")
        preview = self._preview
        if preview is not None:
            try:
                preview.write(item)
            except Exception as err:
                self._error(f"preview: {err}")
                self.set_preview(None)

    def published(self, now: float, item: Any, sink_latency: float = 0.0) -> None:
        """Count one anonymized item written at ``now``: state, latency and rate. Audio latency
        includes the voice's algorithmic latency (its look-ahead: a block's samples are the voice's
        answer to input that much older than the block) — what video must be delayed by for sync."""
        self.status.published += 1
        self.status.state = "running"
        algorithmic = 0.0
        if isinstance(item, AnonAudio) and not item.placeholder and isinstance(self._converter, Delaying):
            algorithmic = self._converter.latency / item.rate
        self._smooth("latency_ms", (now - item.ts + sink_latency + algorithmic) * 1000)
        # average the interval, not its inverse: bursty delivery must not inflate the rate
        if self._last_out_t is not None:
            dt = now - self._last_out_t
            self._mean_dt = dt if self._mean_dt == 0 else self._mean_dt + 0.02 * (dt - self._mean_dt)
            if self._mean_dt > 0:
                self.status.rate = 1.0 / self._mean_dt
        self._last_out_t = now

    def watchdog(self) -> None:
        """Replace a converter that has been busy for longer than ``hang_timeout`` (publish thread).

        The publish thread calls this every period; a gap of half the timeout between calls means
        the whole process was suspended (SIGSTOP, a laptop lid): the converter did not hang, so its
        busy time restarts from now instead of being blamed for the pause."""
        now = self.clock()
        last, self._last_watch = self._last_watch, now
        busy = self._busy_since
        if busy is not None and last is not None and now - last > self.hang_timeout / 2:
            self._busy_since = busy = now
        if busy is not None and now - busy > self.hang_timeout:
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

    def _take(self) -> tuple[Any, int] | None:
        with self._cv:
            while not self._inbox and not self._stop.is_set():
                if self._source_done:
                    return None
                self._cv.wait(0.1)
            if self._stop.is_set():
                return None
            if self.publisher.newest_only:  # newest frame wins; older ones are stale
                while len(self._inbox) > 1:
                    self._inbox.popleft()
                    self.status.dropped += 1
            return self._inbox.popleft(), self._epoch

    def _convert_loop(self, gen: int) -> None:
        guard = ConverterGuard(self._converter_factory, self.publisher.item_type)
        limit = self.publisher.outbox_limit(self.deadline)
        while not self._stop.is_set() and gen == self._gen:
            got = self._take()
            if got is None:
                if self._source_done and not self._stop.is_set():
                    self._finish_eof()
                break
            item, epoch = got
            with self._cv:
                if self._swap_pending:
                    guard.replace(self._converter_factory)
                elif self._reset_pending:
                    guard.reset()
                self._swap_pending = self._reset_pending = False
                calibrate, self._calibrate_pending = self._calibrate_pending, False
            if calibrate:  # asked for over the control channel
                target = find_trait(guard.instance, Calibrating)
                if target is None:
                    self._error("the current converter cannot calibrate")
                else:
                    quiet(target.calibrate)
            try:
                if guard.instance is None:
                    try:
                        self._converter = guard.build()  # outside the hang watch: model loads take time
                    except Exception as err:
                        # a converter that cannot even be built (missing model…): back off, fail closed
                        self._build_failures += 1
                        self._stop.wait(min(5.0, 0.25 * 2 ** min(self._build_failures, 5)))
                        raise ConverterFailed(f"{type(err).__name__}: {err}", building=True) from err
                    self._build_failures = 0
                self._busy_since = self.clock()
                out = guard.process(item)
            except ConverterFailed as err:
                self._busy_since = None
                if gen != self._gen or self._stop.is_set():
                    break
                self.status.restarts += 1
                self._error(f"converter: {err}")
                self._stop.wait(0.05)
                continue
            self._busy_since = None
            if gen != self._gen or self._stop.is_set():
                break  # abandoned after a hang: the late result is never published
            with self._out_cv:
                if epoch != self._epoch or self._paused or self._closing:
                    continue
                self._outbox.append((out, epoch))
                while limit is not None and len(self._outbox) > limit:
                    self._outbox.popleft()
                    self.status.dropped += 1
                self._out_cv.notify_all()
        if gen == self._gen:
            guard.close()

    def _finish_eof(self) -> None:
        # let the publisher drain what was converted, then signal the end
        t_end = time.monotonic() + max(1.0, self.deadline * 2 + self.publisher.delay)
        while self._outbox and time.monotonic() < t_end and not self._stop.is_set():
            time.sleep(self.period / 2)
        self.eof.set()
        if self._on_eof:
            self._on_eof()

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
            self.publisher.run(self, sink)
        finally:
            try:  # the last thing a device shows is the card, never a converted (or raw) frame
                self.publisher.finish(self, sink)
            except Exception:
                pass
            _quiet_close(sink)
            _quiet_close(self._tap)

    def _smooth(self, name: str, value: float, a: float = 0.1) -> None:
        old = getattr(self.status, name)
        setattr(self.status, name, value if old == 0 else old + a * (value - old))


class VideoPublisher:
    """Video: a frame every ``period`` s — the newest converted one that is due (capture time +
    ``delay``) and fresh (within ``deadline``), else the placeholder card (``width`` × ``height``)."""

    kind = "video"
    item_type = AnonFrame
    newest_only = True

    def __init__(self, period: float, width: int, height: int) -> None:
        self.period = period
        self.width, self.height = width, height
        self.delay = 0.0  # A/V sync (s), set by the supervisor through StreamRunner.set_delay

    def outbox_limit(self, deadline: float) -> int | None:
        return None  # the delay line keeps what it needs; take_due() drains it every period

    def run(self, core: StreamRunner, sink: Any) -> None:
        current: tuple[AnonFrame, int] | None = None
        st = core.status
        next_t = core.clock()
        while not core.stopped():
            now = core.clock()
            if next_t > now:
                core.sleep(next_t - now)
                now = core.clock()
            next_t = next_t + self.period if now - next_t < self.period else now + self.period
            core.watchdog()
            current = core.take_due(now) or current
            if core.closing:
                break
            if core.paused:
                frame, st.state = placeholder.card(self.width, self.height, "paused", now), "paused"
            elif (
                current is not None
                and core.current_epoch(current[1])
                and now - current[0].ts - self.delay <= core.deadline
            ):
                frame = current[0]
            else:
                state = "starting" if st.published == 0 else "no-signal"
                frame = placeholder.card(self.width, self.height, state, now)
                if st.published and st.state == "running":
                    st.state = "stalled"
            core.write(sink, frame)
            if frame.placeholder:
                st.placeholders += 1
            else:
                core.published(now, frame)

    def finish(self, core: StreamRunner, sink: Any) -> None:
        sink.write(placeholder.card(self.width, self.height, "stopped", core.clock()))


class AudioPublisher:
    """Audio: each converted block as soon as it is ready; after ``deadline`` without one, silence
    for the elapsed time (a clocked device sink plays silence by itself and is flushed on pause).
    ``period`` is the block duration; ``rate``/``block`` size the silence."""

    kind = "audio"
    item_type = AnonAudio
    newest_only = False
    delay = 0.0  # audio is never delayed: video waits for it

    def __init__(self, period: float, rate: int, block: int) -> None:
        self.period = period
        self.rate, self.block = rate, block

    def outbox_limit(self, deadline: float) -> int | None:
        return max(1, int(deadline * 4 / self.period))  # latency cannot creep

    def run(self, core: StreamRunner, sink: Any) -> None:
        st = core.status
        covered = core.clock()  # the sink's timeline is filled up to this time
        clocked = sink if isinstance(sink, ClockedSink) and sink.clocked else None
        flushed = False
        while not core.stopped():
            core.watchdog()
            item = core.take_next(min(core.deadline, self.period))
            now = core.clock()
            if core.closing:
                break
            if item is not None and core.current_epoch(item[1]) and not core.paused:
                block = item[0]
                core.write(sink, block)
                core.published(now, block, clocked.latency if clocked else 0.0)
                covered = max(covered, now) + len(block.samples) / block.rate
                flushed = False
                continue
            # nothing fresh: once the deadline has passed, the output is silence
            gap = now - covered
            if core.paused and clocked and not flushed:
                clocked.flush()  # close the curtain now, not after the buffer
                flushed = True
            if gap >= core.deadline or (core.paused and gap >= 0):
                n = int(math.floor(gap / self.period)) + 1
                if not clocked:
                    for _ in range(n):
                        core.write(sink, placeholder.silence(self.block, self.rate, now))
                st.placeholders += n
                covered += n * self.period
                st.state = "paused" if core.paused else ("starting" if st.published == 0 else "stalled")

    def finish(self, core: StreamRunner, sink: Any) -> None:
        pass  # the device drains into silence


def _quiet_close(obj: Any) -> None:
    if obj is not None:
        quiet(obj.close)
