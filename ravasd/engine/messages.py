"""What the supervisor and a stream worker say to each other over their pipe, as typed messages.

Supervisor → worker (:data:`Command`): the worker's loop (``supervisor._worker_main``) applies each to
its runner between status reports. Worker → supervisor (:data:`Report`): a status snapshot every
``engine.status_interval_ms``, and one of end-of-file, stopped or fatal. Every message is a frozen
dataclass, pickled by ``multiprocessing``; nothing else travels on the pipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Config


# ------------------------------------------------------------------ supervisor → worker
@dataclass(frozen=True)
class Stop:
    """End the stream: the sink ends on its placeholder, the process exits."""


@dataclass(frozen=True)
class Pause:
    """Close the privacy curtain: placeholder and silence until :class:`Resume`."""


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class Delay:
    """Hold the video back by ``seconds`` (the audio path's latency: A/V stay in sync)."""

    seconds: float


@dataclass(frozen=True)
class Swap:
    """Rebuild the converter from ``cfg`` (voice/avatar/background changed) and swap it in live."""

    cfg: Config


@dataclass(frozen=True)
class Calibrate:
    """Take the face seen now as the avatar's neutral face (a :class:`~.stage.Calibrating` converter)."""


@dataclass(frozen=True)
class Preview:
    """Show (``on``) or hide the preview window."""

    on: bool


@dataclass(frozen=True)
class Record:
    """Write ``seconds`` of the converted output to ``path`` (the settings window's voice sample)."""

    path: str
    seconds: float


Command = Stop | Pause | Resume | Delay | Swap | Calibrate | Preview | Record


# ------------------------------------------------------------------ worker → supervisor
@dataclass(frozen=True)
class Status:
    """The runner's snapshot (``StreamRunner.snapshot``), plus the worker's scheduling ``priority``."""

    status: dict[str, Any]


@dataclass(frozen=True)
class EndOfFile:
    """A finite source is exhausted and its output published: the stream is finished, not dead."""


@dataclass(frozen=True)
class Stopped:
    """The worker stopped on :class:`Stop` (or lost its supervisor); nothing follows."""


@dataclass(frozen=True)
class Fatal:
    """The stream cannot start (a missing device, a bad file): restarting would not help."""

    reason: str


Report = Status | EndOfFile | Stopped | Fatal


# ------------------------------------------------------------------ shared between the processes
@dataclass(frozen=True)
class Routes:
    """What a worker shares with the main process besides its pipe. The daemon opens ``audio_out``;
    the supervisor makes the shared memory (``multiprocessing`` arrays and a :class:`SharedFrame`),
    which the workers write and the main process reads. None where that stream or feature is off."""

    audio_out: Any = None  # the virtual mic endpoint the audio worker's sink writes into
    audio_level: Any = None  # float[4]: the converted voice's level, open, spread, round (the avatar's mouth)
    video_frame: Any = None  # SharedFrame: the latest published (anonymized) frame, for snapshots and the preview
    mic_level: Any = None  # float[1]: the microphone's input level in dBFS, for the settings meter
