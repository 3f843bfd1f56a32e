"""Draw an :class:`AvatarModel` with moderngl (headless EGL on Linux, or any given context).

Per frame: the pose (:mod:`.pose`: bones, morph weights, CPU morphs and skins) and the camera
(:mod:`.camera`: framing and follow) are computed in numpy; this module owns the GL side. Morph
targets are applied on the CPU (~3× faster than the shader on llvmpipe) or, on a GPU, in the
vertex shader. Everything drawn is a :class:`DrawItem` — one primitive, or several static parts
batched into one call — drawn by one loop, outlines after the surfaces (multisampled on GPUs; on
llvmpipe without MSAA and, per ``scale``, smaller and upscaled) and read back as RGB straight into
the array the sink needs. One renderer per thread (GL contexts are thread-bound).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

from . import pose
from .camera import FRAMING, Camera
from .material import Material
from .model import AvatarModel, Primitive

__all__ = ["FRAMING", "LOOK_VERSION", "AvatarRenderer", "DrawItem", "create_context"]

#: bumped when framing or shading changes what a render of the same file looks like (cached renders
#: such as the settings window's thumbnails are keyed by it)
LOOK_VERSION = 2
#: GPU morphing reads at most this many targets per primitive (the shader's weight array)
SHADER_TARGETS = 128


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
    out = np.zeros(SHADER_TARGETS, "f4")
    out[: len(tw)] = tw
    return out


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


@dataclass(eq=False)
class DrawItem:
    """One draw call and the GL objects it owns. ``members``: the primitives whose vertices its
    buffers hold, in order (one, or a batch), ``offsets`` their vertex ranges; a batch carries its
    parts' colours per vertex, so its ``color`` uniform is white and it has no textures."""

    members: list[int]
    offsets: np.ndarray
    node: int
    material: Material
    color: tuple
    vao: object
    positions: object  # the dynamic position buffer
    buffers: list  # every buffer, released with the item
    rest: np.ndarray | None = None  # a batch: its members' rest positions, morphs written into it each frame
    texture: object = None
    shade_texture: object = None
    matcap: object = None
    blend: bool = False
    skin: int | None = None  # index into the model's skins: skinned on the CPU into world space
    deltas: object = None  # GPU morphs: the target deltas texture …
    morph_vao: object = None  # … and the VAO of the morphing program
    n_targets: int = 0
    outline_vao: object = None
    outline_cull: str = "back"
    triangles: int = 0

    @property
    def primitive(self) -> int:
        return self.members[0]


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
        self._own_ctx = ctx is None
        self.ctx = ctx = create_context() if ctx is None else ctx
        software = any(k in str(ctx.info.get("GL_RENDERER", "")).lower() for k in ("llvmpipe", "softpipe"))
        self.software = software
        if scale == "auto":  # a software rasteriser pays per pixel: render less, upscale (bilinear)
            scale = 0.75 if software and width >= 1280 else 1.0
        self.scale = float(scale)
        self.width, self.height = max(16, round(width * self.scale)), max(16, round(height * self.scale))
        self._programs: dict[tuple[bool, bool], object] = {}  # compiled on first use (_program)
        self.outline_prog = None
        # morph targets: on the CPU for software rasterisers (3× faster there), in the shader on GPUs
        self.morph = ("cpu" if software else "gpu") if morph == "auto" else morph
        self._morphs = pose.Morphs(model)
        self.items = self._make_items()
        outlined = [it for it in self.items if it.outline_vao is not None]
        #: per frame (``ravasd bench video`` prints them): what llvmpipe's cost follows
        self.draw_calls = len(self.items) + len(outlined)
        self.triangles = sum(it.triangles for it in self.items) + sum(it.triangles for it in outlined)
        if samples is None:  # multisampling triples the frame time on llvmpipe: only on GPUs
            samples = 0 if software else 4
        self.samples = min(samples, ctx.max_samples)
        self._targets: dict[tuple[int, int], tuple] = {}
        self._make_targets()
        self.camera = Camera(model, pose.world_matrices(model, 0, 0, 0, 0), framing, self.width / self.height)
        self._bg = self._background(background_image) if background_image is not None else None

    # ------------------------------------------------------------------ programs and GL objects
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

    def _outline_program(self):
        if self.outline_prog is None:
            src = resources.files(__package__) / "shaders"
            self.outline_prog = self.ctx.program(
                vertex_shader=(src / "outline.vert").read_text(), fragment_shader=(src / "outline.frag").read_text()
            )
        return self.outline_prog

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

    def _deltas_texture(self, p: Primitive):
        flat = p.targets.reshape(-1, 3).astype("f4")
        rows = -(-len(flat) // 4096)
        data = np.zeros((rows * 4096, 3), "f4")
        data[: len(flat)] = flat
        tex = self.ctx.texture((4096, rows), 3, data.tobytes(), dtype="f4")
        tex.filter = (self.ctx.NEAREST, self.ctx.NEAREST)
        return tex

    # ------------------------------------------------------------------ draw items
    def _batchable(self, p: Primitive) -> bool:
        """Untextured, opaque, unskinned parts can share a draw (colours per vertex) — on the CPU
        morph path only: on llvmpipe each draw call has a fixed cost, and avatars have many parts."""
        return (
            self.morph == "cpu"
            and p.texture is None
            and p.shade_texture is None
            and p.matcap_texture is None
            and not p.blend
            and p.joints is None
            and p.color[3] >= 1.0
        )

    def _anchor(self, i: int) -> int:
        """The nearest ancestor-or-self of node ``i`` whose transform it shares."""
        nodes = self.model.nodes
        while (
            nodes[i].parent is not None
            and np.allclose(nodes[i].matrix, np.eye(4))
            and i not in self.model.bones.values()
        ):
            i = nodes[i].parent
        return i

    def _make_items(self) -> list[DrawItem]:
        """Batches first (in the order their first part appears), then the other primitives, the
        blended ones last (they are drawn over what is behind them)."""
        prims = self.model.primitives
        culls = {
            pi: _cull_for(_winding(p.positions, p.indices))
            for pi, p in enumerate(prims)
            if p.material.outline != "none"
        }
        groups: dict[tuple, list[int]] = {}
        for pi, p in enumerate(prims):
            if self._batchable(p):
                # parts wound the other way need the other face culled for their outline: not one batch
                groups.setdefault((self._anchor(p.node), p.material.batch_key(), culls.get(pi)), []).append(pi)
        batches = [members for members in groups.values() if len(members) >= 2]
        batched = {pi for members in batches for pi in members}
        singles = sorted((pi for pi in range(len(prims)) if pi not in batched), key=lambda pi: prims[pi].blend)
        return [self._item(members, culls) for members in batches] + [self._item([pi], culls) for pi in singles]

    def _item(self, members: list[int], culls: dict[int, str]) -> DrawItem:
        ctx, model = self.ctx, self.model
        parts = [model.primitives[pi] for pi in members]
        first = parts[0]
        batch = len(parts) > 1
        offsets = np.cumsum([0] + [len(p.positions) for p in parts])
        n = int(offsets[-1])
        pos = np.concatenate([p.positions for p in parts]).astype("f4")
        nrm = np.concatenate([p.normals for p in parts]).astype("f4")
        uv = np.zeros((n, 2), "f4") if batch or first.uv is None else first.uv.astype("f4")
        if batch:  # the parts' colours per vertex, the uniform white
            col = np.concatenate([np.tile(p.color, (len(p.positions), 1)) for p in parts]).astype("f4")
        else:
            col = np.ones((n, 4), "f4")
        shade = np.concatenate([np.tile(p.material.shade, (len(p.positions), 1)) for p in parts]).astype("f4")
        idx = np.concatenate([p.indices + off for p, off in zip(parts, offsets[:-1])]).astype("u4")
        vbo, nbo, tbo, cbo, sbo, ibo = (
            ctx.buffer(pos.tobytes(), dynamic=True),
            ctx.buffer(nrm.tobytes()),
            ctx.buffer(uv.tobytes()),
            ctx.buffer(col.tobytes()),
            ctx.buffer(shade.tobytes()),
            ctx.buffer(idx.tobytes()),
        )
        attrs = [
            (vbo, "3f", "in_pos"),
            (nbo, "3f", "in_nrm"),
            (tbo, "2f", "in_uv"),
            (cbo, "4f", "in_color"),
            (sbo, "3f", "in_shade"),
        ]
        mtoon = bool(first.material.mtoon)  # a batch key makes every member's shading the same but colours
        item = DrawItem(
            members=list(members),
            offsets=offsets,
            node=self._anchor(first.node) if batch else first.node,
            material=first.material,
            color=(1.0, 1.0, 1.0, 1.0) if batch else tuple(float(c) for c in first.color),
            vao=self._vertex_array(self._program(False, mtoon), attrs, ibo),
            positions=vbo,
            buffers=[vbo, nbo, tbo, cbo, sbo, ibo],
            rest=pos if batch else None,
            blend=bool(first.blend) and not batch,
            triangles=len(idx) // 3,
        )
        if not batch:
            item.texture = self._texture(first.texture)
            item.shade_texture = self._texture(first.shade_texture)
            item.matcap = self._texture(first.matcap_texture)
            if first.joints is not None and model.nodes[first.node].skin is not None:
                item.skin = model.nodes[first.node].skin
            if (
                self.morph == "gpu"
                and first.targets is not None
                and first.joints is None
                and len(first.targets) <= SHADER_TARGETS
            ):
                item.deltas = self._deltas_texture(first)
                item.morph_vao = self._vertex_array(self._program(True, mtoon), attrs, ibo)
                item.n_targets = len(first.targets)
        if first.material.outline != "none":
            item.outline_vao = self._vertex_array(self._outline_program(), attrs[:2], ibo)
            item.outline_cull = culls[members[0]]
        return item

    # ------------------------------------------------------------------ targets and background
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

    # ------------------------------------------------------------------ a frame
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
        target_weights = self._morphs.weights(weights)
        world = pose.world_matrices(self.model, yaw, pitch, roll, breathe)
        self.camera.follow(world, t)
        joint_mats = pose.skin_matrices(self.model, world)
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
        vp = self.camera.proj @ self.camera.view
        outlines = []
        for item in self.items:
            mvp = self._draw(item, target_weights, world, joint_mats, vp)
            if item.outline_vao is not None:
                outlines.append((item, mvp, target_weights.get(item.primitive)))
        for item, mvp, tw in outlines:  # after the surfaces: the hull only shows where nothing is in front
            self._draw_outline(item, mvp, tw)
        if self._ms_fbo is not self._fbo:
            ctx.copy_framebuffer(self._fbo, self._ms_fbo)
        out = np.empty((self.height, self.width, 3), np.uint8)  # fresh: frames already handed out stay intact
        self._fbo.read_into(out, components=3, alignment=1)
        if (self.width, self.height) != self.out_size:
            out = cv2.resize(out, self.out_size, interpolation=cv2.INTER_LINEAR)
        return out  # already top-down: the projection flips Y

    def _positions(self, item: DrawItem, target_weights: dict, joint_mats: list) -> np.ndarray | None:
        """The item's vertex positions this frame, or None when its buffer still holds them."""
        prims = self.model.primitives
        if item.rest is not None:  # a batch: its morphing members' vertices in their ranges
            for k, pi in enumerate(item.members):
                if pi in target_weights:
                    item.rest[item.offsets[k] : item.offsets[k + 1]] = pose.morphed(prims[pi], target_weights[pi])
            return item.rest
        p = prims[item.primitive]
        pos = None
        if item.deltas is None and item.primitive in target_weights:
            pos = pose.morphed(p, target_weights[item.primitive])
        if item.skin is not None:
            pos = pose.skinned(p, pos if pos is not None else p.positions, joint_mats[item.skin])
        return pos

    def _draw(self, item: DrawItem, target_weights: dict, world: list, joint_mats: list, vp: np.ndarray):
        """Draw ``item``'s surface; returns its model-view-projection matrix (for its outline)."""
        pos = self._positions(item, target_weights, joint_mats)
        if pos is not None:
            item.positions.write(np.ascontiguousarray(pos, dtype=np.float32).tobytes())
        model = np.eye(4) if item.skin is not None else world[item.node]  # skinned: already in world space
        gpu = item.deltas is not None
        prog = self._program(gpu, bool(item.material.mtoon))
        if gpu:
            prog["u_weights"].write(_weights128(target_weights[item.primitive]).tobytes())
            prog["u_targets"].value = item.n_targets
            prog["u_vertices"].value = int(item.offsets[-1])
            item.deltas.use(1)
            prog["u_deltas"].value = 1
        mvp = vp @ model
        prog["u_eye"].value = tuple(self.camera.eye)
        prog["u_mvp"].write(mvp.T.astype("f4").tobytes())
        prog["u_model"].write(model.T.astype("f4").tobytes())
        prog["u_color"].value = item.color
        self._set(prog, "u_rough", 0.6)
        prog["u_has_tex"].value = item.texture is not None
        if item.texture is not None:
            item.texture.use(0)
            prog["u_tex"].value = 0
        self._use_material(prog, item.material, item.shade_texture, item.matcap)
        if item.blend:
            ctx = self.ctx
            ctx.enable(ctx.BLEND)
            (item.morph_vao if gpu else item.vao).render()
            ctx.disable(ctx.BLEND)
        else:
            (item.morph_vao if gpu else item.vao).render()
        return mvp

    @staticmethod
    def _set(prog, name: str, value) -> None:
        if name in prog:  # uniforms a shader does not use are optimised away
            prog[name].value = value

    def _use_material(self, prog, mat: Material, shade_tex=None, matcap=None) -> None:
        """The per-draw uniforms of ``mat`` on ``prog``."""
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
                prog["u_view_rot"].write(self.camera.view[:3, :3].T.astype("f4").tobytes())

    def _draw_outline(self, item: DrawItem, mvp: np.ndarray, target_weights: np.ndarray | None) -> None:
        """The MToon outline of one item (back faces pushed out, front faces culled); on the GPU
        morph path the hull morphs in its shader as the surface does."""
        prog, ctx, mat = self.outline_prog, self.ctx, item.material
        prog["u_mvp"].write(mvp.T.astype("f4").tobytes())
        self._set(prog, "u_mode", 1 if mat.outline == "world" else 2)
        self._set(prog, "u_width", float(mat.outline_width))
        self._set(prog, "u_aspect", self.width / self.height)
        self._set(prog, "u_outline_color", tuple(float(c) for c in mat.outline_color))
        gpu = item.deltas is not None
        if gpu:
            item.deltas.use(1)
            self._set(prog, "u_deltas", 1)
            prog["u_weights"].write(_weights128(target_weights).tobytes())
        self._set(prog, "u_targets", item.n_targets if gpu else 0)
        self._set(prog, "u_vertices", 0 if item.rest is not None else int(item.offsets[-1]))
        ctx.enable(ctx.CULL_FACE)
        ctx.cull_face = item.outline_cull
        item.outline_vao.render()
        ctx.cull_face = "back"
        ctx.disable(ctx.CULL_FACE)

    # ------------------------------------------------------------------ teardown
    def release(self) -> None:
        with self.ctx:
            self._release()
        if self._own_ctx:
            self.ctx.release()

    def _release(self) -> None:
        for item in self.items:
            textures = (item.texture, item.shade_texture, item.matcap, item.deltas)
            for obj in (item.vao, item.morph_vao, item.outline_vao, *item.buffers, *textures):
                if obj is not None:
                    obj.release()
        self.items = []
        if self.outline_prog is not None:
            self.outline_prog.release()
        if self._bg is not None:
            for obj in self._bg:
                obj.release()
        self._release_targets()
        for prog in self._programs.values():
            prog.release()
        self._programs.clear()
