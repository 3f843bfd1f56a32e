"""``ravasd config``: show or change the configuration."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from .. import config, paths


def register(sub) -> None:
    """``ravasd config``: its arguments (and sub-commands)."""
    cfgp = sub.add_parser("config", help="show or change the configuration")
    csub = cfgp.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    csub.add_parser("path", help="print the user config file's path")
    show = csub.add_parser("show", help="print the effective configuration as YAML")
    show.add_argument("--config", metavar="FILE", type=Path)
    cset = csub.add_parser("set", help="validate and store one setting (atomic write)")
    cset.add_argument("key", metavar="KEY", help="section.key, e.g. audio.voice")
    cset.add_argument("value", metavar="VALUE", help="YAML value, e.g. 10, true, null, name")
    csub.add_parser("reference", help="print the reference of all settings (Markdown)")


def run(args: argparse.Namespace) -> int:
    if args.config_command == "path":
        print(paths.config_file())
    elif args.config_command == "show":
        cfg = config.load_config(args.config)
        print(yaml.safe_dump(config.to_dict(cfg), sort_keys=False), end="")
    elif args.config_command == "set":
        from ..name_checks import check_names

        path = config.save_user_setting(args.key, config.parse_value(args.value), check=check_names)
        print(f"{args.key} = {args.value!s} saved to {path}")
    else:
        print(config.reference(), end="")
    return 0
