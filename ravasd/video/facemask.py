"""FaceMask converter (as in RAVAS): the tracked landmark mesh drawn on a blank background.

Nothing of the camera image is used but the 478 landmark positions, auto-framed so the face fills
the picture (its place in the camera image is not shown). When the face is lost the
last mesh is held for ``hold_s`` and then fades out to an empty stage (never a raw frame).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..engine.frames import AnonFrame, RawFrame
from .detection_log import DetectionLogWriter

BG = (24, 28, 36)
LINE = (120, 200, 255)


class FaceMaskConverter:
    def __init__(
        self, tracker, width: int, height: int, hold_s: float = 0.5, fade_s: float = 0.5, log_path: str | None = None
    ) -> None:
        from mediapipe.tasks.python.vision import (
            FaceLandmarksConnections as C,  # start-up: MediaPipe loads slowly
        )

        self.tracker = tracker
        self.width, self.height = width, height
        self.hold_s, self.fade_s = hold_s, fade_s
        self.edges = np.array([(c.start, c.end) for c in C.FACE_LANDMARKS_TESSELATION], np.int32)
        self._last = None
        self._frame: np.ndarray | None = None  # smoothed (dx, dy, scale) of the auto-framing
        self._last_t = -1e9
        self.face_visible = False
        self._log = None
        if log_path:
            self._log = DetectionLogWriter(log_path)

    def _project(self, lms: np.ndarray, src_w: int, src_h: int) -> np.ndarray:
        """Normalised landmarks → output pixels, auto-framed: the face fills ~60 % of the height,
        centred, keeping a damped share of its movement (nods and sways read, position does not)."""
        px = lms[:, :2] * (src_w, src_h)
        lo, hi = px.min(axis=0), px.max(axis=0)
        center, size = (lo + hi) / 2, max(hi[1] - lo[1], 1.0)
        frame = np.array([center[0] / src_w - 0.5, center[1] / src_h - 0.5, 0.6 * self.height / size])
        self._frame = frame if self._frame is None else self._frame + 0.15 * (frame - self._frame)
        dx, dy, scale = self._frame
        target = np.array([self.width * (0.5 + 0.3 * dx), self.height * (0.48 + 0.3 * dy)])
        return (px - center) * scale + target

    def _draw(self, pts: np.ndarray, alpha: float) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:] = BG
        color = tuple(int(b + (c - b) * alpha) for b, c in zip(BG, LINE))
        lines = pts[self.edges].round().astype(np.int32)
        thick = max(1, int(round(self.height / 540)))
        cv2.polylines(img, list(lines), False, color, thick, cv2.LINE_AA)
        return img

    def process(self, frame: RawFrame) -> AnonFrame:
        h, w = frame.image.shape[:2]
        pose = self.tracker.track(frame.image, frame.ts)
        self.face_visible = pose is not None
        if pose is not None:
            self._last, self._last_t = self._project(pose.landmarks, w, h), frame.ts
            if self._log is not None:
                self._log.write(pose)
        age = frame.ts - self._last_t
        if self._last is None or age > self.hold_s + self.fade_s:
            img = np.empty((self.height, self.width, 3), np.uint8)
            img[:] = BG
        else:
            alpha = 1.0 if age <= self.hold_s else 1.0 - (age - self.hold_s) / self.fade_s
            img = self._draw(self._last, alpha)
        return AnonFrame(img, frame.ts)

    def reset(self) -> None:
        self._last = None
        self._frame = None

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        self.tracker.close()
