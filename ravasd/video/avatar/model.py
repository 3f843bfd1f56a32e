"""Load glTF 2.0 / GLB (and VRM 0.x / 1.0, which are GLB with extensions) into numpy arrays.

Only what the renderer needs: node hierarchy, triangle primitives with positions, normals, UVs,
base colour (factor and texture), morph targets with their names, skins. Every problem in a user's
file becomes an :class:`AvatarError` naming the file and what is wrong.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ...errors import RavasError
from ..tracking import ARKIT_NAMES
from .material import Material, from_gltf
from .vrm import expressions


class AvatarError(RavasError):
    """A broken or unsupported avatar file."""


MAX_COUNT = 8_000_000  # elements per accessor: far above any avatar, far below what exhausts memory
MAX_IMAGE_PIXELS = 8192 * 8192
COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
_ARKIT_LOWER = {n.lower(): n for n in ARKIT_NAMES}


@dataclass
class Node:
    name: str
    parent: int | None
    matrix: np.ndarray  # local 4×4 (column vectors: p' = M @ p)
    mesh: int | None = None
    skin: int | None = None
    children: list[int] = field(default_factory=list)


@dataclass
class Primitive:
    node: int
    positions: np.ndarray  # (N, 3) float32
    normals: np.ndarray  # (N, 3) float32
    indices: np.ndarray  # (M,) uint32, triangles
    color: np.ndarray  # (4,) linear RGBA base colour factor
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None  # (H, W, 4) uint8 RGBA
    targets: np.ndarray | None = None  # (T, N, 3) float32 position deltas
    target_names: list[str] = field(default_factory=list)
    joints: np.ndarray | None = None  # (N, 4) int
    weights: np.ndarray | None = None  # (N, 4) float32
    blend: bool = False
    material: Material = field(default_factory=Material)
    shade_texture: np.ndarray | None = None  # (H, W, 4) uint8: MToon shadeMultiplyTexture (same UVs)
    matcap_texture: np.ndarray | None = None  # (H, W, 4) uint8: MToon matcap, looked up by view normal


@dataclass
class Skin:
    joints: list[int]
    inverse_bind: np.ndarray  # (J, 4, 4)


@dataclass
class AvatarModel:
    name: str
    path: Path
    format: str  # glb | gltf | vrm0 | vrm1
    nodes: list[Node]
    roots: list[int]
    primitives: list[Primitive]
    skins: list[Skin]
    meta: dict = field(default_factory=dict)  # title, author, licence … (VRM meta or asset/extras)
    bones: dict[str, int] = field(default_factory=dict)  # head / neck / spine → node index
    # VRM expressions: preset/custom name → list of (primitive index, target index, weight 0..1)
    expressions: dict[str, list[tuple[int, int, float]]] = field(default_factory=dict)
    facing_back: bool = False  # VRM 0.x models face −Z

    def response(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-ARKit-name (gain, gamma) from ``extras.ravas.response`` (1, 1 where not given)."""
        gain, gamma = np.ones(len(ARKIT_NAMES), np.float32), np.ones(len(ARKIT_NAMES), np.float32)
        spec = self.meta.get("response") or {}
        for arr, key in ((gain, "gain"), (gamma, "gamma")):
            for name, v in (spec.get(key) or {}).items():
                if name in ARKIT_NAMES and isinstance(v, (int, float)) and 0 < v <= 10:
                    arr[ARKIT_NAMES.index(name)] = v
        return gain, gamma

    def arkit_coverage(self) -> set[str]:
        """ARKit names this avatar can show, through morph targets or VRM expressions."""
        names = {n for p in self.primitives for n in p.target_names if n in ARKIT_NAMES}
        names |= {n for n in self.expressions if n in ARKIT_NAMES}
        return names


def _quat_to_mat(q) -> np.ndarray:
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ],
        np.float64,
    )


