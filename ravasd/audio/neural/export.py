"""Mimi weights → one ONNX graph per stage, with explicit state (torch, the ``torch`` extra; export time only).

The stages (:data:`~.mimi_arch.STAGES`, in data-flow order): ``encoder.convs`` audio (1, 1, T·120) →
(1, C, T) at 200 Hz; ``encoder.tail`` (1, C, 8T) → (1, D, T) at 25 Hz; ``encoder.transformer`` (1, D, T)
→ (1, D, T); ``downsample.npy`` the (D, D, 4) stride-2 conv to 12.5 Hz latents (numpy);
``decoder.transformer`` latents (1, D, T) → (1, D, 2T) at 25 Hz; ``decoder.up`` (1, D, T) → (1, C, 8T)
at 200 Hz; ``decoder.convs`` (1, C, T) → audio (1, 1, T·120). Each graph's input is ``x``, its output
``y``; state inputs ``state.<i>``, outputs ``state.<i>.out`` (order and shapes in the manifest); the
time axis is dynamic: a 5 ms step and a pool build over ten seconds run the same graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import ModelError
from . import mimi_arch as arch


def need_tools() -> None:
    """Raise a :class:`ModelError` with the install line unless the export tools import."""
    try:
        import onnx  # noqa: F401  (torch's exporter writes through it)
        import onnx_ir  # noqa: F401  (onnxruntime's quantiser needs it)
        import torch  # noqa: F401
    except ImportError:
        raise ModelError(
            "Installing Mimi exports it to ONNX, which needs PyTorch, onnx and onnx-ir (only for this "
            "step; the voice itself runs on onnxruntime).",
            "install them once (CPU build): `pip install torch==2.13.0 onnx onnx-ir` (or the `torch` "
            "extra), then run the command again.",
        ) from None


PRECISIONS = ("float32", "int8")


def quantize(path: Path) -> None:
    """Weight-only 8-bit block quantisation (blocks of 32, symmetric) of a graph's MatMuls, computed
    with int8 activations (onnxruntime's MatMulNBits, accuracy level 4). The transformers read all
    their weights for the two steps of each frame, so a quarter of the bytes is ~15 % less time per
    frame here; on random weights of the architecture the output stays within 56 dB SNR of float32.
    Not validated on Kyutai's weights on our machines (they are not reachable here): opt-in."""
    import onnx
    from onnxruntime.quantization import matmul_nbits_quantizer as q

    model = onnx.load(str(path))
    algo = q.DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, bits=8, accuracy_level=4)
    quantizer = q.MatMulNBitsQuantizer(model, algo_config=algo)
    quantizer.process()
    onnx.save(quantizer.model.model, str(path))


def export(
    params: dict[str, np.ndarray], cfg: arch.MimiConfig, out: Path, source: dict, precision: str = "float32"
) -> dict:
    """Write the stages' graphs, downsample.npy and manifest.json into ``out`` (created);
    returns the manifest. ``source`` describes the weights (file, sha256, licence) and goes into the
    manifest; ``precision`` int8 quantises the transformers' weights (:func:`quantize`)."""
    if precision not in PRECISIONS:
        raise ModelError(
            f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}.", "pass --precision float32."
        )
    need_tools()
    import torch

    p = arch.torch_params(params, cfg)
    out.mkdir(parents=True, exist_ok=True)

    class Step(torch.nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn
            for i, (_k, v) in enumerate(p.items()):  # registered, so the export keeps them as initializers
                self.register_buffer(f"w{i}", v)
            self.keys = list(p)

        def forward(self, x, *state):
            params = {k: getattr(self, f"w{i}") for i, k in enumerate(self.keys)}
            return self.fn(params, cfg, x, *state)

    graphs = {}
    for stage in arch.STAGES:
        specs = stage.states(cfg)
        state = [torch.from_numpy(a) for a in arch.initial(specs)]
        ins = ["x"] + [f"state.{i}" for i in range(len(specs))]
        outs = ["y"] + [f"state.{i}.out" for i in range(len(specs))]
        path = out / f"{stage.name}.onnx"
        with torch.no_grad():
            torch.onnx.export(
                Step(stage.fn),
                (torch.zeros(stage.example(cfg)), *state),
                str(path),
                dynamo=False,
                input_names=ins,
                output_names=outs,
                opset_version=17,
                dynamic_axes={"x": {2: "t"}, "y": {2: "t"}},
            )
        if precision == "int8" and "transformer" in stage.name:
            quantize(path)
        graphs[stage.name] = {
            "file": path.name,
            "states": [{"name": s.name, "shape": list(s.shape), "init": s.init} for s in specs],
        }
    np.save(out / "downsample.npy", params[f"{arch.downsample_conv(cfg).key}.weight"].astype(np.float32))
    manifest = {
        "format": arch.FORMAT,
        "model": "mimi",
        "config": cfg.to_dict(),
        "precision": precision,
        "graphs": graphs,
        "source": source,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
