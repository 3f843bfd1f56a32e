"""VRM 0.x / 1.0 expressions → drive tables keyed by ARKit names or VRM presets.

Perfect Sync avatars carry the 52 ARKit names as expressions (custom in VRM 1.0, blend-shape groups
in 0.x); others get the VRM presets (aa/ih/ou/ee/oh, blink, blinkLeft/Right, look*, happy …),
which :func:`preset_weights` derives from the ARKit weights.
"""

from __future__ import annotations

import numpy as np

from ..tracking import ARKIT_NAMES

PRESETS_0_TO_1 = {
    "a": "aa",
    "i": "ih",
    "u": "ou",
    "e": "ee",
    "o": "oh",
    "blink_l": "blinkLeft",
    "blink_r": "blinkRight",
    "joy": "happy",
    "sorrow": "sad",
    "fun": "relaxed",
    "lookup": "lookUp",
    "lookdown": "lookDown",
    "lookleft": "lookLeft",
    "lookright": "lookRight",
}
_ARKIT_LOWER = {n.lower(): n for n in ARKIT_NAMES}


def expressions(g: dict, fmt: str, model) -> dict[str, list[tuple[int, int, float]]]:
    """name → [(primitive index, target index, weight 0..1)] for every expression in the file."""
    by_mesh: dict[int, list[int]] = {}
    for pi, p in enumerate(model.primitives):
        by_mesh.setdefault(model.nodes[p.node].mesh, []).append(pi)
    by_node = {}
    for pi, p in enumerate(model.primitives):
        by_node.setdefault(p.node, []).append(pi)
    out: dict[str, list[tuple[int, int, float]]] = {}
    ext = g["extensions"]
    if fmt == "vrm0":
        for grp in ext["VRM"].get("blendShapeMaster", {}).get("blendShapeGroups", []):
            preset = str(grp.get("presetName", "unknown")).lower()
            name = grp.get("name", "")
            key = PRESETS_0_TO_1.get(preset, preset) if preset not in ("unknown", "") else name
            key = _ARKIT_LOWER.get(str(key).lower(), key)
            binds = [
                (pi, b["index"], float(b.get("weight", 100)) / 100.0)
                for b in grp.get("binds", [])
                for pi in by_mesh.get(b["mesh"], [])
            ]
            out[key] = binds
    else:
        ex = ext["VRMC_vrm"].get("expressions", {})
        for group in ("preset", "custom"):
            for name, e in ex.get(group, {}).items():
                key = _ARKIT_LOWER.get(name.lower(), name)
                out[key] = [
                    (pi, b["index"], float(b.get("weight", 1.0)))
                    for b in e.get("morphTargetBinds", [])
                    for pi in by_node.get(b["node"], [])
                ]
    return out


def preset_weights(w: np.ndarray) -> dict[str, float]:
    """VRM preset weights from the 52 ARKit weights (for avatars without Perfect Sync)."""
    a = {n: float(w[i]) for i, n in enumerate(ARKIT_NAMES)}
    smile = (a["mouthSmileLeft"] + a["mouthSmileRight"]) / 2
    out = {
        "aa": a["jawOpen"] * (1 - a["mouthFunnel"]) * (1 - a["mouthPucker"]),
        "oh": min(1.0, a["mouthFunnel"] * 1.2),
        "ou": min(1.0, a["mouthPucker"] * 1.2),
        "ee": min(1.0, (a["mouthStretchLeft"] + a["mouthStretchRight"]) / 2 + smile * 0.3),
        "ih": min(1.0, smile * 0.6),
        "blinkLeft": a["eyeBlinkLeft"],
        "blinkRight": a["eyeBlinkRight"],
        "happy": smile,
        "sad": (a["mouthFrownLeft"] + a["mouthFrownRight"]) / 2,
        "angry": (a["browDownLeft"] + a["browDownRight"]) / 2,
        "surprised": a["browInnerUp"] * (a["eyeWideLeft"] + a["eyeWideRight"]) / 2,
        "lookUp": (a["eyeLookUpLeft"] + a["eyeLookUpRight"]) / 2,
        "lookDown": (a["eyeLookDownLeft"] + a["eyeLookDownRight"]) / 2,
        "lookLeft": (a["eyeLookOutLeft"] + a["eyeLookInRight"]) / 2,
        "lookRight": (a["eyeLookInLeft"] + a["eyeLookOutRight"]) / 2,
    }
    out["blink"] = min(out["blinkLeft"], out["blinkRight"])
    return out
