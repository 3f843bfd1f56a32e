"""The virtual camera that films an avatar: where it stands for the rest pose (``video.framing``),
and how it follows the head like a camera operator. Pure numpy; the renderer reads ``eye``,
``view`` and ``proj`` for each frame.
"""

from __future__ import annotations

import math

import numpy as np

from .model import AvatarModel

#: ``video.framing``: (share of the frame height the head with its hair fills, eye line from the top).
FRAMING = {"close": (0.74, 0.40), "bust": (0.58, 1 / 3), "wide": (0.42, 1 / 3)}
FOLLOW = 0.7  # how much of the head's movement the virtual camera follows
FOVY = 28.0  # vertical field of view, degrees


def perspective(fovy_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1 / math.tan(math.radians(fovy_deg) / 2)
    m = np.zeros((4, 4))
    m[0, 0], m[1, 1] = f / aspect, f
    m[2, 2], m[2, 3] = (far + near) / (near - far), 2 * far * near / (near - far)
    m[3, 2] = -1
    return m


def look_at(eye, target, up=(0, 1, 0)) -> np.ndarray:
    eye, target, up = (np.asarray(v, float) for v in (eye, target, up))
    f = target - eye
    f /= np.linalg.norm(f)
    s = np.cross(f, up)
    s /= np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def blink_height(model: AvatarModel, world: list[np.ndarray]) -> float | None:
    """Where the eyes are without eye bones: the rest height of what the blink shapes move
    (ARKit eyeBlink targets, or VRM blink expressions)."""
    ys, names = [], {"eyeBlinkLeft", "eyeBlinkRight"}
    picks = [(pi, ti) for pi, p in enumerate(model.primitives) for ti, n in enumerate(p.target_names) if n in names]
    for key in ("blinkLeft", "blinkRight", "blink"):
        picks += [(pi, ti) for pi, ti, _ in model.expressions.get(key, [])]
    for pi, ti in picks:
        p = model.primitives[pi]
        if p.targets is None or ti >= len(p.targets):
            continue
        mag = np.linalg.norm(p.targets[ti], axis=1)
        if mag.max() <= 0:
            continue
        moved = p.positions[mag > 0.1 * mag.max()]
        m = world[p.node]
        ys.append((moved @ m[:3, :3].T + m[:3, 3])[:, 1])
    return float(np.median(np.concatenate(ys))) if ys else None


class Camera:
    """Frames ``model``'s rest pose (``rest``: its world matrices) per ``framing`` (:data:`FRAMING`):
    the head, hair included, fills a set share of the frame height with the eyes about a third from
    the top, as a person frames a webcam. ``aspect``: width / height of the render target.
    Then :meth:`follow` moves it after the head, frame by frame (the renderer's thread)."""

    def __init__(self, model: AvatarModel, rest: list[np.ndarray], framing: str, aspect: float) -> None:
        if framing not in FRAMING:
            raise ValueError(f"framing must be one of {', '.join(FRAMING)}")
        self.model = model
        head = model.bones.get("head")
        allp = np.concatenate([p.positions @ rest[p.node][:3, :3].T + rest[p.node][:3, 3] for p in model.primitives])
        if head is not None:
            headpts = allp[allp[:, 1] >= rest[head][1, 3] - 0.02]
        else:
            top = allp[:, 1].max()
            headpts = allp[allp[:, 1] >= top - (top - allp[:, 1].min()) * 0.2]
        lo, hi = headpts.min(axis=0), headpts.max(axis=0)
        size = max(hi[1] - lo[1], hi[0] - lo[0], 1e-3)
        eyes = [rest[model.bones[k]][1, 3] for k in ("lefteye", "righteye") if k in model.bones]
        eye_y = float(np.mean(eyes)) if eyes else blink_height(model, rest)
        if eye_y is None or not lo[1] <= eye_y <= hi[1]:
            eye_y = lo[1] + 0.5 * (hi[1] - lo[1])
        centre = (lo + hi) / 2
        self.fovy = FOVY
        fill, eye_line = FRAMING[framing]
        #: world height the frame shows at the head
        self.visible = size / fill
        dist = self.visible / 2 / math.tan(math.radians(self.fovy) / 2)
        # aimed at the plane of the eyes (in front of the head's centre): in a close frame the
        # perspective would otherwise push them down
        face_z = centre[2] + 0.35 * (hi[2] - lo[2])
        self.target0 = np.array([centre[0], eye_y - self.visible * (0.5 - eye_line), face_z])
        self.eye0 = self.target0 + (0, 0, dist)
        self.eye = self.eye0.copy()
        self.view = look_at(self.eye, self.target0)
        # the head centre in the head bone's space: followed when the head moves
        self._head_rest = centre
        self._head_local = (np.linalg.inv(rest[head]) @ np.append(centre, 1.0))[:3] if head is not None else None
        #: how far the camera has moved after the head (x, y), world units
        self.offset = np.zeros(2)
        self._last_t: float | None = None
        # flip Y so the read-back rows come out top-down (no flip copy per frame)
        self.proj = np.diag([1.0, -1.0, 1.0, 1.0]) @ perspective(self.fovy, aspect, dist * 0.05, dist * 10)

    def follow(self, world: list[np.ndarray], t: float | None) -> None:
        """A camera operator's follow: the view shifts by FOLLOW × how far the head centre moved
        (nods, leaning, roll), eased with a 0.35 s time constant when frame times ``t`` (s) are
        given — never a jump — and bounded to a fifth of the frame."""
        if self._head_local is None:
            return
        head = world[self.model.bones["head"]]
        now = (head @ np.append(self._head_local, 1.0))[:2]
        want = np.clip((now - self._head_rest[:2]) * FOLLOW, -0.2 * self.visible, 0.2 * self.visible)
        dt = None if t is None or self._last_t is None else t - self._last_t
        if dt is None or dt < 0 or dt >= 1.0:  # a still, the first frame, a seek: frame it at once
            k = 1.0
        else:
            k = 1.0 - math.exp(-dt / 0.35)
        self._last_t = t
        self.offset += k * (want - self.offset)
        off = np.array([self.offset[0], self.offset[1], 0.0])
        self.eye = self.eye0 + off
        self.view = look_at(self.eye, self.target0 + off)
