"""``ravasd converters``: the video converters."""

from __future__ import annotations

import argparse

from .common import table


def register(sub) -> None:
    """``ravasd converters``: its arguments (and sub-commands)."""
    conv = sub.add_parser("converters", help="list video converters")
    conv.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..video.converters import VIDEO_CONVERTERS

    rows = [{"name": k, "description": d} for k, (_, d) in VIDEO_CONVERTERS.items()]
    table(rows, args.json)
    return 0
