"""Neural voices (#14): Mimi's streaming architecture with explicit state, its ONNX export and run time,
kNN on target pools, RAVAS file import, kNN-VC chunking on small graphs with RAVAS's I/O, the weights'
installation (missing / truncated / wrong digest → clear errors, nothing half-installed), the live
offloading that keeps an 80 ms-frame voice fail-closed and free of creep.

Weights: random, of the published architecture (Kyutai's are not reachable here); a small
configuration (same strides and frame, fewer channels and layers) for speed, the full one in the
benchmark test."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from ravasd.audio.neural import checkpoint, knnvc, pools  # noqa: E402
from ravasd.audio.neural import mimi_arch as arch
from ravasd.audio.neural.install import check_streaming, install_mimi  # noqa: E402
from ravasd.audio.neural.mimi import MimiModel, MimiVC  # noqa: E402
from ravasd.audio.neural.offload import Offloaded  # noqa: E402
from ravasd.errors import ConfigError, ModelError  # noqa: E402

CFG = arch.SMALL


def speechy(n: int, rate: int = 24000, seed: int = 0) -> np.ndarray:
    """Voiced bursts with pauses (deterministic)."""
    t = np.arange(n) / rate
    f0 = 130 + 30 * np.sin(2 * np.pi * 0.9 * t)
    ph = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(h * ph) / h for h in range(1, 9)) * (np.sin(2 * np.pi * 2.1 * t) > -0.2)
    return (0.25 * x + np.random.default_rng(seed).normal(0, 0.005, n)).astype(np.float32)


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    checkpoint.write_safetensors(path, arch.random_params(CFG, seed=3), "BF16", CFG)
    return path


@pytest.fixture(scope="module")
def small_model_dir(small_ckpt, tmp_path_factory) -> Path:
    return install_mimi(small_ckpt, tmp_path_factory.mktemp("mimi") / "mimi", default_voices=False)


def toy_pool(dim: int, n: int = 200, seed: int = 1) -> pools.Pool:
    return pools.Pool("toy", "mimi", np.random.default_rng(seed).normal(0, 1, (n, dim)).astype(np.float32), {})


# --- the architecture and its export ----------------------------------------------------------------


def test_the_published_configuration_has_mimis_shapes_and_frame():
    shapes = arch.param_shapes(arch.FULL)
    assert arch.FULL.frame == 1920 and arch.FULL.hop == 960  # 80 ms latents, 25 Hz encoder at 24 kHz
    assert shapes["encoder.model.0.conv.conv.weight"] == (64, 1, 7)
    assert shapes["encoder.model.14.conv.conv.weight"] == (512, 1024, 3)
    assert shapes["decoder.model.2.convtr.convtr.weight"] == (1024, 512, 16)  # ×8 first on the way back
    assert shapes["encoder_transformer.transformer.layers.7.self_attn.in_proj_weight"] == (1536, 512)
    assert shapes["upsample.convtr.convtr.convtr.weight"] == (512, 1, 4)  # channel-wise
    assert shapes["quantizer.rvq_rest.input_proj.weight"] == (256, 512, 1)
    n = sum(int(np.prod(s)) for s in shapes.values())
    assert 70e6 < n < 90e6, n  # Mimi without its codebooks


def test_polyphase_transposed_conv_equals_torchs_causal_transposed_conv():
    import torch.nn.functional as F

    for cin, cout, s, g in ((6, 4, 4, 1), (5, 5, 2, 5), (3, 2, 8, 1)):
        c = arch.Conv("x", cin, cout, 2 * s, stride=s, transposed=True, groups=g)
        w, b = torch.randn(cin, cout // g, 2 * s), torch.randn(cout)
        x = torch.randn(1, cin, 11)
        ref = F.conv_transpose1d(x, w, b, stride=s, groups=g)[..., : 11 * s]  # moshi: trimmed right
        st = arch._States([arch.StateSpec("x", (1, cin, 1))], [torch.zeros(1, cin, 1)])
        got = arch._conv(x, {"x.convtr.convtr.weight": w, "x.convtr.convtr.bias": b}, c, st)
        assert torch.allclose(got, ref, atol=1e-5)


def test_torch_steps_stream_exactly_and_carry_their_state():
    p = arch.torch_params(arch.random_params(CFG), CFG)
    x = torch.from_numpy(speechy(CFG.frame * 30)).reshape(1, 1, -1)  # 30 frames > the context (12 steps)
    init = [torch.from_numpy(a) for a in arch.initial(arch.encoder_states(CFG))]
    with torch.no_grad():
        whole, *_ = arch.encode_step(p, CFG, x, *init)
        parts, st = [], init
        for a, b in ((0, 1), (1, 4), (4, 5), (5, 23), (23, 60)):  # in 960-sample steps
            z, *st = arch.encode_step(p, CFG, x[..., a * CFG.hop : b * CFG.hop], *st)
            parts.append(z)
        assert torch.allclose(torch.cat(parts, -1), whole, atol=1e-4)
        # the state matters: the second half from a fresh state is something else
        fresh, *_ = arch.encode_step(p, CFG, x[..., 30 * CFG.hop :], *init)
        assert (fresh - whole[..., 30:]).abs().max() > 1e-2


def test_onnx_graphs_match_torch(small_ckpt, small_model_dir):
    p = arch.torch_params(checkpoint.read_mimi(small_ckpt, CFG), CFG)  # the bf16-rounded weights it was made of
    m = MimiModel(small_model_dir)
    x = speechy(CFG.frame * 8)
    with torch.no_grad():
        emb, *_ = arch.encode_step(
            p,
            CFG,
            torch.from_numpy(x).reshape(1, 1, -1),
            *[torch.from_numpy(a) for a in arch.initial(arch.encoder_states(CFG))],
        )
        lat = arch.downsample_reference(p, CFG, emb)
        y, *_ = arch.decode_step(p, CFG, lat, *[torch.from_numpy(a) for a in arch.initial(arch.decoder_states(CFG))])
    assert np.allclose(m.embed(x), emb[0].numpy().T, atol=1e-4)
    m.reset()
    z = m.encode(x)  # numpy downsample on the ONNX embeddings
    assert np.allclose(z, lat[0].numpy().T, atol=1e-4)
    assert np.allclose(m.decode(z), y[0, 0].numpy(), atol=1e-4)


def test_checkpoint_reads_bf16_and_aliases(tmp_path):
    params = arch.random_params(CFG, seed=5)
    renamed = {k.replace(".self_attn.in_proj_weight", ".self_attn.in_projs.0.weight"): v for k, v in params.items()}
    renamed["quantizer.rvq_first.vq.layers.0._codebook.embedding"] = np.zeros((4, 16), np.float32)  # ignored
    path = tmp_path / "m.safetensors"
    checkpoint.write_safetensors(path, renamed, "BF16", CFG)
    got = checkpoint.read_mimi(path, checkpoint.config_of(path))
    assert set(got) == set(arch.param_shapes(CFG))
    k = "encoder_transformer.transformer.layers.1.self_attn.in_proj_weight"
    assert np.allclose(got[k], params[k], rtol=1e-2, atol=1e-3) and got[k].dtype == np.float32


# --- the streaming voice --------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [48000, 24000])
def test_mimivc_streams_exactly_for_any_block_size(small_model_dir, rate):
    pool = toy_pool(CFG.dimension)
    x = speechy(rate * 3, rate)
    ref = MimiVC(rate, MimiModel(small_model_dir), pool).process_samples(x)
    rng = np.random.default_rng(2)
    for _ in range(2):
        v = MimiVC(rate, MimiModel(small_model_dir), pool)
        out, i = [], 0
        while i < len(x):
            n = int(rng.integers(1, 3000))
            out.append(v.process_samples(x[i : i + n]))
            i += n
        got = np.concatenate(out)
        assert len(got) == len(x) and np.allclose(got, ref, atol=1e-5)
    assert v.latency == rate * 1920 // 24000 + (62 if rate == 48000 else 0)  # one frame + the FIR pair
    # as the live worker drives it: each call answered first, then computed ahead — the same output
    v = MimiVC(rate, MimiModel(small_model_dir), pool)
    block = rate // 200
    ahead = []
    for i in range(0, len(x), block):
        ahead.append(v.process_samples(x[i : i + block]))
        v.prepare()
    assert np.allclose(np.concatenate(ahead), ref, atol=1e-5)
    # the critical path of each frame is measured by part; computing ahead left little of the
    # encoder's work on it (only the last 40 ms of convolutions, the tail and the transformer)
    path = v.path_ms[-1]
    assert (
        set(path) == {"encoder_tail", "knn", "decoder_head", "total"} and len(v.path_ms) >= len(x) // (rate // 12.5) - 2
    )
    assert path["total"] == pytest.approx(path["encoder_tail"] + path["knn"] + path["decoder_head"], abs=0.05)
    assert np.abs(ref[: v.latency - 70]).max() == 0  # nothing before the first frame is out
    assert np.abs(ref).max() > 1e-3


def test_mimivc_gate_keeps_silence_silent_and_opens_where_sound_starts(small_model_dir):
    v = MimiVC(24000, MimiModel(small_model_dir), toy_pool(CFG.dimension))
    x = np.zeros(24000 * 2, np.float32)
    x[24000:] = speechy(24000, seed=4)  # sound from 1.0 s
    y = v.process_samples(x)
    onset = 24000 + v.latency
    assert np.abs(y[: onset - 10]).max() == 0
    assert np.abs(y[onset : onset + 480]).max() > 1e-3


def test_the_run_time_voice_never_imports_torch(small_model_dir):
    """torch is for exporting; a daemon running a Mimi-VC voice must not pay its import (seconds) and memory."""
    code = (
        "import sys, numpy as np\n"
        "from ravasd.audio.neural.mimi import MimiModel, MimiVC\n"
        "from ravasd.audio.neural import pools, registry, knnvc, offload\n"
        f"m = MimiModel({str(small_model_dir)!r})\n"
        "v = MimiVC(48000, m, pools.Pool('t', 'mimi', np.ones((4, m.cfg.dimension), np.float32), {}))\n"
        "v.process_samples(np.zeros(9600, np.float32))\n"
        "print('torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stdout + r.stderr[-2000:]


def test_knn_on_a_toy_pool():
    pool = pools.Pool("t", "mimi", np.array([[1, 0], [0, 1], [-1, 0], [10, 1]], np.float32), {})
    q = np.array([[2, 0.05], [0, -3]], np.float32)
    one = pool.convert(q, 1)
    assert np.allclose(one[0], [1, 0])  # cosine: [10, 1] is farther in angle than [1, 0]
    assert np.allclose(one[1], [-1, 0]) or np.allclose(one[1], [1, 0])  # equidistant in angle; one of them
    two = pool.convert(q[:1], 2)
    assert np.allclose(two[0], ([1, 0] + np.array([10, 1])) / 2)  # the mean of the raw vectors
    assert np.allclose(pool.convert(q * 7, 2), pool.convert(q, 2))  # scale does not matter
    assert pool.convert(q, 99).shape == (2, 2)  # k capped at the pool size
    with pytest.raises(ModelError, match="non-empty"):
        pools.Pool("bad", "mimi", np.zeros((0, 2), np.float32), {})


# --- RAVAS files --------------------------------------------------------------------------------------


def test_ravas_pt_target_files_import_without_torch_at_run_time(tmp_path):
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        t = torch.randn(37, 512).to(dtype)
        f = tmp_path / f"anna_{str(dtype)[6:]}.pt"
        torch.save(t, f)
        got = pools.read_torch_tensor(f)
        assert got.shape == (37, 512) and np.allclose(got, t.float().numpy())
    f = tmp_path / "view.pt"
    torch.save(torch.randn(10, 1024)[2:7], f)  # a view: offset into its storage
    assert pools.read_torch_tensor(f).shape == (5, 1024)


def test_a_pt_file_with_anything_but_tensors_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    f = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, f)
    with pytest.raises(ModelError, match="cannot be read as a target file"):
        pools.read_torch_tensor(f)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ModelError, match="not a torch.save file"):
        pools.read_torch_tensor(tmp_path / "text.pt")


def ravasd(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "ravasd", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_voices_import_build_list_remove_through_the_cli(small_ckpt, tmp_path, ravas_home):
    # before Mimi: the voices are listed as unavailable, with the fix
    r = ravasd("voices", "list", "--json")
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert "unavailable" in rows["mimi-alto"]["method"] and "models fetch mimi" in rows["mimi-alto"]["description"]
    r = ravasd("config", "set", "audio.voice", "mimi-alto")
    assert r.returncode != 0 and "not usable yet" in r.stderr and "models fetch mimi" in r.stderr
    r = ravasd("voices", "build", "anna", "--from", str(tmp_path))
    assert r.returncode != 0 and "Mimi is not installed" in r.stderr and "Traceback" not in r.stderr

    r = ravasd("models", "add", "mimi", str(small_ckpt))
    assert r.returncode == 0, r.stderr
    assert "Streamed output matches the offline run" in r.stderr and "mimi-alto" in r.stderr
    rows = {row["name"]: row for row in json.loads(ravasd("voices", "list", "--json").stdout)}
    assert rows["mimi-alto"]["method"] == "mimi" and rows["mimi-tenor"]["method"] == "mimi"
    meta = json.loads((ravas_home / "data" / "voices" / "mimi-alto" / "voice.json").read_text())
    assert meta["built_in"] and meta["inputs"][0]["seconds"] > 100 and meta["frames"] > 1000

    # build from recordings (a wav and an mp3), with the inputs' digests in the metadata
    from ravasd.media.writer import MediaWriter

    rec = tmp_path / "anna"
    rec.mkdir()
    for i, ext in enumerate(("wav", "flac")):
        w = MediaWriter((rec if ext == "wav" else tmp_path) / f"take{i}.{ext}", audio_rate=24000)
        w.write_samples(speechy(24000 * 4, seed=i))
        w.commit()
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(tmp_path / "take1.flac"), str(rec / "take1.mp3")], check=True
    )
    (rec / "notes.txt").write_text("not audio")
    r = ravasd("voices", "build", "anna", "--from", str(rec))
    assert r.returncode == 0, r.stderr
    meta = json.loads((ravas_home / "data" / "voices" / "anna" / "voice.json").read_text())
    assert meta["method"] == "mimi" and len(meta["inputs"]) == 2 and all(len(i["sha256"]) == 64 for i in meta["inputs"])
    assert 7.5 < meta["seconds"] < 8.5 and meta["frames"] == pytest.approx(8 * 12.5, abs=3)
    # (in-process from here: each CLI start costs ~2.5 s of imports)
    from ravasd.audio.neural import manage as cmd
    from ravasd.config import Config
    from ravasd.name_checks import check_names

    cfg = Config()
    with pytest.raises(ConfigError, match="exists already"):
        cmd.build(cfg, "anna", rec, "mimi", force=False)

    # import a RAVAS target file; a file of the wrong size is refused with the reason
    torch.save(torch.randn(50, 512), tmp_path / "Bob.pt")
    r = ravasd("voices", "import", str(tmp_path / "Bob.pt"))
    assert r.returncode == 0 and "voice bob: 50 512-d frames (mimi)" in r.stdout, r.stderr
    torch.save(torch.randn(5, 300), tmp_path / "odd.pt")
    with pytest.raises(ModelError, match="300-d vectors"):
        cmd.import_pt(cfg, tmp_path / "odd.pt", None, None, force=False)

    check_names(cfg.replace(**{"audio.voice": "anna"}))  # usable now: accepted
    assert "removed the voice bob" in cmd.remove("bob")
    assert set(pools.installed()) == {"anna", "mimi-alto", "mimi-tenor"}


def test_settings_window_shows_the_effective_config(small_model_dir, ravas_home):
    """The Voice page lists what the user's settings make usable (a voice under a configured
    models.mimi) and the latency at the configured block size — not those of built-in defaults."""
    pytest.importorskip("PySide6")
    from helpers import settings_window_probe

    from ravasd import paths

    pools.save("zed", toy_pool(CFG.dimension).vectors, {"method": "mimi"})
    default = settings_window_probe()
    assert "zed" not in default["rows"] and default["rows"]["tenor"] == "1.3 ms" and default["block_ms"] == 5
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(f"models:\n  mimi: {small_model_dir}\naudio:\n  block_ms: 7\n")
    mine = settings_window_probe()
    assert mine["block_ms"] == 7 and mine["rows"]["tenor"] == "6.3 ms"  # 7 ms blocks hold no whole 5 ms hops
    assert "zed" in mine["rows"] and mine["rows"]["zed"].endswith(" ms")


def test_a_neural_voice_runs_through_make_voice_offline_and_live(small_model_dir, ravas_home):
    from ravasd.audio.voices import make_voice
    from ravasd.config import Config

    pools.save("zed", toy_pool(CFG.dimension).vectors, {"method": "mimi"})
    cfg = Config().replace(**{"models.mimi": str(small_model_dir), "audio.knn_k": 2})
    x = speechy(48000 * 2, 48000)
    offline = make_voice(cfg, 48000, "zed", block=240)
    assert isinstance(offline, MimiVC) and offline.k == 2
    ref = offline.process_samples(x)
    live = make_voice(cfg, 48000, "zed", block=240, live=True)
    assert isinstance(live, Offloaded) and live.latency == offline.latency + live.margin
    live.adapt = False  # this loop feeds faster than real time: the margin under test here stays put
    got = feed(live, x, 240, 0.001)
    # the live voice is the offline one delayed by its margin; a span the worker was late for (a busy
    # machine: this loop feeds faster than real time) is silence, never anything else
    m = live.margin
    g, exp = got[m:], ref[: len(ref) - m]
    assert (np.isclose(g, exp, atol=1e-5) | (g == 0)).all() and live.late_samples < len(x) // 2
    assert np.isclose(g, exp, atol=1e-5)[exp != 0].mean() > 0.5
    r44 = make_voice(cfg, 44100, "zed", block=441)  # a 44.1 kHz device: resampled, still works
    assert (
        len(
            r44.process(
                __import__("ravasd.engine.frames", fromlist=["RawAudio"]).RawAudio(
                    np.zeros(441, np.float32), 44100, 0.0
                )
            ).samples
        )
        == 441
    )


def feed(voice, x: np.ndarray, block: int, pause: float) -> np.ndarray:
    """Blocks of ``x`` into a live voice, ``pause`` s apart; closes it; the output joined."""
    out = []
    for i in range(0, len(x), block):
        out.append(voice.process_samples(x[i : i + block]))
        time.sleep(pause)
    voice.close()
    return np.concatenate(out)


# --- offloading: fail closed, no creep, hangs surface --------------------------------------------------


class SlowVoice:
    """Delays by ``latency`` samples; each ``every``-th call takes ``cost`` seconds (a frame's burst)."""

    def __init__(self, latency=0, cost=0.0, every=8, fail_at=None):
        self.latency, self.cost, self.every, self.fail_at, self.calls = latency, cost, every, fail_at, 0

    def process_samples(self, x):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise RuntimeError("boom")
        if self.calls % self.every == 0:
            time.sleep(self.cost)
        return x.copy()

    def reset(self):
        pass

    def close(self):
        pass


def test_offloaded_late_output_is_silence_and_the_timeline_never_shifts():
    v = Offloaded(SlowVoice(cost=0.05, every=8), 1000, margin=10, adapt=False)  # 10 ms of margin, 50 ms bursts
    x = np.arange(1, 4001, dtype=np.float32)
    y = feed(v, x, 5, 0.005)
    assert len(y) == len(x) and v.late_samples > 0
    played = y != 0
    # every sample played is the input's sample exactly `margin` earlier: never shifted, never raw early
    idx = np.nonzero(played)[0]
    assert np.array_equal(y[idx], x[idx - v.margin])
    assert (~played[v.margin :]).sum() == v.late_samples  # the gaps are exactly the late spans


def _bursts(n: int, on: int, off: int) -> np.ndarray:
    """Sample i of a burst is i + 1 (so a played sample names its source), zeros between bursts."""
    x = np.arange(1, n + 1, dtype=np.float32)
    x[(np.arange(n) % (on + off)) >= on] = 0
    return x


def _delays(y: np.ndarray) -> list[tuple[int, set]]:
    """For each run of sound in ``y`` (a :func:`_bursts` input played back): its start and the set of
    delays (output index − source index) its samples were played at."""
    idx = np.flatnonzero(y)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    return [(int(r[0]), set((r - (y[r].astype(int) - 1)).tolist())) for r in runs if len(r)]


def test_the_live_margin_shrinks_inside_silence_to_what_the_waits_need():
    v = Offloaded(SlowVoice(), 1000, margin=120)  # 120 ms to begin with; the voice itself costs nothing
    v.settle_s = 0.1
    y = feed(v, _bursts(3000, 150, 100), 5, 0.005)
    runs = _delays(y)
    # a sound is never cut or stretched: each run of it plays at one delay; the delay only changes
    # between runs (inside silence), it went down, and nothing unconverted or shifted was played
    assert all(len(d) == 1 for _, d in runs), runs
    first, last = min(runs[0][1]), min(runs[-1][1])
    # the margin now is what the waits need: under the start's, though a busy machine's longer waits may
    # have raised it a little after the last run began (seen: 8 ms against that run's 6)
    assert first <= 120 and last < 60 and v.floor <= v.margin < 60
    assert v.late_samples == 0 or v.margin > v.floor  # a late block would have made it grow back


def test_the_live_margin_grows_after_late_output_and_late_spans_stay_silent():
    v = Offloaded(SlowVoice(cost=0.04, every=16), 1000, margin=10, ceiling=80)  # 40 ms bursts, 10 ms margin
    v.settle_s = 0.05
    y = feed(v, _bursts(4000, 120, 80), 5, 0.005)
    assert v.late_samples > 0 and 10 < v.margin <= 80  # it was late, so the margin grew (to the ceiling at most)
    for _, d in _delays(y):  # late spans are silence inside a run; what plays keeps the run's delay
        assert len(d) == 1 and 10 <= min(d) <= 80
    fixed = Offloaded(SlowVoice(cost=0.04, every=16), 1000, margin=10, adapt=False)
    feed(fixed, _bursts(4000, 120, 80), 5, 0.005)
    assert fixed.late_samples > v.late_samples  # a fixed margin stays late; the tracking one mostly stops being late


def test_status_says_when_a_live_voice_was_late():
    from ravasd.daemon.control import format_status

    st = {"audio": {"state": "running", "rate": 200, "latency_ms": 150, "voice_late_ms": 40.0}}
    assert "voice late for 40 ms" in format_status(st)
    assert "late" not in format_status({"audio": {"state": "running", "voice_late_ms": 0.0}})
    st = {"audio": {"state": "running", "voice_late_ms": 0.0, "voice_margin_ms": 24.4, "voice_wait_ms": 21.0}}
    assert "voice margin 24 ms, waits up to 21 ms" in format_status(st)


def test_offloaded_errors_reach_the_runner_and_stalls_raise():
    v = Offloaded(SlowVoice(fail_at=3), 1000, margin=10)
    with pytest.raises(RuntimeError, match="boom"):
        for _ in range(50):
            v.process_samples(np.ones(5, np.float32))
            time.sleep(0.002)
    v.close()
    stuck = Offloaded(SlowVoice(cost=3.0, every=1), 1000, margin=10, stall_s=0.3)
    stuck.process_samples(np.ones(5, np.float32))
    time.sleep(0.5)
    with pytest.raises(RuntimeError, match="busy for more than"):
        stuck.process_samples(np.ones(5, np.float32))


# --- installing: errors, nothing half-installed ----------------------------------------------------------


def test_bad_checkpoints_give_clear_errors(tmp_path, small_ckpt):
    data = small_ckpt.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        checkpoint.read_mimi(tmp_path / "cut.safetensors", CFG)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError, match="not a safetensors file"):
        checkpoint.read_mimi(tmp_path / "junk.safetensors", CFG)
    params = arch.random_params(CFG)
    params.pop("decoder.model.14.conv.conv.weight")
    checkpoint.write_safetensors(tmp_path / "other.safetensors", params, "F32", CFG)
    with pytest.raises(ModelError, match="1 of its .* tensors are missing"):
        checkpoint.read_mimi(tmp_path / "other.safetensors", CFG)
    with pytest.raises(ModelError, match="does not exist"):
        checkpoint.read_mimi(tmp_path / "nope.safetensors", CFG)
    # another model's tensor under the right name: the shape is named
    params = arch.random_params(CFG)
    params["encoder.model.0.conv.conv.weight"] = np.zeros((5, 1, 7), np.float32)
    checkpoint.write_safetensors(tmp_path / "shape.safetensors", params, "F32", CFG)
    with pytest.raises(ModelError, match=r"encoder.model.0.conv.conv.weight has shape \(5, 1, 7\)"):
        checkpoint.read_mimi(tmp_path / "shape.safetensors", CFG)
    # a small file read as the published model (no metadata): not a Mimi checkpoint
    checkpoint.write_safetensors(tmp_path / "small.safetensors", arch.random_params(CFG), "F32")
    with pytest.raises(ModelError, match="tensors are missing"):
        checkpoint.read_mimi(tmp_path / "small.safetensors", checkpoint.config_of(tmp_path / "small.safetensors"))
    r = ravasd("models", "add", "mimi", str(tmp_path / "cut.safetensors"))
    assert r.returncode == 2 and "truncated" in r.stderr and "Traceback" not in r.stderr


