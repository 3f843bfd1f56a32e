"""Render an :class:`AvatarModel` with moderngl (headless EGL on Linux, or any given context).

Per frame: morph targets are applied on the CPU (numpy; ~3× faster than the shader on llvmpipe)
or, on a GPU, in the vertex shader; skins on the CPU. The scene is drawn (multisampled on GPUs;
on llvmpipe without MSAA and, per ``scale``, smaller and upscaled) and read back as RGB — straight
into the array the sink needs, no image codec.
Head pose rotates the head/neck/spine bones (60/30/10 %). The camera auto-frames head and
shoulders from the rest pose. One renderer per thread (GL contexts are thread-bound).
"""

from __future__ import annotations

import math
import os
import sys
from importlib import resources

import cv2
import numpy as np

from ..tracking import ARKIT_NAMES
from .model import AvatarModel
from .vrm import preset_weights

ARKIT_INDEX = {n: i for i, n in enumerate(ARKIT_NAMES)}
#: ``video.framing``: (share of the frame height the head with its hair fills, eye line from the top).
FRAMING = {"close": (0.74, 0.40), "bust": (0.58, 1 / 3), "wide": (0.42, 1 / 3)}
FOLLOW = 0.7  # how much of the head's movement the virtual camera follows
#: bumped when framing or shading changes what a render of the same file looks like (cached renders
#: such as the settings window's thumbnails are keyed by it)
LOOK_VERSION = 2


def _rot(axis: str, deg: float) -> np.ndarray:
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


def _winding(pos: np.ndarray, idx: np.ndarray) -> float:
    """Signed volume of a mesh about its centroid: > 0 when its triangles wind counter-clockwise
    seen from outside (as glTF says), < 0 for exporters that wind them the other way."""
    p = pos.astype(np.float64)
    p -= p.mean(axis=0)
    t = idx.reshape(-1, 3)
    return float(np.einsum("ij,ij->i", p[t[:, 0]], np.cross(p[t[:, 1]], p[t[:, 2]])).sum())


def _cull_for(volume: float) -> str:
    """The GL face to cull so an outline hull shows only its far side. The projection flips Y,
    which turns a counter-clockwise outside into GL's back faces."""
    return "back" if volume >= 0 else "front"


def _weights128(tw: np.ndarray) -> np.ndarray:
    out = np.zeros(128, "f4")
    out[: len(tw)] = tw
    return out


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


def create_context():
    """A standalone moderngl context: headless EGL on Linux, the platform default elsewhere.

    Mesa's llvmpipe reads ``LP_NUM_THREADS`` when its screen is created. It defaults to one
    rasteriser thread per core; twice that (at least 4) cut the paced 720p render p95 here from
    ~14 to ~9.5 ms on 2 cores (``ravasd bench video``): with more, smaller work items the frame
    still finishes when a core is late to wake. A value the user set is kept.
    """
    import moderngl  # loads the GL driver: only when a context is made

    if not sys.platform.startswith("linux"):
        return moderngl.create_standalone_context()
    os.environ.setdefault("LP_NUM_THREADS", str(min(16, max(4, 2 * (os.cpu_count() or 1)))))
    return moderngl.create_standalone_context(backend="egl")


