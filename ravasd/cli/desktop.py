"""``ravasd desktop``: the applications-menu entry and ravasd on PATH."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """``ravasd desktop``: its arguments (and sub-commands)."""
    dsk = sub.add_parser(
        "desktop",
        help="put RAVAS in the applications menu and ravasd on PATH (Linux)",
        description="Install, for this user, an applications-menu entry (with Pause/Resume/Quit "
        "actions), the app icon, and a ~/.local/bin/ravasd link to this installation.",
    )
    dsk_sub = dsk.add_subparsers(dest="desktop_command", metavar="ACTION", required=True)
    di = dsk_sub.add_parser("install", help="write the menu entry and icon, link ravasd into ~/.local/bin")
    di.add_argument("--no-link", action="store_true", help="do not link ~/.local/bin/ravasd")
    dsk_sub.add_parser("remove", help="remove them again")
    dsk_sub.add_parser("status", help="show what is installed")


def run(args: argparse.Namespace) -> int:
    from ..daemon import desktop

    if args.desktop_command == "install":
        print("\n".join(desktop.install(link=not args.no_link)))
    elif args.desktop_command == "remove":
        print("\n".join(desktop.remove()))
    else:
        st = desktop.status()
        print(f"menu entry: {st['menu_entry'] or 'not installed'}")
        print(f"icon: {', '.join(st['icon']) or 'not installed'}")
        print(f"ravasd on PATH: {st['on_path'] or 'no'}")
    return 0
