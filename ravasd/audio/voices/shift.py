"""Pitch + formant (vocal-tract length) voices on the streaming vocoder.

F0 is multiplied by ``pitch``; the spectral envelope is stretched along frequency by ``formant``
(> 1 = shorter vocal tract, brighter; < 1 = longer, darker), i.e. a VTL change. The excitation is
synthesised, so the speaker's glottal source is gone too. Presets in :data:`PRESETS`.
"""

from __future__ import annotations

import numpy as np

from .vocoder import BINS, Features, SourceFilterVoice

#: name → (pitch factor, formant factor, description)
PRESETS = {
    "deep": (0.70, 0.86, "lower pitch and a longer vocal tract: a deeper, darker voice"),
    "bright": (1.45, 1.14, "higher pitch and a shorter vocal tract: a lighter, brighter voice"),
    "giant": (0.55, 0.78, "very low and dark: strong disguise, less natural"),
}


class PitchFormant(SourceFilterVoice):
    def __init__(self, rate: int, pitch: float = 1.0, formant: float = 1.0) -> None:
        self.pitch, self.formant = pitch, formant
        src = np.arange(BINS) / formant  # output bin k reads input bin k / formant
        self._src = np.clip(src, 0, BINS - 1)
        super().__init__(rate)

    def map(self, feat: Features) -> tuple[np.ndarray, float, float]:
        env = np.interp(self._src, np.arange(BINS), feat.logspec)
        return env, feat.f0 * self.pitch, feat.rms