def _local_matrix(n: dict) -> np.ndarray:
    if "matrix" in n:
        return np.asarray(n["matrix"], np.float64).reshape(4, 4).T  # glTF stores column-major
    m = np.eye(4)
    m[:3, :3] = _quat_to_mat(n.get("rotation", (0, 0, 0, 1))) * np.asarray(n.get("scale", (1, 1, 1)))
    m[:3, 3] = n.get("translation", (0, 0, 0))
    return m


def _arkit_name(name: str) -> str:
    """Match a morph target name to an ARKit name: case-insensitive, ignoring prefixes like
    ``blendShape1.`` or ``BS_`` that exporters add."""
    base = re.split(r"[.:|]", name)[-1]
    base = re.sub(r"^(bs_|blendshape\d*_?)", "", base, flags=re.I)
    return _ARKIT_LOWER.get(base.lower(), name)


def read_gltf(path: Path) -> tuple[dict, bytes | None]:
    data = path.read_bytes()
    if data[:4] == b"glTF":
        if len(data) < 20:
            raise AvatarError(f"Avatar {path} is truncated (no GLB chunks).")
        _, version, length = struct.unpack_from("<III", data, 0)
        if version != 2:
            raise AvatarError(
                f"Avatar {path} is glTF {version}; only glTF 2.0 is supported.",
                "re-export it from Blender as glTF 2.0 (.glb).",
            )
        if length > len(data):
            raise AvatarError(
                f"Avatar {path} is truncated ({len(data)} of {length} bytes).", "copy the file again; it was cut off."
            )
        off, js, binary = 12, None, None
        while off + 8 <= length:
            clen, ctype = struct.unpack_from("<II", data, off)
            chunk = data[off + 8 : off + 8 + clen]
            if ctype == 0x4E4F534A:
                js = chunk
            elif ctype == 0x004E4942:
                binary = chunk
            off += 8 + clen
        if js is None:
            raise AvatarError(f"Avatar {path} has no JSON chunk.")
    else:
        js, binary = data, None
    try:
        doc = json.loads(js)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AvatarError(
            f"Avatar {path} is not a glTF/GLB/VRM file ({type(err).__name__}: {str(err)[:120]}).",
            "use a .glb, .gltf or .vrm file.",
        ) from None
    if not isinstance(doc, dict):
        raise AvatarError(f"Avatar {path}: its glTF JSON is not an object.", "use a .glb, .gltf or .vrm file.")
    return doc, binary


