"""``ravasd models``: model files (face tracking, neural voices)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import model_files
from .common import config_args, load


def register(sub) -> None:
    """``ravasd models``: its arguments (and sub-commands)."""
    mod = sub.add_parser("models", help="model files (face tracking, neural voices)")
    mod_sub = mod.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    mf = mod_sub.add_parser(
        "fetch",
        help="download missing models from their official source (sha256-checked); "
        "`fetch mimi` also gets Kyutai's Mimi for the Mimi-VC voices",
    )
    mf.add_argument(
        "which",
        nargs="?",
        choices=("face", "mimi"),
        default="face",
        help="face (default): the face tracker; mimi: Kyutai's Mimi (~385 MB, CC-BY-4.0), exported "
        "to ONNX (needs PyTorch once) with its built-in voices",
    )
    prec = dict(
        choices=("float32", "int8"),
        default="float32",
        help="mimi: float32 (default), or int8 — 8-bit transformer weights, ~15 %% less CPU, checked "
        "only on random weights (see README)",
    )
    mf.add_argument("--precision", **prec)
    config_args(mf)
    ma = mod_sub.add_parser("add", help="install weights you copied by hand")
    ma.add_argument("which", choices=("mimi", "knnvc"))
    ma.add_argument(
        "path",
        metavar="PATH",
        help="mimi: the .safetensors checkpoint; knnvc: the folder with RAVAS's wavlm_<S>.onnx and hifigan_<S>.onnx",
    )
    ma.add_argument("--precision", **prec)
    config_args(ma)
    config_args(mod_sub.add_parser("list", help="where each model is found"))


def run(args: argparse.Namespace) -> int:
    from ..audio.neural import manage as neural

    cfg = load(args)
    if args.models_command == "add":
        if args.which == "mimi":
            print(f"mimi: {neural.add_mimi(cfg, Path(args.path), args.precision)}")
        else:
            print(neural.add_knnvc(cfg, Path(args.path)))
        return 0
    if args.models_command == "fetch" and args.which == "mimi":
        print(f"mimi: {neural.fetch_mimi(cfg, args.precision)}")
        return 0
    for spec in model_files.MODELS.values():
        path = model_files.find(spec, cfg.models.face_landmarker)
        if args.models_command == "fetch" and path is None:
            path = model_files.fetch(spec, progress=sys.stderr.isatty())
        print(f"{spec.name}: {path or 'missing (`ravasd models fetch`)'}")
    if args.models_command == "list":
        for row in neural.model_rows(cfg):
            print(row)
    return 0
