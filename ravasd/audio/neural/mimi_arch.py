"""Mimi's published architecture as explicit-state streaming steps, in torch (export time only).

Kyutai's Mimi codec (moshi, ``tokenizer-e351c8d8-checkpoint125``): a causal SEANet encoder
(24 kHz → 25 Hz, strides 4·5·6·8), an 8-layer causal transformer (RoPE, context 250 steps, layer
scale), a learnt stride-2 downsample to 12.5 Hz, a split RVQ whose input/output projections we
keep (its codebooks we skip, as RAVAS's Mimi-VC does), and the mirror image on the way back.

Our own formulation, written from the architecture description, not a port: every stage is a pure
function ``(x, state…) → (y, state…)`` over a flat parameter dict that uses the checkpoint's key
names (so Kyutai's safetensors load as they are). A step over T samples with the initial state
equals the offline forward with causal zero padding (replicate padding for the downsample), so
one frame at a time, ten at a time or the whole file give the same output — the property the
ONNX graphs inherit (:mod:`.install` exports them; :mod:`.mimi` runs them without torch).

Shapes: audio (B, 1, T·1920) float32 in [-1, 1] at 24 kHz; encoder embeddings (B, dimension, 2T) at
25 Hz; latents (B, dimension, T) at 12.5 Hz.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# torch only where graphs are made, imported then (:func:`_load_torch`): the run-time voice reads the
# configuration and state plans below and must not pay torch's seconds of import and its memory.
torch = F = None


def _load_torch() -> None:
    global torch, F
    if F is None:
        import torch as _torch
        import torch.nn.functional as _F

        torch, F = _torch, _F


@dataclass(frozen=True)
class MimiConfig:
    """The published configuration (moshi ``_mimi_config``); :data:`SMALL` keeps its strides."""

    sample_rate: int = 24000
    n_filters: int = 64
    ratios: tuple[int, ...] = (8, 6, 5, 4)  # decoder order; the encoder runs them reversed
    dimension: int = 512
    kernel: int = 7
    residual_kernel: int = 3
    last_kernel: int = 3
    compress: int = 2
    layers: int = 8
    heads: int = 8
    ffn: int = 2048
    context: int = 250
    max_period: float = 10000.0
    rvq_dimension: int = 256
    downsample: int = 2  # encoder frame rate (25 Hz) / frame rate (12.5 Hz)

    @property
    def hop(self) -> int:
        """Samples per encoder step (960 → 25 Hz)."""
        return int(np.prod(self.ratios))

    @property
    def frame(self) -> int:
        """Samples per latent (1920 = 80 ms at 24 kHz)."""
        return self.hop * self.downsample

    def to_dict(self) -> dict:
        return {**asdict(self), "ratios": list(self.ratios)}

    @classmethod
    def from_dict(cls, d: dict) -> MimiConfig:
        return cls(**{**d, "ratios": tuple(d["ratios"])})


#: The installed folder's manifest format (3: one graph per :data:`STAGES` entry; 2 had one encoder and
#: one decoder graph). Written by :mod:`.export`, required by :mod:`.mimi`.
FORMAT = 3

FULL = MimiConfig()
#: Same strides, frame and state structure, ~1/500 of the compute: for tests.
SMALL = MimiConfig(n_filters=4, dimension=32, layers=2, heads=2, ffn=64, context=12, rvq_dimension=16)


# --- the layer plans (shared by parameter shapes, state shapes and the forward) -------------------


@dataclass(frozen=True)
class Conv:
    name: str  # checkpoint prefix
    cin: int
    cout: int
    k: int
    stride: int = 1
    dilation: int = 1
    bias: bool = True
    transposed: bool = False
    groups: int = 1
    replicate: bool = False

    @property
    def key(self) -> str:
        return f"{self.name}.convtr.convtr" if self.transposed else f"{self.name}.conv.conv"

    @property
    def state_len(self) -> int:
        """Input samples of history a causal conv keeps (k_eff − stride); a transposed conv (k = 2·stride,
        run as its polyphase conv, see :func:`_conv`) keeps one."""
        return 1 if self.transposed else (self.k - 1) * self.dilation + 1 - self.stride


def _res(prefix: str, dim: int, cfg: MimiConfig) -> list:
    hidden = dim // cfg.compress
    return [
        (
            "res",
            [Conv(f"{prefix}.block.1", dim, hidden, cfg.residual_kernel), Conv(f"{prefix}.block.3", hidden, dim, 1)],
        )
    ]


def encoder_plan(cfg: MimiConfig) -> list:
    """SEANet encoder as a list of ("conv", Conv) / ("elu",) / ("res", [Conv, Conv]) steps."""
    nf, mult = cfg.n_filters, 1
    plan: list = [("conv", Conv("encoder.model.0", 1, nf, cfg.kernel))]
    for i, r in enumerate(reversed(cfg.ratios)):
        idx = 1 + 3 * i
        plan += _res(f"encoder.model.{idx}", mult * nf, cfg)
        plan += [("elu",), ("conv", Conv(f"encoder.model.{idx + 2}", mult * nf, 2 * mult * nf, 2 * r, stride=r))]
        mult *= 2
    idx = 1 + 3 * len(cfg.ratios)
    return plan + [("elu",), ("conv", Conv(f"encoder.model.{idx + 1}", mult * nf, cfg.dimension, cfg.last_kernel))]


def decoder_plan(cfg: MimiConfig) -> list:
    nf, mult = cfg.n_filters, 2 ** len(cfg.ratios)
    plan: list = [("conv", Conv("decoder.model.0", cfg.dimension, mult * nf, cfg.kernel))]
    for i, r in enumerate(cfg.ratios):
        idx = 1 + 3 * i
        plan += [
            ("elu",),
            ("conv", Conv(f"decoder.model.{idx + 1}", mult * nf, mult * nf // 2, 2 * r, stride=r, transposed=True)),
        ]
        plan += _res(f"decoder.model.{idx + 2}", mult * nf // 2, cfg)
        mult //= 2
    idx = 1 + 3 * len(cfg.ratios)
    return plan + [("elu",), ("conv", Conv(f"decoder.model.{idx + 1}", nf, 1, cfg.last_kernel))]


def downsample_conv(cfg: MimiConfig) -> Conv:
    s = cfg.downsample
    return Conv("downsample.conv", cfg.dimension, cfg.dimension, 2 * s, stride=s, bias=False, replicate=True)


def upsample_conv(cfg: MimiConfig) -> Conv:
    s, d = cfg.downsample, cfg.dimension
    # channel-wise (groups = dimension): the published checkpoint's "upsample_channel_wise_bug"
    return Conv("upsample.convtr", d, d, 2 * s, stride=s, bias=False, transposed=True, groups=d)


def _convs(plan: list) -> list[Conv]:
    out = []
    for step in plan:
        if step[0] == "conv":
            out.append(step[1])
        elif step[0] == "res":
            out.extend(step[1])
    return out


def _tf_prefix(side: str, i: int) -> str:
    return f"{side}_transformer.transformer.layers.{i}"


def param_shapes(cfg: MimiConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter the streaming model reads, by checkpoint key, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    for c in _convs(encoder_plan(cfg)) + _convs(decoder_plan(cfg)) + [downsample_conv(cfg), upsample_conv(cfg)]:
        if c.transposed:
            shapes[f"{c.key}.weight"] = (c.cin, c.cout // c.groups, c.k)
        else:
            shapes[f"{c.key}.weight"] = (c.cout, c.cin // c.groups, c.k)
        if c.bias:
            shapes[f"{c.key}.bias"] = (c.cout,)
    d = cfg.dimension
    for side in ("encoder", "decoder"):
        for i in range(cfg.layers):
            p = _tf_prefix(side, i)
            shapes[f"{p}.self_attn.in_proj_weight"] = (3 * d, d)
            shapes[f"{p}.self_attn.out_proj.weight"] = (d, d)
            for n in ("norm1", "norm2"):
                shapes[f"{p}.{n}.weight"] = (d,)
                shapes[f"{p}.{n}.bias"] = (d,)
            shapes[f"{p}.linear1.weight"] = (cfg.ffn, d)
            shapes[f"{p}.linear2.weight"] = (d, cfg.ffn)
            shapes[f"{p}.layer_scale_1.scale"] = (d,)
            shapes[f"{p}.layer_scale_2.scale"] = (d,)
    for rvq in ("rvq_first", "rvq_rest"):
        shapes[f"quantizer.{rvq}.input_proj.weight"] = (cfg.rvq_dimension, d, 1)
        shapes[f"quantizer.{rvq}.output_proj.weight"] = (d, cfg.rvq_dimension, 1)
    return shapes


#: Other names the same tensors carry in some moshi checkpoints / versions.
ALIASES = {
    ".self_attn.in_projs.0.weight": ".self_attn.in_proj_weight",
    ".self_attn.out_projs.0.weight": ".self_attn.out_proj.weight",
}


def canonical(key: str) -> str:
    for alias, name in ALIASES.items():
        if key.endswith(alias):
            return key[: -len(alias)] + name
    return key


def random_params(cfg: MimiConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Randomly initialised weights of the architecture (LeCun-normal convs/linears, unit norms,
    layer scale 0.01 as published): what tests and ``bench --random-weights`` run."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in param_shapes(cfg).items():
        if key.endswith("layer_scale_1.scale") or key.endswith("layer_scale_2.scale"):
            v = np.full(shape, 0.01)
        elif ".norm" in key:
            v = np.ones(shape) if key.endswith("weight") else np.zeros(shape)
        elif key.endswith("bias"):
            v = rng.normal(0, 0.05, shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
            if ".convtr." in key and "upsample" not in key:  # (cin, cout, k = 2·stride): cin·k/stride inputs
                fan_in = shape[0] * 2
            v = rng.normal(0, 1 / math.sqrt(max(1, fan_in)), shape)
        out[key] = v.astype(np.float32)
    return out


def projection(params: dict, cfg: MimiConfig) -> np.ndarray:
    """The split RVQ without its codebooks is linear: z ↦ Σ out_proj·in_proj·z over both halves.
    Folded into one (dimension, dimension) matrix, applied at the decoder's input."""
    w = np.zeros((cfg.dimension, cfg.dimension), np.float64)
    for rvq in ("rvq_first", "rvq_rest"):
        wi = np.asarray(params[f"quantizer.{rvq}.input_proj.weight"], np.float64)[..., 0]
        wo = np.asarray(params[f"quantizer.{rvq}.output_proj.weight"], np.float64)[..., 0]
        w += wo @ wi
    return w.astype(np.float32)


