"""Files that ship inside the package: bundled avatars and their previews, autostart and desktop
templates, the app icon and the per-OS driver notes.

They live in ``ravasd/bundled/`` of the installed package (wheel, sdist, pipx, PyInstaller) and are
found through :mod:`importlib.resources`, never through the checkout. In a checkout
``ravasd/bundled/{avatars,service,drivers}`` are links to the top-level folders of the same name,
which stay the source (a build copies their files into the package).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import RavasError


def path(*parts: str) -> Path:
    """The file or folder ``bundled/<parts>`` of the installed package, as a real path.

    Every supported install unpacks the package onto disk; a zipped one is refused with the fix.
    """
    ref = resources.files(__package__).joinpath("bundled", *parts)
    if not isinstance(ref, Path):
        raise RavasError(
            f"ravasd is installed as a zip archive ({ref}), so its bundled files cannot be read.",
            "install it unpacked: `pipx install ravasd` or `pip install ravasd`.",
        )
    return ref
