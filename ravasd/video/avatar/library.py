"""The avatar library: bundled avatars (``bundled/avatars/*.glb`` in the package) plus the user's own
(``<data dir>/avatars``, filled by ``ravasd avatars add``). User avatars shadow bundled ones."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from ... import assets, paths
from ...errors import ConfigError

EXTS = (".glb", ".vrm", ".gltf")


def bundled_dir() -> Path:
    return assets.path("avatars")


def preview(name: str) -> Path | None:
    """The bundled picture of avatar ``name`` (``previews/<name>.png``), or None."""
    p = bundled_dir() / "previews" / f"{name}.png"
    return p if p.is_file() else None


def user_dir() -> Path:
    return paths.data_dir() / "avatars"


def available() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in (bundled_dir(), user_dir()):
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() in EXTS:
                    found[f.stem] = f
    return found


def find(name: str) -> Path:
    avatars = available()
    if name in avatars:
        return avatars[name]
    p = Path(name).expanduser()
    if p.suffix.lower() in EXTS and p.is_file():
        return p
    raise ConfigError(
        f"video.avatar: unknown avatar {name!r}.",
        f"choose one of: {', '.join(avatars) or '(none)'} (`ravasd avatars list`), "
        "or add yours with `ravasd avatars add FILE`.",
    )


@dataclass
class AvatarInfo:
    name: str
    file: str
    format: str
    coverage: int  # ARKit names the avatar can show (of 52)
    licence: str
    title: str
    author: str
    error: str = ""


def describe(name: str, path: Path) -> AvatarInfo:
    from .model import AvatarError, load_avatar  # here: finding a name must not load OpenCV and glTF

    try:
        m = load_avatar(path)
    except AvatarError as err:
        return AvatarInfo(name, str(path), "?", 0, "", "", "", error=str(err))
    cov = len(m.arkit_coverage())
    if m.expressions and cov < 52:  # VRM without Perfect Sync: shown through the presets
        cov = max(cov, len([k for k in m.expressions]))
    return AvatarInfo(
        name,
        str(path),
        m.format,
        len(m.arkit_coverage()),
        m.meta.get("licence", ""),
        m.meta.get("title", ""),
        m.meta.get("author", ""),
    )


def list_avatars() -> list[AvatarInfo]:
    return [describe(n, p) for n, p in available().items()]


def check_renders(model) -> None:
    """Render ``model`` small, at rest and with every expression at full weight, turned; any failure
    is an :class:`AvatarError` (a file that loads but cannot be drawn is refused at ``add``). Skipped
    with a log line when this machine has no OpenGL at all (nothing could render then)."""

    import numpy as np

    from .model import AvatarError
    from .renderer import AvatarRenderer, create_context

    try:
        ctx = create_context()
    except Exception as err:  # no GL driver: `doctor` reports it; the file itself may be fine
        logging.getLogger(__name__).warning("avatar not test-rendered: no OpenGL here (%s)", err)
        return
    try:
        r = AvatarRenderer(model, 64, 64, ctx=ctx)
        try:
            for w, yaw in ((np.zeros(52, np.float32), 0.0), (np.ones(52, np.float32), 30.0)):
                img = r.render(w, yaw=yaw)
                if img.shape != (64, 64, 3) or not np.isfinite(img).all():
                    raise ValueError("the picture came out malformed")
        finally:
            r.release()
    except AvatarError:
        raise
    except Exception as err:
        raise AvatarError(
            f"Avatar {model.path} loads but cannot be drawn ({type(err).__name__}: {err}).",
            "open it in Blender or https://gltf.report to see the problem, or re-export it.",
        ) from None
    finally:
        ctx.release()


def add(src: str | Path, force: bool = False) -> Path:
    """Validate ``src`` and copy it into the user avatar folder; returns the new path."""
    from .model import AvatarError, load_avatar

    src = Path(src)
    if src.suffix.lower() not in EXTS:
        raise AvatarError(f"{src}: unsupported avatar format '{src.suffix}'.", "use a .glb or .vrm file.")
    model = load_avatar(src)  # raises a clear AvatarError for a broken file
    check_renders(model)  # what is accepted must render
    dest = user_dir() / src.name
    if dest.exists() and not force:
        raise AvatarError(
            f"an avatar named '{src.stem}' already exists ({dest}).", "rename the file or pass --force to replace it."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    return dest