def test_a_failed_install_leaves_the_previous_one_untouched(small_ckpt, tmp_path, monkeypatch):
    from ravasd.audio.neural import install

    dest = tmp_path / "mimi"
    install_mimi(small_ckpt, dest, default_voices=False)
    before = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    monkeypatch.setattr(
        install,
        "check_streaming",
        lambda *a, **k: (_ for _ in ()).throw(ModelError("streams differently", "report it")),
    )
    with pytest.raises(ModelError, match="streams differently"):
        install_mimi(small_ckpt, dest, default_voices=False)
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mimi"]  # no staging left behind
    assert check_streaming(dest) < 1e-3


class _Files(http.server.BaseHTTPRequestHandler):
    """A local stand-in for the hub: Range requests, an optional break after N bytes, X-Linked-Etag."""

    body = b""
    stated = ""
    break_after = None

    def do_GET(self):
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
        data = self.body[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data)))
        if self.stated:
            self.send_header("X-Linked-Etag", f'"{self.stated}"')
        self.end_headers()
        if self.break_after is not None and not rng:
            self.wfile.write(data[: self.break_after])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def hub():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def test_fetch_resumes_checks_the_stated_digest_and_records_the_first(hub, tmp_path):
    import hashlib

    from ravasd import model_files

    body = np.random.default_rng(0).bytes(300_000)
    digest = hashlib.sha256(body).hexdigest()
    spec = model_files.ModelSpec("w.bin", f"http://127.0.0.1:{hub.server_port}/w.bin", "", "models.x", "test")
    _Files.body, _Files.stated, _Files.break_after = body, digest, 100_000
    dest = tmp_path / "w.bin"
    with pytest.raises(ModelError, match="are kept and the next try continues"):
        model_files.fetch(spec, progress=False, dest=dest)
    assert not dest.exists() and (tmp_path / ".w.bin.download").stat().st_size == 100_000
    _Files.break_after = None
    assert model_files.fetch(spec, progress=False, dest=dest) == dest and dest.read_bytes() == body
    assert (tmp_path / "w.bin.sha256").read_text().strip() == digest  # recorded at first download
    # a later copy that differs from the recorded digest is refused, and nothing replaces the good one
    dest.unlink()
    _Files.body, _Files.stated = body[:-1] + b"x", ""
    with pytest.raises(ModelError, match="failed its sha256 check"):
        model_files.fetch(spec, progress=False, dest=dest)
    assert not dest.exists() and not (tmp_path / ".w.bin.download").exists()
    # the server's stated digest is checked on the first download too
    (tmp_path / "w.bin.sha256").unlink()
    _Files.stated = digest
    with pytest.raises(ModelError, match="failed its sha256 check"):
        model_files.fetch(spec, progress=False, dest=dest)


