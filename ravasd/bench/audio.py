"""``ravasd bench audio``: per voice, real-time factor and end-to-end latency through a real
PulseAudio/PipeWire server.

End to end: a stereo null sink ``ravas_bench_meter`` gets two mono remap sinks — ``ravas_bench_in``
on its left channel, ``ravas_bench_out`` on its right — and the left channel is exposed as the
fake microphone ``ravas_bench_mic``. A test signal played into ``ravas_bench_in`` reaches the
daemon's audio path (microphone → voice → output, the same classes the daemon uses), which writes
into ``ravas_bench_out``; one recording of the meter's monitor holds input (left) and output
(right) on one clock, and the cross-correlation of where each has sound gives the latency. The temporary
modules are removed afterwards. With no server reachable (and none startable) ``e2e_latency_ms``
is null with the reason.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from scipy.signal import fftconvolve

from ..audio.sinks import DeviceAudioSink
from ..audio.sources import MicSource, synth_speech
from ..audio.voices import VOICES, make_voice
from ..config import Config, block_size
from ..devices import pulse
from ..engine.frames import RawAudio
from ..engine.priority import raise_audio_priority
from ..engine.runner import AudioPublisher, StreamRunner
from ..engine.stage import StagedVoice, find_trait
from ..media.writer import MediaWriter

#: voice name → factory(cfg, rate, block) used instead of the registry (``--random-weights``)
_OVERRIDES: dict = {}


def _make(cfg: Config, rate: int, name: str, block: int, live: bool = False):
    if name in _OVERRIDES:
        return _OVERRIDES[name](cfg, rate, block, live)
    return make_voice(cfg, rate, name, block=block, live=live)


def random_weights(cfg: Config, names: list[str], precision: str = "float32") -> dict[str, str]:
    """For each neural voice in ``names`` whose real weights are absent: run it on a Mimi of the
    published architecture with random weights (made once in the cache; needs torch to export) and
    a random pool of 5 min of latents. Returns name → what the row says about its weights."""
    from ..audio.neural import pools
    from ..audio.neural.registry import neural_voices

    notes = {}
    have = neural_voices(cfg)
    for name in names:
        v = have.get(name)
        if v is None or v.available:
            continue
        if v.method != "mimi":
            notes[name] = "kNN-VC needs RAVAS's graphs (`ravasd models add knnvc DIR`): no random stand-in"
            continue
        from ..audio.neural.install import make_random
        from ..audio.neural.mimi import MimiModel, MimiVC
        from ..audio.neural.registry import offloaded
        from ..audio.neural.runtime import load_manifest
        from ..audio.voices import at_rate

        folder = make_random(precision=precision)
        dim = load_manifest(folder)["config"]["dimension"]
        vec = np.random.default_rng(0).normal(0, 1, (int(300 * 12.5), dim)).astype(np.float32)
        pool = pools.Pool(name, "mimi", vec, {})

        def factory(cfg, rate, block, live, folder=folder, pool=pool):
            def voice(cfg, rate):  # as the registry builds a Mimi-VC voice, on the random model
                if rate % 24000:
                    raise ValueError(rate)
                v = MimiVC(rate, MimiModel(folder, cfg.audio.device), pool, cfg.audio.knn_k)
                return offloaded(cfg, v, rate) if live else v

            return at_rate(voice, cfg, rate, block)

        _OVERRIDES[name] = factory
        notes[name] = f"RANDOM weights, {precision} (published architecture; the real ones are not installed)"
    return notes


def rtf(cfg: Config, name: str, seconds: float = 4.0) -> tuple[float, int, int, dict | None]:
    """(processing time / audio time on this thread, algorithmic latency samples, block, a staged voice's
    critical path: the median over its frames of each part in ms, else None)."""

    rate, block = cfg.audio.sample_rate, block_size(cfg)
    x = synth_speech(rate, seconds)
    conv = _make(cfg, rate, name, block)
    staged = find_trait(conv, StagedVoice)  # computed ahead between blocks, as the live worker does
    t0 = time.thread_time()
    for i in range(0, len(x) - block + 1, block):
        conv.process(RawAudio(x[i : i + block], rate, i / rate))
        if staged is not None:
            staged.prepare()
    used = time.thread_time() - t0
    lat = int(getattr(conv, "latency", 0))
    path = None
    if staged is not None and (frames := list(staged.path_ms)[2:]):  # the first two: onnxruntime warming up
        path = {k: round(float(np.median([f[k] for f in frames])), 1) for k in frames[-1]}
    conv.close()
    return used / seconds, lat, block, path


def _die_with_parent() -> None:
    """Child side (Linux): SIGTERM when the bench dies, so a private server is never orphaned."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class SoundServer:
    """The user's running server, or a private pulseaudio started for the bench (always, with
    ``private``: the desktop's devices are left alone)."""

    def __init__(self, private: bool = False) -> None:
        self.proc = None
        self.tmp = None
        self.env = dict(os.environ)
        self._was = os.environ.get("PULSE_SERVER")
        if private or pulse.server_info() is None:
            if not shutil.which("pulseaudio"):
                raise RuntimeError("no PulseAudio/PipeWire server is reachable and pulseaudio is not installed")
            self.tmp = tempfile.TemporaryDirectory(prefix="ravas-bench-")
            root = Path(self.tmp.name)
            (root / "xdg").mkdir(mode=0o700)
            # PULSE_SOURCE / PULSE_SINK name devices of whatever server this process spoke to before
            # (pulse.route sets them): on this one they do not exist, and every client would fail on them
            for k in pulse.ROUTING_ENV:
                self.env.pop(k, None)
            self.env.update(
                HOME=str(root), XDG_RUNTIME_DIR=str(root / "xdg"), PULSE_SERVER=f"unix:{root}/xdg/pulse/native"
            )
            (root / "bench.pa").write_text("load-module module-native-protocol-unix auth-anonymous=1\n")
            self.proc = subprocess.Popen(
                [
                    "pulseaudio",
                    "--daemonize=no",
                    "--exit-idle-time=-1",
                    "-n",
                    "-F",
                    str(root / "bench.pa"),
                    "--log-target=stderr",
                ],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            os.environ["PULSE_SERVER"] = self.env["PULSE_SERVER"]
            for _ in range(200):
                if pulse.server_info() is not None:
                    break
                time.sleep(0.05)
            else:
                self.close()
                raise RuntimeError("a private pulseaudio did not start")
            import sounddevice as sd  # PortAudio (a system library) loads only where the bench plays

            sd._terminate()  # PortAudio lists ALSA's "pulse" device only if a server answered at init
            sd._initialize()
        self.modules: list[int] = []

    def load(self, *args: str) -> None:
        self.modules.append(pulse.load_module(*args))

    def unload_all(self) -> None:
        for m in reversed(self.modules):
            pulse.unload_module(m)
        self.modules.clear()

    def close(self) -> None:
        self.unload_all()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None
            if self._was is None:
                os.environ.pop("PULSE_SERVER", None)
            else:
                os.environ["PULSE_SERVER"] = self._was


ACTIVE_DB = 45.0  # "sound on": within this many dB of the channel's peak (≈ the voices' silence gate)


def _envelope(x: np.ndarray, rate: int) -> np.ndarray:
    """Where the channel has sound, at 1 ms resolution (zero-mean). On/off, not the loudness
    contour: a target voice gives speech the *target's* loudness contour, whose peaks need not
    line up with the input's, while its sound starts and stops with the input's."""
    k = max(1, rate // 1000)
    e = np.abs(x[: len(x) // k * k]).reshape(-1, k).mean(axis=1)
    on = (e > e.max() * 10 ** (-ACTIVE_DB / 20)).astype(np.float64)
    return on - on.mean()


#: The bench's sound devices on one clock: a stereo null sink whose left channel is the fake
#: microphone's signal and whose right channel is the voice's output, both recorded together.
METER_MODULES = [
    (
        "module-null-sink",
        "sink_name=ravas_bench_meter",
        "rate=48000",
        "channels=2",
        "channel_map=front-left,front-right",
    ),
    (
        "module-remap-sink",
        "sink_name=ravas_bench_in",
        "master=ravas_bench_meter",
        "channels=1",
        "master_channel_map=front-left",
        "channel_map=mono",
        "remix=no",
    ),
    (
        "module-remap-sink",
        "sink_name=ravas_bench_out",
        "master=ravas_bench_meter",
        "channels=1",
        "master_channel_map=front-right",
        "channel_map=mono",
        "remix=no",
    ),
    (
        "module-remap-source",
        "source_name=ravas_bench_mic",
        "master=ravas_bench_meter.monitor",
        "channels=1",
        "master_channel_map=front-left",
        "channel_map=mono",
        "remix=no",
    ),
]


def _read_stereo(path: Path) -> np.ndarray:
    """A recorded stereo file as (n, 2) float32 in −1..1."""
    with av.open(str(path)) as c:
        data = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=-1)
    data = data.reshape(-1, 2) if data.shape[0] != 2 else data.T
    return data.astype(np.float32) / (32768.0 if np.abs(data).max() > 2 else 1.0)


def e2e_latency(cfg: Config, name: str, seconds: float = 3.0, srv: SoundServer | None = None) -> dict:
    """{"latency_ms": from the fake microphone's input to the voice's output on one clock, "blocks":
    published, "dropped": blocks lost (inbox overflow, device buffers), "priority": what the OS gave}."""

    rate, block = 48000, block_size(cfg.replace(**{"audio.sample_rate": 48000}))
    own = srv is None
    srv = srv or SoundServer()
    try:
        for module in METER_MODULES:
            srv.load(*module)
        with tempfile.TemporaryDirectory(prefix="ravas-bench-") as tmp:
            sig = synth_speech(rate, seconds)
            wav = Path(tmp) / "signal.wav"
            w = MediaWriter(wav, audio_rate=rate)
            w.write_samples(np.concatenate([np.zeros(rate // 2, np.float32), sig]))
            w.commit()
            rec_path = Path(tmp) / "meter.wav"
            rec = subprocess.Popen(
                [
                    "parecord",
                    "--device=ravas_bench_meter.monitor",
                    "--latency-msec=10",
                    "--channels=2",
                    f"--rate={rate}",
                    "--file-format=wav",
                    str(rec_path),
                ],
                env=srv.env,
            )
            priority = raise_audio_priority(cfg.engine.audio_realtime)  # as the audio worker does; threads inherit
            runner = StreamRunner(
                source=lambda: MicSource(pulse.route("input", "ravas_bench_mic"), rate, block),
                converter=lambda: _make(cfg, rate, name, block, live=True),
                sink=lambda: DeviceAudioSink(
                    None, rate, block, cfg.audio.max_latency_ms / 1000, pulse_sink="ravas_bench_out"
                ),
                publisher=AudioPublisher(block / rate, rate, block),
                deadline=cfg.audio.deadline_ms / 1000,
                max_backlog=max(2, int(cfg.audio.max_latency_ms / cfg.audio.block_ms)),
            ).start()
            ready_by = time.monotonic() + 60
            while not runner.converter_ready and time.monotonic() < ready_by:  # a neural voice loads
                time.sleep(0.05)
            time.sleep(0.8)
            before = runner.snapshot()  # drops while the voice loaded are start-up, not the stream's
            live_latency = runner.converter_latency
            subprocess.run(
                ["paplay", "--device=ravas_bench_in", "--latency-msec=10", str(wav)],
                env=srv.env,
                check=True,
                timeout=60,
            )
            time.sleep(0.6)
            snap = runner.snapshot()
            live_latency = runner.converter_latency  # a neural voice's margin follows its measured waits
            runner.stop()
            _normal_priority()
            rec.terminate()
            rec.wait(5)
            data = _read_stereo(rec_path)
    finally:
        if own:
            srv.close()
        else:
            srv.unload_all()
    if np.abs(data[:, 1]).max() < 1e-4:
        raise RuntimeError("no output arrived from the voice")
    return {
        "latency_ms": lag_ms(data[:, 0], data[:, 1], rate),
        "blocks": snap["published"] - before["published"],
        "dropped": snap["dropped"] - before["dropped"],
        "priority": priority,
        "live_latency_ms": None if live_latency is None else round(live_latency / rate * 1000, 1),
        "margin_ms": snap.get("voice_margin_ms"),
    }


def _normal_priority() -> None:
    """Back to the default scheduling for the bench's own thread (the next voice starts afresh)."""
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (OSError, AttributeError):
        pass


def lag_ms(x: np.ndarray, y: np.ndarray, rate: int) -> float:
    """How many ms ``y`` (output) lags ``x`` (input), from where each has sound."""

    a, b = _envelope(x, rate), _envelope(y, rate)
    c = fftconvolve(b, a[::-1], mode="full")
    return float(int(np.argmax(c)) - (len(a) - 1))  # envelopes at 1 ms resolution


def bench_audio(
    cfg: Config,
    voices: list[str] | None = None,
    e2e: bool = True,
    load: int = 0,
    seconds: float = 3.0,
    random: bool = False,
    precision: str = "float32",
) -> list[dict]:
    """One row per voice. ``load``: that many busy processes saturate the CPU while each voice is
    measured (audio must keep its latency and not drop); ``seconds``: the e2e signal's length."""
    srv, why = None, ""
    if e2e:  # one server (private if needed) for all voices: PortAudio is re-initialised once
        try:
            srv = SoundServer()
        except Exception as err:
            why = str(err)
    names = voices or list(VOICES)
    notes = random_weights(cfg, names, precision) if random else {}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(0, load))]
    try:
        rows = _rows(cfg, names, e2e, srv, why, load, seconds, skip=[n for n in notes if n not in _OVERRIDES])
        for r in rows:
            r["weights"] = notes.get(r["voice"], "")
        return rows
    finally:
        for p in busy:
            p.kill()
            p.wait()
        if srv is not None:
            srv.close()


def _rows(
    cfg: Config,
    names: list[str],
    e2e: bool,
    srv: SoundServer | None,
    why: str,
    load: int = 0,
    seconds: float = 3.0,
    skip: list[str] = (),
) -> list[dict]:
    rows = []
    for name in names:
        row = {
            "voice": name,
            "sample_rate": cfg.audio.sample_rate,
            "block_ms": cfg.audio.block_ms,
            "algorithmic_latency_ms": None,
            "rtf": None,
            "critical_path_ms": None,
            "live_latency_ms": None,
            "margin_ms": None,
            "load": load,
            "e2e_latency_ms": None,
            "e2e_dropped_pct": None,
            "priority": None,
            "e2e_note": "",
        }
        if name in skip:
            rows.append({**row, "e2e_note": "not run"})
            continue
        ratio, lat, block, path = rtf(cfg, name)
        row.update(
            algorithmic_latency_ms=round(lat / cfg.audio.sample_rate * 1000, 1),
            rtf=round(ratio, 3),
            critical_path_ms=path,
        )
        if e2e and srv is None:
            row["e2e_note"] = why
        elif e2e:
            try:
                got = e2e_latency(cfg, name, seconds=seconds, srv=srv)
                row["e2e_latency_ms"] = round(got["latency_ms"], 1)
                row["live_latency_ms"] = got["live_latency_ms"]
                row["margin_ms"] = got["margin_ms"]
                total = got["blocks"] + got["dropped"]
                row["e2e_dropped_pct"] = round(100 * got["dropped"] / total, 2) if total else None
                row["priority"] = got["priority"]
            except Exception as err:  # no output: say why
                row["e2e_note"] = str(err)
        rows.append(row)
    return rows


def to_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2)