class AvatarRenderer:
    """``render(weights, yaw, pitch, roll)`` → (H, W, 3) uint8 RGB of the avatar."""

    def __init__(
        self,
        model: AvatarModel,
        width: int,
        height: int,
        background=(0.55, 0.68, 0.78),
        ctx=None,
        samples: int | None = None,
        scale: float | str = 1.0,
        morph: str = "auto",
        background_image: np.ndarray | None = None,
        framing: str = "bust",
    ) -> None:
        if framing not in FRAMING:
            raise ValueError(f"framing must be one of {', '.join(FRAMING)}")
        self.framing = framing
        self.model = model
        self.out_size = (width, height)
        self.background = tuple(background)
        if ctx is None:
            ctx = create_context()
            self._own_ctx = True
        else:
            self._own_ctx = False
        self.ctx = ctx
        software = any(k in str(ctx.info.get("GL_RENDERER", "")).lower() for k in ("llvmpipe", "softpipe"))
        self.software = software
        if scale == "auto":  # a software rasteriser pays per pixel: render less, upscale (bilinear)
            scale = 0.75 if software and width >= 1280 else 1.0
        self.scale = float(scale)
        width, height = max(16, round(width * self.scale)), max(16, round(height * self.scale))
        self.width, self.height = width, height
        self._programs: dict[tuple[bool, bool], object] = {}  # compiled on first use (_program)
        # morph targets: on the CPU for software rasterisers (3× faster there), in the shader on GPUs
        self.morph = ("cpu" if software else "gpu") if morph == "auto" else morph
        self._drive = self._drive_tables()
        self._gpu = []
        self._delta_tex: dict[int, object] = {}
        self._mtoon_tex: dict[int, tuple] = {}  # primitive → (shade texture, matcap texture), None each
        self._outline_vao: dict[int, object] = {}  # primitive or batch id → VAO of the outline program
        self._outline_cull: dict = {}  # … and which faces to cull so that only its far side is drawn
        self.outline_prog = None
        for pi, p in enumerate(model.primitives):
            vbo = ctx.buffer(p.positions.astype("f4").tobytes(), dynamic=True)
            nbo = ctx.buffer(p.normals.astype("f4").tobytes())
            uv = p.uv if p.uv is not None else np.zeros((len(p.positions), 2), np.float32)
            tbo = ctx.buffer(uv.astype("f4").tobytes())
            ibo = ctx.buffer(p.indices.astype("u4").tobytes())
            cbo = ctx.buffer(np.ones((len(p.positions), 4), "f4").tobytes())
            sbo = ctx.buffer(np.tile(p.material.shade, (len(p.positions), 1)).astype("f4").tobytes())
            attrs = [
                (vbo, "3f", "in_pos"),
                (nbo, "3f", "in_nrm"),
                (tbo, "2f", "in_uv"),
                (cbo, "4f", "in_color"),
                (sbo, "3f", "in_shade"),
            ]
            vao = self._vertex_array(self._surface_program(p), attrs, ibo)
            tex = self._texture(p.texture)
            if self._shader_morphs(p):
                self._delta_tex[pi] = (
                    self._deltas_texture(p),
                    self._vertex_array(self._surface_program(p, True), attrs, ibo),
                )
            self._gpu.append((vao, vbo, nbo, tbo, ibo, tex, cbo, sbo))
            self._mtoon_tex[pi] = (self._texture(p.shade_texture), self._texture(p.matcap_texture))
            if p.material.outline != "none":
                self._outline_vao[pi] = self._vertex_array(self._outline_program(), attrs[:2], ibo)
                self._outline_cull[pi] = _cull_for(_winding(p.positions, p.indices))
        self._batches = self._make_batches() if self.morph == "cpu" else []
        self._batched = {pi for b in self._batches for pi in b["members"]}
        outlined = [k for k in self._outline_vao if not (isinstance(k, int) and k in self._batched)]

        def tris(k) -> int:  # a primitive index or a batch key
            members = [k] if isinstance(k, int) else self._batches[k[1]]["members"]
            return sum(len(model.primitives[i].indices) // 3 for i in members)

        #: per frame (``ravasd bench video`` prints them): what llvmpipe's cost follows
        self.draw_calls = len(self._batches) + len(model.primitives) - len(self._batched) + len(outlined)
        self.triangles = sum(tris(i) for i in range(len(model.primitives))) + sum(tris(k) for k in outlined)
        if samples is None:  # multisampling triples the frame time on llvmpipe: only on GPUs
            samples = 0 if software else 4
        samples = min(samples, ctx.max_samples)
        self.samples = samples
        self._targets: dict[tuple[int, int], tuple] = {}
        self._make_targets()
        self._frame_camera()
        self._bg = self._background(background_image) if background_image is not None else None

    def _program(self, morph: bool, mtoon: bool):
        """The surface program: GPU-morphing vertex shader or not, MToon or plain fragment shader."""
        key = (morph, mtoon)
        if key not in self._programs:
            src = resources.files(__package__) / "shaders"
            frag = (src / "avatar.frag").read_text()
            if mtoon:
                frag = frag.replace("#version 330\n", "#version 330\n#define MTOON\n", 1)
            vert = (src / ("avatar_morph.vert" if morph else "avatar.vert")).read_text()
            self._programs[key] = self.ctx.program(vertex_shader=vert, fragment_shader=frag)
        return self._programs[key]

    def _surface_program(self, p, gpu_morph: bool = False):
        return self._program(gpu_morph, bool(p.material.mtoon))

    def _vertex_array(self, prog, attrs, ibo):
        """A VAO with only the attributes ``prog`` uses (the GLSL compiler drops unused ones)."""
        used = [a for a in attrs if a[2] in prog]
        return self.ctx.vertex_array(prog, used, index_buffer=ibo, index_element_size=4)

    def _texture(self, image: np.ndarray | None):
        if image is None:
            return None
        h, w = image.shape[:2]
        tex = self.ctx.texture((w, h), 4, np.ascontiguousarray(image).tobytes())
        tex.build_mipmaps()
        return tex

    def _outline_program(self):
        if self.outline_prog is None:
            src = resources.files(__package__) / "shaders"
            self.outline_prog = self.ctx.program(
                vertex_shader=(src / "outline.vert").read_text(), fragment_shader=(src / "outline.frag").read_text()
            )
        return self.outline_prog

    @staticmethod
    def _set(prog, name: str, value) -> None:
        if name in prog:  # uniforms a shader does not use are optimised away
            prog[name].value = value

    def _use_material(self, prog, mat, shade_tex=None, matcap=None) -> None:
        """The per-draw uniforms of ``mat`` (a :class:`~.material.Material`) on ``prog``."""
        st = self._set
        st(prog, "u_alpha_cutoff", float(mat.alpha_cutoff) if mat.alpha_mode == "MASK" else -1.0)
        st(prog, "u_emissive", tuple(float(c) for c in mat.emissive))
        if not mat.mtoon:
            return
        st(prog, "u_shift", float(mat.shift))
        st(prog, "u_toony", float(mat.toony))
        st(prog, "u_rim", tuple(float(c) for c in mat.rim))
        st(prog, "u_rim_power", float(mat.rim_power))
        st(prog, "u_rim_lift", float(mat.rim_lift))
        st(prog, "u_rim_mix", float(mat.rim_mix))
        st(prog, "u_has_shade_tex", shade_tex is not None)
        if shade_tex is not None:
            shade_tex.use(2)
            st(prog, "u_shade_tex", 2)
        st(prog, "u_has_matcap", matcap is not None)
        if matcap is not None:
            matcap.use(3)
            st(prog, "u_matcap", 3)
            st(prog, "u_matcap_factor", tuple(float(c) for c in mat.matcap))
            if "u_view_rot" in prog:
                prog["u_view_rot"].write(self.view[:3, :3].T.astype("f4").tobytes())

    def _draw_outline(self, key, mat, mvp: np.ndarray, n_vertices: int = 0, deltas=None, weights=None) -> None:
        """The MToon outline of one primitive or batch (back faces pushed out, front faces culled)."""
        prog, ctx = self.outline_prog, self.ctx
        prog["u_mvp"].write(mvp.T.astype("f4").tobytes())
        self._set(prog, "u_mode", 1 if mat.outline == "world" else 2)
        self._set(prog, "u_width", float(mat.outline_width))
        self._set(prog, "u_aspect", self.width / self.height)
        self._set(prog, "u_outline_color", tuple(float(c) for c in mat.outline_color))
        if deltas is not None:
            deltas.use(1)
            self._set(prog, "u_deltas", 1)
            prog["u_weights"].write(weights.tobytes())
        self._set(prog, "u_targets", 0 if deltas is None else self._targets_of(key))
        self._set(prog, "u_vertices", n_vertices)
        ctx.enable(ctx.CULL_FACE)
        ctx.cull_face = self._outline_cull[key]
        self._outline_vao[key].render()
        ctx.cull_face = "back"
        ctx.disable(ctx.CULL_FACE)

    def _targets_of(self, key) -> int:
        return len(self.model.primitives[key].targets) if isinstance(key, int) else 0

    def _make_targets(self) -> None:
        """The framebuffers for the current size, made once per size and kept: load shedding moves
        between a few scales, and re-allocating at each step grew the video worker's memory."""
        size = (self.width, self.height)
        if size not in self._targets:
            ctx, samples = self.ctx, self.samples
            fbo = ctx.framebuffer(ctx.renderbuffer(size, 3), ctx.depth_renderbuffer(size))
            # without multisampling we draw straight into the read-back framebuffer (no blit)
            ms = (
                fbo
                if samples == 0
                else ctx.framebuffer(
                    ctx.renderbuffer(size, 4, samples=samples), ctx.depth_renderbuffer(size, samples=samples)
                )
            )
            self._targets[size] = (fbo, ms)
        self._fbo, self._ms_fbo = self._targets[size]

    def _release_targets(self) -> None:
        for fbo, ms in self._targets.values():
            for f in {id(fbo): fbo, id(ms): ms}.values():
                for att in (*f.color_attachments, f.depth_attachment):
                    if att is not None:
                        att.release()
                f.release()
        self._targets.clear()

    def set_scale(self, scale: float) -> None:
        """Render at ``scale`` × the output size from the next frame (upscaled after): the video
        worker's load shedding. Same thread as ``render``; the framing is unchanged (same aspect)."""
        scale = float(min(1.0, max(0.25, scale)))
        w, h = self.out_size
        size = (max(16, round(w * scale)), max(16, round(h * scale)))
        if size == (self.width, self.height):
            self.scale = scale
            return
        with self.ctx:
            self.scale, (self.width, self.height) = scale, size
            self._make_targets()

    def _background(self, image: np.ndarray):
        """A full-screen textured quad drawn first (a picture behind the avatar, scaled to cover)."""

        h, w = image.shape[:2]
        k = max(self.width / w, self.height / h)
        img = cv2.resize(image[..., :3], (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        y0, x0 = (img.shape[0] - self.height) // 2, (img.shape[1] - self.width) // 2
        img = np.ascontiguousarray(img[y0 : y0 + self.height, x0 : x0 + self.width])
        ctx = self.ctx
        tex = ctx.texture((self.width, self.height), 3, img.tobytes())
        prog = ctx.program(
            vertex_shader="""#version 330
            in vec2 in_xy; out vec2 v_uv;
            void main() { v_uv = vec2(in_xy.x * 0.5 + 0.5, in_xy.y * 0.5 + 0.5); gl_Position = vec4(in_xy, 0.0, 1.0); }""",
            fragment_shader="""#version 330
            uniform sampler2D u_bg; in vec2 v_uv; out vec4 f_color;
            void main() { f_color = texture(u_bg, v_uv); }""",
        )
        # rows of the read-back come out top-down (the projection flips Y), so the quad flips too
        quad = ctx.buffer(np.array([-1, 1, 1, 1, -1, -1, 1, -1], "f4").tobytes())
        return tex, prog, quad, ctx.vertex_array(prog, [(quad, "2f", "in_xy")])

    def _make_batches(self) -> list[dict]:
        """Untextured, opaque, unskinned parts on one node become one draw (per-vertex colour):
        on llvmpipe each draw call has a fixed cost, and avatars are made of many small parts."""
        nodes = self.model.nodes

        def anchor(i: int) -> int:  # the nearest ancestor-or-self whose transform this node shares
            while (
                nodes[i].parent is not None
                and np.allclose(nodes[i].matrix, np.eye(4))
                and i not in self.model.bones.values()
            ):
                i = nodes[i].parent
            return i

        groups: dict[tuple, list[int]] = {}
        for pi, p in enumerate(self.model.primitives):
            if (
                p.texture is None
                and p.shade_texture is None
                and p.matcap_texture is None
                and not p.blend
                and p.joints is None
                and p.color[3] >= 1.0
            ):
                # parts wound the other way need the other face culled for their outline: not one batch
                cull = self._outline_cull.get(pi)  # set above for each outlined primitive
                groups.setdefault((anchor(p.node), p.material.batch_key(), cull), []).append(pi)
        batches = []
        for (node, _, cull), members in groups.items():
            if len(members) < 2:
                continue
            prims = [self.model.primitives[pi] for pi in members]
            offsets = np.cumsum([0] + [len(p.positions) for p in prims])
            pos = np.concatenate([p.positions for p in prims]).astype("f4")
            nrm = np.concatenate([p.normals for p in prims]).astype("f4")
            col = np.concatenate([np.tile(p.color, (len(p.positions), 1)) for p in prims]).astype("f4")
            shade = np.concatenate([np.tile(p.material.shade, (len(p.positions), 1)) for p in prims]).astype("f4")
            idx = np.concatenate([p.indices + off for p, off in zip(prims, offsets[:-1])]).astype("u4")
            ctx = self.ctx
            bufs = [
                ctx.buffer(pos.tobytes(), dynamic=True),
                ctx.buffer(nrm.tobytes()),
                ctx.buffer(np.zeros((len(pos), 2), "f4").tobytes()),
                ctx.buffer(col.tobytes()),
                ctx.buffer(idx.tobytes()),
                ctx.buffer(shade.tobytes()),
            ]
            attrs = [
                (bufs[0], "3f", "in_pos"),
                (bufs[1], "3f", "in_nrm"),
                (bufs[2], "2f", "in_uv"),
                (bufs[3], "4f", "in_color"),
                (bufs[5], "3f", "in_shade"),
            ]
            mat = prims[0].material  # the batch key makes every member's shading the same but colours
            vao = self._vertex_array(self._surface_program(prims[0]), attrs, bufs[4])
            key = ("batch", len(batches))
            if mat.outline != "none":
                self._outline_vao[key] = self._vertex_array(self._outline_program(), attrs[:2], bufs[4])
                self._outline_cull[key] = cull
            batches.append(
                {
                    "node": node,
                    "members": members,
                    "offsets": offsets,
                    "positions": pos,
                    "vao": vao,
                    "buffers": bufs,
                    "material": mat,
                    "key": key,
                }
            )
        return batches

    def _shader_morphs(self, p) -> bool:
        return self.morph == "gpu" and p.targets is not None and p.joints is None and len(p.targets) <= 128

    def _deltas_texture(self, p):
        t, n = p.targets.shape[:2]
        flat = p.targets.reshape(-1, 3).astype("f4")
        rows = -(-len(flat) // 4096)
        data = np.zeros((rows * 4096, 3), "f4")
        data[: len(flat)] = flat
        tex = self.ctx.texture((4096, rows), 3, data.tobytes(), dtype="f4")
        tex.filter = (self.ctx.NEAREST, self.ctx.NEAREST)
        return tex

    # ------------------------------------------------------------------ drive tables
    def _drive_tables(self) -> list[tuple[int, np.ndarray, np.ndarray, list[tuple[int, str, float]]]]:
        """Per morphing primitive: (prim index, ARKit index per target or -1, …) so that weights of
        all 52 names reach every mesh that has a target of that name (teeth, tongue, lashes too)."""
        tables = []
        exprs = self.model.expressions
        for pi, p in enumerate(self.model.primitives):
            if p.targets is None:
                continue
            direct = np.array([ARKIT_INDEX.get(n, -1) for n in p.target_names])
            via = [(ti, name, w) for name, binds in exprs.items() for (bpi, ti, w) in binds if bpi == pi]
            tables.append((pi, direct if not exprs else np.full(len(direct), -1), via))
        return tables

    def _frame_camera(self) -> None:
        """Frame the rest pose per ``framing`` (:data:`FRAMING`): the head, hair included, fills a set
        share of the frame height with the eyes about a third from the top, as a person frames a webcam."""
        world = self._world_matrices(0, 0, 0, 0)
        head = self.model.bones.get("head")
        pts = []
        for p in self.model.primitives:
            m = world[p.node]
            P = p.positions @ m[:3, :3].T + m[:3, 3]
            pts.append(P)
        allp = np.concatenate(pts)
        if head is not None:
            hy = world[head][1, 3]
            headpts = allp[allp[:, 1] >= hy - 0.02]
        else:
            top = allp[:, 1].max()
            headpts = allp[allp[:, 1] >= top - (top - allp[:, 1].min()) * 0.2]
        lo, hi = headpts.min(axis=0), headpts.max(axis=0)
        size = max(hi[1] - lo[1], hi[0] - lo[0], 1e-3)
        eyes = [world[self.model.bones[k]][1, 3] for k in ("lefteye", "righteye") if k in self.model.bones]
        eye_y = float(np.mean(eyes)) if eyes else self._blink_height(world)
        if eye_y is None or not lo[1] <= eye_y <= hi[1]:
            eye_y = lo[1] + 0.5 * (hi[1] - lo[1])
        centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2])
        self.fovy = 28.0
        fill, eye_line = FRAMING[self.framing]
        visible = size / fill  # world height the frame shows at the head
        dist = visible / 2 / math.tan(math.radians(self.fovy) / 2)
        # aimed at the plane of the eyes (in front of the head's centre): in a close frame the
        # perspective would otherwise push them down
        face_z = centre[2] + 0.35 * (hi[2] - lo[2])
        target = np.array([centre[0], eye_y - visible * (0.5 - eye_line), face_z])
        self._eye0 = target + (0, 0, dist)
        self._target0 = target
        self.eye = self._eye0.copy()
        self.view = look_at(self.eye, target)
        self._visible = visible
        # the head centre in the head bone's space: followed by the camera when the head moves
        self._head_rest = centre
        self._head_local = (np.linalg.inv(world[head]) @ np.append(centre, 1.0))[:3] if head is not None else None
        self._follow = np.zeros(2)
        self._follow_t: float | None = None
        # flip Y so the read-back rows come out top-down (no flip copy per frame)
        self.proj = np.diag([1.0, -1.0, 1.0, 1.0]) @ perspective(
            self.fovy, self.width / self.height, dist * 0.05, dist * 10
        )

    def _blink_height(self, world: list[np.ndarray]) -> float | None:
        """Where the eyes are without eye bones: the rest height of what the blink shapes move
        (ARKit eyeBlink targets, or VRM blink expressions)."""
        ys, names = [], {"eyeBlinkLeft", "eyeBlinkRight"}
        picks = [
            (pi, ti) for pi, p in enumerate(self.model.primitives) for ti, n in enumerate(p.target_names) if n in names
        ]
        for key in ("blinkLeft", "blinkRight", "blink"):
            picks += [(pi, ti) for pi, ti, _ in self.model.expressions.get(key, [])]
        for pi, ti in picks:
            p = self.model.primitives[pi]
            if p.targets is None or ti >= len(p.targets):
                continue
            mag = np.linalg.norm(p.targets[ti], axis=1)
            if mag.max() <= 0:
                continue
            moved = p.positions[mag > 0.1 * mag.max()]
            m = world[p.node]
            ys.append((moved @ m[:3, :3].T + m[:3, 3])[:, 1])
        return float(np.median(np.concatenate(ys))) if ys else None

    def _follow_head(self, world: list[np.ndarray], t: float | None) -> None:
        """A camera operator's follow: the view shifts by FOLLOW × how far the head centre moved
        (nods, leaning, roll), eased with a 0.35 s time constant when frame times ``t`` (s) are
        given — never a jump — and bounded to a fifth of the frame."""
        if self._head_local is None:
            return
        head = world[self.model.bones["head"]]
        now = (head @ np.append(self._head_local, 1.0))[:2]
        want = np.clip((now - self._head_rest[:2]) * FOLLOW, -0.2 * self._visible, 0.2 * self._visible)
        dt = None if t is None or self._follow_t is None else t - self._follow_t
        if dt is None or dt < 0 or dt >= 1.0:  # a still, the first frame, a seek: frame it at once
            k = 1.0
        else:
            k = 1.0 - math.exp(-dt / 0.35)
        self._follow_t = t
        self._follow += k * (want - self._follow)
        off = np.array([self._follow[0], self._follow[1], 0.0])
        self.eye = self._eye0 + off
        self.view = look_at(self.eye, self._target0 + off)

    # ------------------------------------------------------------------ pose
    def _world_matrices(self, yaw: float, pitch: float, roll: float, breathe: float) -> list[np.ndarray]:
        bones = self.model.bones
        extra = {}
        for key, share in (("spine", 0.1), ("neck", 0.3), ("head", 0.6)):
            if key in bones:
                extra[bones[key]] = _rot("y", yaw * share) @ _rot("x", pitch * share) @ _rot("z", roll * share)
        if breathe and "spine" in bones:
            s = np.eye(4)
            s[1, 3] = breathe * 0.004
            extra[bones["spine"]] = s @ extra.get(bones["spine"], np.eye(4))
        nodes = self.model.nodes
        world: list[np.ndarray | None] = [None] * len(nodes)
        root_fix = _rot("y", 180) if self.model.facing_back else np.eye(4)

        def visit(i: int, parent: np.ndarray) -> None:
            local = nodes[i].matrix
            if i in extra:
                local = local @ extra[i]
            world[i] = parent @ local
            for c in nodes[i].children:
                visit(c, world[i])

        for r in self.model.roots:
            visit(r, root_fix)
        return [w if w is not None else np.eye(4) for w in world]

    def render(
        self,
        weights: np.ndarray,
        yaw: float = 0.0,
        pitch: float = 0.0,
        roll: float = 0.0,
        breathe: float = 0.0,
        t: float | None = None,
    ) -> np.ndarray:
        """One frame: ``weights`` (52,) in ARKit order 0..1, head angles in degrees, ``breathe`` −1..1.
        ``t``: the frame's time in seconds (a stream): the camera eases after the head; without it
        each frame is framed on its own (stills)."""
        with self.ctx:  # several renderers may live in one thread: make ours current
            return self._render(weights, yaw, pitch, roll, breathe, t)

    def _render(
        self, weights: np.ndarray, yaw: float, pitch: float, roll: float, breathe: float, t: float | None = None
    ) -> np.ndarray:
        w = np.asarray(weights, np.float32)
        presets = preset_weights(w) if self.model.expressions else {}
        morphed: dict[int, np.ndarray] = {}
        shader_weights: dict[int, np.ndarray] = {}
        for pi, direct, via in self._drive:
            p = self.model.primitives[pi]
            tw = np.where(direct >= 0, w[np.maximum(direct, 0)], 0.0).astype(np.float32)
            for ti, name, k in via:
                value = w[ARKIT_INDEX[name]] if name in ARKIT_INDEX else presets.get(name, 0.0)
                tw[ti] += value * k
            if pi in self._delta_tex:
                shader_weights[pi] = tw
                continue
            nz = np.nonzero(tw)[0]
            pos = p.positions + np.tensordot(tw[nz], p.targets[nz], axes=1) if len(nz) else p.positions
            morphed[pi] = pos
        world = self._world_matrices(yaw, pitch, roll, breathe)
        self._follow_head(world, t)
        skin_mats = [np.stack([world[j] @ s.inverse_bind[k] for k, j in enumerate(s.joints)]) for s in self.model.skins]
        ctx = self.ctx
        self._ms_fbo.use()
        ctx.enable(ctx.DEPTH_TEST)
        ctx.disable(ctx.CULL_FACE)
        ctx.clear(*self.background, 1.0)
        if self._bg is not None:
            tex, prog, _, vao = self._bg
            ctx.disable(ctx.DEPTH_TEST)
            tex.use(0)
            prog["u_bg"].value = 0
            vao.render(mode=ctx.TRIANGLE_STRIP)
            ctx.enable(ctx.DEPTH_TEST)
        vp = self.proj @ self.view
        outlines: list[tuple] = []
        for b in self._batches:
            pos = b["positions"]
            for k, pi in enumerate(b["members"]):
                if pi in morphed:
                    pos[b["offsets"][k] : b["offsets"][k + 1]] = morphed[pi]
            b["buffers"][0].write(pos.tobytes())
            model = world[b["node"]]
            prog = self._surface_program(self.model.primitives[b["members"][0]])
            prog["u_eye"].value = tuple(self.eye)
            prog["u_color"].value = (1.0, 1.0, 1.0, 1.0)
            self._set(prog, "u_rough", 0.6)
            prog["u_has_tex"].value = False
            prog["u_mvp"].write((vp @ model).T.astype("f4").tobytes())
            prog["u_model"].write(model.T.astype("f4").tobytes())
            self._use_material(prog, b["material"])
            b["vao"].render()
            if b["key"] in self._outline_vao:
                outlines.append((b["key"], b["material"], vp @ model, 0, None, None))
        order = sorted(
            (i for i in range(len(self.model.primitives)) if i not in self._batched),
            key=lambda i: self.model.primitives[i].blend,
        )
        for pi in order:
            p = self.model.primitives[pi]
            vao, vbo, _, _, _, tex, _, _ = self._gpu[pi]
            pos = morphed.get(pi)
            model = world[p.node]
            if p.joints is not None and self.model.nodes[p.node].skin is not None:
                mats = skin_mats[self.model.nodes[p.node].skin]
                blend = np.einsum("nk,nkij->nij", p.weights, mats[p.joints])
                base = pos if pos is not None else p.positions
                pos = np.einsum("nij,nj->ni", blend[:, :3, :3], base) + blend[:, :3, 3]
                model = np.eye(4)  # skinned vertices are already in world space
            if pos is not None:
                vbo.write(np.ascontiguousarray(pos, dtype=np.float32).tobytes())
            prog = self._surface_program(p)
            prog["u_eye"].value = tuple(self.eye)
            if pi in shader_weights:
                deltas, vao = self._delta_tex[pi]
                prog = self._surface_program(p, True)
                prog["u_weights"].write(_weights128(shader_weights[pi]).tobytes())
                prog["u_targets"].value = len(p.targets)
                prog["u_vertices"].value = len(p.positions)
                deltas.use(1)
                prog["u_deltas"].value = 1
                prog["u_eye"].value = tuple(self.eye)
            prog["u_mvp"].write((vp @ model).T.astype("f4").tobytes())
            prog["u_model"].write(model.T.astype("f4").tobytes())
            prog["u_color"].value = tuple(float(c) for c in p.color)
            self._set(prog, "u_rough", 0.6)
            prog["u_has_tex"].value = tex is not None
            if tex is not None:
                tex.use(0)
                prog["u_tex"].value = 0
            self._use_material(prog, p.material, *self._mtoon_tex[pi])
            if p.blend:
                ctx.enable(ctx.BLEND)
            vao.render()
            ctx.disable(ctx.BLEND)
            if pi in self._outline_vao:
                gpu = self._delta_tex.get(pi) if pi in shader_weights else None
                outlines.append(
                    (
                        pi,
                        p.material,
                        vp @ model,
                        len(p.positions),
                        gpu[0] if gpu else None,
                        _weights128(shader_weights[pi]) if gpu else None,
                    )
                )
        for args in outlines:  # after the surfaces: the hull only shows where nothing is in front
            self._draw_outline(*args)
        if self._ms_fbo is not self._fbo:
            ctx.copy_framebuffer(self._fbo, self._ms_fbo)
        out = np.empty((self.height, self.width, 3), np.uint8)  # fresh: frames already handed out stay intact
        self._fbo.read_into(out, components=3, alignment=1)
        if (self.width, self.height) != self.out_size:
            out = cv2.resize(out, self.out_size, interpolation=cv2.INTER_LINEAR)
        return out  # already top-down: the projection flips Y

    def release(self) -> None:
        with self.ctx:
            self._release()
        if self._own_ctx:
            self.ctx.release()

    def _release(self) -> None:
        for objs in self._gpu:
            for obj in objs:
                if obj is not None:
                    obj.release()
        for b in self._batches:
            b["vao"].release()
            for buf in b["buffers"]:
                buf.release()
        for deltas, vao in self._delta_tex.values():
            deltas.release()
            vao.release()
        for texs in self._mtoon_tex.values():
            for t in texs:
                if t is not None:
                    t.release()
        for vao in self._outline_vao.values():
            vao.release()
        if self.outline_prog is not None:
            self.outline_prog.release()
        if self._bg is not None:
            for obj in self._bg:
                obj.release()
        self._release_targets()
        for prog in self._programs.values():
            prog.release()
        self._programs.clear()