def test_fetch_mimi_without_torch_or_with_downloads_off_says_what_to_do(tmp_path):
    env = dict(__import__("os").environ, RAVAS_HOME=str(tmp_path / "h"))
    r = ravasd("models", "fetch", "mimi", "--set", "models.allow_download=false", env=env)
    assert r.returncode == 2 and "Downloads are switched off" in r.stderr and "models add mimi" in r.stderr
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('no torch here')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from ravasd.cli import main\n"
        "sys.exit(main(['models', 'fetch', 'mimi']))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "pip install torch==2.13.0" in r.stderr and "Traceback" not in r.stderr


# --- kNN-VC on small graphs with RAVAS's names and shapes ------------------------------------------------


def _knnvc_graphs(folder: Path, chunk: int) -> None:
    """wavlm_{chunk}: (1, S) → (1, S//320 − 1, 1024), frame t = samples [320 t, 320 t + 320) in its first
    320 features; hifigan_{chunk}: (1, T, 1024) → (1, T·320), the inverse. Together: the window's first
    S − 320 samples (RAVAS's shapes; an identity through features a pool can match exactly)."""
    import onnx
    from onnx import TensorProto, helper

    t = chunk // 320 - 1
    c = lambda name, vals: helper.make_node(
        "Constant",
        [],
        [name],
        value=helper.make_tensor(  # noqa: E731
            name, TensorProto.INT64, [len(vals)], vals
        ),
    )
    wav = helper.make_graph(
        [
            c("shape", [1, chunk // 320, 320]),
            helper.make_node("Reshape", ["input", "shape"], ["frames"]),
            c("s0", [0]),
            c("s1", [t]),
            c("ax", [1]),
            helper.make_node("Slice", ["frames", "s0", "s1", "ax"], ["f"]),
            c("pads", [0, 0, 0, 0, 0, 1024 - 320]),
            helper.make_node("Pad", ["f", "pads"], ["output"]),
        ],
        "wavlm",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, chunk])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, t, 1024])],
    )
    hifi = helper.make_graph(
        [
            c("a0", [0]),
            c("a1", [320]),
            c("ax", [2]),
            helper.make_node("Slice", ["input", "a0", "a1", "ax"], ["h"]),
            c("shape", [1, -1]),
            helper.make_node("Reshape", ["h", "shape"], ["output"]),
        ],
        "hifigan",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, t, 1024])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, t * 320])],
    )
    for name, g in (("wavlm", wav), ("hifigan", hifi)):
        onnx.save(
            helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(folder / f"{name}_{chunk}.onnx")
        )


