"""An avatar's pose for one frame, on the CPU: bone transforms from the head angles, each morphing
primitive's target weights from the 52 ARKit blendshapes (and VRM expressions), morphed and
skinned vertex positions. Pure numpy, no GL: the renderer draws what this computes.
"""

from __future__ import annotations

import math

import numpy as np

from ..tracking import ARKIT_NAMES
from .model import AvatarModel, Primitive
from .vrm import preset_weights

ARKIT_INDEX = {n: i for i, n in enumerate(ARKIT_NAMES)}
#: How a head turn is shared out along the spine: (bone, share of the angle).
HEAD_SHARES = (("spine", 0.1), ("neck", 0.3), ("head", 0.6))


def rotation(axis: str, deg: float) -> np.ndarray:
    """A 4×4 rotation of ``deg`` degrees about ``axis`` ("x", "y" or "z")."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    m = np.eye(4)
    if axis == "x":
        m[1:3, 1:3] = [[c, -s], [s, c]]
    elif axis == "y":
        m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    else:
        m[0:2, 0:2] = [[c, -s], [s, c]]
    return m


def world_matrices(model: AvatarModel, yaw: float, pitch: float, roll: float, breathe: float) -> list[np.ndarray]:
    """Every node's 4×4 world transform with the head turned by ``yaw``/``pitch``/``roll`` degrees
    (shared along the spine, :data:`HEAD_SHARES`) and the chest lifted by ``breathe`` (−1..1)."""
    bones = model.bones
    extra = {}
    for key, share in HEAD_SHARES:
        if key in bones:
            extra[bones[key]] = rotation("y", yaw * share) @ rotation("x", pitch * share) @ rotation("z", roll * share)
    if breathe and "spine" in bones:
        s = np.eye(4)
        s[1, 3] = breathe * 0.004
        extra[bones["spine"]] = s @ extra.get(bones["spine"], np.eye(4))
    nodes = model.nodes
    world: list[np.ndarray | None] = [None] * len(nodes)
    root_fix = rotation("y", 180) if model.facing_back else np.eye(4)

    def visit(i: int, parent: np.ndarray) -> None:
        local = nodes[i].matrix
        if i in extra:
            local = local @ extra[i]
        world[i] = parent @ local
        for c in nodes[i].children:
            visit(c, world[i])

    for r in model.roots:
        visit(r, root_fix)
    return [w if w is not None else np.eye(4) for w in world]


class Morphs:
    """ARKit weights → each morphing primitive's target weights, so that every name reaches every
    mesh with a target of that name (teeth, tongue, lashes too), or VRM expressions bind them."""

    def __init__(self, model: AvatarModel) -> None:
        self.model = model
        #: per morphing primitive: (its index, ARKit index per target or −1, [(target, name, weight)] via expressions)
        self.tables: list[tuple[int, np.ndarray, list[tuple[int, str, float]]]] = []
        exprs = model.expressions
        for pi, p in enumerate(model.primitives):
            if p.targets is None:
                continue
            direct = np.array([ARKIT_INDEX.get(n, -1) for n in p.target_names])
            via = [(ti, name, w) for name, binds in exprs.items() for (bpi, ti, w) in binds if bpi == pi]
            self.tables.append((pi, direct if not exprs else np.full(len(direct), -1), via))

    def weights(self, weights: np.ndarray) -> dict[int, np.ndarray]:
        """``weights`` (52,) in ARKit order → {primitive index: (targets,) float32 target weights}."""
        w = np.asarray(weights, np.float32)
        presets = preset_weights(w) if self.model.expressions else {}
        out = {}
        for pi, direct, via in self.tables:
            tw = np.where(direct >= 0, w[np.maximum(direct, 0)], 0.0).astype(np.float32)
            for ti, name, k in via:
                value = w[ARKIT_INDEX[name]] if name in ARKIT_INDEX else presets.get(name, 0.0)
                tw[ti] += value * k
            out[pi] = tw
        return out


def morphed(p: Primitive, tw: np.ndarray) -> np.ndarray:
    """``p``'s rest positions (N, 3) with its morph targets applied at weights ``tw``."""
    nz = np.nonzero(tw)[0]
    return p.positions + np.tensordot(tw[nz], p.targets[nz], axes=1) if len(nz) else p.positions


def skin_matrices(model: AvatarModel, world: list[np.ndarray]) -> list[np.ndarray]:
    """Per skin: (joints, 4, 4) joint matrices for this pose."""
    return [np.stack([world[j] @ s.inverse_bind[k] for k, j in enumerate(s.joints)]) for s in model.skins]


def skinned(p: Primitive, positions: np.ndarray, joint_mats: np.ndarray) -> np.ndarray:
    """``positions`` (N, 3) of ``p`` moved by its joints (linear blend skinning), in world space."""
    blend = np.einsum("nk,nkij->nij", p.weights, joint_mats[p.joints])
    return np.einsum("nij,nj->ni", blend[:, :3, :3], positions) + blend[:, :3, 3]
