"""Live neural voices compute off the audio thread: a frame voice's bursts never stall the stream.

A Mimi-VC voice does all its work when an 80 ms frame completes (~25–45 ms on one core here); done in
the audio runner's thread, that burst holds up every 5 ms block behind it. :class:`Offloaded` hands
blocks to a worker thread and answers each ``process`` at once from output computed ahead, behind a
fixed ``margin`` (the compute budget, measured when the voice is built). So:

* latency is fixed: ``inner.latency + margin`` — what A/V sync delays video by;
* when a frame is later than the margin (a busy machine), the missing samples are **silence**, and
  as many samples are dropped when the late audio arrives: the timeline never shifts, latency never
  creeps, and nothing unconverted is ever played (``late_samples`` counts it);
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
    """Wraps a streaming voice (``process_samples(x) → len(x)`` samples, ``latency``, ``reset``)."""

    def __init__(self, inner, rate: int, margin: int, stall_s: float = 2.0) -> None:
        self.inner, self.rate, self.margin, self.stall_s = inner, rate, int(margin), stall_s
        self.latency = int(getattr(inner, "latency", 0)) + self.margin
        self.late_samples = 0
        self.busy_s = 0.0  # the worker's CPU time (what the voice really costs)
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="voice-worker", daemon=True)
        self._reset_buffers()
        self._thread.start()

    def _reset_buffers(self) -> None:
        self._todo: collections.deque[np.ndarray] = collections.deque()
        self._done: collections.deque[np.ndarray] = collections.deque([np.zeros(self.margin, np.float32)])
        self._have = self.margin
        self._owed = 0  # samples answered with silence that the worker will still deliver
        self._error: BaseException | None = None
        self._busy_since: float | None = None

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._todo and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                x = self._todo.popleft()
                self._busy_since = time.monotonic()
            try:
                t0 = time.thread_time()
                y = np.asarray(self.inner.process_samples(x), np.float32)
                self.busy_s += time.thread_time() - t0
            except BaseException as err:  # handed to the caller's thread
                with self._cv:
                    self._error, self._busy_since = err, None
                    self._cv.notify_all()
                continue
            with self._cv:
                self._busy_since = None
                self._cv.notify_all()
                drop = min(self._owed, len(y))  # these instants were already answered with silence
                self._owed -= drop
                if drop < len(y):
                    self._done.append(y[drop:])
                    self._have += len(y) - drop

    def process_samples(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        with self._cv:
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            if self._busy_since is not None and time.monotonic() - self._busy_since > self.stall_s:
                raise VoiceStalled(f"the voice's worker has been busy for more than {self.stall_s:.1f} s")
            self._todo.append(np.asarray(x, np.float32).copy())
            self._cv.notify()
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
            if take < n:  # late: silence now, the same span dropped when it arrives
                self._owed += n - take
                self.late_samples += n - take
                parts.append(np.zeros(n - take, np.float32))
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def process(self, block: RawAudio) -> AnonAudio:
        return AnonAudio(self.process_samples(block.samples), block.rate, block.ts)

    def fit_blocks(self, block: int) -> None:
        """Forwarded to the inner voice (see ``InnerRateVoice.fit_blocks``); resets the stream."""
        if hasattr(self.inner, "fit_blocks"):
            with self._cv:
                self._todo.clear()
                self._cv.wait_for(lambda: self._busy_since is None, timeout=self.stall_s)
                self.inner.fit_blocks(block)
                self.latency = int(getattr(self.inner, "latency", 0)) + self.margin
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


def measure_margin(voice, rate: int, frame: int, cold: int = 2, runs: int = 6, floor_s: float = 0.015) -> int:
    """The compute budget for ``voice`` in stream samples: the slowest of ``runs`` warm frames × 1.2
    + 4 ms (scheduling), at least ``floor_s``. The first ``cold`` frames (onnxruntime allocating its
    buffers, measured 1.7× slower here) are run but not counted. Resets the voice."""
    x = np.zeros(frame, np.float32)
    worst = 0.0
    for i in range(cold + runs):
        t0 = time.perf_counter()
        voice.process_samples(x)
        if i >= cold:
            worst = max(worst, time.perf_counter() - t0)
    voice.reset()
    return int(round(max(floor_s, 1.2 * worst + 0.004) * rate))