class _Reader:
    def __init__(self, gltf: dict, binary: bytes | None, path: Path) -> None:
        self.g, self.path = gltf, path
        self.buffers = []
        for i, b in enumerate(gltf.get("buffers", [])):
            uri = b.get("uri")
            if uri is None:
                if binary is None:
                    raise AvatarError(f"Avatar {path}: buffer {i} has no data.")
                self.buffers.append(binary)
            elif uri.startswith("data:"):
                self.buffers.append(base64.b64decode(uri.split(",", 1)[1]))
            else:
                f = _beside(path, uri)
                if not f.exists():
                    raise AvatarError(
                        f"Avatar {path}: its buffer file {f.name} is missing.",
                        "keep the .bin next to the .gltf, or export a single .glb.",
                    )
                self.buffers.append(f.read_bytes())

    def view(self, index: int) -> tuple[bytes, int, int]:
        v = self.g["bufferViews"][index]
        buf = self.buffers[v["buffer"]]
        start, length = v.get("byteOffset", 0), v["byteLength"]
        if start + length > len(buf):
            raise AvatarError(f"Avatar {self.path}: bufferView {index} runs past the end of its buffer.")
        return buf, start, v.get("byteStride", 0)

    def accessor(self, index: int) -> np.ndarray:
        a = self.g["accessors"][index]
        dtype = np.dtype(COMPONENTS[a["componentType"]])
        n, k = a["count"], SIZES[a["type"]]
        if not isinstance(n, int) or not 0 <= n <= MAX_COUNT:
            raise AvatarError(f"Avatar {self.path}: accessor {index} claims {n!r} elements.")
        if "bufferView" in a:
            buf, start, stride = self.view(a["bufferView"])
            start += a.get("byteOffset", 0)
            item = dtype.itemsize * k
            stride = stride or item
            if start + stride * (n - 1) + item > len(buf):
                raise AvatarError(f"Avatar {self.path}: accessor {index} runs past the end of its data.")
            raw = np.ndarray((n, k), dtype, buf, start, (stride, dtype.itemsize)).copy()
        else:
            raw = np.zeros((n, k), dtype)
        if "sparse" in a:
            sp = a["sparse"]
            ib, ist, _ = self.view(sp["indices"]["bufferView"])
            idx = np.frombuffer(
                ib,
                np.dtype(COMPONENTS[sp["indices"]["componentType"]]),
                sp["count"],
                ist + sp["indices"].get("byteOffset", 0),
            )
            vb, vst, _ = self.view(sp["values"]["bufferView"])
            vals = np.frombuffer(vb, dtype, sp["count"] * k, vst + sp["values"].get("byteOffset", 0)).reshape(-1, k)
            raw[idx.astype(np.int64)] = vals
        out = raw.astype(np.float32) if dtype != np.float32 else raw
        if a.get("normalized") and dtype != np.float32:
            out = out / float(np.iinfo(dtype).max)
        return out if k > 1 else out.reshape(-1)

    def image(self, index: int) -> np.ndarray | None:
        img = self.g["images"][index]
        if "bufferView" in img:
            buf, start, _ = self.view(img["bufferView"])
            data = buf[start : start + self.g["bufferViews"][img["bufferView"]]["byteLength"]]
        elif img.get("uri", "").startswith("data:"):
            data = base64.b64decode(img["uri"].split(",", 1)[1])
        elif "uri" in img and _beside(self.path, img["uri"]).exists():
            data = _beside(self.path, img["uri"]).read_bytes()
        else:
            return None
        _check_image_size(data, self.path, index)
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            return None
        if arr.ndim == 2:
            arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGBA)
        elif arr.shape[2] == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGBA)
        else:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        return arr


def _beside(path: Path, uri: str) -> Path:
    """A file a .gltf names: only inside its own folder (no absolute paths, no ``..`` out of it)."""
    folder = path.parent.resolve()
    f = (folder / uri).resolve() if isinstance(uri, str) and "\x00" not in uri else None
    if f is None or folder not in f.parents:
        raise AvatarError(
            f"Avatar {path} refers to a file outside its folder ({str(uri)[:80]!r}).",
            "keep its .bin and textures next to the .gltf, or export a single .glb.",
        )
    return f


def _check_image_size(data: bytes, path: Path, index: int) -> None:
    """Refuse a texture whose header claims more than :data:`MAX_IMAGE_PIXELS` before decoding it."""

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Exception:
        return  # not an image PIL knows: OpenCV decides (an undecodable texture is skipped)
    if w * h > MAX_IMAGE_PIXELS:
        raise AvatarError(
            f"Avatar {path}: texture {index} is {w}×{h} pixels; at most 8192×8192 are read.",
            "scale its textures down (VRoid exports 2048 or 4096).",
        )


def load_avatar(path: str | Path) -> AvatarModel:
    """Parse a .glb/.gltf/.vrm file. Raises :class:`AvatarError` for anything unusable."""
    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"Avatar file {path} does not exist.", "check the path.")
    try:
        gltf, binary = read_gltf(path)
    except OSError as err:
        raise AvatarError(f"Avatar file {path} cannot be read ({err.strerror}).") from None
    try:
        model = _build(gltf, binary, path)
        _validate(model)
        return model
    except AvatarError:
        raise
    except (
        KeyError,
        IndexError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
        RecursionError,
        struct.error,
        cv2.error,
    ) as err:
        raise AvatarError(
            f"Avatar {path} is damaged or not valid glTF ({type(err).__name__}: {err}).",
            "open it in Blender or https://gltf.report to see the problem, or re-export it.",
        ) from None


