"""Build RAVAS's bundled avatars procedurally and write them as GLB files (glTF 2.0).

Run: ``python avatars/generate.py`` (writes ``avatars/<name>.glb``). Deterministic: the same code
gives byte-identical files. Everything here is the project's own work (MIT), no external assets.

Each avatar is a stylised head-and-shoulders figure: a skeleton of nodes Hips › Spine › Neck › Head,
parts attached rigidly to them, and the 52 ARKit blendshapes as glTF morph targets spread over the
parts that move (mouth, jaw, teeth, tongue, eyes, brows, cheeks, nose, head). Target names are in
each mesh's ``extras.targetNames`` (the convention three.js/Blender use). Orientation: +Y up, the
avatar faces +Z; the avatar's own left is +X, which is what ARKit's "Left" means.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ravasd.video.tracking import ARKIT_NAMES  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass
class Part:
    name: str
    joint: str
    pos: np.ndarray
    nrm: np.ndarray
    idx: np.ndarray
    color: tuple[float, float, float]
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    rough: float = 0.7


# --------------------------------------------------------------------------- shapes
# Tessellation: on a software rasteriser (llvmpipe) the frame time follows the triangle count, and
# these smooth shapes look the same with about 8k triangles per avatar as with 18k.
DETAIL = 0.65


def grid(rows: int, cols: int) -> np.ndarray:
    """Triangles (K×3) over a (rows + 1) × (cols + 1) vertex grid, row-major, wound like the
    ellipsoids (outward when rows run top to bottom and columns round the +Y axis)."""
    idx = []
    for i in range(rows):
        for j in range(cols):
            a, b = i * (cols + 1) + j, (i + 1) * (cols + 1) + j
            idx += [(a, b, a + 1), (a + 1, b, b + 1)]
    return np.array(idx, np.uint32)


def ellipsoid(center, radii, nu=40, nv=28, v0=0.0, v1=math.pi, power=1.0, power_v=None):
    """A (super)ellipsoid patch: v from v0 (top) to v1 (bottom); power<1 gives a boxier shape
    (``power_v``, when given, boxes the vertical profile on its own: a flat top with rounded edges)."""
    nu, nv = max(12, int(nu * DETAIL)), max(8, int(nv * DETAIL))
    u = np.linspace(0, 2 * math.pi, nu + 1)
    v = np.linspace(v0, v1, nv + 1)
    uu, vv = np.meshgrid(u, v)
    pv = power if power_v is None else power_v

    def sp(a, e):
        return np.sign(a) * np.abs(a) ** e

    sx, sy, sz = (
        sp(np.sin(vv), pv) * sp(np.sin(uu), power),
        sp(np.cos(vv), pv),
        sp(np.sin(vv), pv) * sp(np.cos(uu), power),
    )
    r = np.asarray(radii, float)
    pos = np.stack([sx * r[0], sy * r[1], sz * r[2]], -1).reshape(-1, 3) + np.asarray(center, float)
    if power == pv == 1.0:
        nrm = np.stack([sx / r[0], sy / r[1], sz / r[2]], -1).reshape(-1, 3)
    else:  # a superquadric's normal: the gradient of its implicit function
        q = np.abs(pos - np.asarray(center, float)) / r + 1e-9
        e2, e1 = 2 / power, 2 / pv
        h = q[:, 0] ** e2 + q[:, 2] ** e2
        gx = h ** (e2 / e1 - 1) * q[:, 0] ** (e2 - 1)
        gz = h ** (e2 / e1 - 1) * q[:, 2] ** (e2 - 1)
        gy = q[:, 1] ** (e1 - 1)
        sgn = np.sign(pos - np.asarray(center, float))
        nrm = np.stack([gx / r[0], gy / r[1], gz / r[2]], -1) * sgn
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-12
    return pos, nrm, grid(nv, nu)


def tilted(geo, center, angle_z: float = 0.0):
    """``geo`` (pos, nrm, idx) turned by ``angle_z`` radians about the Z axis through ``center``."""
    c, sn = math.cos(angle_z), math.sin(angle_z)
    r = np.array([[c, -sn, 0], [sn, c, 0], [0, 0, 1]])
    pos, nrm, idx = geo
    return (pos - center) @ r.T + center, nrm @ r.T, idx


def cylinder(center, radius, height, n=32):
    ang = np.linspace(0, 2 * math.pi, n + 1)
    ring = np.stack([np.sin(ang) * radius, np.zeros_like(ang), np.cos(ang) * radius], -1)
    top, bot = ring + (0, height / 2, 0), ring - (0, height / 2, 0)
    pos = np.concatenate([top, bot]) + np.asarray(center, float)
    nrm = np.concatenate([ring, ring]) / radius
    idx = [(j, n + 1 + j, j + 1) for j in range(n)] + [(j + 1, n + 1 + j, n + 2 + j) for j in range(n)]
    return pos, nrm, np.array(idx, np.uint32)


def cone(base_center, radius, height, tilt=0.0, n=24):
    ang = np.linspace(0, 2 * math.pi, n + 1)
    ring = np.stack([np.sin(ang) * radius, np.zeros_like(ang), np.cos(ang) * radius * 0.6], -1)
    tip = np.array([[math.sin(tilt) * height, math.cos(tilt) * height, 0.0]])
    pos = np.concatenate([ring, np.repeat(tip, n + 1, 0)]) + np.asarray(base_center, float)
    nrm = np.concatenate([ring / radius, ring / radius]) + (0, 0.4, 0)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    idx = [(j, n + 1 + j, j + 1) for j in range(n)]
    return pos, nrm, np.array(idx, np.uint32)


def deform(geo, fn, eps=1e-4):
    """``geo`` moved by ``fn`` (N×3 → N×3), its normals carried by the inverse transpose of ``fn``'s
    Jacobian (finite differences), so a reshaped surface still shades smoothly across its seams."""
    pos, nrm, idx = geo
    new = fn(pos)
    J = np.stack([(fn(pos + e) - new) / eps for e in np.eye(3) * eps], axis=-1)  # N×3×3, J[:, i, j] = ∂f_i/∂x_j
    n = np.einsum("nji,nj->ni", np.linalg.inv(J), nrm)  # J^-T · n
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    return new, n, idx


def shell(center, radii, reach, nu=48, nv=22, flare=0.0):
    """A cap over an ellipsoid whose lower edge depends on the direction: ``reach`` maps the angle
    from the front (degrees, 0 = +Z face side, 90 = the sides, 180 = the back) to how far down the
    cap reaches (v in degrees from the top), linearly between keys; ``flare`` widens the lower part
    (hair that stands away from the head as it falls)."""
    nu, nv = max(12, int(nu * DETAIL)), max(8, int(nv * DETAIL))
    keys = sorted(reach.items())
    u = np.linspace(0, 2 * math.pi, nu + 1)
    ang = np.degrees(np.abs((u + math.pi) % (2 * math.pi) - math.pi))
    vmax = np.radians(np.interp(ang, [k for k, _ in keys], [v for _, v in keys]))
    vv = np.linspace(0, 1, nv + 1)[:, None] * vmax[None, :]
    uu = np.broadcast_to(u[None, :], vv.shape)
    grow = 1 + flare * smooth(vv, 0.35 * math.pi, 0.8 * math.pi)
    r = np.asarray(radii, float)
    sx, sy, sz = np.sin(vv) * np.sin(uu), np.cos(vv), np.sin(vv) * np.cos(uu)
    pos = np.stack([sx * r[0] * grow, sy * r[1], sz * r[2] * grow], -1).reshape(-1, 3) + np.asarray(center, float)
    nrm = np.stack(
        [sx / r[0], sy / r[1] * (1 + flare * 0.6 * smooth(vv, 0.35 * math.pi, 0.8 * math.pi)), sz / r[2]], -1
    ).reshape(-1, 3)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-12
    return pos, nrm, grid(nv, nu)


def tube(path, minor, nv=6, squash=1.0, toward=(0.0, 0.0, 1.0), closed=False):
    """A thin tube of radius ``minor`` along ``path`` (N×3; ``closed``: a loop, first point not
    repeated): a lash line, a spectacle frame, a collar band. The cross-section's first axis leans to
    ``toward`` ((3,) or (N, 3); +Z: towards the viewer), the other one is flattened by ``squash``."""
    path = np.asarray(path, float)
    toward = np.broadcast_to(np.asarray(toward, float), path.shape)
    if closed:
        path, toward = np.concatenate([path, path[:1]]), np.concatenate([toward, toward[:1]])
        tang = np.gradient(np.concatenate([path[-2:-1], path, path[1:2]]), axis=0)[1:-1]
    else:
        tang = np.gradient(path, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    out = toward - np.einsum("ij,ij->i", toward, tang)[:, None] * tang
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    up = np.cross(out, tang)
    v = np.linspace(0, 2 * math.pi, nv + 1)[:, None, None]
    pos = (path[None] + minor * (np.cos(v) * out[None] + np.sin(v) * up[None] * squash)).reshape(-1, 3)
    nrm = (np.cos(v) * out[None] + np.sin(v) * up[None] / max(squash, 1e-3)).reshape(-1, 3)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    return pos, nrm, grid(nv, len(path) - 1)[:, ::-1].copy()  # wound like the ellipsoids (outward)


def smooth(x, lo, hi):
    t = np.clip((x - lo) / (hi - lo), 0, 1)
    return t * t * (3 - 2 * t)


# --------------------------------------------------------------------------- styles
STYLES = {
    "sol": dict(
        skin=(0.93, 0.74, 0.60),
        hair=(0.22, 0.14, 0.09),
        shirt=(0.20, 0.45, 0.70),
        eye=(0.25, 0.45, 0.30),
        hair_style="short",
        head=(0.128, 0.150, 0.126),
        power=1.0,
        jaw=0.16,
        ears="human",
        description="friendly person with short brown hair and a blue shirt",
    ),
    "mira": dict(
        skin=(0.60, 0.42, 0.30),
        hair=(0.08, 0.06, 0.07),
        shirt=(0.85, 0.45, 0.30),
        eye=(0.30, 0.20, 0.12),
        hair_style="bob",
        head=(0.124, 0.148, 0.124),
        power=1.0,
        jaw=0.2,
        ears="none",
        description="person with a black bob and an orange top",
    ),
    "pixel": dict(
        skin=(0.72, 0.78, 0.84),
        hair=(0.95, 0.55, 0.15),
        shirt=(0.30, 0.32, 0.40),
        eye=(0.10, 0.65, 0.95),
        hair_style="antenna",
        head=(0.135, 0.140, 0.125),
        power=0.55,
        jaw=0.0,
        ears="bolts",
        lashes=False,
        description="boxy, friendly robot with an antenna",
    ),
    "ren": dict(
        skin=(0.88, 0.72, 0.60),
        hair=(0.74, 0.74, 0.76),
        shirt=(0.42, 0.32, 0.58),
        eye=(0.36, 0.28, 0.20),
        hair_style="short",
        head=(0.126, 0.146, 0.124),
        power=1.0,
        jaw=0.14,
        ears="human",
        glasses=(0.30, 0.22, 0.16),
        hairline=58,
        description="older person with short grey hair and a plum jumper",
    ),
    "ayo": dict(
        skin=(0.47, 0.32, 0.23),
        hair=(0.09, 0.06, 0.05),
        shirt=(0.96, 0.76, 0.28),
        eye=(0.22, 0.14, 0.09),
        hair_style="bun",
        head=(0.124, 0.150, 0.124),
        power=1.0,
        jaw=0.2,
        ears="human",
        description="person with a high bun and a sunflower-yellow top",
    ),
    "tabby": dict(
        skin=(0.93, 0.62, 0.30),
        hair=(0.98, 0.93, 0.85),
        shirt=(0.35, 0.62, 0.45),
        eye=(0.45, 0.70, 0.20),
        hair_style="cat",
        head=(0.132, 0.138, 0.124),
        power=1.0,
        jaw=0.08,
        ears="cat",
        description="ginger cat with a green scarf",
    ),
}


REST_SMILE = 0.22  # share of the smile shape baked into the resting mouth


def build(style: dict) -> list[Part]:
    parts: list[Part] = []
    rx, ry, rz = style["head"]
    hc = np.array([0.0, 0.15, 0.0])  # head centre in Head-node space

    taper = style.get("jaw", 0.0)

    def head_shape(P):
        """The head's form: an ellipsoid whose lower half narrows to the jaw and chin (``jaw``)."""
        P = np.array(P, float)
        below = smooth((hc[1] - P[:, 1]) / ry, -0.15, 1.0)  # 0 above the cheekbones, 1 at the chin
        k = 1 - taper * below
        P[:, 0] = P[:, 0] * k
        P[:, 2] = (P[:, 2] - hc[2]) * (1 - 0.35 * taper * below) + hc[2]
        return P

    head_geo = deform(ellipsoid(hc, (rx, ry, rz), 56, 40, power=style["power"]), head_shape)
    surface = head_shape(ellipsoid(hc, (rx, ry, rz), 160, 120, power=style["power"])[0])
    surface = surface[surface[:, 2] > 0]

    def front_z(x, y):
        """The head surface's depth in front of (x, y), sampled from a dense copy of the head mesh."""
        near = np.hypot(surface[:, 0] - x, surface[:, 1] - y) < 0.006
        return float(surface[near, 2].max()) if near.any() else hc[2] + rz

    def on_face(x, y, lift=0.002):
        return np.array([x, y, float(front_z(x, y)) + lift])

    def part(name, joint, geo, color, rough=0.7):
        p = Part(name, joint, geo[0].astype(np.float32), geo[1].astype(np.float32), geo[2], color, rough=rough)
        parts.append(p)
        return p

    def t(p, name, delta):
        p.targets[name] = p.targets.get(name, 0) + np.asarray(delta, np.float32)

    skin = style["skin"]
    # ---- head with jaw / cheek deformations
    head = part("head", "Head", head_geo, skin, 0.6)
    P = head.pos.astype(float)
    mouth_y = 0.085
    front = smooth(P[:, 2], 0.02, 0.09)
    jaw = smooth(mouth_y - P[:, 1], 0.0, 0.05) * front * smooth(0.11 - np.abs(P[:, 0]), 0, 0.05)
    zero = np.zeros_like(P)
    d = zero.copy()
    d[:, 1] = -0.028 * jaw
    d[:, 2] = -0.006 * jaw
    t(head, "jawOpen", d)
    d = zero.copy()
    d[:, 2] = 0.012 * jaw
    t(head, "jawForward", d)
    for side, s in (("Left", 1), ("Right", -1)):
        d = zero.copy()
        d[:, 0] = 0.012 * s * jaw
        t(head, f"jaw{side}", d)
        cheek = np.exp(-(((P[:, 0] - s * 0.075) / 0.035) ** 2 + ((P[:, 1] - 0.11) / 0.035) ** 2)) * front
        d = zero.copy()
        d[:, 0] = 0.010 * s * cheek
        d[:, 2] = 0.006 * cheek
        t(head, "cheekPuff", d)
        d = zero.copy()
        d[:, 1] = 0.006 * cheek
        t(head, f"cheekSquint{side}", d)
        d = zero.copy()
        d[:, 1] = 0.004 * cheek
        t(head, f"mouthSmile{side}", d)

    # ---- mouth interior, teeth, tongue
    mc = on_face(0.0, mouth_y, 0.001)

    def mouth_shapes(p, rx_, ry_):
        """The mouth's ARKit targets on part ``p`` (the opening or the lips around it)."""
        M = p.pos.astype(float) - mc
        u, v = M[:, 0] / rx_, M[:, 1] / ry_
        low, up = (v < 0).astype(float), (v > 0).astype(float)
        zm = np.zeros_like(M)

        def mt(name, dx=0.0, dy=0.0, dz=0.0):
            d = zm.copy()
            d[:, 0], d[:, 1], d[:, 2] = dx, dy, dz
            t(p, name, d)

        mt("jawOpen", dy=-0.040 * np.clip(-v, 0, 1) * (1 - 0.3 * u**2) + 0.004 * up, dz=-0.004 * low)
        mt("mouthClose", dy=-0.8 * M[:, 1])
        mt("mouthFunnel", dx=-0.40 * M[:, 0], dy=2.2 * M[:, 1] * (0.0065 / ry_), dz=0.006)
        mt("mouthPucker", dx=-0.55 * M[:, 0], dy=0.6 * M[:, 1], dz=0.012)
        mt("mouthRollLower", dy=-0.8 * M[:, 1] * low)
        mt("mouthRollUpper", dy=-0.8 * M[:, 1] * up)
        mt("mouthShrugLower", dy=0.005 * low)
        mt("mouthShrugUpper", dy=0.005 * up)
        mt("jawForward", dz=0.012)
        for side, s in (("Left", 1), ("Right", -1)):
            mine = np.clip(s * u, 0, 1)
            mt(f"mouth{side}", dx=0.016 * s)
            mt(f"jaw{side}", dx=0.010 * s)
            mt(f"mouthSmile{side}", dx=0.006 * s * mine, dy=0.016 * mine**2)
            mt(f"mouthFrown{side}", dy=-0.013 * mine**2)
            mt(f"mouthDimple{side}", dx=0.008 * s * mine)
            mt(f"mouthStretch{side}", dx=0.010 * s * mine, dy=-0.004 * mine)
            mt(f"mouthPress{side}", dy=-0.7 * M[:, 1] * mine)
            mt(f"mouthLowerDown{side}", dy=-0.012 * mine * low)
            mt(f"mouthUpperUp{side}", dy=0.010 * mine * up)
        # at rest a hint of a smile: calm and friendly, not a flat slit
        p.pos = (p.pos + REST_SMILE * (p.targets["mouthSmileLeft"] + p.targets["mouthSmileRight"])).astype(np.float32)

    lips = part(
        "lips",
        "Head",
        ellipsoid(mc + (0, 0, -0.0015), (0.037, 0.0115, 0.004), 32, 10),
        tuple(min(1.0, c * k) for c, k in zip(skin, (0.98, 0.72, 0.74))),
        0.45,
    )
    mouth_shapes(lips, 0.037, 0.0115)
    mouth = part("mouth", "Head", ellipsoid(mc, (0.032, 0.0065, 0.004), 40, 12), (0.35, 0.08, 0.10), 0.4)
    mouth_shapes(mouth, 0.032, 0.0065)
    # teeth and tongue exist only as the jaw opens: rest shape collapsed to a point
    for name, c, r, col, _dy_open in (
        ("teeth_upper", (0, 0.004, 0.002), (0.024, 0.0045, 0.002), (0.97, 0.96, 0.92), 0.0),
        ("teeth_lower", (0, -0.030, 0.002), (0.022, 0.004, 0.002), (0.97, 0.96, 0.92), -0.030),
        ("tongue", (0, -0.022, 0.001), (0.018, 0.008, 0.003), (0.85, 0.35, 0.40), -0.022),
    ):
        full = ellipsoid(mc + np.array(c), r, 20, 8)
        p = part(name, "Head", (np.repeat(mc[None], len(full[0]), 0), full[1], full[2]), col, 0.3)
        t(p, "jawOpen", full[0] - mc)
        if name != "teeth_upper":
            t(p, "jawForward", np.tile((0, 0, 0.012), (len(full[0]), 1)))
            for side, s in (("Left", 1), ("Right", -1)):
                t(p, f"jaw{side}", np.tile((0.010 * s, 0, 0), (len(full[0]), 1)))
        if name == "tongue":
            out = full[0] - mc + (0, -0.012, 0.022)
            t(p, "tongueOut", out)

    # ---- eyes, irises, brows, cheeks
    for side, s in (("Left", 1), ("Right", -1)):
        ec = on_face(0.047 * s, 0.170, 0.0)
        sc = part(f"eye_white_{side}", "Head", ellipsoid(ec, (0.022, 0.025, 0.008), 28, 16), (0.98, 0.98, 0.97), 0.2)
        ic = ec + (0, -0.002, 0.006)
        iris = part(f"iris_{side}", "Head", ellipsoid(ic, (0.012, 0.0145, 0.005), 24, 12), style["eye"], 0.15)
        pc = ic + (0, 0, 0.004)
        pupil = part(f"pupil_{side}", "Head", ellipsoid(pc, (0.0065, 0.008, 0.003), 20, 10), (0.03, 0.03, 0.04), 0.1)
        for p, c, keep, back in ((sc, ec, 0.05, 0.002), (iris, ec, 0.12, 0.006), (pupil, ec, 0.12, 0.008)):
            Y = p.pos[:, 1] - c[1]
            # shut: flattened and drawn back under the lid (an iris left in front would show through it)
            t(p, f"eyeBlink{side}", np.stack([0 * Y, -(1 - keep) * Y - 0.004, 0 * Y - back], -1))
            t(p, f"eyeSquint{side}", np.stack([0 * Y, -0.45 * np.clip(Y, 0, None), 0 * Y], -1))
            t(p, f"eyeWide{side}", np.stack([0 * Y, 0.25 * Y + 0.002, 0 * Y], -1))
        # the upper lid: a skin shell over the top of the eye that slides down over it to blink
        lid_r = (0.0255, 0.0285, 0.0135)
        lid_c = ec + (0, 0.001, -0.003)
        rest = ellipsoid(lid_c, lid_r, 22, 10, 0.0, math.pi * 0.30)
        lid = part(f"eyelid_{side}", "Head", rest, tuple(c * 0.9 for c in skin), 0.6)
        shapes = ((f"eyeBlink{side}", 0.97), (f"eyeSquint{side}", 0.50), (f"eyeWide{side}", 0.16))
        for name, v1 in shapes:
            t(lid, name, ellipsoid(lid_c, lid_r, 22, 10, 0.0, math.pi * v1)[0] - rest[0])
        if style.get("lashes", True):
            # a lash line on the lid's edge: the eye reads at webcam size, and a shut eye is a soft
            # curve, not a blank dome. Open it runs along the lid's (straight) edge; shut it is a ‿
            def lash(ys, half):
                xs = np.linspace(-half, half, 12)
                ys = np.broadcast_to(np.asarray(ys, float), xs.shape)
                q = 1 - (xs / lid_r[0]) ** 2 - (ys / lid_r[1]) ** 2
                zs = lid_r[2] * np.sqrt(np.clip(q, 0.02, 1)) + 0.0012
                return tube(np.stack([xs, ys, zs], -1) + lid_c, 0.0019, squash=0.6)

            def edge(v1):
                return lash(lid_r[1] * math.cos(v1), lid_r[0] * max(math.sin(v1), 0.45) * 0.95)

            lash0 = edge(math.pi * 0.30)
            lashes = part(f"lash_{side}", "Head", lash0, (0.10, 0.07, 0.07), 0.7)
            xs = np.linspace(-1, 1, 12)
            shut = lash(-0.006 - 0.005 * (1 - xs**2), lid_r[0] * 0.92)
            t(lashes, f"eyeBlink{side}", shut[0] - lash0[0])
            t(lashes, f"eyeSquint{side}", edge(math.pi * 0.50)[0] - lash0[0])
            t(lashes, f"eyeWide{side}", edge(math.pi * 0.16)[0] - lash0[0])
        for p in (iris, pupil):
            n = len(p.pos)
            t(p, f"eyeLookUp{side}", np.tile((0, 0.008, 0), (n, 1)))
            t(p, f"eyeLookDown{side}", np.tile((0, -0.008, 0), (n, 1)))
            t(p, f"eyeLookIn{side}", np.tile((-0.009 * s, 0, 0), (n, 1)))
            t(p, f"eyeLookOut{side}", np.tile((0.009 * s, 0, 0), (n, 1)))
        bc = on_face(0.050 * s, 0.214, 0.004)
        brow = part(f"brow_{side}", "Head", ellipsoid(bc, (0.027, 0.0055, 0.005), 20, 8), style["hair"], 0.8)
        inner = np.clip(-s * (brow.pos[:, 0] - bc[0]) / 0.027, 0, 1)
        outer = np.clip(s * (brow.pos[:, 0] - bc[0]) / 0.027, 0, 1)
        n = len(brow.pos)
        d = np.zeros((n, 3))
        d[:, 1] = -0.010 - 0.006 * inner
        t(brow, f"browDown{side}", d)
        # raised, each end leads but the whole brow follows: inner + outer together lift it evenly
        # into an arch (surprise), not a V that reads as anger
        u = (1 + inner - outer) / 2  # 0 at the outer end, 1 at the inner one
        arch = 0.002 * (1 - (2 * u - 1) ** 2)
        d = np.zeros((n, 3))
        d[:, 1] = 0.0105 * (0.35 + 0.65 * u) + arch
        t(brow, "browInnerUp", d)
        d = np.zeros((n, 3))
        d[:, 1] = 0.0105 * (0.35 + 0.65 * (1 - u)) + arch
        t(brow, f"browOuterUp{side}", d)
        cc = on_face(0.078 * s, 0.112, 0.001)
        cheek = part(
            f"cheek_{side}",
            "Head",
            ellipsoid(cc, (0.019, 0.012, 0.003), 20, 8),
            tuple(min(1, c * 1.02 + 0.08 * k) for c, k in zip(skin, (1, -0.4, -0.3))),
            0.6,
        )
        n = len(cheek.pos)
        t(cheek, "cheekPuff", (cheek.pos - cc) * 0.5 + (0.010 * s, 0, 0.008))
        t(cheek, f"cheekSquint{side}", np.tile((0, 0.007, 0), (n, 1)))
        t(cheek, f"mouthSmile{side}", np.tile((0.002 * s, 0.006, 0.001), (n, 1)))
    nc = on_face(0.0, 0.132, 0.004)
    nose = part(
        "nose",
        "Head",
        ellipsoid(nc, (0.015, 0.012, 0.012), 20, 12, power=style["power"]),
        tuple(c * 0.94 for c in skin),
        0.5,
    )
    for side, s in (("Left", 1), ("Right", -1)):
        w = np.clip(s * (nose.pos[:, 0] - nc[0]) / 0.015, 0, 1)
        d = np.zeros_like(nose.pos)
        d[:, 1] = 0.006 * w
        d[:, 0] = 0.002 * s * w
        t(nose, f"noseSneer{side}", d)

    # ---- hair / ears / accessories
    hair = style["hair"]
    hs = style["hair_style"]
    # hair: a shell over the head whose edge follows a hairline — high on the forehead (clear of the
    # brows: a test checks), down over the temples and to the nape, as far as the style goes
    lines = {
        "short": {0: style.get("hairline", 62), 40: 64, 70: 82, 90: 80, 110: 96, 150: 120, 180: 126},
        "bob": {0: 62, 35: 66, 55: 104, 80: 120, 180: 126},
        "bun": {0: 58, 50: 62, 75: 80, 90: 80, 110: 96, 180: 122},
    }
    if hs in lines:
        part(
            "hair",
            "Head",
            shell(
                hc + (0, 0.010, -0.006),
                (rx * 1.07, ry * 1.04, rz * 1.08),
                lines[hs],
                52,
                26,
                flare=0.10 if hs == "bob" else 0.0,
            ),
            hair,
            0.9,
        )
    if hs == "bun":  # hair drawn back: the whole forehead and the brows are free
        part("hair_bun", "Head", ellipsoid(hc + (0, ry + 0.035, -0.045), (0.062, 0.056, 0.06), 28, 18), hair, 0.9)
    if hs in ("short", "bob"):
        fringe = ellipsoid(hc + (0.02, 0.118, 0.066), (0.085, 0.026, 0.05), 24, 10)  # clear of the brows
        part("hair_fringe", "Head", fringe, hair, 0.9)
    if hs == "antenna":
        part("antenna", "Head", cylinder(hc + (0, ry + 0.035, 0), 0.005, 0.07), (0.6, 0.6, 0.65), 0.3)
        part("antenna_ball", "Head", ellipsoid(hc + (0, ry + 0.075, 0), (0.014,) * 3, 16, 12), hair, 0.3)
        part(
            "visor", "Head", ellipsoid(on_face(0, 0.17, -0.012), (0.095, 0.045, 0.02), 32, 12), (0.16, 0.18, 0.22), 0.2
        )
        part(
            "grille",
            "Head",
            ellipsoid(on_face(0, 0.085, -0.006), (0.05, 0.017, 0.008), 32, 10),
            (0.55, 0.58, 0.64),
            0.3,
        )
    if hs == "cat":
        part("muzzle", "Head", ellipsoid(on_face(0, 0.112, -0.012), (0.046, 0.026, 0.02), 28, 14), hair, 0.9)
        for s in (1, -1):
            for k, dy in enumerate((0.0, -0.008)):
                part(
                    f"whisker_{s}_{k}",
                    "Head",
                    ellipsoid(on_face(0.075 * s, 0.118 + dy, 0.004), (0.03, 0.0012, 0.0012), 10, 4),
                    (0.3, 0.25, 0.2),
                    0.9,
                )
    if style.get("glasses"):  # round reading glasses: thin frames in front of the eyes, arms to the ears
        frame_col = style["glasses"]
        for side, s in (("Left", 1), ("Right", -1)):
            ec = on_face(0.047 * s, 0.170, 0.0)
            a_ = np.linspace(0, 2 * math.pi, 25)
            loop = np.stack(
                [ec[0] + 0.031 * np.sin(a_), ec[1] - 0.002 + 0.026 * np.cos(a_), np.full_like(a_, ec[2] + 0.016)], -1
            )
            part(f"glasses_rim_{side}", "Head", tube(loop, 0.0022, 5), frame_col, 0.35)
            x_out = ec[0] + 0.031 * s
            arm = np.stack(
                [
                    np.full(6, x_out) + np.linspace(0, 0.012 * s, 6),
                    np.full(6, ec[1] + 0.004),
                    np.linspace(ec[2] + 0.016, hc[2] - 0.01, 6),
                ],
                -1,
            )
            part(f"glasses_arm_{side}", "Head", tube(arm, 0.0018, 5), frame_col, 0.35)
        bridge = np.stack(
            [
                np.linspace(-0.017, 0.017, 7),
                0.178 + 0.004 * (1 - np.linspace(-1, 1, 7) ** 2),
                np.full(7, on_face(0, 0.178, 0.0)[2] + 0.008),
            ],
            -1,
        )
        part("glasses_bridge", "Head", tube(bridge, 0.0019, 5), frame_col, 0.35)
    if style["ears"] == "human":
        for s in (1, -1):
            part(
                f"ear_{s}",
                "Head",
                ellipsoid(hc + (rx * 0.98 * s, 0.0, -0.005), (0.016, 0.03, 0.02), 16, 12),
                style["skin"],
                0.6,
            )
    elif style["ears"] == "cat":
        for s in (1, -1):
            part(
                f"ear_{s}",
                "Head",
                cone(hc + (0.085 * s, ry * 0.78, -0.01), 0.045, 0.085, tilt=0.35 * s),
                style["skin"],
                0.8,
            )
            part(
                f"ear_inner_{s}",
                "Head",
                cone(hc + (0.085 * s, ry * 0.80, 0.0), 0.028, 0.06, tilt=0.35 * s),
                (0.95, 0.7, 0.7),
                0.8,
            )
    elif style["ears"] == "bolts":
        for s in (1, -1):
            part(f"bolt_{s}", "Head", cylinder(hc + (rx * 1.02 * s, 0.0, 0.0), 0.022, 0.025), (0.55, 0.57, 0.62), 0.3)

    # ---- neck, torso (shirt), scarf for the cat
    # a neck about half the head's width, a little wider where it meets the shoulders
    neck_r = style.get("neck", 0.058)
    part(
        "neck",
        "Neck",
        deform(
            cylinder((0, 0.02, 0), neck_r, 0.14),
            lambda P: (
                P
                * np.stack(
                    [
                        1 + 0.25 * smooth(-P[:, 1], -0.02, 0.05),
                        np.ones(len(P)),
                        1 + 0.1 * smooth(-P[:, 1], -0.02, 0.05),
                    ],
                    -1,
                )
            ),
        ),
        tuple(c * 0.92 for c in skin),
        0.6,
    )
    shirt = style["shirt"]
    # a bust: a boxy-rounded torso whose top corners are the shoulders, the top rising to the neck
    # (trapezius) so the shoulders slope, upper arms hanging at rest
    tc, tr = np.array([0.0, -0.04, 0.0]), (0.25, 0.25, 0.115)
    top = tc[1] + tr[1]

    def bust(P):
        P = np.array(P, float)
        near_top = smooth(P[:, 1], top - 0.14, top)
        ax = np.abs(P[:, 0])
        P[:, 1] += 0.03 * np.exp(-((P[:, 0] / 0.085) ** 2)) * near_top  # trapezius: up toward the neck
        P[:, 1] -= 0.035 * smooth(ax, 0.06, 0.24) * near_top  # the shoulder line slopes away from it
        P[:, 2] *= 1 - 0.22 * near_top * smooth(ax, 0.05, 0.22)  # shoulders thinner than the chest
        P[:, 1] -= 0.022 * np.exp(-((P[:, 0] / 0.06) ** 2)) * smooth(P[:, 2], 0.0, 0.09) * near_top  # the neck's notch
        return P

    part(
        "torso",
        "Spine",
        deform(ellipsoid(tc, tr, 44, 30, 0.0, math.pi * 0.7, power=0.75, power_v=0.35), bust),
        shirt,
        0.8,
    )
    for s in (1, -1):
        c = np.array([0.245 * s, -0.09, -0.012])
        part(f"arm_{s}", "Spine", tilted(ellipsoid(c, (0.058, 0.18, 0.06), 16, 10), c, 0.08 * s), shirt, 0.8)
    # a crew neckline: a soft band lying on the shirt around the base of the neck
    tp = bust(ellipsoid(tc, tr, 200, 160, 0.0, math.pi * 0.3, power=0.75, power_v=0.35)[0])  # dense: to sample
    ang = np.linspace(0, 2 * math.pi, max(24, int(48 * DETAIL)), endpoint=False)
    ring = []
    for a_ in ang:
        x, z = neck_r * 1.3 * math.sin(a_), neck_r * 1.3 * math.cos(a_) * 0.95
        near = np.hypot(tp[:, 0] - x, tp[:, 2] - z) < 0.02
        ring.append((x, float(tp[near, 1].max()) + 0.002, z))
    ring = np.array(ring)
    part(
        "collar",
        "Spine",
        tube(ring, 0.0105, 6, squash=0.7, toward=ring * (1, 0, 1), closed=True),
        tuple(c * 0.8 for c in shirt),
        0.85,
    )
    if hs == "cat":  # a knitted scarf wound round the neck, in a lighter shade of the jumper
        ang = np.linspace(0, 2 * math.pi, 32, endpoint=False)
        for k, (y, r_) in enumerate(((0.012, 1.32), (-0.012, 1.42))):
            loop = np.stack([np.sin(ang) * neck_r * r_, np.full_like(ang, y), np.cos(ang) * neck_r * r_], -1)
            part(
                f"scarf_{k}",
                "Neck",
                tube(loop, 0.016, 6, squash=0.8, toward=loop * (1, 0, 1), closed=True),
                tuple(min(1.0, c * 1.15 + 0.06) for c in shirt),
                0.95,
            )
    return parts


