"""The ``ravasd`` command line. Every user error is printed as one paragraph, no traceback.

One module per command (``ravasd/cli/<command>.py``), each with ``register(sub)`` (its arguments)
and ``run(args)`` (the exit status). Each imports what only it needs when it runs (start-up time):
``ravasd ctl status`` or ``ravasd --version`` must answer at once, not after loading MediaPipe,
OpenGL and the voices.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .. import __version__, logs, paths
from ..errors import RavasError
from . import (
    anonymize,
    autostart,
    avatars,
    bench,
    config,
    converters,
    ctl,
    desktop,
    devices,
    doctor,
    models,
    render,
    run,
    settings,
    soak,
    voices,
)
from . import eval as eval_
from .common import level

EPILOG = "Run `ravasd COMMAND --help` for a command's options. Docs: README.md."

#: Every command by name, in the order ``ravasd --help`` lists them.
COMMANDS = {
    "run": run,
    "anonymize": anonymize,
    "config": config,
    "voices": voices,
    "ctl": ctl,
    "soak": soak,
    "settings": settings,
    "doctor": doctor,
    "autostart": autostart,
    "desktop": desktop,
    "models": models,
    "avatars": avatars,
    "render": render,
    "bench": bench,
    "eval": eval_,
    "devices": devices,
    "converters": converters,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ravasd",
        description="RAVAS: anonymize your camera and microphone "
        'in real time, locally, and publish them as "RAVAS Camera" and "RAVAS Mic".',
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"ravasd {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output (-vv for debug)"
    )
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(*a, parents=[verbose], **k)  # type: ignore[method-assign]
    for command in COMMANDS.values():
        command.register(sub)
    return p


def _terminated(signum, frame) -> None:
    """SIGTERM outside `run`: unwind like Ctrl-C, so writers remove their partial files."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    paths.private_files()  # config, logs, recordings, caches: owner-only
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (
        argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version") and not argv[0].startswith("-v")
    ):
        argv = ["run", *argv]
    elif argv[0].startswith("-v") and (len(argv) == 1 or argv[1].startswith("-")):
        argv = [argv[0], "run", *argv[1:]]
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*argv, "run"])
    args.argv = list(argv)  # what was asked, for records of a run (eval voice --save-figures)
    logs.setup(level(args))
    if args.command not in ("run", "settings"):  # run stops cleanly by itself; a window just closes
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return COMMANDS[args.command].run(args)
    except RavasError as err:
        print(f"ravasd: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("ravasd: interrupted", file=sys.stderr)
        return 130
