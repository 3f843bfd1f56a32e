"""Render a contact sheet per bundled avatar: seven poses side by side, as a person reviewing an
avatar would want to see it (neutral, smile, surprise, sad, talking, blink, head turned 30°).

Run: ``python avatars/contact_sheet.py`` (writes ``avatars/sheets/<name>.png`` and the pictures the
avatar pickers show, ``avatars/previews/<name>.png``; needs the renderer's EGL, like the tests). The
README shows these sheets; re-run after changing ``generate.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ravasd.video.tracking import ARKIT_NAMES  # noqa: E402

HERE = Path(__file__).resolve().parent
W, H = 256, 192


def weights(**kw: float) -> np.ndarray:
    w = np.zeros(len(ARKIT_NAMES), np.float32)
    for k, v in kw.items():
        w[ARKIT_NAMES.index(k)] = v
    return w


POSES = [
    ("neutral", weights(), 0.0),
    ("smile", weights(mouthSmileLeft=1, mouthSmileRight=1, cheekSquintLeft=0.4, cheekSquintRight=0.4), 0.0),
    (
        "surprise",
        weights(jawOpen=0.5, browInnerUp=1, browOuterUpLeft=1, browOuterUpRight=1, eyeWideLeft=1, eyeWideRight=1),
        0.0,
    ),
    ("sad", weights(mouthFrownLeft=1, mouthFrownRight=1, browInnerUp=0.8, browDownLeft=0.2, browDownRight=0.2), 0.0),
    ("talking", weights(jawOpen=0.45, mouthFunnel=0.3), 0.0),
    ("blink", weights(eyeBlinkLeft=1, eyeBlinkRight=1), 0.0),
    ("turned 30°", weights(), 30.0),
]


def sheet(path: Path) -> np.ndarray:
    """The seven poses of the avatar at ``path`` side by side (H × 7W × 3 uint8)."""
    from ravasd.video.avatar.model import load_avatar
    from ravasd.video.avatar.renderer import AvatarRenderer

    r = AvatarRenderer(load_avatar(path), W, H, scale=1.0)
    try:
        return np.concatenate([r.render(w, yaw=yaw) for _, w, yaw in POSES], axis=1)
    finally:
        r.release()


def preview(path: Path) -> np.ndarray:
    """The avatar at ``path`` at rest, framed as on a call (360 × 640 × 3 uint8): what the tray's and
    the settings window's avatar pickers show."""
    from ravasd.video.avatar.model import load_avatar
    from ravasd.video.avatar.renderer import AvatarRenderer

    r = AvatarRenderer(load_avatar(path), 640, 360, scale=1.0)
    try:
        return r.render(weights())
    finally:
        r.release()


def main(out_dir: Path = HERE / "sheets", preview_dir: Path = HERE / "previews") -> list[Path]:
    import cv2

    out_dir.mkdir(exist_ok=True)
    preview_dir.mkdir(exist_ok=True)
    written = []
    for glb in sorted(HERE.glob("*.glb")):
        for out, img in ((out_dir / f"{glb.stem}.png", sheet(glb)), (preview_dir / f"{glb.stem}.png", preview(glb))):
            cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
            written.append(out)
    return written


if __name__ == "__main__":
    for p in main():
        print(f"wrote {p}")
