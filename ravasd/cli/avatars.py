"""``ravasd avatars``: list or add avatars."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from .common import table


def register(sub) -> None:
    """``ravasd avatars``: its arguments (and sub-commands)."""
    av = sub.add_parser("avatars", help="list or add avatars")
    av_sub = av.add_subparsers(dest="avatars_command", metavar="ACTION", required=True)
    al = av_sub.add_parser("list", help="name, file, format, ARKit coverage, licence")
    al.add_argument("--json", action="store_true")
    aa = av_sub.add_parser("add", help="validate a .glb/.vrm and copy it into your avatar folder")
    aa.add_argument("file", type=Path, metavar="FILE")
    aa.add_argument("--force", action="store_true", help="replace an avatar of the same name")


def run(args: argparse.Namespace) -> int:
    from ..video.avatar import library

    if args.avatars_command == "add":
        dest = library.add(args.file, force=args.force)
        info = library.describe(dest.stem, dest)
        print(f"added {info.name} ({info.format}, {info.coverage}/52 ARKit shapes) → {dest}")
        from ..video.avatar.thumbnail import thumbnail  # the settings window's gallery picture, made now

        thumbnail(dest.stem)
        return 0
    rows = [asdict(i) for i in library.list_avatars()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table(
        [
            {
                "name": r["name"],
                "format": r["format"],
                "arkit": f"{r['coverage']}/52",
                "licence": r["licence"] or "-",
                "file": r["file"] + (f"  ERROR: {r['error']}" if r["error"] else ""),
            }
            for r in rows
        ],
        False,
    )
    return 0
