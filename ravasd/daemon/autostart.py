"""Start ``ravasd`` at login: XDG autostart / systemd --user (Linux), LaunchAgent (macOS),
HKCU Run key (Windows). Templates ship in the package (``bundled/service``); files are written
atomically."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from .. import assets
from ..errors import RavasError
from ..paths import atomic_write_text

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "RAVAS"


def _template(name: str) -> str:
    path = assets.path("service", name)
    if not path.exists():
        raise RavasError(
            f"autostart template {path} is missing from the installed package.",
            "reinstall ravasd (`pipx reinstall ravasd` or `pip install --force-reinstall ravasd`).",
        )
    return path.read_text()


def command(*args: str) -> list[str]:
    """The command line that runs ``ravasd ARGS`` (default ``run``) with this installation: this
    Python with ``-m ravasd``, or the executable itself in a frozen (PyInstaller) build."""
    args = args or ("run",)
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "ravasd", *args]


def spawn_detached(*args: str, log_path: Path | None = None) -> subprocess.Popen:
    """Start ``ravasd ARGS`` in its own session (closing the caller never stops it), stdin closed,
    output appended to ``log_path`` (0600; created) or inherited. Called by the tray and the window."""
    kwargs: dict = (
        {"start_new_session": True}
        if os.name == "posix"
        else {"creationflags": getattr(subprocess, "DETACHED_PROCESS", 0)}
    )
    if log_path is None:
        return subprocess.Popen(command(*args), stdin=subprocess.DEVNULL, **kwargs)
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(log_path, "ab") as log:
        return subprocess.Popen(command(*args), stdin=subprocess.DEVNULL, stdout=log, stderr=log, **kwargs)


def desktop_exec(args: list[str]) -> str:
    """``args`` as a freedesktop.org ``Exec=`` value: arguments with reserved characters go in double
    quotes (with ``"`$\\`` escaped), and ``%`` is doubled (it starts a field code there)."""
    out = []
    for a in args:
        a = a.replace("%", "%%")
        if not a or any(c in a for c in " \t\n\"'\\><~|&;$*?#()`"):
            a = '"' + "".join("\\" + c if c in '"`$\\' else c for c in a) + '"'
        out.append(a)
    return " ".join(out)


def _xdg_config() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def desktop_file() -> Path:
    return _xdg_config() / "autostart" / "ravasd.desktop"


def systemd_unit() -> Path:
    return _xdg_config() / "systemd" / "user" / "ravasd.service"


def launch_agent() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / "org.ravas.ravasd.plist"


def _winreg():  # pragma: no cover - replaced by a fake in tests
    import winreg  # Windows only

    return winreg


def enable(systemd: bool = False, platform: str | None = None) -> str:
    """Install autostart; returns a one-line description of what was written."""
    platform = platform or sys.platform
    cmd = command()
    if platform.startswith("linux"):
        exec_line = " ".join(shlex.quote(c) for c in cmd)
        if systemd:
            atomic_write_text(systemd_unit(), _template("ravasd.service.in").replace("{exec}", exec_line))
            if shutil.which("systemctl"):
                subprocess.run(["systemctl", "--user", "daemon-reload"], capture_output=True)
                subprocess.run(["systemctl", "--user", "enable", "ravasd.service"], capture_output=True)
            return f"systemd user unit written to {systemd_unit()}"
        atomic_write_text(desktop_file(), _template("ravasd.desktop.in").replace("{exec}", desktop_exec(cmd)))
        return f"autostart entry written to {desktop_file()}"
    if platform == "darwin":
        args = "\n".join(f"    <string>{escape(c)}</string>" for c in cmd)
        atomic_write_text(launch_agent(), _template("org.ravas.ravasd.plist.in").replace("{args}", args))
        return f"LaunchAgent written to {launch_agent()}"
    if platform == "win32":
        wr = _winreg()
        exe = cmd[0].replace("python.exe", "pythonw.exe")  # no console window at login
        value = subprocess.list2cmdline([exe, *cmd[1:]])
        with wr.OpenKey(wr.HKEY_CURRENT_USER, RUN_KEY, 0, wr.KEY_SET_VALUE) as key:
            wr.SetValueEx(key, RUN_VALUE, 0, wr.REG_SZ, value)
        return rf"HKCU\{RUN_KEY}\{RUN_VALUE} set"
    raise RavasError(f"autostart is not supported on {platform}.")


def disable(platform: str | None = None) -> str:
    platform = platform or sys.platform
    removed = []
    if platform.startswith("linux"):
        for path in (desktop_file(), systemd_unit()):
            if path.exists():
                if path == systemd_unit() and shutil.which("systemctl"):
                    subprocess.run(["systemctl", "--user", "disable", "ravasd.service"], capture_output=True)
                path.unlink()
                removed.append(str(path))
    elif platform == "darwin":
        if launch_agent().exists():
            launch_agent().unlink()
            removed.append(str(launch_agent()))
    elif platform == "win32":
        wr = _winreg()
        with wr.OpenKey(wr.HKEY_CURRENT_USER, RUN_KEY, 0, wr.KEY_SET_VALUE) as key:
            try:
                wr.DeleteValue(key, RUN_VALUE)
                removed.append(RUN_VALUE)
            except FileNotFoundError:
                pass
    return ("removed " + ", ".join(removed)) if removed else "autostart was not enabled"


def status(platform: str | None = None) -> dict[str, Any]:
    platform = platform or sys.platform
    if platform.startswith("linux"):
        files = [p for p in (desktop_file(), systemd_unit()) if p.exists()]
        return {"enabled": bool(files), "where": [str(p) for p in files]}
    if platform == "darwin":
        return {"enabled": launch_agent().exists(), "where": [str(launch_agent())] if launch_agent().exists() else []}
    if platform == "win32":
        wr = _winreg()
        try:
            with wr.OpenKey(wr.HKEY_CURRENT_USER, RUN_KEY, 0, wr.KEY_READ) as key:
                value, _ = wr.QueryValueEx(key, RUN_VALUE)
            return {"enabled": True, "where": [value]}
        except FileNotFoundError:
            return {"enabled": False, "where": []}
    return {"enabled": False, "where": []}
