"""onnxruntime sessions for the neural voices (no torch): providers, threads, explicit state.

Who calls: the voice objects in the audio worker's thread (:mod:`.mimi`, :mod:`.knnvc`), and the
installer's streamed-vs-offline check.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ...errors import ModelError

#: ``audio.device`` → onnxruntime execution providers (CPU always last, as the fallback).
PROVIDERS = {
    "cpu": [],
    "cuda": ["CUDAExecutionProvider"],
    "coreml": ["CoreMLExecutionProvider"],
    "directml": ["DmlExecutionProvider"],
}


def providers(device: str) -> list[str]:
    """The providers for ``device`` that this onnxruntime has; ``auto`` = the best one present.
    Asking for one it lacks is an error that says which ones exist."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    if device == "auto":
        wanted = [p for name in ("cuda", "coreml", "directml") for p in PROVIDERS[name] if p in have]
        return wanted[:1] + ["CPUExecutionProvider"]
    missing = [p for p in PROVIDERS[device] if p not in have]
    if missing:
        raise ModelError(
            f"audio.device: {device} was asked for, but this onnxruntime has only {', '.join(have)}.",
            "set audio.device to cpu or auto, or install the onnxruntime build for that "
            "accelerator (onnxruntime-gpu, onnxruntime-directml).",
        )
    return PROVIDERS[device] + ["CPUExecutionProvider"]


def all_cores() -> int:
    """Threads for offline work (installing, building pools): every core; live voices use one."""

    return max(1, os.cpu_count() or 1)


def session(path: Path, device: str = "cpu", threads: int = 1):
    """An inference session on ``path``; ``threads`` intra-op threads (1: the model gets one core)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers(device))
    except ModelError:
        raise
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelError(
            f"{path} is not a usable ONNX graph ({str(err).splitlines()[0][:200]}).",
            "delete it and install the model again (`ravasd models fetch mimi` or `ravasd models add …`).",
        ) from None


class StatefulGraph:
    """One graph whose state inputs ``state.<i>`` come back as ``state.<i>.out``; keeps them between
    calls. ``reset()`` returns to the manifest's initial state."""

    def __init__(self, path: Path, states: list[dict], device: str = "cpu", threads: int = 1) -> None:
        self.sess = session(path, device, threads)
        self.specs = states
        self.input = self.sess.get_inputs()[0].name
        self.outputs = [o.name for o in self.sess.get_outputs()]
        if len(self.outputs) != len(states) + 1:
            raise ModelError(
                f"{path} has {len(self.outputs) - 1} state outputs, its manifest {len(states)}.",
                "delete the folder and install the model again.",
            )
        self.reset()

    def reset(self) -> None:
        self.state = [np.full(s["shape"], s["init"], np.float32) for s in self.specs]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        feed = {self.input: np.ascontiguousarray(x, np.float32)}
        feed.update({f"state.{i}": s for i, s in enumerate(self.state)})
        y, *self.state = self.sess.run(self.outputs, feed)
        return y


def load_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{folder} has no manifest.json: the model is not installed (or half-installed).",
            "run `ravasd models fetch mimi` or `ravasd models add …` again.",
        ) from None
    except (OSError, ValueError) as err:
        raise ModelError(f"{path} cannot be read ({err}).", "delete the folder and install the model again.") from None