@pytest.fixture
def knn_dir(tmp_path) -> Path:
    d = tmp_path / "ravas_onnx"
    d.mkdir()
    for s in (3200, 4800):
        _knnvc_graphs(d, s)
    return d


def test_knnvc_chunks_with_previous_context_and_streams_exactly(knn_dir):
    model = knnvc.KnnVCModel(knn_dir, 4800)
    assert model.frames == 14 and model.out_len == 14 * 320
    x = speechy(16000 * 3, 16000) + 0.01 * np.random.default_rng(5).normal(size=48000).astype(np.float32)
    pool = pools.Pool("self", "knnvc", model.pool_features(x), {})  # the source's own frames: kNN is exact
    v = knnvc.KnnVC(16000, model, pool, k=1, context=1600, crossfade=False)
    assert v.hop == 3200 and v.latency == 3200 + 320  # one hop of look-ahead + what HiFi-GAN does not reach
    assert knnvc.KnnVC(16000, model, pool).hop == 1600  # the default context: 3200 of the 4800
    y = v.process_samples(x)
    lat = v.latency
    tail = slice(4800 + lat, len(x) - 1000)  # after the first window held real samples, before pool's end
    assert np.allclose(y[tail], x[tail.start - lat : tail.stop - lat], atol=1e-6)
    # any block size: the same samples
    v2 = knnvc.KnnVC(16000, model, pool, k=1, context=1600, crossfade=False)  # same settings, other blocks
    rng, out, i = np.random.default_rng(1), [], 0
    while i < len(x):
        n = int(rng.integers(1, 5000))
        out.append(v2.process_samples(x[i : i + n]))
        i += n
    assert np.array_equal(np.concatenate(out), y)