def _primitive(g: dict, r: _Reader, p: dict, ni: int, node: Node, mesh: dict, names: list, vrm0_materials: list):
    """One triangle primitive ``p`` of ``mesh`` on node ``ni``: geometry, material, textures, morph
    targets (``names``: the mesh's target names) and skin weights."""
    path = r.path
    textures = g.get("textures", [])
    attrs = p["attributes"]
    if "POSITION" not in attrs:
        raise AvatarError(f"Avatar {path}: mesh '{mesh.get('name', node.mesh)}' has no POSITION.")
    pos = r.accessor(attrs["POSITION"]).astype(np.float32)
    idx = r.accessor(p["indices"]).astype(np.uint32) if "indices" in p else np.arange(len(pos), dtype=np.uint32)
    if idx.size and int(idx.max()) >= len(pos):
        raise AvatarError(f"Avatar {path}: mesh '{mesh.get('name', node.mesh)}' indexes past its vertices.")
    nrm = r.accessor(attrs["NORMAL"]).astype(np.float32) if "NORMAL" in attrs else _normals(pos, idx)
    prim = Primitive(ni, pos, nrm, idx, np.ones(4, np.float32))
    mat = g["materials"][p["material"]] if "material" in p else {}
    pbr = mat.get("pbrMetallicRoughness", {})
    prim.color = np.asarray(pbr.get("baseColorFactor", (1, 1, 1, 1)), np.float32)
    prim.material = from_gltf(
        mat, vrm0_materials[p["material"]] if "material" in p and p["material"] < len(vrm0_materials) else None
    )
    prim.blend = prim.material.alpha_mode == "BLEND"
    tex = pbr.get("baseColorTexture")
    if tex is not None and f"TEXCOORD_{tex.get('texCoord', 0)}" in attrs:
        src = textures[tex["index"]].get("source")
        if src is not None:
            prim.texture = r.image(src)
            prim.uv = r.accessor(attrs[f"TEXCOORD_{tex.get('texCoord', 0)}"]).astype(np.float32)
    for key in ("shade_texture", "matcap_texture"):
        ti = getattr(prim.material, key)
        src = textures[ti].get("source") if ti is not None and 0 <= ti < len(textures) else None
        if src is not None and (key == "matcap_texture" or prim.uv is not None):
            setattr(prim, key, r.image(src))
    if p.get("targets"):
        tnames = (
            names
            if len(names) == len(p["targets"])
            else (p.get("extras") or {}).get("targetNames") or [f"target{k}" for k in range(len(p["targets"]))]
        )
        prim.targets = np.stack(
            [r.accessor(t["POSITION"]) if "POSITION" in t else np.zeros_like(pos) for t in p["targets"]]
        ).astype(np.float32)
        prim.target_names = [_arkit_name(n) for n in tnames]
    if "JOINTS_0" in attrs and "WEIGHTS_0" in attrs and node.skin is not None:
        prim.joints = r.accessor(attrs["JOINTS_0"]).astype(np.int64)
        w = r.accessor(attrs["WEIGHTS_0"]).astype(np.float32)
        prim.weights = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-8)
    return prim


