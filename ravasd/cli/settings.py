"""``ravasd settings``: the settings window."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """``ravasd settings``: its arguments (and sub-commands)."""
    stg = sub.add_parser(
        "settings",
        help="open the settings window (camera, microphone, avatar, voice, general)",
        description="A window to pick camera, microphone, avatar and voice, hear your converted "
        "voice and see what the call sees. It talks to the running daemon and offers "
        "to start it. Needs a display and the gui extra (PySide6).",
    )
    stg.add_argument(
        "--page", choices=["Camera", "Microphone", "Avatar", "Voice", "General"], help="the page to open on"
    )


def run(args: argparse.Namespace) -> int:
    from ..gui import open_settings

    return open_settings(args.page)
