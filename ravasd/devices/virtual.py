"""Virtual devices RAVAS publishes to, as per-OS backends in registries (pyvirtualcam style).

Each registry is tried in order on the current platform; the first backend that opens wins, and
if none does, one :class:`DeviceError` lists every backend's failure and fix.

Backend obligations:

* ``open()`` is called once per daemon start, in the main process. It must raise
  :class:`DeviceError` (with the fix) when unavailable, and must leave nothing behind then.
* ``close()`` removes whatever ``open()`` created; idempotent; never raises.
* Capability flags: ``creates_device`` (the app makes the device itself, no driver to install)
  and ``needs_driver`` (a one-time install, see ``drivers/``).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import assets
from ..errors import DeviceError
from . import pulse

log = logging.getLogger(__name__)

MIC_NAME = "RAVAS Mic"
CAMERA_LABEL = "RAVAS Camera"


@dataclass(frozen=True)
class MicEndpoint:
    """Where the audio worker writes: a PortAudio ``device`` and, on Pulse, the sink to route to."""

    backend: str
    device: str | int | None
    pulse_sink: str | None
    shown_as: str  # what call apps list as the microphone


# ------------------------------------------------------------------------------ microphone
def owner_token(pid: int | None = None) -> str:
    """Who made a sound-server module: ``host:uid:pid:boot`` (no spaces or quotes: it sits inside a
    module argument). ``boot`` tells a module of a previous boot from one of this boot."""

    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = "0"
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-.")[:40] or "host"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return f"{host}:{uid}:{os.getpid() if pid is None else pid}:{boot}"


def owner_alive(token: str) -> bool | None:
    """True when the ravasd that ``token`` names still runs, False when it provably does not (same
    host and boot, and that pid is gone or is not a ravasd), None when it cannot be known (another
    host, no token)."""
    try:
        host, uid, pid, boot = token.split(":")
        pid_n = int(pid)
    except ValueError:
        return None
    mine_host, _, _, mine_boot = owner_token().split(":")
    if host != mine_host:
        return None
    if boot != mine_boot:
        return False  # made before this machine last booted
    try:
        cmdline = Path(f"/proc/{pid_n}/cmdline").read_bytes()
    except OSError:
        return False
    return b"ravasd" in cmdline


class PulseVirtualMic:
    """Linux: a null sink we write into, whose monitor is re-exposed as the source "RAVAS Mic".

    Works with PulseAudio and PipeWire-pulse; when ``module-remap-source`` is missing (some
    PipeWire versions) ``module-virtual-source`` is used instead. Every module carries an owner
    token (:func:`owner_token`) in its properties: only modules whose owner is provably dead are
    cleaned up, a RAVAS Mic of a running ravasd is never touched (a second daemon gets none), and
    ``close()`` unloads exactly the modules with this daemon's token — module indices are looked up
    each time, never kept across a sound-server restart. :meth:`healthy` / :meth:`reopen` let the
    daemon re-create RAVAS Mic when the server restarted or the sink vanished.
    """

    name = "pulse"
    platforms = ("linux",)
    creates_device = True
    needs_driver = False
    SINK = "ravas_mic_sink"
    SOURCE = "ravas_mic"

    def __init__(self) -> None:
        self.token = owner_token()

    def _ours(self) -> list[tuple[int, str, str]]:
        """Loaded modules that are RAVAS Mic's (any owner): (index, owner token or "", argument)."""
        out = []
        for idx, _, arg in pulse.list_modules():
            if f"sink_name={self.SINK} " in f"{arg} " or f"source_name={self.SOURCE} " in f"{arg} ":
                m = re.search(r"ravas\.owner=([^\s'\"]+)", arg)
                out.append((idx, m.group(1) if m else "", arg))
        return out

    def existing_owner(self) -> str | None:
        """The owner token of a RAVAS Mic made by another, running (or unknowable) ravasd, or None."""
        for _, owner, _ in self._ours():
            if owner != self.token and owner_alive(owner) is not False:
                return owner or "unknown"
        return None

    def open(self) -> MicEndpoint:
        info = pulse.server_info()
        if info is None:
            raise DeviceError(
                "no PulseAudio or PipeWire server answers (pactl info failed)",
                "start your desktop's sound server (pipewire-pulse or pulseaudio); "
                "`sudo apt install pulseaudio-utils` provides pactl.",
            )
        self.remove_stale()
        other = self.existing_owner()
        if other is not None:
            pid = other.split(":")[2] if other.count(":") == 3 else "?"
            indices = " ".join(str(i) for i, o, _ in self._ours() if o == (other if other != "unknown" else ""))
            raise DeviceError(
                f"RAVAS Mic already exists on this sound server, made by another ravasd (pid {pid})",
                "use that one, or stop it (`ravasd ctl quit` with its RAVAS_HOME); modules left "
                f"by an older version go with `pactl unload-module {indices or 'N'}`.",
            )
        self._load()
        log.info("created %s on %s", MIC_NAME, info.get("server_name", "pulse"))
        return MicEndpoint(self.name, "pulse", self.SINK, MIC_NAME)

    def _load(self) -> None:
        sink_props = (
            f"sink_properties=\"device.description='RAVAS Mic (feed)' device.class=abstract ravas.owner={self.token}\""
        )
        pulse.load_module(
            "module-null-sink", f"sink_name={self.SINK}", "rate=48000", "channels=1", "channel_map=mono", sink_props
        )
        src_props = (
            f"source_properties=\"device.description='{MIC_NAME}' device.icon_name=audio-input-microphone "
            f'ravas.owner={self.token}"'
        )
        errors = []
        for module in ("module-remap-source", "module-virtual-source"):
            try:
                pulse.load_module(
                    module,
                    f"source_name={self.SOURCE}",
                    f"master={self.SINK}.monitor",
                    "channels=1",
                    "channel_map=mono",
                    src_props,
                )
                return
            except DeviceError as err:
                errors.append(err.message)
        self.close()
        raise DeviceError(
            "cannot create the RAVAS Mic source: " + "; ".join(errors),
            "update PulseAudio/PipeWire (module-remap-source or module-virtual-source needed).",
        )

    def healthy(self) -> bool:
        """Whether this daemon's sink and source are loaded on the server that answers now."""
        mine = [arg for _, owner, arg in self._ours() if owner == self.token]
        return any(f"sink_name={self.SINK}" in a for a in mine) and any(f"source_name={self.SOURCE}" in a for a in mine)

    def reopen(self) -> None:
        """Re-create RAVAS Mic after a sound-server restart (what is left of ours is unloaded first)."""
        self.close()
        if pulse.server_info() is None:
            raise DeviceError("the sound server does not answer")
        if self.existing_owner() is not None:
            raise DeviceError("another ravasd made RAVAS Mic meanwhile")
        self._load()
        log.info("re-created %s", MIC_NAME)

    def remove_stale(self) -> int:
        """Unload RAVAS modules whose owner is provably gone (a crashed run); returns how many."""
        stale = [idx for idx, owner, _ in self._ours() if owner and owner != self.token and owner_alive(owner) is False]
        for idx in sorted(stale, reverse=True):  # the source before the sink it reads from
            pulse.unload_module(idx)
        if stale:
            log.info("removed %d stale RAVAS audio modules", len(stale))
        return len(stale)

    def close(self) -> None:
        try:
            for idx in sorted((i for i, owner, _ in self._ours() if owner == self.token), reverse=True):
                pulse.unload_module(idx)
        except Exception:
            pass


