"""Voice converters: the streaming contract (streamed == offline for any block size, declared
latency exact), robustness (silence, NaN, clipping, empty blocks), and what each voice does."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ravasd.audio.sources import synth_speech
from ravasd.audio.voices import VOICES, make_voice
from ravasd.audio.voices.mcadams import McAdams
from ravasd.config import load_config
from ravasd.engine.frames import AnonAudio, RawAudio

RATE = 48000
SPEECH = synth_speech(RATE, seconds=2.0)


def stream(conv, x, block):
    return np.concatenate([conv.process(RawAudio(x[i:i + block], RATE, i / RATE)).samples
                           for i in range(0, len(x), block)])


@pytest.mark.parametrize("name", list(VOICES))
def test_streamed_equals_offline_for_any_block_size(name):
    cfg = load_config()
    offline = make_voice(cfg, RATE, name).process(RawAudio(SPEECH, RATE, 0.0)).samples
    assert len(offline) == len(SPEECH)
    for block in (37, 240, 480, 1999):
        out = stream(make_voice(cfg, RATE, name), SPEECH, block)
        assert np.array_equal(out, offline), f"{name}: block {block} differs from the offline run"


@pytest.mark.parametrize("name", list(VOICES))
def test_robust_to_silence_nan_clipping_and_empty_blocks(name):
    conv = make_voice(load_config(), RATE, name)
    assert not conv.process(RawAudio(np.zeros(4800, np.float32), RATE, 0)).samples.any()  # silence → silence
    bad = SPEECH[:4800].copy() * 5  # clipped
    bad[::97] = np.nan
    bad[::101] = np.inf
    out = conv.process(RawAudio(bad, RATE, 0)).samples
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0 and len(out) == 4800
    empty = conv.process(RawAudio(np.zeros(0, np.float32), RATE, 0))
    assert type(empty) is AnonAudio and len(empty.samples) == 0


def test_mcadams_declared_latency_is_exact():
    """With α = 1 McAdams is an identity: the output is the input delayed by ``latency`` samples."""
    conv = McAdams(RATE, alpha=1.0)
    y = conv.process_samples(SPEECH)
    lag = conv.latency

    def corr_at(shift):
        n = len(SPEECH) - shift - 2
        return np.corrcoef(SPEECH[:n], y[shift:shift + n])[0, 1]

    assert corr_at(lag) > 0.9999
    assert corr_at(lag - 1) < corr_at(lag) and corr_at(lag + 1) < corr_at(lag)  # exactly that lag


def test_mcadams_raises_the_formants():
    def centroid(x):
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        f = np.fft.rfftfreq(len(x), 1 / RATE)
        band = f < 4000
        return (spec[band] * f[band]).sum() / spec[band].sum()

    y = McAdams(RATE, alpha=0.8).process_samples(SPEECH)
    assert centroid(y) > centroid(SPEECH) * 1.05
    assert np.corrcoef(SPEECH[:-1505], y[1505:])[0, 1] < 0.5  # not the input


def test_voices_list_shows_latency(ravas_home):
    r = subprocess.run([sys.executable, "-m", "ravasd", "voices", "list", "--json"], capture_output=True,
                       text=True, env={"RAVAS_HOME": str(ravas_home), "PATH": "/usr/bin:/bin"})
    rows = {v["name"]: v for v in json.loads(r.stdout)}
    assert rows["ringmod"]["latency_ms"] == 0 and 20 < rows["mcadams"]["latency_ms"] < 40
    assert {"name", "method", "latency_ms", "description"} <= set(rows["mcadams"])


def test_bench_audio_measures_end_to_end_through_a_sound_server(pulse, ravas_home):
    import os

    env = dict(pulse.env, RAVAS_HOME=str(ravas_home))
    r = subprocess.run([sys.executable, "-m", "ravasd", "bench", "audio", "--voice", "ringmod", "--json",
                        "--set", "audio.block_ms=5"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    (row,) = json.loads(r.stdout)
    assert row["voice"] == "ringmod" and row["block_ms"] == 5 and row["sample_rate"] == 48000
    assert row["e2e_latency_ms"] is not None and row["e2e_latency_ms"] > 0, row
    assert 0 < row["rtf"] < 1 and row["algorithmic_latency_ms"] == 0
    # the bench's temporary devices are gone again
    assert "ravas_bench" not in pulse.pactl("list", "short", "modules")
    # no server and no way to start one: null, with the reason
    bare = {"RAVAS_HOME": str(ravas_home), "PATH": "/nonexistent", "PULSE_SERVER": "unix:/nonexistent"}
    r = subprocess.run([sys.executable, "-m", "ravasd", "bench", "audio", "--voice", "ringmod", "--json"],
                       env=bare, capture_output=True, text=True, timeout=60)
    (row,) = json.loads(r.stdout)
    assert row["e2e_latency_ms"] is None and "no PulseAudio/PipeWire server" in row["e2e_note"]
    assert os.environ.get("PULSE_SERVER")  # the fixture's server is still in place


def test_lpc_voice_at_an_unsupported_rate_is_a_config_error():
    from ravasd.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot run at audio.sample_rate 44100"):
        make_voice(load_config(), 44100, "mcadams")
