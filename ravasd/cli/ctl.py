"""``ravasd ctl``: one action per verb of the control protocol (ravasd.daemon.protocol)."""

from __future__ import annotations

import argparse
import base64
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from .. import paths
from ..daemon.control import format_status, request
from ..errors import RavasError

#: What ``ravasd ctl`` adds to a verb of the control protocol: its command-line arguments. The verbs,
#: their help and their request arguments are ravasd.daemon.protocol's; "frame" and "converter" are
#: for the settings window (the picture in its preview; ``ctl avatar`` takes converter names too).
CTL_ARGS: dict[str, list[tuple[tuple, dict]]] = {
    "status": [(("--json",), {"action": "store_true"})],
    "voice": [(("name",), {"metavar": "NAME"})],
    "avatar": [(("name",), {"metavar": "NAME"})],
    "preview": [(("state",), {"choices": ["on", "off"]})],
    "snapshot": [(("file",), {"metavar": "FILE.png"})],
    "devices": [(("--json",), {"action": "store_true"})],
    "set": [
        (("key",), {"metavar": "KEY"}),
        (("value",), {"metavar": "VALUE", "help": "parsed like YAML: 10, null, true, '#88aacc'"}),
    ],
    "level": [(("--json",), {"action": "store_true"})],
    "sample": [
        (("file",), {"metavar": "FILE.wav"}),
        (("--seconds",), {"type": float, "default": 3.0, "help": "0.5..15 (default 3)"}),
    ],
    "config": [(("--json",), {"action": "store_true"})],
}


CTL_HIDDEN = ("frame", "converter")


def register(sub) -> None:
    """``ravasd ctl``: one action per verb of the control protocol."""
    from ..daemon.protocol import VERBS

    ctl = sub.add_parser(
        "ctl",
        help="control the running daemon",
        description="Talk to the running daemon over its owner-only control socket.",
    )
    ctl_sub = ctl.add_subparsers(dest="ctl_command", metavar="ACTION", required=True)
    for verb in VERBS.values():
        if verb.name in CTL_HIDDEN:
            continue
        action = ctl_sub.add_parser(verb.name, help=verb.help)
        for flags, kw in CTL_ARGS.get(verb.name, []):
            action.add_argument(*flags, **kw)


def run(args: argparse.Namespace) -> int:
    c = args.ctl_command
    extra: dict[str, Any] = {}
    if c in ("avatar", "voice"):
        extra["name"] = args.name
    if c == "preview":
        extra["on"] = args.state == "on"
    if c == "set":
        extra.update(key=args.key, value=args.value)
    if c == "sample":
        extra["seconds"] = args.seconds
    out_file = Path(args.file) if c in ("snapshot", "sample") else None
    if out_file is not None and not out_file.parent.is_dir():
        raise RavasError(f"{out_file}: the folder {out_file.parent} does not exist.", "create it or pick another path.")
    if c == "snapshot" and out_file.suffix.lower() != ".png":
        raise RavasError(f"{out_file}: snapshots are PNG files.", "name the file *.png.")
    reply = request(c, **extra)  # the verb's own timeout (protocol.VERBS)
    if not reply.get("ok"):
        raise RavasError(f"ravasd refused '{c}': {reply.get('error', 'unknown error')}")
    if c == "status":
        st = reply["status"]
        if args.json:
            print(json.dumps(st, indent=2))
        else:
            print(format_status(st))
            print(
                f"voice: {st['voice']} | video: {st['video_converter']} | RAVAS Mic: "
                f"{st.get('virtual_mic') or 'none'} | camera sink: {st.get('video_sink')}"
            )
    elif c == "snapshot":
        paths.atomic_write_bytes(out_file, base64.b64decode(reply["image"]))
        kind = "placeholder card" if reply["placeholder"] else "anonymized frame"
        print(f"wrote {out_file} ({reply['width']}×{reply['height']}, {kind}, {reply['age_s']:.1f} s old)")
    elif c == "sample":
        shutil.copyfile(reply["path"], out_file)
        Path(reply["path"]).unlink(missing_ok=True)
        print(f"wrote {out_file} ({args.seconds:g} s of the converted voice)")
    elif c == "devices":
        if args.json:
            print(json.dumps({"devices": reply["devices"], "current": reply["current"]}, indent=2))
        else:
            cur, dev = reply["current"], reply["devices"]
            print(
                f"camera in use: {cur['camera']!r} ({cur['video_source']}); "
                f"microphone in use: {cur['input_device'] if cur['input_device'] is not None else 'default'} "
                f"({cur['audio_source']})"
            )
            for cam in dev.get("cameras", []):
                print(f"  camera {cam['index']}: {cam['name']} ({cam['path']})")
            for src in (dev.get("pulse") or {}).get("sources", []):
                print(f"  microphone {src['name']}: {src['description']}")
    elif c == "config":
        print(
            json.dumps(reply["config"], indent=2)
            if args.json
            else yaml.safe_dump(reply["config"], sort_keys=False, allow_unicode=True),
            end="\n" if args.json else "",
        )
    elif c == "set":
        how = reply["applied"]
        print(f"{args.key} = {args.value} ({'applied now' if how == 'live' else how}; saved)")
    elif c == "level":
        if args.json:
            print(json.dumps({k: reply[k] for k in ("mic_db", "voice_level")}))
        else:
            print(f"microphone {reply['mic_db']:.0f} dBFS | converted voice level {reply['voice_level']:.3f}")
    else:
        print(f"ok: {c}")
    return 0
