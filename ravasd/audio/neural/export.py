"""Mimi weights → two ONNX graphs with explicit state (torch, the ``torch`` extra; export time only).

``encoder.onnx``: inputs ``audio`` (1, 1, T·frame) + the encoder state → ``latent`` (1, D, T) + the
new state; ``decoder.onnx``: ``latent`` (1, D, T) + state → ``audio`` (1, 1, T·frame) + state. State
inputs are named ``state.<i>``, outputs ``state.<i>.out`` (order and shapes in the manifest), the
time axis is dynamic: a step of one frame and a pool build over ten seconds run the same graph.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import ModelError
from . import mimi_arch as arch


def _need_torch():
    try:
        import torch  # noqa: F401
        import onnx  # noqa: F401  (torch's exporter writes through it)
    except ImportError:
        raise ModelError("Making the Mimi graphs needs PyTorch and onnx (export time only).",
                         "install them (CPU build): `pip install torch==2.13.0 onnx` or "
                         "`pip install 'ravasd[torch]'`, then run the command again.") from None


def export(params: dict[str, np.ndarray], cfg: arch.MimiConfig, out: Path, source: dict) -> dict:
    """Write encoder.onnx, decoder.onnx and manifest.json into ``out`` (created); returns the manifest.
    ``source`` describes the weights (file, sha256, licence) and goes into the manifest."""
    _need_torch()
    import torch

    p = arch.torch_params(params, cfg)
    out.mkdir(parents=True, exist_ok=True)

    class Step(torch.nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn
            for i, (k, v) in enumerate(p.items()):  # registered, so the export keeps them as initializers
                self.register_buffer(f"w{i}", v)
            self.keys = list(p)

        def forward(self, x, *state):
            params = {k: getattr(self, f"w{i}") for i, k in enumerate(self.keys)}
            return self.fn(params, cfg, x, *state)

    graphs = {}
    for name, fn, specs, xin, xname, yname, axis in (
        ("encoder", arch.encode_step, arch.encoder_states(cfg), (1, 1, cfg.frame), "audio", "latent", 2),
        ("decoder", arch.decode_step, arch.decoder_states(cfg), (1, cfg.dimension, 1), "latent", "audio", 2),
    ):
        state = [torch.from_numpy(a) for a in arch.initial(specs)]
        ins = [xname] + [f"state.{i}" for i in range(len(specs))]
        outs = [yname] + [f"state.{i}.out" for i in range(len(specs))]
        path = out / f"{name}.onnx"
        with torch.no_grad():
            torch.onnx.export(Step(fn), (torch.zeros(xin), *state), str(path), dynamo=False,
                              input_names=ins, output_names=outs, opset_version=17,
                              dynamic_axes={xname: {axis: "t"}, yname: {axis: "t"}})
        graphs[name] = {"file": path.name, "states": [{"name": s.name, "shape": list(s.shape), "init": s.init}
                                                      for s in specs]}
    manifest = {"format": 1, "model": "mimi", "config": cfg.to_dict(), "graphs": graphs, "source": source}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
