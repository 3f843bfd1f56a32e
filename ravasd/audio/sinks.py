"""Audio sinks. Each accepts only :class:`AnonAudio` and is called from the publish thread."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from ..devices import pulse
from ..devices.portaudio import mono_stream
from ..devices.virtual import MicEndpoint
from ..engine.frames import AnonAudio, require_anon
from ..errors import DeviceError
from ..media.writer import LiveRecording, MediaWriter

log = logging.getLogger(__name__)


class DeviceAudioSink:
    """Plays blocks on an output device (sounddevice): a PortAudio device, or a Pulse sink by name
    (``pulse_sink``, e.g. RAVAS Mic's, reached through PortAudio's ALSA ``pulse`` device).

    A small FIFO sits between ``write`` and the PortAudio callback. The callback plays silence on
    underrun and waits for ``preroll`` blocks before it starts again (a larger burst already waiting
    then, e.g. the first capture while the voice loaded, is cut to the pre-roll). Latency cannot creep: when
    the FIFO's lowest fill over 1 s exceeds the safety margin (``preroll`` − 1 block) by two blocks or
    more, that excess is dropped (counted: clock drift between devices), and ``write`` never lets it
    exceed ``max_latency`` s. Each underrun grows the pre-roll by one block (an adaptive jitter
    buffer: bursty servers such as PipeWire settle at their quantum); after ``SHRINK_AFTER_S``
    without one it gives a block back, down to where it started — a busy minute must not leave
    its latency behind for the rest of the call. A give-back that an underrun follows before the
    next one was due was too much: that pre-roll becomes the floor (a PipeWire quantum of 1024
    otherwise costs a glitch each time the buffer shrinks below it, measured every 10–25 s).

    ``clocked``: the device's clock paces playback, so the runner sends no silence blocks.
    """

    clocked = True
    SHRINK_AFTER_S = 10.0

    def __init__(
        self,
        device: int | str | None,
        rate: int,
        block: int,
        max_latency: float = 0.2,
        preroll: int = 3,
        pulse_sink: str | None = None,
    ) -> None:
        self.rate, self.block = rate, block
        self.max_samples = max(int(max_latency * rate), 2 * block)
        self.preroll = preroll * block
        self._calm_since = time.monotonic()  # the last underrun (or pre-roll change)
        self._floor = self.preroll  # the smallest pre-roll this device's bursts allow, learnt
        self._shrunk_at = float("-inf")
        self._buf = np.zeros(0, np.float32)
        self._lock = threading.Lock()
        self._primed = False
        self._win_min = 1 << 30  # lowest FIFO fill in the current 1 s window (samples)
        self._win_n = 0
        self.underruns = 0
        self.dropped = 0
        self._trims: list[tuple[int, int]] = []
        # device stalls: the callback not asking for data for much longer than a block (seen as
        # bursts of full-buffer drops in soaks); counted and logged by ``write``, no I/O here
        self.stalls = 0
        self.longest_stall_ms = 0.0
        self._last_cb = 0.0
        self._stall_after = max(0.1, 8 * block / rate)
        self._stall_log: list[float] = []
        self._full_since = 0  # blocks dropped by a full buffer since the last log line
        self._full_logged = 0.0
        import sounddevice as sd  # PortAudio is a system library: only live devices need it

        if pulse_sink:
            device = pulse.route("output", pulse_sink)
        try:
            self.stream = mono_stream("output", device, rate, block, self._callback)
        except (sd.PortAudioError, ValueError) as err:
            raise DeviceError(
                f"Audio output {'(default)' if device is None else repr(device)} cannot be opened: {err}.",
                "pick another with audio.output_device (see `ravasd devices`), or set audio.sink: null.",
            ) from None

    def _callback(self, outdata, frames, time_info, status) -> None:  # PortAudio thread
        now = time.monotonic()
        with self._lock:
            if self._last_cb and now - self._last_cb > self._stall_after:
                gap = (now - self._last_cb) * 1000
                self.stalls += 1
                self.longest_stall_ms = max(self.longest_stall_ms, gap)
                self._stall_log.append(gap)
            self._last_cb = now
            if not self._primed and len(self._buf) >= self.preroll:
                self._primed = True
                if len(self._buf) > self.preroll + self.block:
                    # a burst came in before playback (start-up: the first capture while the voice
                    # loaded): start at the pre-roll, not seconds behind — nothing played yet, so
                    # skipping the stale part is silent
                    self._trim(len(self._buf) - self.preroll, len(self._buf))
            if self._primed and len(self._buf) >= frames:
                outdata[:, 0] = self._buf[:frames]
                self._buf = self._buf[frames:]
                # latency control on the *lowest* fill of each 1 s window: bursty input makes the
                # fill swing, but a minimum well above the safety margin is latency we need not have
                self._win_min = min(self._win_min, len(self._buf))
                self._win_n += frames
                if self._win_n >= self.rate:
                    if self.preroll > self._floor and now - self._calm_since >= self.SHRINK_AFTER_S:
                        self.preroll -= self.block  # calm again: give one block of jitter buffer back
                        self._calm_since = self._shrunk_at = now
                    margin = max(self.block, self.preroll - self.block)
                    excess = self._win_min - margin
                    if excess >= 2 * self.block:  # hysteresis: jitter is not drift
                        self._trim(excess, self._win_min)
                    self._win_min, self._win_n = len(self._buf), 0
                return
            if self._primed:
                self.underruns += 1
                self._primed = False
                # the input arrives in larger bursts than we buffer for: buffer one block more
                self.preroll = min(self.preroll + self.block, self.max_samples // 2)
                if now - self._shrunk_at < self.SHRINK_AFTER_S:  # the last give-back caused this
                    self._floor = max(self._floor, self.preroll)
                self._calm_since = now
        outdata.fill(0)

    def _trim(self, n: int, fill: int) -> None:
        """Drop the oldest ``n`` samples (callback thread, lock held): counted, and logged by
        ``write`` — no I/O in the PortAudio callback."""
        self._buf = self._buf[n:]
        self.dropped += 1
        self._trims.append((n, fill))

    def write(self, block: AnonAudio) -> None:
        require_anon(block, AnonAudio)
        with self._lock:
            self._buf = np.concatenate([self._buf, block.samples.astype(np.float32, copy=False)])
            excess = len(self._buf) - self.max_samples
            if excess > 0:
                self._buf = self._buf[excess:]
                self.dropped += 1
                self._full_since += 1
            trims, self._trims = self._trims, []
            stalls, self._stall_log = self._stall_log, []
            now = time.monotonic()
            full = 0
            if self._full_since and now - self._full_logged >= 1.0:
                full, self._full_since, self._full_logged = self._full_since, 0, now
        for excess, fill in trims:
            log.info(
                "audio out: trimmed %.1f ms of surplus buffer (fill was %.1f ms)",
                excess / self.rate * 1000,
                fill / self.rate * 1000,
            )
        for gap in stalls:
            log.warning("audio out: the output device took no data for %.0f ms", gap)
        if full:
            log.warning("audio out: buffer full (the device is not taking data), dropped %d block(s)", full)

    def flush(self) -> None:
        """Drop everything not yet played (pause: the curtain closes at once)."""
        with self._lock:
            self._buf = np.zeros(0, np.float32)
            self._primed = False

    @property
    def xruns(self) -> int:
        """Output underruns (the DeviceCounters trait)."""
        return self.underruns

    @property
    def latency(self) -> float:
        """Seconds from ``write`` to the speaker: FIFO fill plus the device's output latency."""
        return len(self._buf) / self.rate + float(self.stream.latency)

    def close(self) -> None:
        with self._lock:
            self._buf = np.zeros(0, np.float32)  # nothing converted is left to play after stop
        try:
            self.stream.abort()
            self.stream.close()
        except Exception:
            pass