def test_knnvc_crossfade_is_ravas_triangular_blend(knn_dir):
    model = knnvc.KnnVCModel(knn_dir, 3200)
    w = knnvc.crossfade_weights()
    assert len(w) == 450 and w.max() == pytest.approx(0.75) and w[0] == 0 and np.allclose(w, w[::-1])
    x = speechy(16000 * 2, 16000)
    pool = pools.Pool("self", "knnvc", model.pool_features(x), {})
    plain = knnvc.KnnVC(16000, model, pool, k=1, context=320, crossfade=False).process_samples(x)
    faded = knnvc.KnnVC(16000, model, pool, k=1, context=320, crossfade=True).process_samples(x)
    hop = 3200 - 320
    with pytest.raises(ConfigError, match="at least"):  # HiFi-GAN's output is 320 short of the chunk
        knnvc.KnnVC(16000, model, pool, context=0)
    # hop 2 (of the inner stream) starts at 2·hop + prefill: its first 450 samples are blended with the
    # previous hop's (already blended) last 450, the rest are untouched
    start = 2 * hop + hop  # the look-ahead prefill is one hop; +320 lag sits inside the output itself
    prev_tail = faded[start - 450 : start]
    assert np.allclose(
        faded[start : start + 450], plain[start : start + 450] + w * (prev_tail - plain[start : start + 450]), atol=1e-6
    )
    assert np.array_equal(faded[start + 450 : start + hop], plain[start + 450 : start + hop])


