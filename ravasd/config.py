"""The one typed configuration object, validated at the boundary.

Layers, later wins: built-in defaults ← ``config.yaml`` in the user config dir ← ``--config FILE``
← command-line flags. :func:`load_config` returns a frozen :class:`Config`; everything after the
CLI works with that object only (it pickles, so worker processes receive it whole).

Each field's ``metadata`` holds its help text and its allowed values (``range`` or ``choices``);
``docs/config.md``-style reference text is generated from it by ``ravasd config reference``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union

import yaml

from . import paths
from .errors import ConfigError

#: How the running daemon applies a changed setting (``ravasd ctl set``, the settings window):
LIVE = "live"  # at once: the converter is rebuilt from the new settings, nothing reopens
RESTART = "restarted"  # that stream's worker restarts (a device reopens, the stream resizes): ≈ 1 s of placeholder
NEXT_START = "next start"  # the rest: saved, used when ravasd next starts
APPLY = (LIVE, RESTART, NEXT_START)


def _f(*args: Any, **meta: Any) -> Any:
    """A setting: ``_f([apply,] default, help, **meta)``; ``apply`` (:data:`APPLY`) defaults to next start."""
    apply, (default, help) = (args[0], args[1:]) if len(args) == 3 else (NEXT_START, args)
    if apply not in APPLY:
        raise ValueError(f"apply policy {apply!r} is none of {APPLY}")
    return field(default=default, metadata={"help": help, "apply": apply, **meta})


@dataclass(frozen=True)
class VideoConfig:
    enabled: bool = _f(True, "Run the video pipeline (camera → avatar → RAVAS Camera).")
    source: str = _f(
        RESTART,
        "auto",
        "Where frames come from; auto = camera, else the built-in demo.",
        choices=("auto", "camera", "demo", "file"),
    )
    camera: int | str = _f(RESTART, 0, "Camera index (0, 1, …) or device path (/dev/video0).")
    width: int = _f(RESTART, 1280, "Output width in pixels.", range=(160, 1920))
    height: int = _f(RESTART, 720, "Output height in pixels.", range=(120, 1080))
    fps: int = _f(RESTART, 30, "Output frame rate.", range=(1, 60))
    converter: str = _f(LIVE, "avatar", "Video anonymizer: avatar, facemask or card (see `ravasd converters`).")
    avatar: str = _f(LIVE, "sol", "Avatar name (see `ravasd avatars list`) or path to a .glb/.vrm file.")
    background: str = _f(
        LIVE, "#8cacc4", "Background colour behind the avatar (#rrggbb).", pattern=r"^#[0-9a-fA-F]{6}$"
    )
    background_image: str | None = _f(
        LIVE, None, "Picture behind the avatar (PNG/JPEG; scaled to cover); null = the background colour."
    )
    framing: str = _f(
        LIVE,
        "bust",
        "How the avatar is framed: close (the face fills the frame), bust (head and "
        "shoulders) or wide (down to the chest); the eyes sit a third from the top.",
        choices=("close", "bust", "wide"),
    )
    render_scale: float | str = _f(
        LIVE,
        "auto",
        "Avatar render resolution ÷ output resolution (0.25..1, upscaled "
        "after); auto = 0.75 on a software renderer at ≥ 1280 px wide, else 1.",
        range=(0.25, 1.0),
        choices_or=("auto",),
    )
    sink: str = _f(
        "auto",
        "Where anonymized frames go; auto = the RAVAS Camera when present, else null.",
        choices=("auto", "virtual", "file", "preview", "null"),
    )
    deadline_ms: int = _f(
        RESTART, 250, "Show the placeholder when no anonymized frame is newer than this.", range=(20, 5000)
    )
    detection_log: str | None = _f(None, "Write face-tracking results to this JSON file (RAVAS format).")


@dataclass(frozen=True)
class AudioConfig:
    enabled: bool = _f(True, "Run the voice pipeline (microphone → voice → RAVAS Mic).")
    source: str = _f(
        RESTART,
        "auto",
        "Where audio comes from; auto = default microphone, else the demo.",
        choices=("auto", "mic", "demo", "file"),
    )
    input_device: int | str | None = _f(RESTART, None, "Microphone name or index; null = system default.")
    output_device: int | str | None = _f(None, "Output device name or index for sink=device.")
    sample_rate: int = _f(
        48000,
        "Device sample rate in Hz (voices run at 16/32/48 kHz; other rates are resampled with soxr, +0.3 ms).",
        choices=(16000, 22050, 24000, 32000, 44100, 48000),
    )
    block_ms: int = _f(5, "Audio block length in milliseconds (smaller = lower latency).", range=(5, 200))
    voice: str = _f(LIVE, "tenor", "Voice converter (see `ravasd voices list`).")
    sink: str = _f(
        "auto",
        "Where converted audio goes; auto = the RAVAS Mic when it can be made, else null.",
        choices=("auto", "virtual", "device", "file", "null"),
    )
    deadline_ms: int = _f(RESTART, 60, "Play silence when no converted audio arrived for this long.", range=(10, 1000))
    max_latency_ms: int = _f(
        RESTART, 200, "Buffered audio beyond this is dropped so latency cannot creep.", range=(20, 2000)
    )
    device: str = _f(
        LIVE,
        "cpu",
        "Where the neural voices (Mimi-VC, kNN-VC) run: cpu, auto (the best accelerator "
        "onnxruntime has), cuda, coreml or directml.",
        choices=("cpu", "auto", "cuda", "coreml", "directml"),
    )
    knn_k: int = _f(
        LIVE,
        4,
        "Neural voices: each source frame becomes the mean of its k nearest target frames "
        "(higher = smoother, less like the target's articulation).",
        range=(1, 32),
    )
    pool_seconds: int | None = _f(
        LIVE,
        None,
        "Neural voices: use at most this many seconds of the target's recordings (less = less CPU); null = all.",
        range=(5, 36000),
    )
    knnvc_chunk: int = _f(
        LIVE,
        4800,
        "kNN-VC: samples at 16 kHz per WavLM/HiFi-GAN call, previous context included "
        "(RAVAS's graphs exist for 3200, 4800, 9600).",
        choices=(3200, 3520, 4800, 5120, 9600, 9920),
    )
    knnvc_context: int = _f(
        LIVE,
        3200,
        "kNN-VC: samples of earlier audio (16 kHz) in each chunk, at least the 320 HiFi-GAN's "
        "output stops short of a chunk; the rest is new audio, so chunk − context is the hop "
        "and the look-ahead (3200 of 4800: 100 ms).",
        choices=(320, 1600, 3200, 4800, 8000),
    )


@dataclass(frozen=True)
class FilesConfig:
    input: str | None = _f(None, "Media file played as source when video/audio source = file.")
    output: str | None = _f(None, "Recording written when video/audio sink = file (.mp4 / .wav).")
    loop: bool = _f(True, "Restart the input file at its end (live mode).")


@dataclass(frozen=True)
class ModelsConfig:
    face_landmarker: str | None = _f(None, "Path to face_landmarker.task; null = env/cache lookup.")
    allow_download: bool = _f(True, "Fetch a missing model from its official URL (sha256-checked).")
    mimi: str | None = _f(
        None, "Folder with the installed Mimi graphs (`ravasd models fetch mimi` makes it); null = the user cache."
    )
    knnvc: str | None = _f(
        None,
        "Folder with RAVAS's kNN-VC ONNX files (wavlm_<S>.onnx, hifigan_<S>.onnx); "
        "null = the copy `ravasd models add knnvc DIR` made in the user cache.",
    )


@dataclass(frozen=True)
class EngineConfig:
    hang_timeout_ms: int = _f(2000, "A converter busy longer than this is replaced by a fresh one.", range=(100, 60000))
    sync: bool = _f(True, "Delay video by the audio path's latency so lips and voice match.")
    status_interval_ms: int = _f(500, "How often workers report status.", range=(50, 10000))
    audio_realtime: bool = _f(
        False,
        "Ask the OS for real-time scheduling (SCHED_RR) of the audio worker instead "
        "of nice −10. Off by default: under load it measured no better than nice −10, and "
        "real-time threads that share Python's GIL risk convoys. The audio worker gets nice "
        "−10 where allowed; the video worker always runs at nice +10, so video gives way "
        "first under load.",
    )


@dataclass(frozen=True)
class Config:
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def replace(self, **dotted: Any) -> Config:
        """Return a copy with ``{"audio.voice": "x"}``-style overrides, validated."""
        data = to_dict(self)
        for key, value in dotted.items():
            _set_dotted(data, key, value)
        return from_dict(data, origin="override")


# ---------------------------------------------------------------- validation


def block_size(cfg: Config) -> int:
    """Samples per audio block at the device rate (``audio.block_ms`` rounded to whole samples)."""
    return max(1, int(round(cfg.audio.sample_rate * cfg.audio.block_ms / 1000)))


def _type_name(tp: Any) -> str:
    names = []
    for t in typing.get_args(tp) or (tp,):
        names.append(
            "null"
            if t is type(None)
            else {int: "integer", str: "string", bool: "true/false", float: "number"}.get(t, str(t))
        )
    return " or ".join(names)


def _check_value(key: str, value: Any, f: dataclasses.Field) -> Any:
    tp = f.type
    allowed = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
    ok = False
    for t in allowed:
        if t is type(None) and value is None:
            ok = True
        elif t is bool and isinstance(value, bool):
            ok = True
        elif t is int and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        elif t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            value, ok = float(value), True
        elif t is str and isinstance(value, str):
            ok = True
        if ok:
            break
    if not ok:
        raise ConfigError(f"{key}: must be {_type_name(tp)}, got {value!r}.")
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: must be one of {', '.join(map(str, meta['choices']))}, got {value!r}.")
    if isinstance(value, str) and "choices_or" in meta:
        if value not in meta["choices_or"]:
            raise ConfigError(f"{key}: must be a number or one of {', '.join(meta['choices_or'])}, got {value!r}.")
        return value
    if "range" in meta and isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta["range"]
        if not lo <= value <= hi:
            raise ConfigError(f"{key}: must be {lo}..{hi}, got {value!r}.")
    if isinstance(value, str) and not value.strip() and "choices" not in meta:
        raise ConfigError(f"{key}: must not be empty.")
    if "pattern" in meta and isinstance(value, str):
        if not re.match(meta["pattern"], value):
            raise ConfigError(f"{key}: must look like #5a7d9a, got {value!r}.")
    return value


def _section_fields(cls: type) -> dict[str, dataclasses.Field]:
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        f.type = hints[f.name]
        out[f.name] = f
    return out


def _unknown(key: str, name: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else f" Known keys: {', '.join(known)}."
    return ConfigError(f"{where}: unknown key '{key}'.{hint}")


def from_dict(data: Any, origin: str = "config") -> Config:
    """Build a validated :class:`Config` from nested dicts; ``origin`` names the file for errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: the top level must be a mapping of sections (video:, audio:, …), got {type(data).__name__}."
        )
    sections = _section_fields(Config)
    built = {}
    for sname, sdata in data.items():
        if sname not in sections:
            raise _unknown(str(sname), str(sname), list(sections), origin)
        if sdata is None:
            continue
        if not isinstance(sdata, dict):
            raise ConfigError(f"{origin}: '{sname}' must be a mapping of keys, got {sdata!r}.")
        cls = sections[sname].default_factory  # type: ignore[misc]
        ffields = _section_fields(cls)
        values = {}
        for key, value in sdata.items():
            full = f"{sname}.{key}"
            if key not in ffields:
                raise _unknown(full, str(key), list(ffields), origin)
            try:
                values[key] = _check_value(full, value, ffields[key])
            except ConfigError as err:
                raise ConfigError(f"{origin}: {err.message}") from None
        built[sname] = cls(**values)
    return Config(**built)


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    return dataclasses.asdict(cfg)


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) != 2:
        raise ConfigError(f"'{key}': settings are named section.key, e.g. audio.block_ms.")
    data.setdefault(parts[0], {})
    if not isinstance(data[parts[0]], dict):
        data[parts[0]] = {}
    data[parts[0]][parts[1]] = value


