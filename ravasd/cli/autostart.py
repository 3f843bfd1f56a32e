"""``ravasd autostart``: start RAVAS at login."""

from __future__ import annotations

import argparse

from ..daemon import autostart


def register(sub) -> None:
    """``ravasd autostart``: its arguments (and sub-commands)."""
    auto = sub.add_parser("autostart", help="start RAVAS at login")
    auto_sub = auto.add_subparsers(dest="autostart_command", metavar="ACTION", required=True)
    en = auto_sub.add_parser("enable", help="install the login item for this user")
    en.add_argument("--systemd", action="store_true", help="Linux: a systemd --user unit instead of XDG autostart")
    auto_sub.add_parser("disable", help="remove it")
    auto_sub.add_parser("status", help="show whether it is installed")


def run(args: argparse.Namespace) -> int:
    if args.autostart_command == "enable":
        print(autostart.enable(systemd=args.systemd))
    elif args.autostart_command == "disable":
        print(autostart.disable())
    else:
        st = autostart.status()
        print(("enabled: " + ", ".join(st["where"])) if st["enabled"] else "disabled")
    return 0