SKELETON = [
    ("Hips", None, (0, 1.0, 0)),
    ("Spine", "Hips", (0, 0.2, 0)),
    ("Neck", "Spine", (0, 0.21, 0)),
    ("Head", "Neck", (0, 0.05, 0)),
]


# --------------------------------------------------------------------------- GLB writer
# MediaPipe's blendshapes rarely reach 1 for a real blink or smile; small stylised features need
# a stronger response to read at webcam size.
RESPONSE = {
    "gain": {
        "eyeBlinkLeft": 1.25,
        "eyeBlinkRight": 1.25,
        "mouthSmileLeft": 1.2,
        "mouthSmileRight": 1.2,
        "browInnerUp": 1.3,
        "jawOpen": 1.15,
    },
    "gamma": {"eyeBlinkLeft": 0.8, "eyeBlinkRight": 0.8},
}


def write_glb(name: str, parts: list[Part], path: Path, description: str) -> None:
    """Write parts as a GLB: one node + mesh per part under its joint node, morph targets by name."""
    blob = bytearray()
    views, accessors = [], []

    def add(arr: np.ndarray, target: int | None, kind: str, minmax: bool = False) -> int:
        data = np.ascontiguousarray(arr).tobytes()
        while len(blob) % 4:
            blob.append(0)
        view = {"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)}
        if target:
            view["target"] = target
        views.append(view)
        blob.extend(data)
        comp = {np.dtype(np.float32): 5126, np.dtype(np.uint32): 5125, np.dtype(np.uint16): 5123}[arr.dtype]
        acc = {"bufferView": len(views) - 1, "componentType": comp, "count": int(arr.shape[0]), "type": kind}
        if minmax:
            acc["min"] = [float(x) for x in arr.min(axis=0)]
            acc["max"] = [float(x) for x in arr.max(axis=0)]
        accessors.append(acc)
        return len(accessors) - 1

    nodes = [{"name": j, "translation": list(map(float, tr)), "children": []} for j, _, tr in SKELETON]
    index = {j: i for i, (j, _, _) in enumerate(SKELETON)}
    for j, parent, _ in SKELETON:
        if parent:
            nodes[index[parent]]["children"].append(index[j])
    meshes, materials = [], []
    for p in parts:
        materials.append(
            {
                "name": p.name,
                "pbrMetallicRoughness": {
                    # glTF colour factors are linear; the styles are written in sRGB
                    "baseColorFactor": [*(float(c) ** 2.2 for c in p.color), 1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": p.rough,
                },
            }
        )
        names = [n for n in ARKIT_NAMES if n in p.targets]
        idx = p.idx.astype(np.uint16) if len(p.pos) < 65536 else p.idx.astype(np.uint32)
        prim = {
            "attributes": {
                "POSITION": add(p.pos.astype(np.float32), 34962, "VEC3", True),
                "NORMAL": add(p.nrm.astype(np.float32), 34962, "VEC3"),
            },
            "indices": add(idx.reshape(-1), 34963, "SCALAR"),
            "material": len(materials) - 1,
        }
        if names:
            prim["targets"] = [{"POSITION": add(p.targets[n].astype(np.float32), 34962, "VEC3", True)} for n in names]
        mesh = {"name": p.name, "primitives": [prim]}
        if names:
            mesh["weights"] = [0.0] * len(names)
            mesh["extras"] = {"targetNames": names}
        meshes.append(mesh)
        nodes.append({"name": p.name, "mesh": len(meshes) - 1})
        nodes[index[p.joint]]["children"].append(len(nodes) - 1)
    gltf = {
        "asset": {
            "version": "2.0",
            "generator": "RAVAS avatars/generate.py",
            "copyright": "RAVAS contributors, MIT licence",
        },
        "scene": 0,
        "scenes": [{"name": name, "nodes": [0]}],
        "nodes": nodes,
        "meshes": meshes,
        "materials": materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
        "extras": {
            "ravas": {
                "name": name,
                "description": description,
                "licence": "MIT",
                # per-avatar response curves: shown weight = min(1, gain · weight^gamma)
                "response": RESPONSE,
            }
        },
    }
    js = json.dumps(gltf, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    blob += b"\0" * (-len(blob) % 4)
    out = struct.pack("<III", 0x46546C67, 2, 12 + 8 + len(js) + 8 + len(blob))
    out += struct.pack("<II", len(js), 0x4E4F534A) + js + struct.pack("<II", len(blob), 0x004E4942) + bytes(blob)
    path.write_bytes(out)


def main(out_dir: Path = HERE) -> list[Path]:
    written = []
    for name, style in STYLES.items():
        parts = build(style)
        covered = {n for p in parts for n in p.targets}
        missing = set(ARKIT_NAMES) - covered
        assert not missing, f"{name}: no morph target for {sorted(missing)}"
        path = out_dir / f"{name}.glb"
        write_glb(name, parts, path, style["description"])
        written.append(path)
    return written


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"wrote {p} ({p.stat().st_size // 1024} KiB)")
