"""Protocols of the pipeline stages, and the optional traits a stage may have.

Threading contract: the :class:`~ravasd.engine.runner.StreamRunner` calls a source only from its
capture thread, a converter only from one convert thread at a time (a hung converter is abandoned
and a fresh instance made), and a sink only from its publish thread. ``close()`` is called once,
from the thread that stops the runner, and must not raise.

Traits are checked with ``isinstance`` (the Protocols are runtime-checkable): a stage declares one
by having its attributes, and the runner uses it only then.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .frames import AnonAudio, AnonFrame, RawAudio, RawFrame


@runtime_checkable
class VideoSource(Protocol):
    fps: float
    size: tuple[int, int]  # (width, height)

    def read(self) -> RawFrame | None:
        """Block until the next frame; ``None`` at end of stream. May raise on device loss."""

    def close(self) -> None: ...


@runtime_checkable
class AudioSource(Protocol):
    rate: int
    block: int  # samples per block

    def read(self) -> RawAudio | None:
        """Block until the next block of ``block`` samples; ``None`` at end of stream."""

    def close(self) -> None: ...


@runtime_checkable
class VideoConverter(Protocol):
    """Turns raw frames into anonymized frames of the configured output size."""

    def process(self, frame: RawFrame) -> AnonFrame: ...

    def reset(self) -> None:
        """Forget streaming state (face lost, device change, resume after pause)."""

    def close(self) -> None: ...


@runtime_checkable
class AudioConverter(Protocol):
    """Streaming voice converter.

    ``rate``: the rate it expects and returns. ``latency`` (samples): algorithmic look-ahead; the
    output of block *k* holds the input delayed by exactly ``latency`` samples, so a streamed run
    over any block size equals the offline run shifted by ``latency``.
    """

    rate: int
    latency: int

    def process(self, block: RawAudio) -> AnonAudio: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class VideoSink(Protocol):
    def write(self, frame: AnonFrame) -> None:
        """Publish one frame; must call ``require_anon`` first. Called at the output cadence."""

    def close(self) -> None: ...


@runtime_checkable
class AudioSink(Protocol):
    def write(self, block: AnonAudio) -> None:
        """Publish one block; must call ``require_anon`` first."""

    def close(self) -> None: ...


# ------------------------------------------------------------------------------ optional traits
@runtime_checkable
class ClockedSink(Protocol):
    """An audio sink paced by a device clock: it plays silence by itself when starved, so the
    runner sends no silence blocks; ``latency`` (s) is what it holds ahead of the device."""

    clocked: bool
    latency: float

    def flush(self) -> None:
        """Drop what is buffered now (the privacy curtain closes at once)."""


@runtime_checkable
class SlowClosingSink(Protocol):
    """``close()`` finishes a file (encoder flush): the runner gives it time instead of cutting it off."""

    slow_close: bool


@runtime_checkable
class DeviceCounters(Protocol):
    """A device stage that counts its own losses: ``xruns`` (over/underruns) and ``dropped`` items."""

    xruns: int
    dropped: int


@runtime_checkable
class FaceAware(Protocol):
    """A video converter that knows whether it currently sees a face (the tray says "no face")."""

    face_visible: bool


@runtime_checkable
class Delaying(Protocol):
    """A converter whose output lags its input by ``latency`` samples (every voice): audio's latency
    figure, and so the video's sync delay, includes it."""

    latency: int


@runtime_checkable
class Calibrating(Protocol):
    """A converter that can take the face it sees now as its neutral face (the avatar's)."""

    def calibrate(self) -> None: ...


@runtime_checkable
class StallCounter(Protocol):
    """An output device that can stop asking for data: how often, and the longest gap (ms)."""

    stalls: int
    longest_stall_ms: float


@runtime_checkable
class LoadShedding(Protocol):
    """A converter that lowers its own cost under load: ``render_scale`` now, ``top_scale`` the most
    it goes back up to (below it = giving way to audio)."""

    render_scale: float
    top_scale: float


@runtime_checkable
class OffloadedVoice(Protocol):
    """A voice computed on its own thread behind a margin: output it was late for plays as silence."""

    rate: int
    margin: int  # samples, now (it follows the measured waits)
    late_samples: int  # samples played as silence because the computation was late
    wait_ms: float  # the longest recent wait for a block's output: what the margin covers


@runtime_checkable
class StagedVoice(Protocol):
    """A voice whose work is staged (a pull voice): ``prepare(busy)`` computes ahead between calls, from
    the thread that feeds it, until ``busy()``; ``path_ms`` the recent frames' critical paths
    ({part: ms, "total": ms})."""

    path_ms: Any

    def prepare(self, busy: Any = ...) -> None: ...


@runtime_checkable
class Wrapper(Protocol):
    """A stage around another (a resampler around a voice): traits are looked for through it."""

    inner: object


@runtime_checkable
class FailingSink(Protocol):
    """A sink that can stop on its own (a file on a full disk): ``failed`` says why ('' while fine)."""

    failed: str


def find_trait(stage: object, trait: type) -> object | None:
    """``stage`` or the first stage it wraps (:class:`Wrapper`) that has ``trait``, else None."""
    while stage is not None and not isinstance(stage, trait):
        stage = stage.inner if isinstance(stage, Wrapper) else None
    return stage
