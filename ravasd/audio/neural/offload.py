"""Live neural voices compute off the audio thread: a frame voice's bursts never stall the stream.

A Mimi-VC voice does most of its work when an 80 ms frame completes; done in the audio runner's thread,
that burst would hold up every 5 ms block behind it. :class:`Offloaded` hands blocks to a worker thread
and answers each ``process`` at once from output computed ahead, behind a ``margin``:

* the worker answers a block first and computes ahead after (``prepare`` of a pull voice, see
  :class:`~ravasd.audio.voices.base.InnerRateVoice`), one stage at a time and only while no block
  waits, so a frame's burst only has to be done by the time the *next* blocks' output is played;
* the margin tracks reality: every block's wait (arrival → its output ready) is measured, and the margin
  follows the longest of the last ``window_s`` seconds plus ``headroom_s`` (never below ``floor_s``, never
  above ``ceiling``). It changes only inside silence — a silent answer is lengthened with zeros (grow)
  or silent queued output is skipped (shrink) — so no sound is cut or stretched by it;
* latency is ``inner.latency + margin`` at any moment — what A/V sync delays video by;
* when a block's output is later than the margin (a busy machine), the missing samples are **silence**,
  and as many samples are dropped when the late audio arrives: the timeline never shifts, latency never
  creeps past the ceiling, and nothing unconverted is ever played (``late_samples`` counts it);
* an exception in the worker is raised by the next ``process`` (the runner fails closed and rebuilds
  the voice); a worker stuck longer than ``stall_s`` raises too, so the hang watchdog's promise holds.

Offline runs (``anonymize``, eval) use the inner voice directly: exact and deterministic.
"""

from __future__ import annotations

import collections
import threading
import time

import numpy as np

from ...engine.frames import AnonAudio, RawAudio


class VoiceStalled(RuntimeError):
    pass


