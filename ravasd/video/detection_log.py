"""Tracking logs in RAVAS's JSON format, for recording and replay.

A log is a JSON array of entries ``{"blendshapes": [{"index", "score", "categoryName", "displayName"}],
"transformation_matrix": [16 floats, column-major], "ts": ms}``, ending with ``{}``. The writer
streams entries (so a crash loses at most the closing bracket, which the reader tolerates).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import MediaError
from .tracking import ARKIT_NAMES, FacePose, euler_from_matrix


class DetectionLogWriter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fh = open(self.path, "w", encoding="utf-8")
        self.fh.write("[\n")

    def write(self, pose: FacePose) -> None:
        cats = pose.categories or [(i, float(w), n) for i, (n, w) in enumerate(zip(ARKIT_NAMES, pose.weights))]
        entry = {
            "blendshapes": [
                {"index": i, "score": round(s, 6), "categoryName": n, "displayName": ""} for i, s, n in cats
            ],
            "transformation_matrix": [round(float(v), 6) for v in pose.matrix.T.reshape(-1)],
            "ts": int(round(pose.ts * 1000)),
        }
        self.fh.write(json.dumps(entry) + ",\n")

    def close(self) -> None:
        self.fh.write("{}\n]\n")
        self.fh.close()


def read_log(path: str | Path) -> Iterator[FacePose]:
    """Yield poses from a RAVAS detection log (landmarks are not stored: zeros)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise MediaError(f"Detection log {path} cannot be read ({err.strerror}).") from None
    except UnicodeDecodeError as err:
        raise MediaError(
            f"Detection log {path} is not UTF-8 JSON text (byte {err.start}).",
            "pass a file written by video.converter.detection_log or by RAVAS.",
        ) from None
    if text.endswith(",") or (text.startswith("[") and not text.endswith("]")):
        text = text.rstrip(",\n ") + "]"  # a log cut off by a crash
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise MediaError(
            f"Detection log {path} is not valid JSON (line {err.lineno}: {err.msg}).",
            "pass a file written by video.converter.detection_log or by RAVAS.",
        ) from None
    except RecursionError:
        raise MediaError(f"Detection log {path} is nested too deeply to be a detection log.") from None
    if not isinstance(data, list):
        raise MediaError(f"Detection log {path} must be a JSON array of entries.")
    index = {n: i for i, n in enumerate(ARKIT_NAMES)}
    for k, entry in enumerate(data):
        if not entry:
            continue
        try:
            if not isinstance(entry, dict) or not isinstance(entry["blendshapes"], list):
                raise TypeError("an entry is an object with a 'blendshapes' list")
            weights = np.zeros(len(ARKIT_NAMES), np.float32)
            for b in entry["blendshapes"]:
                i = index.get(str(b["categoryName"]))
                if i is not None:
                    weights[i] = float(b["score"])
            m = np.asarray(entry["transformation_matrix"], np.float32).reshape(4, 4).T  # column-major
            ts = float(entry["ts"]) / 1000
            if not (np.isfinite(ts) and np.isfinite(m).all() and np.isfinite(weights).all()):
                raise ValueError("non-finite numbers")
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise MediaError(f"Detection log {path}: entry {k} is malformed ({err}).") from None
        yaw, pitch, roll = euler_from_matrix(m)
        yield FacePose(weights, yaw, pitch, roll, m, np.zeros((478, 3), np.float32), ts)
