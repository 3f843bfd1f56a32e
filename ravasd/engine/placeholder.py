"""Fail-closed placeholders: a neutral card for video, silence for audio.

The card never contains camera pixels: it is drawn from scratch (gradient, a neutral head
silhouette, a status word). Cards are cached per (size, state) since they are drawn at fps rate.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .frames import AnonAudio, AnonFrame

STATES = {"starting": "starting…", "paused": "paused", "no-signal": "camera paused", "stopped": "off"}


@lru_cache(maxsize=16)
def _card(width: int, height: int, state: str) -> np.ndarray:
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top = np.array([58, 66, 84], np.float32)
    bottom = np.array([30, 34, 44], np.float32)
    img = np.broadcast_to(top * (1 - y) + bottom * y, (height, width, 3)).astype(np.uint8).copy()
    s = min(width, height)
    cx, cy = width // 2, int(height * 0.46)
    grey = (96, 106, 128)
    cv2.ellipse(img, (cx, cy + int(s * 0.42)), (int(s * 0.30), int(s * 0.20)), 0, 180, 360, grey, -1, cv2.LINE_AA)
    cv2.circle(img, (cx, cy), int(s * 0.16), grey, -1, cv2.LINE_AA)
    text = f"RAVAS - {STATES.get(state, state)}"
    scale = max(0.4, s / 720 * 1.0)
    thick = max(1, int(round(scale * 2)))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.putText(
        img,
        text,
        ((width - tw) // 2, height - int(s * 0.06)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (220, 224, 232),
        thick,
        cv2.LINE_AA,
    )
    img.setflags(write=False)
    return img


def card(width: int, height: int, state: str, ts: float) -> AnonFrame:
    """The placeholder frame for ``state`` (starting / paused / no-signal / stopped)."""
    return AnonFrame(_card(width, height, state), ts, placeholder=True)


def silence(n: int, rate: int, ts: float) -> AnonAudio:
    """``n`` samples of digital silence."""
    return AnonAudio(np.zeros(n, np.float32), rate, ts, placeholder=True)
