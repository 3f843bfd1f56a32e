"""RAVAS in the desktop: ``ravasd`` on PATH, an applications-menu entry and the app icon.

``ravasd desktop install`` (run by ``./bootstrap.sh run``) makes what a user of a desktop app
expects after installing one, for this user only:

* ``~/.local/bin/ravasd`` → this installation's ``ravasd`` (a symlink; an existing file that is not
  ours is left alone and reported), with a note when that folder is not on PATH;
* ``$XDG_DATA_HOME/applications/org.ravas.ravasd.desktop`` (menu entry with Settings / Pause / Resume / Quit
  actions) and the icon in the hicolor theme (SVG + 256 px PNG).

Linux/BSD desktops only (freedesktop.org); a macOS or Windows build (PyInstaller, ``BUILD.md``)
brings its own app bundle / shortcut. Files are written atomically; ``remove`` undoes it all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .. import assets
from ..errors import RavasError
from ..paths import atomic_write_text
from .autostart import command, desktop_exec
from .tray import icon_image

APP_ID = "org.ravas.ravasd"


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def bin_dir() -> Path:
    return Path.home() / ".local" / "bin"


def menu_entry() -> Path:
    return _data_home() / "applications" / f"{APP_ID}.desktop"


def icon_files() -> list[Path]:
    hicolor = _data_home() / "icons" / "hicolor"
    return [hicolor / "scalable" / "apps" / f"{APP_ID}.svg", hicolor / "256x256" / "apps" / f"{APP_ID}.png"]


def launcher() -> Path | None:
    """This installation's ``ravasd`` executable (venv/pipx script or frozen build), or None."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable)
    exe = Path(sys.executable).with_name("ravasd.exe" if sys.platform == "win32" else "ravasd")
    return exe if exe.is_file() else None


def _supported(platform: str) -> None:
    if platform == "darwin" or platform == "win32":
        raise RavasError(
            f"`ravasd desktop` makes freedesktop.org menu entries, which {platform} does not use.",
            "use the app built by PyInstaller (BUILD.md), which brings its own entry.",
        )


def install_icon() -> list[Path]:
    """Write the app icon into the user's hicolor theme; returns the files written."""
    svg, png = icon_files()
    atomic_write_text(svg, assets.path("service", "ravasd.svg").read_text())
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".{png.name}.tmp")
    icon_image("running", 256).save(tmp, "PNG")
    tmp.replace(png)
    return [svg, png]


def _link_on_path() -> str:
    exe = launcher()
    if exe is None:
        return "PATH: no ravasd executable found beside this Python; not linked."
    link = bin_dir() / "ravasd"
    if link.is_symlink() or not link.exists():
        if not (link.is_symlink() and Path(os.readlink(link)) == exe):  # ours already: leave it
            link.parent.mkdir(parents=True, exist_ok=True)
            tmp = link.with_name(".ravasd.link")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(exe)
            tmp.replace(link)
        where = f"PATH: {link} → {exe}"
    elif link.resolve() == exe.resolve():
        where = f"PATH: {link} is this installation"
    else:
        return f"PATH: {link} exists and is not a link to this installation; left as it is."
    folders = [Path(p).expanduser() for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    if link.parent not in folders:
        where += (
            f". Note: {link.parent} is not on your PATH yet; most desktops add it at the next login, "
            f'or add `export PATH="$HOME/.local/bin:$PATH"` to ~/.profile.'
        )
    return where


def install(link: bool = True, platform: str | None = None) -> list[str]:
    """Install the menu entry, the icon and (``link``) the PATH link; one line per thing done."""
    _supported(platform or sys.platform)
    exe = launcher()
    run = [str(exe), "run"] if exe else command("run")
    ctl = [str(exe), "ctl"] if exe else command("ctl")
    settings = [str(exe), "settings"] if exe else command("settings")
    text = (
        assets.path("service", f"{APP_ID}.desktop.in")
        .read_text()
        .replace("{exec}", desktop_exec(run))
        .replace("{ctl}", desktop_exec(ctl))
        .replace("{settings}", desktop_exec(settings))
        .replace("{tryexec}", desktop_exec(run[:1]))
    )
    atomic_write_text(menu_entry(), text)
    lines = [f"menu entry: {menu_entry()}", "icon: " + ", ".join(str(p) for p in install_icon())]
    if shutil.which("update-desktop-database"):
        subprocess.run(["update-desktop-database", str(menu_entry().parent)], capture_output=True)
    if link:
        lines.append(_link_on_path())
    return lines


def remove(platform: str | None = None) -> list[str]:
    """Remove what :func:`install` made (a PATH link only if it points at this installation)."""
    _supported(platform or sys.platform)
    removed = [p for p in (menu_entry(), *icon_files()) if p.exists()]
    for p in removed:
        p.unlink()
    link, exe = bin_dir() / "ravasd", launcher()
    if link.is_symlink() and exe is not None and Path(os.readlink(link)) == exe:
        link.unlink()
        removed.append(link)
    return [f"removed {p}" for p in removed] or ["nothing to remove"]


def status() -> dict[str, object]:
    link = bin_dir() / "ravasd"
    return {
        "menu_entry": str(menu_entry()) if menu_entry().exists() else None,
        "icon": [str(p) for p in icon_files() if p.exists()],
        "on_path": str(link) if link.exists() else shutil.which("ravasd"),
    }
