"""Face tracking: MediaPipe Tasks FaceLandmarker in VIDEO mode → blendshapes + head pose.

Runs in the video worker's convert thread. Blendshapes are mapped by *name* (the model has 51 ARKit
names plus ``_neutral`` and no ``tongueOut``). The facial transformation matrix gives head pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..model_files import FACE_LANDMARKER, resolve

ARKIT_NAMES = (
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeLookDownLeft",
    "eyeLookDownRight",
    "eyeLookInLeft",
    "eyeLookInRight",
    "eyeLookOutLeft",
    "eyeLookOutRight",
    "eyeLookUpLeft",
    "eyeLookUpRight",
    "eyeSquintLeft",
    "eyeSquintRight",
    "eyeWideLeft",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawOpen",
    "jawRight",
    "mouthClose",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthFunnel",
    "mouthLeft",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthPucker",
    "mouthRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "noseSneerLeft",
    "noseSneerRight",
    "tongueOut",
)
assert len(ARKIT_NAMES) == 52


@dataclass
class FacePose:
    """One tracking result. ``weights``: (52,) float32 in ARKIT_NAMES order, 0..1.
    ``yaw/pitch/roll``: degrees (camera view, yaw > 0 = the person turns to their left).
    ``matrix``: the 4×4 facial transformation matrix (row-major). ``landmarks``: (478, 3) normalised
    image coordinates (x, y in 0..1, z relative depth). ``ts``: capture time (s)."""

    weights: np.ndarray
    yaw: float
    pitch: float
    roll: float
    matrix: np.ndarray
    landmarks: np.ndarray
    ts: float
    categories: list[tuple[int, float, str]] = field(default_factory=list)  # raw (index, score, name)


def euler_from_matrix(m: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from a 4×4 rotation+translation matrix."""
    r = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0, keepdims=True)
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


class FaceTracker:
    """MediaPipe FaceLandmarker (VIDEO mode). ``track(rgb, ts)`` returns a :class:`FacePose` or None.

    Timestamps given to MediaPipe must increase strictly; they are derived from ``ts`` (s) and forced
    monotonic here, so callers may pass any clock.
    """

    def __init__(self, model_path: str | Path) -> None:
        import mediapipe as mp  # start-up: MediaPipe (and matplotlib) load in ~1 s; only a tracker needs it
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._lm = vision.FaceLandmarker.create_from_options(opts)
        self._last_ms = -1
        self._index = {name: i for i, name in enumerate(ARKIT_NAMES)}

    def track(self, rgb: np.ndarray, ts: float) -> FacePose | None:
        ms = max(int(ts * 1000), self._last_ms + 1)
        self._last_ms = ms
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        res = self._lm.detect_for_video(image, ms)
        if not res.face_landmarks:
            return None
        weights = np.zeros(len(ARKIT_NAMES), np.float32)
        cats = []
        for c in res.face_blendshapes[0]:
            cats.append((c.index, float(c.score), c.category_name))
            i = self._index.get(c.category_name)
            if i is not None:
                weights[i] = c.score
        matrix = np.asarray(res.facial_transformation_matrixes[0], np.float32).reshape(4, 4)
        lms = np.array([(p.x, p.y, p.z) for p in res.face_landmarks[0]], np.float32)
        yaw, pitch, roll = euler_from_matrix(matrix)
        return FacePose(weights, yaw, pitch, roll, matrix, lms, ts, cats)

    def close(self) -> None:
        self._lm.close()


def open_tracker(cfg) -> FaceTracker:
    """A tracker with the model resolved from config / ``RAVAS_MODELS_DIR`` / cache (download if allowed)."""

    return FaceTracker(resolve(FACE_LANDMARKER, cfg.models.face_landmarker, cfg.models.allow_download, progress=False))
