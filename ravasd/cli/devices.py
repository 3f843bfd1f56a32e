"""``ravasd devices``: cameras, microphones, outputs, virtual devices."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    """``ravasd devices``: its arguments (and sub-commands)."""
    dev = sub.add_parser("devices", help="list cameras, microphones, outputs and virtual devices")
    dev.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..devices.listing import list_all

    info = list_all()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("Cameras:")
    for c in info["cameras"] or [{"index": "-", "name": "(none found)", "path": "", "virtual": False}]:
        print(f"  {c['index']}  {c['name']}  {c['path'] or ''}{'  [virtual]' if c['virtual'] else ''}")
    for key, title in (("inputs", "Microphones (PortAudio)"), ("outputs", "Outputs (PortAudio)")):
        print(f"{title}:")
        for d in info[key] or [{"index": "-", "name": "(none found)", "hostapi": "", "rate": ""}]:
            print(f"  {d['index']}  {d['name']}  {d['hostapi']} {d['rate']}")
    if info["pulse"] is not None:
        for key in ("sources", "sinks"):
            print(f"PulseAudio {key}:")
            for d in info["pulse"][key] or [{"name": "(none)", "description": ""}]:
                print(f'  {d["name"]}  "{d["description"]}"')
    v = info["virtual"]
    print(f"RAVAS Camera: {v['camera'] or 'not found'}")
    print(f"RAVAS Mic: {v['mic'] or 'not found'}")
    return 0