def is_microphone(source: str) -> bool:
    """Whether sound-server source ``source`` is something a person speaks into: not the monitor of an
    output, and not RAVAS Mic itself (converting our own output would feed it back)."""
    return bool(source) and not source.endswith(".monitor") and not source.startswith(PulseVirtualMic.SOURCE)


class NamedOutputMic:
    """macOS/Windows: a virtual cable installed once; RAVAS plays into its output side by name."""

    creates_device = False
    needs_driver = True

    def __init__(self, name: str, platforms: tuple[str, ...], output_name: str, shown_as: str, fix: str) -> None:
        self.name, self.platforms, self.output_name, self.shown_as, self.fix = (
            name,
            platforms,
            output_name,
            shown_as,
            fix,
        )

    def open(self) -> MicEndpoint:
        import sounddevice as sd  # PortAudio is a system library: loaded only where a cable is looked up

        for d in sd.query_devices():
            if self.output_name.lower() in d["name"].lower() and d["max_output_channels"] > 0:
                return MicEndpoint(self.name, d["index"], None, self.shown_as)
        raise DeviceError(f"no output device named '{self.output_name}'", self.fix)

    def close(self) -> None:
        pass


MIC_BACKENDS: list[Callable[[], object]] = [
    PulseVirtualMic,
    lambda: NamedOutputMic(
        "blackhole",
        ("darwin",),
        "BlackHole 2ch",
        "BlackHole 2ch",
        "install BlackHole 2ch (`brew install blackhole-2ch`), see drivers/macos/README.md.",
    ),
    lambda: NamedOutputMic(
        "vb-cable",
        ("win32",),
        "CABLE Input",
        "CABLE Output",
        "install VB-CABLE from vb-audio.com, see drivers/windows/README.md.",
    ),
]


