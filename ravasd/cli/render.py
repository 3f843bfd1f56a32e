"""``ravasd render``: an avatar rendered without a camera."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import config_args, load


def register(sub) -> None:
    """``ravasd render``: its arguments (and sub-commands)."""
    rd = sub.add_parser(
        "render",
        help="render an avatar (rest pose or a tracking log) without a camera",
        description="Render the rest pose to a .png, or replay a detection log (RAVAS JSON) "
        "to an .mp4 or .png (last frame).",
    )
    rd.add_argument("--avatar", metavar="NAME", help="avatar name or file (default: video.avatar)")
    rd.add_argument("--blendshapes", type=Path, metavar="LOG", help="detection log to replay")
    rd.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    rd.add_argument("--width", type=int, help="default: video.width")
    rd.add_argument("--height", type=int, help="default: video.height")
    config_args(rd)


def run(args: argparse.Namespace) -> int:
    from ..research.render import render

    cfg = load(args)
    out = render(cfg, args.output, avatar=args.avatar, log=args.blendshapes, width=args.width, height=args.height)
    print(f"wrote {out}")
    return 0
