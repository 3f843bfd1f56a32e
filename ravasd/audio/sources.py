"""Audio sources. Each returns :class:`RawAudio` blocks of ``block`` mono float32 samples at
``rate`` Hz, timestamped on the monotonic clock; ``read()`` blocks until the next block."""

from __future__ import annotations

import os
import queue
import sys
import threading
from pathlib import Path

import numpy as np
from scipy import signal

from ..devices import pulse
from ..devices.listing import input_exists
from ..devices.portaudio import mono_stream
from ..engine.frames import RawAudio, now
from ..engine.pacing import Pacer
from ..errors import DeviceError
from ..media.reader import iter_media, probe


class MicSource:
    """A microphone through sounddevice (PortAudio). ``device``: name, index, or None (default).

    The PortAudio callback only copies into a bounded queue (real-time rule: no allocation
    beyond the copy, no locks held long). Overflows and dropped blocks are counted.
    """

    def __init__(
        self,
        device: int | str | None,
        rate: int,
        block: int,
        timeout: float = 1.0,
        label: str | None = None,
        guard=None,
        events=None,
    ) -> None:
        import sounddevice as sd  # PortAudio is a system library: only live devices need it

        self.rate, self.block, self.timeout = rate, block, timeout
        # ``guard()`` → True when the stream no longer reads the chosen device; it runs in its own
        # thread (it may call pactl), so read() never waits for it: at once when ``events.poke`` is
        # set (a sound-server event), else once a second
        self._moved = threading.Event()
        self._closed = threading.Event()
        self._close_lock = threading.Lock()
        self._events = events
        if guard is not None:
            poke = events.poke if events is not None else threading.Event()

            def watch() -> None:
                while not self._closed.is_set():
                    poke.wait(1.0)
                    poke.clear()
                    try:
                        if not self._closed.is_set() and guard():
                            self._moved.set()
                            try:
                                self._q.put_nowait(None)  # wake read() now: it closes the stream
                            except queue.Full:
                                pass
                            return
                    except Exception:
                        pass
                    self._closed.wait(0.05)  # a burst of events costs one check per 50 ms at most

            threading.Thread(target=watch, name="mic-guard", daemon=True).start()
        self.device = label if label is not None else device
        self.overflows = 0
        self.dropped = 0
        self._q: queue.Queue = queue.Queue(maxsize=max(4, int(0.5 * rate / block)))
        try:
            self.stream = mono_stream("input", device, rate, block, self._callback)
        except (sd.PortAudioError, ValueError) as err:
            self._closed.set()
            if events is not None:
                events.poke.set()
                events.close()
            raise DeviceError(
                f"Microphone {'(default)' if self.device is None else repr(self.device)} cannot be opened: {err}.",
                "pick another with audio.input_device (see `ravasd devices`), or set audio.source: demo.",
            ) from None

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio thread
        if self._moved.is_set():
            return  # the stream reads another input now: nothing of it is kept
        if status.input_overflow:
            self.overflows += 1
        item = RawAudio(indata[:, 0].copy(), self.rate, now() - frames / self.rate)
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    @property
    def xruns(self) -> int:
        """Input overflows (the DeviceCounters trait)."""
        return self.overflows

    def read(self) -> RawAudio:
        """Next block. A stream that stopped (device gone) raises at once; one that is merely
        quiet (virtual sources deliver nothing while idle) raises after ``5 × timeout`` so the
        runner reopens it."""
        for _ in range(5):
            if self._moved.is_set():
                self._drain()
                raise DeviceError(
                    f"Microphone {self.device!r} is gone; the sound server moved the stream "
                    "to another input, which RAVAS does not record."
                )
            try:
                item = self._q.get(timeout=self.timeout)
                if item is not None:
                    return item
                continue  # the guard's wake-up: checked at the top
            except queue.Empty:
                if not self.stream.active:
                    break
        raise DeviceError(f"Microphone {self.device!r} delivered no audio (unplugged?).")

    def _drain(self) -> None:
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        """Idempotent, any thread. The runner's stop() and its capture thread may both close:
        two concurrent PortAudio abort/close calls on one stream deadlock, so only the first runs."""
        with self._close_lock:
            if self._closed.is_set():
                return
            self._closed.set()
            if self._events is not None:
                self._events.poke.set()  # the guard thread ends now
                self._events.close()
            try:
                self.stream.abort()
                self.stream.close()
            except Exception:
                pass


