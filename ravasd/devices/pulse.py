"""PulseAudio / PipeWire-pulse through ``pactl``: server detection, module load/unload, routing.

Debian's PortAudio has no PulseAudio host API, so a process reaches a given Pulse source/sink
through PortAudio's ALSA ``pulse`` device plus ``PULSE_SOURCE``/``PULSE_SINK`` in its environment
(read when the stream opens). :func:`route` returns that pair.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from typing import Any

from ..errors import DeviceError


def _pactl(*args: str, timeout: float = 5.0) -> subprocess.CompletedProcess:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=timeout)


def server_info() -> dict[str, Any] | None:
    """``pactl info`` as a dict, or None when no server answers (or pactl is missing)."""
    if not shutil.which("pactl"):
        return None
    try:
        r = _pactl("--format=json", "info", timeout=3)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        return None


def list_objects(kind: str) -> list[dict[str, Any]]:
    """``pactl list sources|sinks|modules`` as dicts (empty when no server)."""
    try:
        r = _pactl("--format=json", "list", kind)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if r.returncode != 0:
        return []
    try:
        return json.loads(r.stdout or "[]")
    except json.JSONDecodeError:
        return []


def list_modules() -> list[tuple[int, str, str]]:
    """Loaded modules as (index, name, argument) from ``pactl list short modules``."""
    try:
        r = _pactl("list", "short", "modules")
    except (OSError, subprocess.TimeoutExpired):
        return []
    out = []
    for line in r.stdout.splitlines() if r.returncode == 0 else []:
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].isdigit():
            out.append((int(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
    return out


def load_module(name: str, *args: str) -> int:
    """Load a module; returns its index. Raises :class:`DeviceError` with pactl's message."""
    r = _pactl("load-module", name, *args)
    if r.returncode != 0:
        raise DeviceError(f"pactl load-module {name} failed: {r.stderr.strip() or r.stdout.strip()}.")
    return int(r.stdout.strip())


def unload_module(index: int) -> None:
    _pactl("unload-module", str(index))


def find_source(name: str) -> str | None:
    """The Pulse source whose name or description is ``name`` (monitors excluded)."""
    for s in list_objects("sources"):
        if name == s.get("name") or (name == s.get("description") and not s["name"].endswith(".monitor")):
            return s["name"]
    return None


#: The variables :func:`route` sets: a child process of another sound server must not inherit them.
ROUTING_ENV = ("PULSE_SOURCE", "PULSE_SINK")


def route(kind: str, pulse_name: str) -> str:
    """Point this process's next PortAudio ``pulse`` stream at ``pulse_name``; returns the device."""
    os.environ["PULSE_SOURCE" if kind == "input" else "PULSE_SINK"] = pulse_name
    return "pulse"


class ServerEvents:
    """``pactl subscribe`` in the background: :attr:`poke` is set at every event on one of
    ``kinds`` (pactl's facility names: module, sink, source, source-output, server …), so a caller checks at once instead of
    polling the server. When the server goes away the subscription ends: :attr:`poke` is set and
    :attr:`alive` turns false (subscribe again once the server is back). ``close()`` ends it."""

    def __init__(self, kinds: tuple[str, ...] = ("source",)) -> None:

        self.kinds = kinds
        self.poke = threading.Event()
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                ["pactl", "subscribe"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
        except OSError:
            self.proc = None
            return
        threading.Thread(target=self._read, name="pulse-events", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:  # "Event 'remove' on source-output #12"
            kind = line.partition(" on ")[2].split(" #")[0].strip()
            if kind in self.kinds:
                self.poke.set()
        self.poke.set()  # the server went away (or we closed): whoever waits must look now

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def capture_moved(pid: int, source: str) -> bool:
    """True when a recording stream of process ``pid`` now reads from a source other than
    ``source`` — the server moves streams of a vanished source to another one (a monitor, say)."""
    names = {str(s.get("index")): s.get("name") for s in list_objects("sources")}
    for out in list_objects("source-outputs"):
        props = out.get("properties") or {}
        if str(props.get("application.process.id")) == str(pid):
            if names.get(str(out.get("source"))) not in (source, None):
                return True
    return False
