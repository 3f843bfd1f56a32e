"""The names a config may choose (voices, video converters, avatars) and the one check of them.

Called wherever a name enters: ``run`` at start, ``config set``, live swaps (tray, ``ctl``), worker start-up.
It reads the registries only; nothing is built or loaded.
"""

from __future__ import annotations

from .audio.voices import VOICES, neural
from .config import Config
from .errors import ConfigError
from .video.avatar.library import find as find_avatar
from .video.converters import VIDEO_CONVERTERS


def check_names(cfg: Config) -> None:
    """Raise :class:`ConfigError` (listing the choices) for an unknown video converter, voice, or — when the
    avatar converter is chosen — avatar name (or a path that is no .glb/.vrm file)."""
    if cfg.video.converter not in VIDEO_CONVERTERS:
        raise ConfigError(
            f"video.converter: unknown converter {cfg.video.converter!r}.",
            f"choose one of: {', '.join(sorted(VIDEO_CONVERTERS))} (`ravasd converters`).",
        )
    nvs = neural(cfg)  # reads the voices' files: once
    if cfg.audio.voice not in VOICES and cfg.audio.voice not in nvs:
        raise ConfigError(
            f"audio.voice: unknown voice {cfg.audio.voice!r}.",
            f"choose one of: {', '.join([*VOICES, *nvs])} (`ravasd voices list`).",
        )
    nv = nvs.get(cfg.audio.voice)
    if nv is not None and not nv.available:
        raise ConfigError(f"audio.voice: the voice {cfg.audio.voice!r} is not usable yet.", nv.fix)
    if cfg.video.converter == "avatar":
        find_avatar(cfg.video.avatar)