def open_mic(device: int | str | None, rate: int, block: int) -> MicSource:
    """Open a microphone by PortAudio name/index, or by PulseAudio source name/description.

    A PulseAudio source is pinned: the stream is watched, and if the server moves it to another
    input the source stops (silence until the chosen microphone is back)."""
    if isinstance(device, str) and sys.platform.startswith("linux") and pulse.server_info() is not None:
        name = pulse.find_source(device)
        if name is not None:
            pid = os.getpid()
            return MicSource(
                pulse.route("input", name),
                rate,
                block,
                label=device,
                guard=lambda: pulse.capture_moved(pid, name),
                events=pulse.ServerEvents(("source", "source-output")),
            )
        if device not in ("pulse", "default") and not input_exists(device):
            # never let the sound server fall back to another input (a monitor of the speakers, say):
            # a missing microphone means silence until it is back
            raise DeviceError(
                f"Microphone {device!r} is not there (unplugged?).",
                "plug it in again, or pick another with audio.input_device.",
            )
    return MicSource(device, rate, block)


def synth_speech(rate: int, seconds: float = 6.0, seed: int = 7) -> np.ndarray:
    """A speech-like test signal: a glottal pulse train with an intonation contour through
    vowel formants, in syllables and pauses. Deterministic; not any real person's voice."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 125 + 25 * np.sin(2 * np.pi * 0.4 * t) + 10 * np.sin(2 * np.pi * 2.3 * t)
    phase = np.cumsum(f0 / rate)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    glottal = signal.lfilter([1.0], [1.0, -0.95], pulses) + 0.02 * rng.standard_normal(n)
    vowels = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]
    out = np.zeros(n)
    syl = int(0.22 * rate)
    for k, start in enumerate(range(0, n, syl)):
        seg = glottal[start : start + syl]
        y = np.zeros_like(seg)
        for f, bw in zip(vowels[k % len(vowels)], (80, 100, 120)):
            r = np.exp(-np.pi * bw / rate)
            y += signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / rate), r * r], seg)
        env = np.sin(np.linspace(0, np.pi, len(seg))) ** 2
        if k % 7 == 6:  # a pause every few syllables
            env *= 0
        out[start : start + syl] = y * env
    out /= np.max(np.abs(out)) + 1e-9
    return (0.5 * out).astype(np.float32)


class DemoAudioSource:
    """Loops :func:`synth_speech` in real time, so the daemon runs without a microphone."""

    def __init__(self, rate: int, block: int) -> None:
        self.rate, self.block = rate, block
        self._clip = synth_speech(rate)
        self._pos = 0
        self._n = 0
        self._pacer = Pacer(block / rate)

    def read(self) -> RawAudio:
        ts = self._pacer.wait(self._n + 1) - self.block / self.rate  # a block exists once captured
        idx = (self._pos + np.arange(self.block)) % len(self._clip)
        self._pos = (self._pos + self.block) % len(self._clip)
        self._n += 1
        return RawAudio(self._clip[idx], self.rate, ts)

    def close(self) -> None:
        pass


class FileAudioSource:
    """Plays the audio stream of a media file in real time, in blocks (looping if ``loop``)."""

    def __init__(self, path: str | Path, rate: int, block: int, loop: bool = True) -> None:
        self.path = Path(path)
        if not probe(self.path).has_audio:
            raise DeviceError(
                f"Input file {self.path} has no audio stream.",
                "use a file with sound for files.input, or set audio.source: demo.",
            )
        self.rate, self.block, self.loop = rate, block, loop
        self._pacer = Pacer(block / rate)
        self._n = 0
        self._buf = np.zeros(0, np.float32)
        self._it = self._chunks()

    def _chunks(self):
        while True:
            for item in iter_media(self.path, self.rate, video=False):
                yield item.samples
            if not self.loop:
                return

    def read(self) -> RawAudio | None:
        while len(self._buf) < self.block:
            chunk = next(self._it, None)
            if chunk is None:
                if len(self._buf) == 0:
                    return None
                chunk = np.zeros(self.block - len(self._buf), np.float32)
            self._buf = np.concatenate([self._buf, chunk])
        samples, self._buf = self._buf[: self.block], self._buf[self.block :]
        ts = self._pacer.wait(self._n + 1) - self.block / self.rate
        self._n += 1
        return RawAudio(samples, self.rate, ts)

    def close(self) -> None:
        self._it.close()