# --- streaming state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StateSpec:
    name: str
    shape: tuple[int, ...]  # batch 1
    init: float = 0.0


def _kv_spec(side: str, cfg: MimiConfig) -> list[StateSpec]:
    """Keys and values of the last ``context`` steps, one tensor each per layer (one stacked tensor
    measured 15 % slower on onnxruntime: it is split and re-stacked at every step)."""
    hd = cfg.dimension // cfg.heads
    kv = [
        StateSpec(f"{side}.{kind}{i}", (1, cfg.heads, cfg.context, hd))
        for i in range(cfg.layers)
        for kind in ("k", "v")
    ]
    return kv + [StateSpec(f"{side}.pos", (1,))]


def _conv_specs(convs: list[Conv]) -> list[StateSpec]:
    out = []
    for c in convs:
        if c.state_len > 0:
            out.append(StateSpec(c.name, (1, c.cin, c.state_len)))
        if c.replicate:
            out.append(StateSpec(f"{c.name}.first", (1,), 1.0))
    return out


def encoder_states(cfg: MimiConfig) -> list[StateSpec]:
    """The encoder stages' states, concatenated in stage order (what :func:`encode_step` takes)."""
    return [spec for s in STAGES[:3] for spec in s.states(cfg)]


def decoder_states(cfg: MimiConfig) -> list[StateSpec]:
    return [spec for s in STAGES[3:] for spec in s.states(cfg)]


