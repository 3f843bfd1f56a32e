"""Timestamped media items. Raw and anonymized data are different types.

Sources produce :class:`RawFrame` / :class:`RawAudio`; only converters produce
:class:`AnonFrame` / :class:`AnonAudio`; sinks accept only the anonymized types (checked by
:func:`require_anon`), so a raw camera frame or unconverted voice cannot be published by mistake.
Placeholders (the idle/paused card, silence) are anonymized items too, built by ``placeholder``.

All ``ts`` values are seconds on one clock, :func:`now` (``time.monotonic``) in live mode and the
media timeline in offline mode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

now = time.monotonic


@dataclass(frozen=True, eq=False)
class RawFrame:
    """A camera/source frame. ``image``: (H, W, 3) uint8 RGB. ``ts``: capture time (s)."""

    image: np.ndarray
    ts: float
    index: int = 0


@dataclass(frozen=True, eq=False)
class RawAudio:
    """A microphone/source block. ``samples``: (n,) float32 mono in [-1, 1] at ``rate`` Hz.

    ``ts`` is the capture time of the first sample (s).
    """

    samples: np.ndarray
    rate: int
    ts: float


@dataclass(frozen=True, eq=False)
class AnonFrame:
    """An anonymized frame. ``image``: (H, W, 3) uint8 RGB; ``ts``: capture time of the raw frame
    it was made from (s); ``placeholder`` marks idle/paused cards."""

    image: np.ndarray
    ts: float
    placeholder: bool = False


@dataclass(frozen=True, eq=False)
class AnonAudio:
    """An anonymized block: (n,) float32 mono at ``rate`` Hz; ``ts`` as in :class:`RawAudio`."""

    samples: np.ndarray
    rate: int
    ts: float
    placeholder: bool = False


def require_anon(item: object, kind: type) -> None:
    """Raise ``TypeError`` unless ``item`` is the anonymized ``kind``. Every sink calls this first."""
    if type(item) is not kind:
        raise TypeError(
            f"sink accepts only {kind.__name__}, got {type(item).__name__}: raw data must never reach a sink"
        )