def _build(g: dict, binary: bytes | None, path: Path) -> AvatarModel:
    if str(g.get("asset", {}).get("version", ""))[:1] != "2":
        raise AvatarError(f"Avatar {path}: asset.version is not 2.x.", "re-export as glTF 2.0.")
    r = _Reader(g, binary, path)
    nodes = [
        Node(
            n.get("name", f"node{i}"), None, _local_matrix(n), n.get("mesh"), n.get("skin"), list(n.get("children", []))
        )
        for i, n in enumerate(g.get("nodes", []))
    ]
    for i, n in enumerate(nodes):
        for c in n.children:
            nodes[c].parent = i
    scene = g.get("scenes", [{}])[g.get("scene", 0)] if g.get("scenes") else {}
    roots = scene.get("nodes") or [i for i, n in enumerate(nodes) if n.parent is None]
    vrm0_materials = ((g.get("extensions") or {}).get("VRM") or {}).get("materialProperties") or []
    prims: list[Primitive] = []
    for ni, node in enumerate(nodes):
        if node.mesh is None:
            continue
        mesh = g["meshes"][node.mesh]
        names = (mesh.get("extras") or {}).get("targetNames") or []
        for p in mesh["primitives"]:
            if p.get("mode", 4) != 4:
                continue  # points/lines: not part of a face
            prims.append(_primitive(g, r, p, ni, node, mesh, names, vrm0_materials))
    if not prims:
        raise AvatarError(f"Avatar {path} contains no triangle meshes.", "export the avatar's meshes too.")
    skins = [
        Skin(
            s["joints"],
            r.accessor(s["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
            if "inverseBindMatrices" in s
            else np.tile(np.eye(4), (len(s["joints"]), 1, 1)),
        )
        for s in g.get("skins", [])
    ]
    ext = g.get("extensions", {})
    fmt = "vrm1" if "VRMC_vrm" in ext else "vrm0" if "VRM" in ext else ("glb" if binary is not None else "gltf")
    model = AvatarModel(path.stem, path, fmt, nodes, roots, prims, skins)
    model.meta = _meta(g, fmt)
    model.bones = _bones(g, nodes, fmt)
    if fmt in ("vrm0", "vrm1"):
        model.expressions = expressions(g, fmt, model)
        model.facing_back = fmt == "vrm0"
    return model


def _validate(m: AvatarModel) -> None:
    """What the renderer relies on, checked once: shapes, finite numbers, a node tree (no cycles,
    indices in range), skins and morph targets that fit their meshes. ``ValueError`` names the part."""
    n_nodes = len(m.nodes)
    for i, node in enumerate(m.nodes):
        if not all(isinstance(c, int) and 0 <= c < n_nodes for c in node.children):
            raise ValueError(f"node {i} has a child index out of range")
        if node.matrix.shape != (4, 4) or not np.isfinite(node.matrix).all():
            raise ValueError(f"node {i} has an invalid transform")
    for i in range(n_nodes):  # every chain of parents ends: no cycles
        seen, j = set(), i
        while j is not None:
            if j in seen:
                raise ValueError(f"the node hierarchy has a cycle through node {j}")
            seen.add(j)
            j = m.nodes[j].parent
    if not all(isinstance(r, int) and 0 <= r < n_nodes for r in m.roots):
        raise ValueError("a scene lists a node index out of range")
    for s in m.skins:
        if not all(isinstance(j, int) and 0 <= j < n_nodes for j in s.joints):
            raise ValueError("a skin lists a joint that is not a node")
        if s.inverse_bind.shape != (len(s.joints), 4, 4):
            raise ValueError("a skin's inverse bind matrices do not match its joints")
    for k, p in enumerate(m.primitives):
        n = len(p.positions)
        if p.positions.ndim != 2 or p.positions.shape[1] != 3 or p.normals.shape != p.positions.shape:
            raise ValueError(f"primitive {k}: POSITION/NORMAL must be VEC3 of one length")
        if not np.isfinite(p.positions).all():
            raise ValueError(f"primitive {k}: POSITION has non-finite numbers")
        if p.indices.ndim != 1 or len(p.indices) % 3:
            raise ValueError(f"primitive {k}: its indices are not whole triangles")
        if p.color.shape != (4,) or not np.isfinite(p.color).all():
            raise ValueError(f"primitive {k}: baseColorFactor must be 4 numbers")
        if p.uv is not None and p.uv.shape != (n, 2):
            raise ValueError(f"primitive {k}: TEXCOORD must be VEC2 per vertex")
        for tex in (p.texture, p.shade_texture, p.matcap_texture):
            if tex is not None and (tex.ndim != 3 or tex.shape[2] != 4):
                raise ValueError(f"primitive {k}: its texture could not be decoded as RGBA")
        if p.targets is not None and (p.targets.ndim != 3 or p.targets.shape[1:] != (n, 3)):
            raise ValueError(f"primitive {k}: a morph target does not match the mesh's vertices")
        if p.joints is not None:
            skin = m.nodes[p.node].skin
            if not isinstance(skin, int) or not 0 <= skin < len(m.skins):
                raise ValueError(f"primitive {k}: its node's skin does not exist")
            if p.joints.shape != (n, 4) or p.weights is None or p.weights.shape != (n, 4):
                raise ValueError(f"primitive {k}: JOINTS_0/WEIGHTS_0 must be VEC4 per vertex")
            if p.joints.size and (p.joints.min() < 0 or p.joints.max() >= len(m.skins[skin].joints)):
                raise ValueError(f"primitive {k}: JOINTS_0 names a joint its skin does not have")


def _normals(pos: np.ndarray, idx: np.ndarray) -> np.ndarray:
    tri = idx.reshape(-1, 3)
    fn = np.cross(pos[tri[:, 1]] - pos[tri[:, 0]], pos[tri[:, 2]] - pos[tri[:, 0]])
    n = np.zeros_like(pos)
    for k in range(3):
        np.add.at(n, tri[:, k], fn)
    return (n / (np.linalg.norm(n, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def _meta(g: dict, fmt: str) -> dict:
    ext = g.get("extensions", {})
    if fmt == "vrm0":
        m = ext["VRM"].get("meta", {})
        return {
            "title": m.get("title", ""),
            "author": m.get("author", ""),
            "version": m.get("version", ""),
            "licence": m.get("licenseName", ""),
            "licence_url": m.get("otherLicenseUrl", ""),
            "allowed_users": m.get("allowedUserName", ""),
            "commercial": m.get("commercialUssageName", ""),
        }
    if fmt == "vrm1":
        m = ext["VRMC_vrm"].get("meta", {})
        return {
            "title": m.get("name", ""),
            "author": ", ".join(m.get("authors", [])),
            "version": m.get("version", ""),
            "licence": m.get("licenseUrl", ""),
            "licence_url": m.get("licenseUrl", ""),
            "allowed_users": m.get("avatarPermission", ""),
            "commercial": m.get("commercialUsage", ""),
        }
    ravas = (g.get("extras") or {}).get("ravas", {})
    asset = g.get("asset", {})
    return {
        "title": ravas.get("name", ""),
        "author": asset.get("copyright", ""),
        "version": "",
        "licence": ravas.get("licence", asset.get("copyright", "")),
        "description": ravas.get("description", ""),
        "response": ravas.get("response", {}),
    }


def _bones(g: dict, nodes: list[Node], fmt: str) -> dict[str, int]:
    ext = g.get("extensions", {})
    bones: dict[str, int] = {}
    if fmt == "vrm0":
        for b in ext["VRM"].get("humanoid", {}).get("humanBones", []):
            bones[b["bone"].lower()] = b["node"]
    elif fmt == "vrm1":
        for name, b in ext["VRMC_vrm"].get("humanoid", {}).get("humanBones", {}).items():
            bones[name.lower()] = b["node"]
    wanted = {
        "head": ("head",),
        "neck": ("neck",),
        "spine": ("spine2", "upperchest", "chest", "spine1", "spine"),
        "lefteye": ("lefteye",),
        "righteye": ("righteye",),
    }
    out = {}
    for key, candidates in wanted.items():
        for c in candidates:
            if c in bones:
                out[key] = bones[c]
                break
        else:
            for c in candidates:  # by node name (Ready Player Me: "Head", "Neck", "Spine2")
                hit = [i for i, n in enumerate(nodes) if n.name.lower().split(":")[-1] == c]
                if hit:
                    out[key] = hit[0]
                    break
    return out
