"""MToon (VRM's toon shading) on llvmpipe: VRM 0.x and 1.0 files generated here with known material
parameters render with their shade colour, rim, outline and alpha mode."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from ravasd.video.avatar.material import from_gltf
from ravasd.video.avatar.model import load_avatar

W, H = 320, 240
BASE = (0.8, 0.3, 0.2)  # linear
SHADE = (0.1, 0.2, 0.6)


def _sphere(n: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    th, ph = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n))
    pos = np.stack([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)], -1).reshape(-1, 3) * 0.1
    uv = np.stack([ph / (2 * np.pi), th / np.pi], -1).reshape(-1, 2)
    idx = []
    for i in range(2 * n - 1):
        for j in range(n - 1):
            a, b = i * n + j, (i + 1) * n + j
            idx += [a, b, a + 1, b, b + 1, a + 1]  # counter-clockwise seen from outside (glTF)
    pos = pos.astype(np.float32)
    return pos, (pos / 0.1).astype(np.float32), uv.astype(np.float32), np.array(idx, np.uint32)


def make_sphere_vrm(
    path: Path,
    version: int,
    mtoon: dict | None,
    alpha: str = "OPAQUE",
    texture_alpha: float | None = None,
    clockwise: bool = False,
) -> Path:
    """A one-sphere VRM (the sphere is the head) whose one material has ``mtoon`` parameters:
    VRM 1.0's extension names for version 1, 0.x ``materialProperties`` for version 0."""
    pos, nrm, uv, idx = _sphere()
    if clockwise:  # some exporters wind the other way: outlines must not depend on it
        idx = idx.reshape(-1, 3)[:, ::-1].reshape(-1).copy()
    blobs = [pos.tobytes(), nrm.tobytes(), uv.tobytes(), idx.tobytes()]
    views, off = [], 0
    for b in blobs:
        views.append({"buffer": 0, "byteOffset": off, "byteLength": len(b)})
        off += len(b)
    images, textures = [], []
    binary = b"".join(blobs)
    mat: dict = {"name": "skin", "pbrMetallicRoughness": {"baseColorFactor": [*BASE, 1.0]}, "alphaMode": alpha}
    if texture_alpha is not None:  # the upper half (v < 0.5) at texture_alpha, the lower opaque
        import cv2

        img = np.full((8, 8, 4), 255, np.uint8)
        img[:4, :, 3] = int(texture_alpha * 255)
        png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA))[1].tobytes()
        pad = (-len(binary)) % 4
        binary += b"\0" * pad
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(png)})
        binary += png
        images.append({"bufferView": len(views) - 1, "mimeType": "image/png"})
        textures.append({"source": 0})
        mat["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
        mat["alphaCutoff"] = 0.5
    n = len(pos)
    gltf = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "Head", "mesh": 0, "translation": [0, 1.5, 0]}],
        "meshes": [
            {
                "name": "head",
                "primitives": [
                    {"attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}, "indices": 3, "material": 0}
                ],
            }
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": n,
                "type": "VEC3",
                "min": pos.min(0).tolist(),
                "max": pos.max(0).tolist(),
            },
            {"bufferView": 1, "componentType": 5126, "count": n, "type": "VEC3"},
            {"bufferView": 2, "componentType": 5126, "count": n, "type": "VEC2"},
            {"bufferView": 3, "componentType": 5125, "count": len(idx), "type": "SCALAR"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
        "materials": [mat],
    }
    if images:
        gltf["images"], gltf["textures"] = images, textures
    if version == 1:
        if mtoon is not None:
            mat["extensions"] = {"VRMC_materials_mtoon": {"specVersion": "1.0", **mtoon}}
        gltf["extensions"] = {
            "VRMC_vrm": {
                "specVersion": "1.0",
                "meta": {"name": "ball", "authors": ["tests"]},
                "humanoid": {"humanBones": {"head": {"node": 0}}},
            }
        }
        gltf["extensionsUsed"] = ["VRMC_vrm", "VRMC_materials_mtoon"]
    else:
        props = [{"name": "skin", "shader": "VRM/MToon", **mtoon}] if mtoon is not None else []
        gltf["extensions"] = {
            "VRM": {
                "meta": {"title": "ball"},
                "materialProperties": props,
                "humanoid": {"humanBones": [{"bone": "head", "node": 0}]},
            }
        }
        gltf["extensionsUsed"] = ["VRM"]
        gltf["nodes"][0]["rotation"] = [0, 1, 0, 0]
    js = json.dumps(gltf).encode()
    js += b" " * ((-len(js)) % 4)
    binary += b"\0" * ((-len(binary)) % 4)
    out = struct.pack("<III", 0x46546C67, 2, 12 + 8 + len(js) + 8 + len(binary))
    out += struct.pack("<I4s", len(js), b"JSON") + js + struct.pack("<I4s", len(binary), b"BIN\0") + binary
    path.write_bytes(out)
    return path


def _render(path: Path) -> np.ndarray:
    from ravasd.video.avatar.renderer import AvatarRenderer

    r = AvatarRenderer(load_avatar(path), W, H, background=(0.0, 0.0, 0.0))
    try:
        return r.render(np.zeros(52, np.float32)).astype(float) / 255
    finally:
        r.release()


def _srgb(c) -> np.ndarray:
    return np.sqrt(np.clip(np.asarray(c, float), 0, 1))  # the renderer's encode


def _mask(img: np.ndarray) -> np.ndarray:
    return img.sum(axis=2) > 0.02


TOON = {"shadeColorFactor": list(SHADE), "shadingShiftFactor": 0.0, "shadingToonyFactor": 0.95}


def test_vrm1_mtoon_parameters_are_read():
    ext = {
        "shadeColorFactor": [0.1, 0.2, 0.3],
        "shadingShiftFactor": -0.2,
        "shadingToonyFactor": 0.7,
        "parametricRimColorFactor": [1, 0, 0],
        "parametricRimFresnelPowerFactor": 3.0,
        "parametricRimLiftFactor": 0.1,
        "outlineWidthMode": "screenCoordinates",
        "outlineWidthFactor": 0.01,
        "outlineColorFactor": [0, 1, 0],
        "matcapFactor": [0.5, 0.5, 0.5],
        "shadeMultiplyTexture": {"index": 2},
    }
    m = from_gltf({"alphaMode": "MASK", "alphaCutoff": 0.3, "extensions": {"VRMC_materials_mtoon": ext}})
    assert m.mtoon and m.alpha_mode == "MASK" and m.alpha_cutoff == pytest.approx(0.3)
    assert np.allclose(m.shade, (0.1, 0.2, 0.3)) and m.shift == pytest.approx(-0.2) and m.toony == pytest.approx(0.7)
    assert np.allclose(m.rim, (1, 0, 0)) and m.rim_power == 3.0 and m.rim_lift == pytest.approx(0.1)
    assert m.outline == "screen" and m.outline_width == pytest.approx(0.01) and np.allclose(m.outline_color, (0, 1, 0))
    assert m.shade_texture == 2 and m.matcap_texture is None
    # hostile values fall back or are clamped, never raise
    bad = from_gltf(
        {
            "alphaMode": "WEIRD",
            "extensions": {
                "VRMC_materials_mtoon": {
                    "shadingToonyFactor": "x",
                    "shadeColorFactor": [float("nan")] * 3,
                    "outlineWidthFactor": 1e9,
                    "outlineWidthMode": "worldCoordinates",
                }
            },
        }
    )
    assert bad.alpha_mode == "OPAQUE" and bad.toony == 0.9 and bad.outline_width == 1.0
    assert np.isfinite(bad.shade).all()


def test_vrm0_mtoon_is_migrated_like_vrm_1_0():
    """0.x defaults (toony 0.9, shift 0) are 1.0's toony 0.95, shift −0.05; Lambert (0, 0) is 0.5, −0.5;
    0.x colours are sRGB and become linear."""
    m = from_gltf(
        {},
        {
            "shader": "VRM/MToon",
            "floatProperties": {"_ShadeToony": 0.9, "_ShadeShift": 0.0},
            "vectorProperties": {"_ShadeColor": [0.5, 0.5, 0.5, 1]},
        },
    )
    assert m.mtoon and m.toony == pytest.approx(0.95) and m.shift == pytest.approx(-0.05)
    assert m.shade[0] == pytest.approx(0.5**2.2, rel=1e-3)
    lam = from_gltf(
        {},
        {
            "shader": "VRM/MToon",
            "floatProperties": {
                "_ShadeToony": 0.0,
                "_ShadeShift": 0.0,
                "_OutlineWidthMode": 1,
                "_OutlineWidth": 0.5,
                "_BlendMode": 1,
                "_Cutoff": 0.4,
            },
        },
    )
    assert lam.toony == pytest.approx(0.5) and lam.shift == pytest.approx(-0.5)
    assert lam.outline == "world" and lam.outline_width == pytest.approx(0.005)
    assert lam.alpha_mode == "MASK" and lam.alpha_cutoff == pytest.approx(0.4)
    assert not from_gltf({}, {"shader": "VRM/UnlitTexture"}).mtoon


@pytest.mark.parametrize("version", [0, 1])
def test_shade_colour_fills_the_unlit_side(tmp_path, version):
    """Lit from the upper left: the lower right of the ball is the shade colour, the upper left the
    base colour, with a hard terminator (toony 0.95); plain shading (no MToon) has neither."""
    mt = (
        TOON
        if version == 1
        else {
            "floatProperties": {"_ShadeToony": 0.9, "_ShadeShift": 0.0},
            "vectorProperties": {"_ShadeColor": [*(np.array(SHADE) ** (1 / 2.2)), 1]},
        }
    )
    img = _render(make_sphere_vrm(tmp_path / "toon.vrm", version, mt))
    plain = _render(make_sphere_vrm(tmp_path / "plain.vrm", version, None))
    ys, xs = np.nonzero(_mask(img))
    cy, cx, r = ys.mean(), xs.mean(), (xs.max() - xs.min()) / 2
    light = np.array([0.98, 0.96, 0.93])
    fill = np.array([0.6, 0.1, 0.5]) / 0.7874

    def expect(colour, dx, dy):  # the shader's sum at the sphere normal under screen offset (dx, dy)·r
        n = np.array([dx, -dy, np.sqrt(max(0.0, 1 - dx * dx - dy * dy))])
        return _srgb(np.array(colour) * light + np.array(BASE) * 0.12 * max(0.0, n @ fill))

    lit = img[int(cy - 0.4 * r), int(cx - 0.4 * r)]
    dark = img[int(cy + 0.7 * r), int(cx + 0.5 * r)]
    assert np.abs(lit - expect(BASE, -0.4, -0.4)).max() < 0.06, lit
    assert np.abs(dark - expect(SHADE, 0.5, 0.7)).max() < 0.06, dark
    assert dark[2] > dark[0]  # the shade is blue, the base orange
    pd = plain[int(cy + 0.55 * r), int(cx + 0.55 * r)]
    assert pd[0] > pd[2]  # plain shading darkens the base colour instead


def test_rim_light_brightens_the_silhouette(tmp_path):
    img = _render(make_sphere_vrm(tmp_path / "a.vrm", 1, TOON))
    rim = _render(
        make_sphere_vrm(
            tmp_path / "b.vrm",
            1,
            {
                **TOON,
                "parametricRimColorFactor": [0, 0.8, 0],
                "parametricRimFresnelPowerFactor": 2.0,
                "rimLightingMixFactor": 0.0,
            },
        )
    )
    m = _mask(img)
    ys, xs = np.nonzero(m)
    cy, cx = int(ys.mean()), int(xs.mean())
    edge = (m & ~np.roll(m, 6, axis=1)) | (m & ~np.roll(m, -6, axis=1))  # a band just inside the silhouette
    gain_edge = (rim[edge][:, 1] - img[edge][:, 1]).mean()
    gain_centre = rim[cy, cx, 1] - img[cy, cx, 1]
    assert gain_edge > 0.15 and gain_centre < 0.03, (gain_edge, gain_centre)


@pytest.mark.parametrize(
    "mode, width, clockwise",
    [("screenCoordinates", 0.02, False), ("worldCoordinates", 0.01, False), ("screenCoordinates", 0.02, True)],
)
def test_outline_draws_around_the_silhouette_in_its_colour(tmp_path, mode, width, clockwise):
    base = _render(make_sphere_vrm(tmp_path / "a.vrm", 1, TOON))
    out = _render(
        make_sphere_vrm(
            tmp_path / "b.vrm",
            1,
            {**TOON, "outlineWidthMode": mode, "outlineWidthFactor": width, "outlineColorFactor": [0.0, 1.0, 0.0]},
            clockwise=clockwise,
        )
    )
    inside, grown = _mask(base), _mask(out)
    ring = grown & ~inside
    assert ring.sum() > 200, ring.sum()  # the outline adds a ring outside the ball…
    assert np.all(np.abs(out[ring] - (0, 1, 0)).max(axis=1) < 0.35)  # …in the outline colour
    assert np.abs(out[inside] - base[inside]).max(axis=1).mean() < 0.02  # and leaves the face alone
    # screen mode: about width × frame height wide
    if mode == "screenCoordinates":
        row = int(np.nonzero(inside)[0].mean())
        xs_in, xs_out = np.nonzero(inside[row])[0], np.nonzero(grown[row])[0]
        assert (xs_in.min() - xs_out.min()) == pytest.approx(width * H, abs=2.5)


def test_alpha_mask_cuts_out_and_opaque_does_not(tmp_path):
    masked = _render(make_sphere_vrm(tmp_path / "m.vrm", 1, TOON, alpha="MASK", texture_alpha=0.2))
    opaque = _render(make_sphere_vrm(tmp_path / "o.vrm", 1, TOON, alpha="OPAQUE", texture_alpha=0.2))
    assert _mask(opaque).sum() > _mask(masked).sum() * 1.3  # half the texture is below the cutoff


def test_mtoon_with_shade_equal_to_base_is_flat_base_colour(tmp_path):
    """Parity check of the toon maths: when the shade colour is the base colour the lighting term
    vanishes, the ball is the base colour (× the light, + a faint fill) everywhere."""
    img = _render(make_sphere_vrm(tmp_path / "f.vrm", 1, {"shadeColorFactor": list(BASE), "shadingToonyFactor": 0.5}))
    m = _mask(img)
    ys, xs = np.nonzero(m)
    cy, cx, r = ys.mean(), xs.mean(), (xs.max() - xs.min()) / 2
    core = ((ys - cy) ** 2 + (xs - cx) ** 2) < (0.8 * r) ** 2
    px = img[ys[core], xs[core]]
    want = _srgb(np.array(BASE) * np.array([0.98, 0.96, 0.93]))
    assert np.abs(np.median(px, axis=0) - want).max() < 0.06
    assert px.std(axis=0).max() < 0.05


@pytest.mark.parametrize("flipped", [False, True])
def test_mtoon_outline_follows_morph_targets_on_the_gpu_path_as_on_the_cpu_path(flipped):
    """On a GPU the morph targets are applied in the vertex shaders, the outline's too: with MToon
    outlines on every part of a bundled avatar, the GPU path (run on llvmpipe here) draws what the
    CPU path draws, open jaw and outline included. ``flipped``: some static parts wound the other
    way (exporters differ), which the CPU path batches with the rest — each keeps its outline."""
    from ravasd.video.avatar.material import Material
    from ravasd.video.avatar.renderer import AvatarRenderer

    model = load_avatar(Path(__file__).resolve().parents[1] / "avatars" / "sol.glb")
    if flipped:
        static = [p for p in model.primitives if p.targets is None]
        assert len(static) >= 4
        for p in static[::2]:
            p.indices = p.indices.reshape(-1, 3)[:, ::-1].reshape(-1).copy()
    for p in model.primitives:
        base = p.color[:3]
        p.material = Material(
            mtoon=True,
            shade=(base * 0.6).astype(np.float32),
            toony=0.6,
            shift=-0.1,
            outline="screen",
            outline_width=0.02,
            outline_color=np.array([0.0, 0.0, 0.3], np.float32),
        )
    w = np.zeros(52, np.float32)
    from ravasd.video.tracking import ARKIT_NAMES

    w[ARKIT_NAMES.index("jawOpen")] = 0.9
    shots = {}
    for morph in ("cpu", "gpu"):
        r = AvatarRenderer(model, W, H, morph=morph)
        try:
            assert r.morph == morph and r.outline_prog is not None
            shots[morph] = (r.render(w).astype(float), r.render(np.zeros(52, np.float32)).astype(float))
        finally:
            r.release()
    (cpu, cpu_rest), (gpu, gpu_rest) = shots["cpu"], shots["gpu"]
    differ = np.abs(gpu - cpu).sum(axis=2) > 40
    assert differ.sum() < 20, differ.sum()  # the same picture: an outline left at rest would show at the chin
    for open_, rest in ((gpu, gpu_rest), (cpu, cpu_rest)):  # the jaw moved, outline with it, on both paths
        assert (np.abs(open_ - rest).sum(axis=2) > 40).sum() > 100
