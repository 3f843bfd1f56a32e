"""``ravasd doctor``: check every part and print the fix."""

from __future__ import annotations

import argparse

from .common import config_args, load


def register(sub) -> None:
    """``ravasd doctor``: its arguments (and sub-commands)."""
    doc = sub.add_parser("doctor", help="check camera, mic, virtual devices, models, OpenGL, tray, autostart")
    doc.add_argument("--json", action="store_true")
    config_args(doc)


def run(args: argparse.Namespace) -> int:
    from ..daemon.doctor import report, run_checks

    text, code = report(run_checks(load(args)), args.json)
    print(text)
    return code