def test_models_add_knnvc_and_a_knnvc_voice(knn_dir, tmp_path, ravas_home):
    r = ravasd("models", "add", "knnvc", str(knn_dir))
    assert r.returncode == 0 and "3200, 4800" in r.stdout, r.stderr
    assert "knnvc:" in ravasd("models", "list").stdout
    from ravasd.media.writer import MediaWriter

    w = MediaWriter(tmp_path / "t.wav", audio_rate=16000)
    w.write_samples(speechy(16000 * 5, 16000))
    w.commit()
    r = ravasd("voices", "build", "kay", "--from", str(tmp_path / "t.wav"), "--method", "knnvc")
    assert r.returncode == 0 and "1024-d frames (50/s)" in r.stdout, r.stderr
    from ravasd.audio.voices import make_voice
    from ravasd.config import Config

    v = make_voice(Config(), 48000, "kay", block=240)
    assert len(v.process_samples(np.zeros(4800, np.float32))) == 4800
    # broken graphs are refused with the file named, and nothing is copied
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "wavlm_9600.onnx").write_bytes(b"junk")
    (bad / "hifigan_9600.onnx").write_bytes(b"junk")
    r = ravasd("models", "add", "knnvc", str(bad))
    assert r.returncode == 2 and "wavlm_9600.onnx is not a usable ONNX graph" in r.stderr
    assert not (ravas_home / "cache" / "models" / "knnvc" / "wavlm_9600.onnx").exists()