# --- the forward (torch) -----------------------------------------------------------------------


class _States:
    """Reads the state tensors in plan order and collects the new ones in the same order."""

    def __init__(self, specs: list[StateSpec], values) -> None:
        self.values = dict(zip([s.name for s in specs], values))
        self.new: dict = {}
        self.order = [s.name for s in specs]

    def out(self) -> list:
        return [self.new[n] for n in self.order]


def _conv(x, p: dict, c: Conv, st: _States):
    _load_torch()
    w = p[f"{c.key}.weight"]
    b = p.get(f"{c.key}.bias") if c.bias else None
    if c.transposed:
        # A transposed conv with k = 2s, stride s is a kernel-2 conv at the input rate with s outputs
        # per channel: y[s·n + q] = w[q]·x[n] + w[q + s]·x[n − 1]. Its state is the last input step
        # (the causal output equals the transposed conv's, trimmed right, as moshi streams it). Run as
        # a conv it measured ~2× faster than ConvTranspose on onnxruntime's CPU kernels.
        s_, cin, cout = c.stride, c.cin, c.cout
        xx = torch.cat([st.values[c.name], x], dim=-1)
        st.new[c.name] = xx[..., -1:]
        per = cout // c.groups  # outputs per group
        w4 = w.reshape(c.groups, cin // c.groups, per, 2, s_)  # (g, in/g, out/g, tap, phase); k = tap·s + phase
        w2 = torch.stack([w4[:, :, :, 1], w4[:, :, :, 0]], dim=-1)  # taps: x[n−1] first, then x[n]
        w2 = w2.permute(0, 2, 3, 1, 4).reshape(cout * s_, cin // c.groups, 2)  # (o, phase) rows, o-major
        y = F.conv1d(xx, w2, None, groups=c.groups)  # (B, cout·s, T)
        y = y.reshape(y.shape[0], cout, s_, -1).transpose(2, 3).reshape(y.shape[0], cout, -1)
        return y + b[:, None] if b is not None else y
    n = c.state_len
    if n > 0:
        prev = st.values[c.name]
        if c.replicate:
            first = st.values[f"{c.name}.first"]
            prev = first * x[..., :1].expand_as(prev) + (1 - first) * prev
            st.new[f"{c.name}.first"] = first * 0
        x = torch.cat([prev, x], dim=-1)
        st.new[c.name] = x[..., -n:]
    return F.conv1d(x, w, b, stride=c.stride, dilation=c.dilation, groups=c.groups)


def _seanet(x, p: dict, plan: list, st: _States):
    for step in plan:
        if step[0] == "conv":
            x = _conv(x, p, step[1], st)
        elif step[0] == "elu":
            x = F.elu(x)
        else:
            c1, c2 = step[1]
            x = x + _conv(F.elu(_conv(F.elu(x), p, c1, st)), p, c2, st)
    return x


def _rope(q, k, t, cfg: MimiConfig):
    """Interleaved rotary embedding; ``t`` (T,) absolute positions."""
    hd = q.shape[-1]
    freqs = torch.exp(torch.arange(hd // 2, dtype=torch.float32) * (-math.log(cfg.max_period) * 2 / hd))
    ang = t[:, None] * freqs[None, :]
    cos, sin = torch.cos(ang), torch.sin(ang)

    def rot(v):
        b, h = v.shape[0], v.shape[1]
        v = v.reshape(b, h, -1, hd // 2, 2)  # -1: the time axis stays dynamic in the export
        re, im = v[..., 0], v[..., 1]
        return torch.stack([re * cos - im * sin, re * sin + im * cos], dim=-1).reshape(b, h, -1, hd)

    return rot(q), rot(k)


def _transformer(x, p: dict, side: str, cfg: MimiConfig, st: _States):
    """x (B, D, T) conv layout → (B, D, T); KV cache of ``context`` steps per layer, RoPE offset ``pos``."""
    pos = st.values[f"{side}.pos"]
    x = x.transpose(1, 2)
    b, d = x.shape[0], cfg.dimension  # a constant: layer_norm needs a static shape in the export
    h, hd, c = cfg.heads, d // cfg.heads, cfg.context
    steps = torch.cumsum(torch.ones_like(x[0, :, 0]), 0) - 1  # 0..T-1, traced as dynamic
    qpos = pos + steps
    kpos = torch.cat([pos - c + torch.arange(c, dtype=torch.float32), qpos])
    delta = qpos[:, None] - kpos[None, :]
    allowed = (kpos[None, :] >= 0) & (delta >= 0) & (delta < c)
    bias = torch.where(allowed, torch.zeros_like(delta), torch.full_like(delta, float("-inf")))
    for i in range(cfg.layers):
        lp = _tf_prefix(side, i)
        y = F.layer_norm(x, (d,), p[f"{lp}.norm1.weight"], p[f"{lp}.norm1.bias"], 1e-5)
        qkv = F.linear(y, p[f"{lp}.self_attn.in_proj_weight"]).reshape(b, -1, 3, h, hd).permute(2, 0, 3, 1, 4)
        q, k = _rope(qkv[0], qkv[1], qpos, cfg)
        keys = torch.cat([st.values[f"{side}.k{i}"], k], dim=2)
        vals = torch.cat([st.values[f"{side}.v{i}"], qkv[2]], dim=2)
        st.new[f"{side}.k{i}"], st.new[f"{side}.v{i}"] = keys[:, :, -c:], vals[:, :, -c:]
        att = torch.softmax(q @ keys.transpose(-1, -2) / math.sqrt(hd) + bias, dim=-1) @ vals
        att = att.permute(0, 2, 1, 3).reshape(b, -1, d)
        x = x + p[f"{lp}.layer_scale_1.scale"] * F.linear(att, p[f"{lp}.self_attn.out_proj.weight"])
        y = F.layer_norm(x, (d,), p[f"{lp}.norm2.weight"], p[f"{lp}.norm2.bias"], 1e-5)
        y = F.linear(F.gelu(F.linear(y, p[f"{lp}.linear1.weight"])), p[f"{lp}.linear2.weight"])
        x = x + p[f"{lp}.layer_scale_2.scale"] * y
    st.new[f"{side}.pos"] = qpos[-1:] + 1
    return x.transpose(1, 2)


# --- the stages: one graph each, so the run time can start a stage as soon as its input exists ----------
#
# The streaming voice (:class:`~ravasd.audio.neural.mimi.MimiVC`) runs the encoder's convolutions block by
# block as audio arrives, its stride-8 tail at each 40 ms, the transformer when a frame completes, and
# the decoder's convolutions a few 5 ms steps at a time as the output is due. The split points are the
# 200 Hz rate between the SEANets' last (first) stride and the rest: ``mid`` samples per step.


def mid_hop(cfg: MimiConfig) -> int:
    """Samples per step at the rate between the SEANet stages (120 = 5 ms: 24 kHz / (4·5·6))."""
    return cfg.hop // cfg.ratios[0]


def _encoder_split(cfg: MimiConfig) -> tuple[list, list]:
    """The encoder plan cut before its last stride (the ELU in front of it): 24 kHz → 200 Hz, 200 → 25 Hz."""
    plan = encoder_plan(cfg)
    last = max(i for i, s in enumerate(plan) if s[0] == "conv" and s[1].stride > 1)
    return plan[: last - 1], plan[last - 1 :]


def _decoder_split(cfg: MimiConfig) -> tuple[list, list]:
    """The decoder plan cut after its first stride and the residual block behind it: 25 → 200 Hz, 200 Hz → 24 kHz."""
    plan = decoder_plan(cfg)
    first = min(i for i, s in enumerate(plan) if s[0] == "conv" and s[1].transposed)
    return plan[: first + 2], plan[first + 2 :]


def _out_channels(plan: list) -> int:
    last = plan[-1]
    return last[1][-1].cout if last[0] == "res" else last[1].cout


@dataclass(frozen=True)
class Stage:
    """One stateful graph: ``fn(p, cfg, x, *state) → (y, *state)``; ``example(cfg)`` a (1, C, T) input
    of one step (the export traces it; the time axis stays dynamic)."""

    name: str
    fn: object
    states: object  # (cfg) → list[StateSpec]
    example: object  # (cfg) → (1, C, T)


def _seanet_stage(part: str):
    def fn(p: dict, cfg: MimiConfig, x, *state):
        _load_torch()
        plan = _PARTS[part](cfg)
        st = _States(_conv_specs(_convs(plan)), state)
        return (_seanet(x, p, plan, st), *st.out())

    return fn


_PARTS = {
    "encoder.convs": lambda cfg: _encoder_split(cfg)[0],
    "encoder.tail": lambda cfg: _encoder_split(cfg)[1],
    "decoder.up": lambda cfg: _decoder_split(cfg)[0],
    "decoder.convs": lambda cfg: _decoder_split(cfg)[1],
}


def _encoder_transformer(p: dict, cfg: MimiConfig, z, *state):
    _load_torch()
    st = _States(_kv_spec("encoder", cfg), state)
    return (_transformer(z, p, "encoder", cfg, st), *st.out())


def _decoder_transformer(p: dict, cfg: MimiConfig, latent, *state):
    """Latents (12.5 Hz, before the RVQ projections) → the decoder transformer's output at 25 Hz."""
    _load_torch()
    st = _States(_conv_specs([upsample_conv(cfg)]) + _kv_spec("decoder", cfg), state)
    z = torch.einsum("ij,bjt->bit", p["projection"], latent)
    z = _conv(z, p, upsample_conv(cfg), st)
    return (_transformer(z, p, "decoder", cfg, st), *st.out())


def _part_states(part: str):
    return lambda cfg: _conv_specs(_convs(_PARTS[part](cfg)))


#: In data-flow order. The downsample (25 → 12.5 Hz) and the kNN between the encoder and the decoder run
#: in numpy.
STAGES = (
    Stage("encoder.convs", _seanet_stage("encoder.convs"), _part_states("encoder.convs"), lambda c: (1, 1, mid_hop(c))),
    Stage(
        "encoder.tail",
        _seanet_stage("encoder.tail"),
        _part_states("encoder.tail"),
        lambda c: (1, _out_channels(_encoder_split(c)[0]), c.ratios[0]),
    ),
    Stage("encoder.transformer", _encoder_transformer, lambda c: _kv_spec("encoder", c), lambda c: (1, c.dimension, 1)),
    Stage(
        "decoder.transformer",
        _decoder_transformer,
        lambda c: _conv_specs([upsample_conv(c)]) + _kv_spec("decoder", c),
        lambda c: (1, c.dimension, 1),
    ),
    Stage("decoder.up", _seanet_stage("decoder.up"), _part_states("decoder.up"), lambda c: (1, c.dimension, 1)),
    Stage(
        "decoder.convs",
        _seanet_stage("decoder.convs"),
        _part_states("decoder.convs"),
        lambda c: (1, _out_channels(_decoder_split(c)[0]), 1),
    ),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def _chain(names: tuple[str, ...], p: dict, cfg: MimiConfig, x, state):
    """Stages ``names`` in order over ``x``; ``state`` is their states concatenated in that order."""
    out, i = [], 0
    for stage in (s for s in STAGES if s.name in names):
        n = len(stage.states(cfg))
        x, *new = stage.fn(p, cfg, x, *state[i : i + n])
        out += new
        i += n
    return (x, *out)


def encode_step(p: dict, cfg: MimiConfig, audio, *state):
    """(B, 1, T·hop) audio + encoder state → (B, dimension, T) embeddings at the encoder rate (25 Hz)
    + new state. The 25 → 12.5 Hz downsample runs in numpy at run time
    (:class:`~ravasd.audio.neural.mimi.Downsample`; :func:`downsample_reference` here)."""
    return _chain(STAGE_NAMES[:3], p, cfg, audio, state)


def downsample_reference(p: dict, cfg: MimiConfig, emb):
    """The learnt stride-2 conv (replicate-padded) over a whole (B, D, 2T) sequence, in torch: the
    reference the run-time numpy :class:`~ravasd.audio.neural.mimi.Downsample` is tested against."""
    _load_torch()
    c = downsample_conv(cfg)
    st = _States(_conv_specs([c]), [torch.zeros(1, c.cin, c.state_len), torch.ones(1)])
    return _conv(emb, p, c, st)


def decode_step(p: dict, cfg: MimiConfig, latent, *state):
    """(B, dimension, T) latents (before the RVQ projections) + decoder state → (B, 1, T·frame) audio."""
    return _chain(STAGE_NAMES[3:], p, cfg, latent, state)


def initial(specs: list[StateSpec]) -> list[np.ndarray]:
    return [np.full(s.shape, s.init, np.float32) for s in specs]


def torch_params(params: dict[str, np.ndarray], cfg: MimiConfig) -> dict:
    _load_torch()
    out = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in params.items()}
    out["projection"] = torch.from_numpy(projection(params, cfg))
    return out
