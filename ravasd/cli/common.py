"""What the command modules share: config arguments and overrides, argparse types, tables, log level."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from ..config import load_config, parse_value
from ..errors import RavasError


def config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", type=Path, help="extra YAML config layered over the user file")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one setting, e.g. --set audio.block_ms=5 (repeatable)",
    )


def common_config_args(p: argparse.ArgumentParser) -> None:
    config_args(p)
    p.add_argument("--voice", metavar="NAME", help="voice converter (audio.voice); see `ravasd voices list`")
    p.add_argument(
        "--video-converter", metavar="NAME", help="video converter (video.converter): avatar, facemask, card"
    )
    p.add_argument("--avatar", metavar="NAME", help="avatar (video.avatar); see `ravasd avatars list`")


def seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 1e7:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {}
    for item in getattr(args, "set", []) or []:
        if "=" not in item:
            raise RavasError(f"--set {item!r}: expected KEY=VALUE, e.g. --set audio.block_ms=5.")
        k, v = item.split("=", 1)
        o[k.strip()] = parse_value(v)
    if getattr(args, "avatar", None) is not None and getattr(args, "command", "") != "render":
        o["video.avatar"] = args.avatar
        o.setdefault("video.converter", "avatar")
    for attr, key in (
        ("voice", "audio.voice"),
        ("video_converter", "video.converter"),
        ("video_source", "video.source"),
        ("audio_source", "audio.source"),
        ("video_sink", "video.sink"),
        ("audio_sink", "audio.sink"),
    ):
        if getattr(args, attr, None) is not None:
            o[key] = getattr(args, attr)
    if getattr(args, "camera", None) is not None:
        o["video.camera"] = parse_value(args.camera)
    if getattr(args, "mic", None) is not None:
        o["audio.input_device"] = parse_value(args.mic)
    if getattr(args, "input", None):
        o.update({"files.input": args.input, "video.source": "file", "audio.source": "file"})
    if getattr(args, "record", None):
        rec = Path(args.record)
        o["files.output"] = str(rec)
        from ..media.formats import VIDEO_OUT

        o["video.sink" if rec.suffix.lower() in VIDEO_OUT else "audio.sink"] = "file"
        if rec.suffix.lower() in VIDEO_OUT:
            o["audio.sink"] = "file"
    if getattr(args, "no_video", False):
        o["video.enabled"] = False
    if getattr(args, "no_audio", False):
        o["audio.enabled"] = False
    return o


def load(args: argparse.Namespace):
    return load_config(getattr(args, "config", None), overrides(args))


def table(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        return
    keys = list(rows[0])
    cell = lambda v: "–" if v is None else str(v)  # noqa: E731  (not measured / not known)
    widths = {k: max(len(k), *(len(cell(r[k])) for r in rows)) for k in keys[:-1]}
    print("  ".join(k.upper().ljust(widths.get(k, 0)) for k in keys).rstrip())
    for r in rows:
        print("  ".join(cell(r[k]).ljust(widths.get(k, 0)) for k in keys).rstrip())


def level(args: argparse.Namespace) -> int:
    return [logging.WARNING, logging.INFO, logging.DEBUG][min(getattr(args, "verbose", 0), 2)]