def _platform_matches(backend: object, platform: str) -> bool:
    return any(platform.startswith(p) for p in getattr(backend, "platforms", ()))


def open_virtual_mic(platform: str | None = None) -> tuple[object, MicEndpoint]:
    """Open the first virtual-mic backend that works here; returns (backend, endpoint)."""
    platform = platform or sys.platform
    errors, fixes = [], []
    for make in MIC_BACKENDS:
        backend = make()
        if not _platform_matches(backend, platform):
            continue
        try:
            return backend, backend.open()  # type: ignore[attr-defined]
        except DeviceError as err:
            errors.append(f"'{backend.name}' backend: {err.message}")  # type: ignore[attr-defined]
            if err.fix:
                fixes.append(err.fix)
    if not errors:
        raise DeviceError(f"no virtual microphone backend for platform {platform}.")
    raise DeviceError("RAVAS Mic is not available — " + " | ".join(errors), " / ".join(fixes) or None)


# ------------------------------------------------------------------------------ camera
@dataclass(frozen=True)
class CameraBackend:
    name: str  # pyvirtualcam backend name
    platforms: tuple[str, ...]
    needs_driver: bool
    fix: str
    find: Callable[[], str | None] = lambda: None  # device to pass to pyvirtualcam (None = its default)


def setup_script() -> str:
    """The bundled script that loads v4l2loopback with our label (``drivers/linux`` in the package)."""
    return str(assets.path("drivers", "linux", "setup-v4l2loopback.sh"))


def find_v4l2_device(label: str = CAMERA_LABEL, sysfs: str = "/sys/class/video4linux") -> str | None:
    """The /dev/videoN whose v4l2loopback card label is ``label``, or None."""
    for name_file in sorted(glob.glob(f"{sysfs}/video*/name")):
        if Path(name_file).read_text().strip() == label:
            return f"/dev/{Path(name_file).parent.name}"
    return None


def _v4l2_find() -> str:
    dev = find_v4l2_device()
    if dev is None:
        raise DeviceError(
            f'no v4l2loopback device labelled "{CAMERA_LABEL}"',
            f'run `sudo sh {setup_script()}` once (loads v4l2loopback with card_label="{CAMERA_LABEL}").',
        )
    return dev


CAMERA_BACKENDS: list[CameraBackend] = [
    CameraBackend(
        "v4l2loopback",
        ("linux",),
        True,
        f'run `sudo sh {setup_script()}` once (loads v4l2loopback as /dev/video10 labelled "{CAMERA_LABEL}").',
        _v4l2_find,
    ),
    CameraBackend(
        "obs",
        ("darwin", "win32"),
        True,
        "install OBS Studio and start its Virtual Camera once (drivers/macos or drivers/windows).",
    ),
    CameraBackend("unitycapture", ("win32",), True, "install Unity Capture (drivers/windows/README.md)."),
]


def camera_backends(platform: str | None = None) -> list[CameraBackend]:
    """The virtual-camera backends for ``platform`` (default: this one), in the order to try them."""
    platform = platform or sys.platform
    return [b for b in CAMERA_BACKENDS if any(platform.startswith(p) for p in b.platforms)]


def camera_fix(platform: str | None = None) -> str:
    """What to install so that a virtual camera exists on ``platform``."""
    return " / ".join(b.fix for b in camera_backends(platform)) or "no virtual camera backend for this OS."


def camera_unavailable(errors: list[str], platform: str | None = None) -> DeviceError:
    """The one error for "no backend opened", listing each backend's failure and the fixes."""
    if not errors:
        return DeviceError(f"no virtual camera backend for platform {platform or sys.platform}.")
    return DeviceError(f"{CAMERA_LABEL} is not available — " + " | ".join(errors), camera_fix(platform))
