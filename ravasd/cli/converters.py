"""``ravasd converters``: the video converters.

``register(sub)`` adds the command to the parser; ``run(args)`` carries it out (the exit status).
"""

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