def open_virtual_out(endpoint: MicEndpoint | None, rate: int, block: int, max_latency: float) -> DeviceAudioSink:
    """The sink that plays into RAVAS Mic: ``endpoint`` is what the daemon opened (main process)."""
    if endpoint is None:
        raise DeviceError("the virtual mic was not opened by the daemon.")
    return DeviceAudioSink(endpoint.device, rate, block, max_latency, pulse_sink=endpoint.pulse_sink)


class FileAudioSink:
    """Records the published audio as WAV/FLAC (its timeline is the published block sequence)."""

    slow_close = True  # close() flushes the encoder: the runner waits for it

    def __init__(self, path: str | Path, rate: int) -> None:
        self.writer = MediaWriter(path, audio_rate=rate)
        self.recording = LiveRecording(self.writer)

    @property
    def failed(self) -> str:
        """Why the recording stopped ("" while it is fine); see :class:`LiveRecording`."""
        return self.recording.failed

    def write(self, block: AnonAudio) -> None:
        require_anon(block, AnonAudio)
        self.recording.write(self.writer.write_audio, block)

    def close(self) -> None:
        self.recording.commit()


class NullAudioSink:
    def __init__(self) -> None:
        self.samples = 0

    def write(self, block: AnonAudio) -> None:
        require_anon(block, AnonAudio)
        self.samples += len(block.samples)

    def close(self) -> None:
        pass
