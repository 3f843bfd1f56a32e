"""An avatar's gallery picture: the bundled preview, else a rest-pose render cached as a PNG.

Shared by the settings window's gallery and ``ravasd avatars add`` (which makes it when a file is
added, so the window seldom has to render one itself). The cache key holds the file's size and
time and the renderer's :data:`~.renderer.LOOK_VERSION`, and no setting: a tile looks the same
whatever the configuration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ... import paths
from ...config import Config
from . import library
from .converter import renderer_from_config
from .renderer import LOOK_VERSION

SIZE = (640, 360)


def thumbnail(name: str) -> Path | None:
    """A PNG of avatar ``name`` (a render is made once, into the user cache dir); None when it has
    no file or its file does not render (``ravasd avatars list`` says why)."""
    path = library.preview(name)
    if path is not None:
        return path
    try:
        src = library.find(name)
        st = src.stat()
        out = paths.cache_dir() / "thumbnails" / f"{name}-{st.st_size}-{int(st.st_mtime)}-r{LOOK_VERSION}.png"
        if not out.exists():
            r = renderer_from_config(Config(), *SIZE, name)
            try:
                img = r.render(np.zeros(52, np.float32))
            finally:
                r.release()
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            Image.fromarray(img).save(tmp, "PNG")
            tmp.replace(out)
        return out
    except Exception:  # a file that does not render gets the drawn tile; `avatars list` says why
        return None