# --- the full architecture, once -----------------------------------------------------------------------


@pytest.mark.slow
def test_bench_runs_the_full_architecture_with_random_weights_flagged(ravas_home):
    r = ravasd("bench", "audio", "--voice", "mimi-alto", "--random-weights", "--no-e2e", "--json", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(r.stdout)[0]
    assert row["voice"] == "mimi-alto" and "RANDOM weights" in row["weights"]
    assert 0 < row["rtf"] < 3 and row["algorithmic_latency_ms"] == 81.3
    man = json.loads((ravas_home / "cache" / "models" / "mimi-random-float32" / "manifest.json").read_text())
    assert man["config"] == arch.FULL.to_dict() and man["source"]["random"] is True
    assert not (ravas_home / "data" / "voices").exists()  # a benchmark builds no voice


def test_the_daemon_runs_a_neural_voice_and_records_it(small_model_dir, ravas_home, tmp_path):
    """The whole path: the daemon (no camera; its microphone a file of speech carrying the leak
    marker) with a Mimi-VC voice of the small architecture, recording what RAVAS Mic would play; it
    starts, speaks and stops cleanly, and the marker does not pass (it is in the input)."""
    import av
    from mediagen import MARKER, marked_speech

    from ravasd.evaluation.leaks import FOUND

    pools.save("anna", toy_pool(CFG.dimension).vectors, {"method": "mimi"})
    speech = marked_speech(tmp_path)
    out = tmp_path / "rec.wav"
    env = dict(__import__("os").environ, RAVAS_HOME=str(ravas_home), PULSE_SERVER="unix:/nonexistent")
    r = ravasd(
        "run",
        "--duration",
        "8",
        "--no-video",
        "--audio-source",
        "file",
        "--voice",
        "anna",
        "--no-tray",
        "--record",
        str(out),
        "--set",
        f"files.input={speech}",
        "--set",
        f"models.mimi={small_model_dir}",
        env=env,
        timeout=90,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr

    def read(path):
        with av.open(str(path)) as c:
            return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]).astype(np.float32)

    x = read(out)
    x = x / 32768 if np.abs(x).max() > 2 else x
    assert len(x) > 48000 * 6 and np.abs(x).max() > 1e-3  # the converted voice, not only silence
    assert MARKER.find(read(speech), 48000) > FOUND  # the microphone carries the marker…
    assert MARKER.find(x, 48000) < FOUND  # …and RAVAS Mic does not