def _merge(base: dict, over: dict) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


MAX_CONFIG_BYTES = 256 * 1024  # a config is a few hundred bytes; anything this big is not one
MAX_DEPTH = 32


class _ConfigLoader(yaml.SafeLoader):
    """Safe YAML without aliases (a config never needs them, and "billion laughs" expands them
    exponentially) and with bounded nesting (deep nesting overflows the recursive composer)."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            ev = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a config", ev.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml_text(text: str) -> Any:
    """Parse YAML with :class:`_ConfigLoader`; raises ``yaml.YAMLError``."""
    loader = _ConfigLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(path: Path) -> dict:
    """Read one YAML config file; every problem (syntax, encoding, size, aliases, nesting) is a
    :class:`ConfigError` naming the file and, for syntax, the line."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"Config file {path} is {path.stat().st_size // 1024} KB; a config is a few lines.",
                "check that this is the right file (`ravasd config show` prints a valid example).",
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist.",
            "check the path, or run `ravasd config path` to see where the default lives.",
        ) from None
    except OSError as err:
        raise ConfigError(f"Config file {path} cannot be read: {err.strerror}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"Config file {path} is not UTF-8 text (byte {err.start} is {raw[err.start]:#04x}).",
            "save it as UTF-8 in a text editor.",
        ) from None
    try:
        data = load_yaml_text(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            f"Config file {path}{where}: not valid YAML ({problem}).",
            "fix the indentation/quoting there; `ravasd config show` prints a valid example.",
        ) from None
    except RecursionError:
        raise ConfigError(f"Config file {path}: nested too deeply to be a config.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path}: the top level must be a mapping (video:, audio:, …).")
    from_dict(data, origin=str(path))  # validate this layer alone so errors name this file
    return data


def parse_value(text: str) -> Any:
    """Parse a command-line value the way YAML would (``10`` → int, ``null`` → None)."""
    try:
        value = load_yaml_text(text)
    except (yaml.YAMLError, RecursionError):
        return text
    if value is None and text.strip() not in ("", "null", "Null", "NULL", "~"):
        return text  # "#88aacc" is a colour, not a YAML comment
    return value


def load_config(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None, use_user_file: bool = True
) -> Config:
    """Defaults ← user config file ← ``config_file`` ← ``overrides`` (dotted keys)."""
    data: dict = {}
    if use_user_file and paths.config_file().exists():
        data = _merge(data, read_yaml(paths.config_file()))
    if config_file is not None:
        data = _merge(data, read_yaml(Path(config_file)))
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
    return from_dict(data, origin="command line" if overrides else "config")


def save_user_setting(key: str, value: Any, check: Callable[[Config], None] | None = None) -> Path:
    """Validate and persist one setting in the user config file, atomically.

    Called by ``ravasd config set`` and by the daemon when the user picks an avatar/voice. ``check``
    (e.g. ``name_checks.check_names``) may refuse the resulting config too. Other keys in the file are kept;
    the file is replaced in one rename, never truncated.
    """
    path = paths.config_file()
    data = read_yaml(path) if path.exists() else {}
    _set_dotted(data, key, value)
    cfg = from_dict(data, origin=key)  # raises before anything is written
    if check:
        check(cfg)
    paths.atomic_write_text(path, FILE_HEADER + yaml.safe_dump(data, sort_keys=False))
    return path


#: The first line of the user's config file.
FILE_HEADER = "# ravasd user configuration (see `ravasd config reference`)\n"


def ensure_file() -> Path:
    """The user's config file, created (holding only :data:`FILE_HEADER`) when there is none — for
    "open the config file" in the tray and the settings window."""
    path = paths.config_file()
    if not path.exists():
        paths.atomic_write_text(path, FILE_HEADER)
    return path


def apply_policy(key: str) -> str:
    """How the running daemon applies a change of setting ``key`` ("section.name"): one of :data:`APPLY`.
    Raises ConfigError for an unknown key."""
    section, _, name = key.partition(".")
    sections = _section_fields(Config)
    if section not in sections:
        raise _unknown(key, section, list(sections), "setting")
    fields = _section_fields(sections[section].default_factory)  # type: ignore[arg-type]
    if name not in fields:
        raise _unknown(key, name, list(fields), "setting")
    return fields[name].metadata["apply"]


def reference() -> str:
    """The config reference as Markdown, generated from the field metadata."""
    lines = ["| key | default | allowed | applies when changed | meaning |", "|---|---|---|---|---|"]
    for sname, sfield in _section_fields(Config).items():
        for name, f in _section_fields(sfield.default_factory).items():  # type: ignore[arg-type]
            meta = f.metadata
            if "choices" in meta:
                allowed = " / ".join(map(str, meta["choices"]))
            elif "choices_or" in meta:
                allowed = f"{meta['range'][0]}..{meta['range'][1]} or {' / '.join(meta['choices_or'])}"
            elif "range" in meta:
                allowed = f"{meta['range'][0]}..{meta['range'][1]}"
            else:
                allowed = _type_name(f.type)
            default = yaml.safe_dump(f.default).strip().removesuffix("\n...").removesuffix("...").strip()
            when = {LIVE: "at once", RESTART: "its stream restarts (≈ 1 s)", NEXT_START: "next start"}[meta["apply"]]
            lines.append(f"| `{sname}.{name}` | `{default}` | {allowed} | {when} | {meta['help']} |")
    return "\n".join(lines) + "\n"
