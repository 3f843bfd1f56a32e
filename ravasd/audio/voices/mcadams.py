"""McAdams-coefficient anonymization — the VoicePrivacy Challenge baseline B2, streaming.

Per 20 ms frame (10 ms hop, 16 kHz): LPC (order 20) by the autocorrelation method; the residual is
kept; each complex pole's angle φ (rad) becomes φ^α, which moves the formants; the frame is
resynthesised through the warped all-pole filter and overlap-added. α < 1 raises, α > 1 lowers
the formants. Weak by design (a lazy-informed attacker links speakers again): the reference.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .base import FrameVoice
from .vocoder import levinson


def lpc(frame: np.ndarray, order: int) -> np.ndarray | None:
    """LPC polynomial a (a[0] = 1) by autocorrelation + Levinson (Toeplitz solve); None if silent."""
    r = np.correlate(frame, frame, mode="full")[len(frame) - 1 : len(frame) + order]
    return levinson(r, order, correction=1e-6, floor=1e-9)


class McAdams(FrameVoice):
    inner_rate = 16000
    frame = 320
    hop = 160
    order = 20

    def __init__(self, rate: int, alpha: float = 0.8) -> None:
        self.alpha = alpha
        super().__init__(rate)

    def transform(self, frame: np.ndarray) -> np.ndarray:
        a = lpc(frame.astype(np.float64), self.order)
        if a is None:
            return np.zeros_like(frame)
        residual = signal.lfilter(a, [1.0], frame)
        poles = np.roots(a)
        upper = poles[np.imag(poles) > 1e-9]
        real = poles[np.abs(np.imag(poles)) <= 1e-9]
        mag = np.minimum(np.abs(upper), 0.999)  # keep the filter stable
        warped = mag * np.exp(1j * np.clip(np.angle(upper), 0, np.pi) ** self.alpha)
        new = np.concatenate([real, warped, np.conj(warped)])
        a_new = np.real(np.poly(new))
        return signal.lfilter([1.0], a_new, residual).astype(np.float32)