class Offloaded:
    """Wraps a streaming voice (``process_samples(x) → len(x)`` samples, ``latency``, ``reset``, and
    optionally ``prepare()``). ``margin`` (samples) is the starting margin; ``adapt`` lets it follow the
    measured waits (see the module's doc)."""

    def __init__(
        self,
        inner,
        rate: int,
        margin: int,
        stall_s: float = 2.0,
        adapt: bool = True,
        floor_s: float = 0.004,
        headroom_s: float = 0.003,
        window_s: float = 10.0,
        ceiling: int | None = None,
        settle_s: float = 1.0,
    ) -> None:
        self.inner, self.rate, self.margin, self.stall_s = inner, rate, int(margin), stall_s
        self.adapt, self.window_s, self.settle_s = adapt, window_s, settle_s
        self.floor, self.headroom = int(floor_s * rate), int(headroom_s * rate)
        self.ceiling = int(ceiling) if ceiling is not None else max(2 * self.margin, int(0.1 * rate))
        self.late_samples = 0
        self.busy_s = 0.0  # the worker's CPU time (what the voice really costs)
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="voice-worker", daemon=True)
        self._reset_buffers()
        self._thread.start()

    @property
    def latency(self) -> int:
        return int(getattr(self.inner, "latency", 0)) + self.margin

    @property
    def wait_ms(self) -> float:
        """The longest wait for a block's output in the recent window (ms): what the margin covers."""
        with self._cv:
            return max((w for _, w in self._waits), default=0.0) * 1000

    def _reset_buffers(self) -> None:
        self._todo: collections.deque[tuple[np.ndarray, float]] = collections.deque()
        self._done: collections.deque[np.ndarray] = collections.deque([np.zeros(self.margin, np.float32)])
        self._have = self.margin
        self._owed = 0  # samples answered with silence that the worker will still deliver
        self._error: BaseException | None = None
        self._busy_since: float | None = None
        self._waits: collections.deque[tuple[float, float]] = collections.deque()  # (when, seconds)
        self._since: float | None = None  # the first block's arrival (waits count from settle_s after it)

    def _work(self) -> None:
        prepare = getattr(self.inner, "prepare", None)
        while True:
            with self._cv:
                while not self._todo and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                x, arrived = self._todo.popleft()
                self._busy_since = time.monotonic()
            try:
                t0 = time.thread_time()
                y = np.asarray(self.inner.process_samples(x), np.float32)
                self.busy_s += time.thread_time() - t0
                self._deliver(y, arrived)
                # the caller has its answer; compute ahead until another block waits (answering it
                # first does only the work it needs, so a block never waits behind work for later)
                if prepare is not None and not self._todo:
                    t0 = time.thread_time()
                    prepare(lambda: bool(self._todo))
                    self.busy_s += time.thread_time() - t0
            except BaseException as err:  # handed to the caller's thread
                with self._cv:
                    self._error, self._busy_since = err, None
                    self._cv.notify_all()
                continue
            with self._cv:
                self._busy_since = None
                self._cv.notify_all()

    def _deliver(self, y: np.ndarray, arrived: float) -> None:
        with self._cv:
            now = time.monotonic()
            self._record(now, now - arrived)
            drop = min(self._owed, len(y))  # these instants were already answered with silence
            self._owed -= drop
            if drop < len(y):
                self._done.append(y[drop:])
                self._have += len(y) - drop

    def _record(self, now: float, wait: float) -> None:
        """One block's wait (s) into the window; the first ``settle_s`` (the start-up backlog, cold
        first calls) do not count. Holds the lock."""
        if self._since is None:
            self._since = now
        if now - self._since > self.settle_s:
            self._waits.append((now, wait))
        while self._waits and self._waits[0][0] < now - self.window_s:
            self._waits.popleft()

    def _target(self) -> int:
        """The margin the recent waits ask for (samples); the current one when there is no data."""
        if not self._waits:
            return self.margin
        need = int(max(w for _, w in self._waits) * self.rate) + self.headroom
        return min(self.ceiling, max(self.floor, need))

    def process_samples(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        with self._cv:
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            if self._busy_since is not None and time.monotonic() - self._busy_since > self.stall_s:
                raise VoiceStalled(f"the voice's worker has been busy for more than {self.stall_s:.1f} s")
            self._todo.append((np.asarray(x, np.float32).copy(), time.monotonic()))
            self._cv.notify()
            out = self._take(n)
            if take_short := n - len(out):  # late: silence now, the same span dropped when it arrives
                self._owed += take_short
                self.late_samples += take_short
                # a late block's wait is at least the margin it overran: the margin grows to cover it
                self._record(time.monotonic(), (self.margin + take_short) / self.rate)
                out = np.concatenate([out, np.zeros(take_short, np.float32)])
            if self.adapt and not out.any():
                self._adjust(out)
        return out

    def _take(self, n: int) -> np.ndarray:
        take = min(n, self._have)
        parts, got = [], 0
        while got < take:
            head = self._done[0]
            k = min(len(head), take - got)
            parts.append(head[:k])
            if k == len(head):
                self._done.popleft()
            else:
                self._done[0] = head[k:]
            got += k
        self._have -= take
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _adjust(self, answer: np.ndarray) -> None:
        """Inside silence (``answer`` is all zeros): move the margin towards the target. Growing puts
        zeros back in front of the queue (the answer stays silent, what follows plays later); shrinking
        skips queued output that is itself silent, at most one answer's length per call."""
        gap = self._target() - self.margin
        if gap > 0:
            g = min(gap, len(answer))
            self._done.appendleft(np.zeros(g, np.float32))
            self._have += g
            self.margin += g
        elif gap < -self.headroom // 2:  # hysteresis: no back and forth over jitter
            limit, d = min(-gap, len(answer)), 0
            while self._done and d < limit:
                head = self._done[0]
                loud = np.flatnonzero(head[: limit - d])
                k = int(loud[0]) if len(loud) else min(len(head), limit - d)
                if k == len(head):
                    self._done.popleft()
                else:
                    self._done[0] = head[k:]
                d += k
                if len(loud):  # sound ahead: stop before it
                    break
            self._have -= d
            self.margin -= d

    def process(self, block: RawAudio) -> AnonAudio:
        return AnonAudio(self.process_samples(block.samples), block.rate, block.ts)

    def fit_blocks(self, block: int) -> None:
        """Forwarded to the inner voice (see ``InnerRateVoice.fit_blocks``); resets the stream."""
        if hasattr(self.inner, "fit_blocks"):
            with self._cv:
                self._todo.clear()
                self._cv.wait_for(lambda: self._busy_since is None, timeout=self.stall_s)
                self.inner.fit_blocks(block)
                self._reset_buffers()

    def reset(self) -> None:
        """Forget the stream (device change): waits for the worker's current block first."""
        with self._cv:
            self._todo.clear()
            self._cv.wait_for(lambda: self._busy_since is None, timeout=self.stall_s)
            self.inner.reset()
            self._reset_buffers()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=1.0)
        self.inner.close()


def measure_margin(
    voice, rate: int, frame: int, block: int | None = None, cold: int = 2, runs: int = 6, floor_s: float = 0.015
) -> int:
    """A starting margin for ``voice`` in stream samples (the live margin then follows the measured
    waits): ``frame`` samples of silence are fed ``cold + runs`` times in blocks of ``block`` (one call
    per frame when None), each call followed by the voice's ``prepare`` as the worker does; the slowest
    call of the warm frames × 1.2 + 4 ms (scheduling), at least ``floor_s``. The first ``cold`` frames
    (onnxruntime allocating its buffers, measured 1.7× slower here) are not counted. Resets the voice."""
    block = block or frame
    x = np.zeros(block, np.float32)
    prepare = getattr(voice, "prepare", lambda: None)
    worst = 0.0
    for i in range(cold + runs):
        for _ in range(max(1, frame // block)):
            t0 = time.perf_counter()
            voice.process_samples(x)
            prepare()
            if i >= cold:
                worst = max(worst, time.perf_counter() - t0)
    voice.reset()
    return int(round(max(floor_s, 1.2 * worst + 0.004) * rate))
