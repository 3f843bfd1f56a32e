"""``ravasd run``: start the daemon."""

from __future__ import annotations

import argparse

from .. import logs
from .common import common_config_args, level, load, seconds


def register(sub) -> None:
    """``ravasd run``: its arguments (and sub-commands)."""
    run = sub.add_parser(
        "run",
        help="start the daemon (the default command)",
        description="Start the daemon: camera/mic (or the demo source) → anonymizers → "
        "virtual camera/mic (or the sinks that exist).",
    )
    common_config_args(run)
    run.add_argument("--video-source", choices=["auto", "camera", "demo", "file"])
    run.add_argument("--audio-source", choices=["auto", "mic", "demo", "file"])
    run.add_argument("--camera", metavar="INDEX|PATH", help="camera index or device path (video.camera)")
    run.add_argument("--mic", metavar="NAME|INDEX", help="microphone (audio.input_device)")
    run.add_argument("--input", metavar="FILE", help="play a media file as camera+mic (sets both sources to file)")
    run.add_argument("--record", metavar="FILE", help="record the anonymized output to FILE (.mp4 or .wav)")
    run.add_argument("--video-sink", choices=["auto", "virtual", "file", "preview", "null"])
    run.add_argument("--audio-sink", choices=["auto", "virtual", "device", "file", "null"])
    run.add_argument("--no-video", action="store_true", help="run the voice pipeline only")
    run.add_argument("--no-audio", action="store_true", help="run the video pipeline only")
    run.add_argument(
        "--duration",
        type=seconds,
        metavar="SECONDS",
        help="stop after this many seconds of running streams (start-up not counted)",
    )
    tray = run.add_mutually_exclusive_group()
    tray.add_argument(
        "--no-tray",
        dest="tray",
        action="store_false",
        default=None,
        help="no tray icon (headless; control with `ravasd ctl`)",
    )
    tray.add_argument("--tray", dest="tray", action="store_true", help="require the tray icon")


def run(args: argparse.Namespace) -> int:
    from ..daemon.service import run as run_daemon

    cfg = load(args)
    logs.setup(level(args), "ravasd.log")
    return run_daemon(cfg, duration=args.duration, tray=args.tray)