@pytest.mark.skipif(__import__("shutil").which("flite") is None, reason="flite makes the target speech")
def test_the_shipped_target_speech_is_what_the_generator_makes():
    import soxr

    from ravasd.audio.neural import speech
    from ravasd.evaluation.target_speech import synthesize

    fresh, rate = synthesize("alto")
    fresh = soxr.resample(fresh, rate, 24000).astype(np.float32)
    shipped = speech.load("alto")
    assert abs(len(shipped) - len(fresh)) < 24000 * 0.05  # Opus adds at most a frame or two
    n = min(len(fresh), len(shipped)) - 2000
    a, b = fresh[1000:n], shipped[1000:n]
    best = max(
        float(np.dot(a[: len(a) - d], b[d:]) / np.linalg.norm(a[: len(a) - d]) / np.linalg.norm(b[d:]))
        for d in range(0, 400, 4)
    )
    assert best > 0.9, best  # the same speech, through a 32 kbit/s codec
    assert len(speech.sha256("tenor")) == 64 and 150 < len(speech.load("tenor")) / 24000 < 165


def test_a_mimi_installed_by_an_older_version_is_unavailable_with_the_fix(tmp_path, ravas_home):
    """Format 2 (one encoder and one decoder graph) cannot be staged: voices list / doctor / the settings
    window say so and how to fix it, and loading it is refused the same way (never a traceback)."""
    from ravasd.audio.neural.registry import neural_voices
    from ravasd.config import Config

    old = tmp_path / "mimi"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"format": 2, "config": CFG.to_dict(), "graphs": {}}))
    pools.save("olde", toy_pool(CFG.dimension).vectors, {"method": "mimi"})
    v = neural_voices(Config().replace(**{"models.mimi": str(old)}))["olde"]
    assert not v.available and "format 2" in v.fix and "ravasd models fetch mimi" in v.fix
    with pytest.raises(ModelError, match="another RAVAS version"):
        MimiModel(old)
