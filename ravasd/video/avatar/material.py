"""Materials as the renderer draws them: glTF's base colour and alpha, and MToon (VRM's toon shading).

MToon comes from VRM 1.0's ``VRMC_materials_mtoon`` material extension, or from VRM 0.x's
``extensions.VRM.materialProperties`` (shader ``VRM/MToon``), converted to 1.0's parameters the way
the VRM 1.0 migration does: 0.x shades over ``[shift, shift + 1 − toony]`` of N·L, 1.0 over
``[−1 + toony, 1 − toony]`` after adding its shift. Colours are linear RGB. Surfaces are always
drawn two-sided and outlines unlit, so ``doubleSided`` and the outline lighting mix are not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Material:
    alpha_mode: str = "OPAQUE"  # OPAQUE | MASK | BLEND (glTF)
    alpha_cutoff: float = 0.5  # MASK only
    emissive: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    mtoon: bool = False
    shade: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))  # shadeColorFactor
    shade_texture: int | None = None  # glTF texture index (shadeMultiplyTexture)
    shift: float = 0.0  # shadingShiftFactor (−1..1)
    toony: float = 0.9  # shadingToonyFactor (0 soft .. 1 hard edge)
    rim: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))  # parametricRimColorFactor
    rim_power: float = 5.0  # parametricRimFresnelPowerFactor
    rim_lift: float = 0.0  # parametricRimLiftFactor
    rim_mix: float = 1.0  # rimLightingMixFactor: 1 = the rim is lit like the surface
    outline: str = "none"  # none | world | screen
    outline_width: float = 0.0  # metres (world) or a fraction of the frame height (screen)
    outline_color: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    matcap: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))  # matcapFactor
    matcap_texture: int | None = None

    def batch_key(self) -> tuple:
        """Parts whose materials share this key can be drawn in one call (colours go per vertex)."""
        if not self.mtoon:
            return ("plain", self.alpha_mode)
        return (
            "mtoon",
            self.alpha_mode,
            round(self.shift, 4),
            round(self.toony, 4),
            tuple(np.round(self.rim, 4)),
            round(self.rim_power, 3),
            round(self.rim_lift, 4),
            round(self.rim_mix, 3),
            self.outline,
            round(self.outline_width, 6),
            tuple(np.round(self.outline_color, 4)),
            self.matcap_texture,
            self.shade_texture,
        )


def _num(v, default: float, lo: float = -1e6, hi: float = 1e6) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return default
    return float(min(hi, max(lo, x))) if np.isfinite(x) else default


def _rgb(v, default=(0.0, 0.0, 0.0)) -> np.ndarray:
    if isinstance(v, (list, tuple)) and len(v) >= 3:
        return np.array([_num(c, d, 0.0, 64.0) for c, d in zip(v[:3], default)], np.float32)
    return np.asarray(default, np.float32)


def _tex_index(info) -> int | None:
    return info["index"] if isinstance(info, dict) and isinstance(info.get("index"), int) else None


def from_gltf(mat: dict, vrm0: dict | None = None) -> Material:
    """A glTF material (with its MToon extension if any); ``vrm0`` is the material's entry in VRM
    0.x ``materialProperties`` when the file is VRM 0.x. Bad values fall back to defaults."""
    m = Material()
    mode = mat.get("alphaMode", "OPAQUE")
    m.alpha_mode = mode if mode in ("OPAQUE", "MASK", "BLEND") else "OPAQUE"
    m.alpha_cutoff = _num(mat.get("alphaCutoff", 0.5), 0.5, 0.0, 1.0)
    m.emissive = _rgb(mat.get("emissiveFactor"))
    ext = (mat.get("extensions") or {}).get("VRMC_materials_mtoon")
    if isinstance(ext, dict):
        m.mtoon = True
        m.shade = _rgb(ext.get("shadeColorFactor"))
        m.shade_texture = _tex_index(ext.get("shadeMultiplyTexture"))
        m.shift = _num(ext.get("shadingShiftFactor", 0.0), 0.0, -1.0, 1.0)
        m.toony = _num(ext.get("shadingToonyFactor", 0.9), 0.9, 0.0, 1.0)
        m.rim = _rgb(ext.get("parametricRimColorFactor"))
        m.rim_power = _num(ext.get("parametricRimFresnelPowerFactor", 5.0), 5.0, 0.0, 100.0)
        m.rim_lift = _num(ext.get("parametricRimLiftFactor", 0.0), 0.0, -1.0, 1.0)
        m.rim_mix = _num(ext.get("rimLightingMixFactor", 1.0), 1.0, 0.0, 1.0)
        mode = ext.get("outlineWidthMode", "none")
        m.outline = {"worldCoordinates": "world", "screenCoordinates": "screen"}.get(mode, "none")
        m.outline_width = _num(ext.get("outlineWidthFactor", 0.0), 0.0, 0.0, 1.0)
        m.outline_color = _rgb(ext.get("outlineColorFactor"))
        m.matcap = _rgb(ext.get("matcapFactor"), (1.0, 1.0, 1.0))
        m.matcap_texture = _tex_index(ext.get("matcapTexture"))
    elif isinstance(vrm0, dict) and str(vrm0.get("shader", "")) == "VRM/MToon":
        _from_vrm0(m, vrm0)
    if m.outline_width <= 0.0:
        m.outline = "none"
    return m


def _linear(c: np.ndarray) -> np.ndarray:
    """VRM 0.x stores MToon colours as Unity shows them (sRGB); 1.0 and the renderer use linear."""
    return np.power(np.clip(c, 0.0, None), 2.2).astype(np.float32)


def _from_vrm0(m: Material, p: dict) -> None:
    f = p.get("floatProperties") or {}
    v = p.get("vectorProperties") or {}
    t = p.get("textureProperties") or {}
    m.mtoon = True
    m.shade = _linear(_rgb(v.get("_ShadeColor"), (0.97, 0.81, 0.86)))
    shift0 = _num(f.get("_ShadeShift", 0.0), 0.0, -1.0, 1.0)
    toony0 = _num(f.get("_ShadeToony", 0.9), 0.9, 0.0, 1.0)
    lo, hi = shift0, shift0 + (1.0 - toony0)  # the N·L range 0.x shades over
    m.toony = float(np.clip((2.0 - (hi - lo)) * 0.5, 0.0, 1.0))
    m.shift = float(np.clip(-(lo + hi) * 0.5, -1.0, 1.0))
    m.rim = _linear(_rgb(v.get("_RimColor")))
    m.rim_power = _num(f.get("_RimFresnelPower", 1.0), 1.0, 0.0, 100.0)
    m.rim_lift = _num(f.get("_RimLift", 0.0), 0.0, -1.0, 1.0)
    m.rim_mix = _num(f.get("_RimLightingMix", 0.0), 0.0, 0.0, 1.0)
    mode = int(_num(f.get("_OutlineWidthMode", 0), 0, 0, 2))
    m.outline = ("none", "world", "screen")[mode]
    # 0.x widths: world mode in centimetres; screen mode in ‰ of the screen height (×0.01 × 0.5)
    w = _num(f.get("_OutlineWidth", 0.0), 0.0, 0.0, 100.0)
    m.outline_width = w * 0.01 if mode == 1 else w * 0.005
    m.outline_color = _linear(_rgb(v.get("_OutlineColor")))
    blend = int(_num(f.get("_BlendMode", 0), 0, 0, 3))
    m.alpha_mode = ("OPAQUE", "MASK", "BLEND", "BLEND")[blend]
    m.alpha_cutoff = _num(f.get("_Cutoff", 0.5), 0.5, 0.0, 1.0)
    m.shade_texture = t.get("_ShadeTexture") if isinstance(t.get("_ShadeTexture"), int) else None
    m.matcap_texture = t.get("_SphereAdd") if isinstance(t.get("_SphereAdd"), int) else None
