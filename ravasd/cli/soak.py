"""``ravasd soak``: the daemon for minutes, watched."""

from __future__ import annotations

import argparse
import json

from .common import seconds


def register(sub) -> None:
    """``ravasd soak``: its arguments (and sub-commands)."""
    so = sub.add_parser(
        "soak",
        help="run the daemon for minutes: memory, latency drift, drops, restarts over time",
        description="Runs `ravasd run --no-tray` (demo sources unless RUN_ARGS are given) on the sound "
        "server (a private one when none answers) and samples status and memory per "
        "process every --every seconds; prints a summary (RSS growth, latency drift, "
        "drops per second, restarts). Meanwhile a recorder reads RAVAS Mic at 20 ms "
        "latency, as a call app does (--no-listener: none).",
    )
    so.add_argument("--minutes", type=seconds, default=5.0, help="how long (default 5)")
    so.add_argument("--every", type=seconds, default=10.0, help="seconds between samples (default 10)")
    so.add_argument("--load", type=int, default=0, metavar="N", help="N busy processes saturate the CPU meanwhile")
    so.add_argument(
        "--no-listener",
        action="store_true",
        help="nothing records RAVAS Mic meanwhile (default: a recorder at 20 ms latency, as a call app)",
    )
    so.add_argument("--json", action="store_true", help="every sample and the summary as JSON")
    so.add_argument(
        "run_args",
        nargs=argparse.REMAINDER,
        metavar="-- RUN_ARGS",
        help="arguments for `ravasd run` after --, e.g. -- --voice baritone",
    )


def run(args: argparse.Namespace) -> int:
    from ..bench.soak import soak, to_json

    run_args = [a for a in args.run_args if a != "--"] or None
    res = soak(
        args.minutes,
        args.every,
        args.load,
        run_args,
        out=(lambda line: None) if args.json else print,
        listener=not args.no_listener,
    )
    if args.json:
        print(to_json(res))
    else:
        print(json.dumps(res["summary"], indent=2))
    return 0
