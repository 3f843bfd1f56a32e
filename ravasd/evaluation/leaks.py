"""Leak detectors: instruments that tell whether raw input reached an output.

- **Audio**: :class:`Marker` — a seeded sequence of pure tones mixed into test speech. Raw audio keeps
  each tone at its exact frequency (its fine spectral structure); a voice that re-synthesises speech
  keeps at most the envelope, so the tones are gone. ``Marker.find`` is a matched filter over that
  time-frequency pattern at every delay: a gain, a delay, a resampler or a speech codec (Opus)
  leave the marker findable; conversion does not.
- **Video**: :func:`camera_likeness` — the largest normalised cross-correlation of an output frame
  with a camera frame over the forms a leak takes: the whole image rescaled (aspect kept or
  stretched), a crop of it zoomed to fill, the image shrunk inside the frame, blurred or colour-shifted.

Both are used by the tests (each with a self-test on planted leaks) and ``camera_likeness`` by the
batch report. Pure numpy/OpenCV; any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import soxr

#: The detector's analysis rate (Hz): narrowband, so a telephone-band codec keeps every tone.
RATE = 16000
_WIN = 2048  # 128 ms Hann windows: 7.8 Hz bins, so a 30 Hz ring modulation moves a tone off its bin
_HOP = 160  # 10 ms
_SIDE = (6, 24)  # neighbour bins (47–188 Hz away) that a tone's own bin is compared with


@dataclass(frozen=True)
class Marker:
    """``tones`` tones of ``tone_s`` seconds each, frequencies drawn by ``seed`` from 350–3300 Hz
    (off any round grid), ``gap_s`` of nothing between them. Units: seconds, Hz, linear amplitude."""

    seed: int = 26
    tones: int = 16
    tone_s: float = 0.2
    gap_s: float = 0.0

    @cached_property
    def freqs(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.uniform(350.0, 3300.0, self.tones)

    @property
    def seconds(self) -> float:
        return self.tones * (self.tone_s + self.gap_s)

    def signal(self, rate: int, level: float = 0.05) -> np.ndarray:
        """The marker alone at ``rate`` Hz, each tone with 10 ms raised-cosine ramps, peak ``level``."""
        n, gap = int(round(self.tone_s * rate)), int(round(self.gap_s * rate))
        t = np.arange(n) / rate
        ramp = min(n // 2, int(0.01 * rate))
        env = np.ones(n)
        env[:ramp] = env[-ramp:][::-1] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        parts = []
        for f in self.freqs:
            parts += [level * env * np.sin(2 * np.pi * f * t), np.zeros(gap)]
        return np.concatenate(parts).astype(np.float32)

    def mix(self, speech: np.ndarray, rate: int, level_db: float = -18.0) -> np.ndarray:
        """``speech`` with the marker repeated under its whole length, at ``level_db`` re the speech's
        peak. The sum is scaled down if it would clip."""
        peak = float(np.abs(speech).max()) or 0.5
        m = self.signal(rate, peak * 10 ** (level_db / 20))
        reps = int(np.ceil(len(speech) / len(m)))
        out = speech.astype(np.float32) + np.tile(m, reps)[: len(speech)]
        return out / max(1.0, float(np.abs(out).max()) / 0.99)

    def find(self, y: np.ndarray, rate: int) -> float:
        """How strongly the marker is present anywhere in ``y`` (``rate`` Hz): the best, over every
        10 ms delay, of the mean contrast (dB) of each tone's own bin over its neighbours while it
        sounds, in units of that score's spread over delays where it is not (a z-score). Raw or
        merely degraded audio reads well above :data:`FOUND`; converted audio, silence and noise
        stay below it. Needs at least one whole marker in ``y``, over sound (a marker lying mostly
        over digital silence is not looked for: silence carries nothing)."""
        spec = _log_spectrum(y, rate)
        if spec.shape[0] < self._frames_per_marker + 2:
            return 0.0
        c = self._contrast(spec)  # (frames, tones)
        per_tone = int(round((self.tone_s + self.gap_s) * RATE / _HOP))
        # frames whose 128 ms window lies mostly inside the tone
        inner = max(1, int(round((self.tone_s - 0.5 * _WIN / RATE) * RATE / _HOP)) + 1)
        lags = spec.shape[0] - self._frames_per_marker + 1
        score = np.zeros(lags)
        for k in range(self.tones):
            start = k * per_tone
            # mean contrast of tone k over its inner frames, for every lag at once
            col = np.concatenate([[0.0], np.cumsum(c[:, k])])
            score += (col[start + inner : start + inner + lags] - col[start : start + lags]) / inner
        score /= self.tones
        # only delays where the marker would lie over sound: digital silence has no contrast at all,
        # and a window of mostly silence would otherwise make any few tones look like a marker
        power = spec.max(axis=1)
        sounding = np.convolve(power > power.min() + 1.0, np.ones(self._frames_per_marker), "valid")[:lags]
        valid = score[sounding >= 0.75 * self._frames_per_marker]
        if valid.size == 0:
            return 0.0
        med = float(np.median(valid))
        spread = 1.4826 * float(np.median(np.abs(valid - med))) + 0.25
        return float((valid.max() - med) / spread)

    @property
    def _frames_per_marker(self) -> int:
        return int(round(self.seconds * RATE / _HOP))

    def _contrast(self, spec: np.ndarray) -> np.ndarray:
        bins = np.round(self.freqs * _WIN / RATE).astype(int)
        own = np.stack([spec[:, b - 1 : b + 2].max(axis=1) for b in bins], axis=1)
        lo, hi = _SIDE
        side = np.stack(
            [
                np.median(np.concatenate([spec[:, b - hi : b - lo], spec[:, b + lo + 1 : b + hi + 1]], axis=1), axis=1)
                for b in bins
            ],
            axis=1,
        )
        return own - side


#: ``Marker.find`` above this: the marker (so raw input) is in the signal. Self-tested (marker at
#: −18 dB under espeak-ng speech): raw, −20 dB, delayed, resampled and Opus-coded copies read 15–24,
#: every built-in voice but McAdams 1–3 (McAdams keeps the excitation: ≈ 12).
FOUND = 8.0


def _log_spectrum(y: np.ndarray, rate: int) -> np.ndarray:
    """(frames, bins) log power (dB) of ``y`` resampled to :data:`RATE`; the floor is relative to the
    signal's own level, so the result does not depend on gain."""
    x = np.asarray(y, np.float32).reshape(-1)
    if rate != RATE:
        x = soxr.resample(x, rate, RATE)
    if len(x) < _WIN:
        return np.zeros((0, _WIN // 2 + 1))
    frames = np.lib.stride_tricks.sliding_window_view(x, _WIN)[::_HOP] * np.hanning(_WIN).astype(np.float32)
    p = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    floor = 1e-9 * max(float(np.mean(p)), 1e-20)
    return 10 * np.log10(p + floor)


# ---- video -------------------------------------------------------------------------------------

_SIDE_PX = 96  # both images are compared at this many pixels across the camera frame's width
_RIM = 4  # pixels (at _SIDE_PX) of an inset's template left out at each side
_SCALES = tuple(0.93**k for k in range(8))  # 1.0 … 0.6, 7 % apart


def _gray(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """``img`` as grey at ``width`` × ``height``, band-passed: fine enough to be specific to the
    picture, coarse enough to survive blur and rescaling; a render's slow shading and a brightness
    ramp taken out."""
    g = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    g = cv2.resize(g.astype(np.float32), (max(8, width), max(8, height)), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(g, (0, 0), 1.0) - cv2.GaussianBlur(g, (0, 0), 2.5)


def camera_likeness(output: np.ndarray, cameras: list[np.ndarray]) -> float:
    """The largest normalised cross-correlation (−1..1) between ``output`` (H×W×3 RGB) and any of
    ``cameras`` under the transforms a leak takes: the camera image rescaled to the output (aspect
    kept or stretched), a crop of it (down to 60 % of each side) zoomed to fill the output, or the
    image shrunk (down to 60 %) anywhere inside the output (a letterbox, an inset); blur, brightness,
    contrast and colour shifts change little at the scale compared. Unrelated images (an avatar, a
    card) read below :data:`CAMERA_LIMIT`; camera pixels in any of those forms read above it.
    ~4 ms per camera frame compared, whatever the output's size."""
    best = -1.0
    oh, ow = output.shape[:2]
    for cam in cameras:
        ch, cw = cam.shape[:2]
        w = _SIDE_PX
        h = max(8, int(round(w * ch / cw)))
        ref_band = _gray(cam, w, h)
        # the output as the camera frame, stretched to its aspect, or at the output's own aspect
        for ow_, oh_ in {(w, h), (w, max(8, int(round(w * oh / ow))))}:
            out_band = _gray(output, ow_, oh_)
            for s in _SCALES:
                # (a) the output shows a crop of the camera: the output shrunk and searched in the
                # camera image
                tw, th = int(round(ow_ * s)), int(round(oh_ * s))
                if 8 <= tw <= w and 8 <= th <= h:
                    best = max(best, _ncc(ref_band, cv2.resize(out_band, (tw, th), interpolation=cv2.INTER_AREA)))
                # (b) the camera is shown smaller inside the output: the camera shrunk and searched in
                # the output; the template's rim is left out, so a border round the inset (where the
                # output's band-pass rings) does not count
                tw, th = int(round(w * s)), int(round(h * s))
                if 8 + 2 * _RIM <= tw <= ow_ and 8 + 2 * _RIM <= th <= oh_:
                    t = cv2.resize(ref_band, (tw, th), interpolation=cv2.INTER_AREA)[_RIM:-_RIM, _RIM:-_RIM]
                    best = max(best, _ncc(out_band, t))
    return best


def _ncc(image: np.ndarray, template: np.ndarray) -> float:
    if float(template.std()) < 1e-3:  # a flat template (a card's plain area) correlates with nothing
        return -1.0
    r = cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED)
    r = r[np.isfinite(r)]
    return float(r.max()) if r.size else -1.0


#: ``camera_likeness`` above this: camera pixels reached the output. Self-tested on planted leaks.
CAMERA_LIMIT = 0.55
