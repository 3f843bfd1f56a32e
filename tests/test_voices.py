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
    return np.concatenate(
        [conv.process(RawAudio(x[i : i + block], RATE, i / RATE)).samples for i in range(0, len(x), block)]
    )


@pytest.mark.parametrize("name", list(VOICES))
def test_streamed_equals_offline_for_any_block_size(name):
    cfg = load_config()
    offline = make_voice(cfg, RATE, name).process(RawAudio(SPEECH, RATE, 0.0)).samples
    assert len(offline) == len(SPEECH)
    for block in (37, 240, 480, 1999):
        out = stream(make_voice(cfg, RATE, name), SPEECH, block)
        assert np.array_equal(out, offline), f"{name}: block {block} differs from the offline run"


@pytest.mark.parametrize("name", ["tenor", "deep", "mcadams", "ringmod"])
@pytest.mark.parametrize("rate", [16000, 48000])
def test_daemon_blocks_of_whole_hops_drop_the_look_ahead(name, rate):
    """Built for the daemon's fixed blocks (whole 5 ms hops), a vocoder voice answers each block
    at once: the same output, exactly one hop earlier, and a latency that says so. A block that
    breaks the promise raises (the runner then fails closed) instead of drifting."""
    cfg = load_config()
    block = rate // 200
    x = synth_speech(rate, seconds=1.0)
    anyb, fitted = make_voice(cfg, rate, name), make_voice(cfg, rate, name, block=block)

    def run(conv):
        return np.concatenate(
            [conv.process(RawAudio(x[i : i + block], rate, 0.0)).samples for i in range(0, len(x), block)]
        )

    a, b = run(anyb), run(fitted)
    gain = anyb.latency - fitted.latency
    assert gain == (rate // 200 if name in ("tenor", "deep") else 0)
    assert np.array_equal(a[gain:], b[: len(b) - gain])
    if gain:
        with pytest.raises(ValueError, match="whole"):
            fitted.process(RawAudio(x[: block // 2], rate, 0.0))


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
        return np.corrcoef(SPEECH[:n], y[shift : shift + n])[0, 1]

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
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "voices", "list", "--json"],
        capture_output=True,
        text=True,
        env={"RAVAS_HOME": str(ravas_home), "PATH": "/usr/bin:/bin"},
    )
    rows = {v["name"]: v for v in json.loads(r.stdout)}
    assert rows["ringmod"]["latency_ms"] == 0 and 20 < rows["mcadams"]["latency_ms"] < 40
    # the daemon's default 5 ms blocks hold whole vocoder hops: only the resampling filters delay
    assert all(rows[n]["latency_ms"] == 1.3 for n in ("tenor", "alto", "deep"))
    env = {"RAVAS_HOME": str(ravas_home), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-m", "ravasd", "config", "set", "audio.block_ms", "7"], env=env, check=True)
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "voices", "list", "--json"], capture_output=True, text=True, env=env
    )
    rows = {v["name"]: v for v in json.loads(r.stdout)}
    assert rows["tenor"]["latency_ms"] == 6.3  # 7 ms blocks split hops: the look-ahead hop is back
    assert {"name", "method", "latency_ms", "description"} <= set(rows["mcadams"])


def test_bench_latency_follows_sound_on_off_not_the_loudness_contour():
    """A target voice gives speech its own loudness contour; the lag is still the true delay."""
    from ravasd.audio.sources import synth_speech
    from ravasd.bench.audio import lag_ms

    rate, delay = 48000, 0.037
    x = synth_speech(rate, 3.0)
    on = np.abs(x) > 1e-4
    contour = 0.2 + np.abs(np.sin(np.arange(len(x)) / rate * 2 * np.pi * 3.1 + 1.0))  # unrelated peaks
    y = np.where(on, np.sign(x) * 0.3 * contour, 0.0)
    y = np.concatenate([np.zeros(int(delay * rate)), y])[: len(x)]
    assert abs(lag_ms(x, y, rate) - 1000 * delay) <= 2


def test_bench_audio_measures_end_to_end_through_a_sound_server(pulse, ravas_home):
    import os

    env = dict(pulse.env, RAVAS_HOME=str(ravas_home))
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "bench", "audio", "--voice", "ringmod", "--json", "--set", "audio.block_ms=5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (row,) = json.loads(r.stdout)
    assert row["voice"] == "ringmod" and row["block_ms"] == 5 and row["sample_rate"] == 48000
    assert row["e2e_latency_ms"] is not None and row["e2e_latency_ms"] > 0, row
    assert 0 < row["rtf"] < 1 and row["algorithmic_latency_ms"] == 0
    # the default voice (a target voice) through the same path: its envelope is found in the output
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ravasd",
            "bench",
            "audio",
            "--voice",
            load_config().audio.voice,
            "--json",
            "--set",
            "audio.block_ms=5",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (row,) = json.loads(r.stdout)
    # 5 ms daemon blocks hold whole vocoder hops: only the resampling filters delay (1.3 ms)
    assert row["voice"] == load_config().audio.voice == "tenor" and row["algorithmic_latency_ms"] == 1.3
    assert row["e2e_latency_ms"] is not None and row["e2e_latency_ms"] > row["algorithmic_latency_ms"], row
    # the bench's temporary devices are gone again
    assert "ravas_bench" not in pulse.pactl("list", "short", "modules")
    # no server and no way to start one: null, with the reason
    bare = {"RAVAS_HOME": str(ravas_home), "PATH": "/nonexistent", "PULSE_SERVER": "unix:/nonexistent"}
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "bench", "audio", "--voice", "ringmod", "--json"],
        env=bare,
        capture_output=True,
        text=True,
        timeout=60,
    )
    (row,) = json.loads(r.stdout)
    assert row["e2e_latency_ms"] is None and "no PulseAudio/PipeWire server" in row["e2e_note"]
    assert os.environ.get("PULSE_SERVER")  # the fixture's server is still in place


@pytest.mark.parametrize("name", ["tenor", "mcadams"])
def test_a_voice_at_44k1_runs_behind_soxr_and_still_streams_exactly(name):
    """A 44.1 kHz device: the 48 kHz voice is wrapped; any block size gives the same output."""
    import soxr

    rate = 44100
    x = soxr.resample(SPEECH, RATE, rate).astype(np.float32)
    offline = make_voice(load_config(), rate, name).process(RawAudio(x, rate, 0.0)).samples
    assert len(offline) == len(x) and np.abs(offline).max() > 0.01
    for block in (37, 441, 1000):
        conv = make_voice(load_config(), rate, name)
        out = np.concatenate(
            [conv.process(RawAudio(x[i : i + block], rate, 0.0)).samples for i in range(0, len(x), block)]
        )
        assert np.array_equal(out, offline), block
    assert abs(conv.latency - make_voice(load_config(), RATE, name).latency * rate / RATE) < 20


def test_target_voice_at_44k1_keeps_the_targets_pitch():
    import soxr

    target_hz = float(np.exp(load_pool("tenor").lf0_mean))
    y = (
        make_voice(load_config(), 44100, "tenor-knn")
        .process(RawAudio(soxr.resample(tone_speech(210.0, 3.0), RATE, 44100).astype(np.float32), 44100, 0.0))
        .samples
    )
    assert abs(np.log(median_f0(y, 44100) / target_hz)) < np.log(1.2)


# -- vocoder voices (pitch/formant presets, target voices) ----------------------------------------
from ravasd.audio.voices import vocoder  # noqa: E402
from ravasd.audio.voices.shift import PitchFormant  # noqa: E402
from ravasd.audio.voices.target import TARGETS, TargetVoice, load_pool  # noqa: E402


def tone_speech(f0: float, seconds: float = 1.5, rate: int = RATE) -> np.ndarray:
    """A steady vowel-like signal at ``f0`` Hz (pulse train through two formants)."""
    from scipy import signal

    n = int(seconds * rate)
    ph = np.cumsum(np.full(n, f0 / rate))
    pulses = (np.diff(np.floor(ph), prepend=0) > 0).astype(float)
    y = np.zeros(n)
    for f, bw in ((700, 80), (1200, 100)):
        r = np.exp(-np.pi * bw / rate)
        y += signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / rate), r * r], pulses)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def median_f0(y: np.ndarray, rate: int = RATE, voiced_share: float = 0.5) -> float:
    """Median YIN F0 of probes every 50 ms; more than ``voiced_share`` of them must be voiced."""
    import soxr

    x = soxr.resample(y, rate, vocoder.RATE) if rate != vocoder.RATE else y
    f0s = [vocoder.yin(x[i - vocoder.HIST : i].astype(np.float64))[0] for i in range(vocoder.HIST + 4000, len(x), 800)]
    voiced = [f for f in f0s if f > 0]
    assert len(voiced) > voiced_share * len(f0s), "output should be voiced"
    return float(np.median(voiced))


def test_yin_finds_the_pitch():
    for f0 in (90.0, 150.0, 240.0):
        assert abs(median_f0(tone_speech(f0)) - f0) < 0.02 * f0


@pytest.mark.parametrize("pitch", [0.7, 1.45])
def test_pitch_formant_voice_moves_f0_and_formants(pitch):
    x = tone_speech(140.0)
    conv = PitchFormant(RATE, pitch, 1.15 if pitch > 1 else 0.87)
    y = conv.process_samples(x)
    assert abs(median_f0(y) / 140.0 - pitch) < 0.05

    def centroid(v):
        spec = np.abs(np.fft.rfft(v[RATE // 2 :] * np.hanning(len(v) - RATE // 2)))
        f = np.fft.rfftfreq(len(v) - RATE // 2, 1 / RATE)
        band = (f > 300) & (f < 3000)
        return (spec[band] * f[band]).sum() / spec[band].sum()

    assert (centroid(y) > centroid(x)) == (pitch > 1)


@pytest.mark.parametrize("name", list(TARGETS))
def test_target_voice_puts_every_speaker_on_the_targets_pitch(name):
    """Speakers at 100 Hz and 220 Hz both come out near the target's mean F0."""
    target_hz = float(np.exp(load_pool(name).lf0_mean))
    outs = [median_f0(TargetVoice(RATE, name).process_samples(tone_speech(f0, 3.0))) for f0 in (100.0, 220.0)]
    for f in outs:
        assert abs(np.log(f / target_hz)) < np.log(1.2), (name, outs, target_hz)


def test_vocoder_output_is_synthesised_not_the_input():
    conv = make_voice(load_config(), RATE, "tenor")
    y = conv.process_samples(SPEECH)
    lat = conv.latency
    best = max(abs(np.corrcoef(SPEECH[: len(SPEECH) - s], y[s:])[0, 1]) for s in range(lat - 240, lat + 240, 3))
    assert best < 0.3


def test_vocoder_latency_is_one_hop_plus_resampler_and_onsets_line_up():
    conv = make_voice(load_config(), RATE, "tenor")
    assert conv.latency == 3 * vocoder.HOP + 62  # 48 kHz: one 5 ms hop + the two FIR delays
    _assert_onset_lines_up(conv)


def _assert_onset_lines_up(conv) -> None:
    """Nothing before the input's onset (+ latency − the hop it falls in); sound within two hops (the
    first hop fades in from silence)."""
    x = np.zeros(RATE, np.float32)
    onset = 20000
    x[onset:] = tone_speech(150.0, seconds=(RATE - onset) / RATE)
    y = conv.process_samples(x)
    first = int(np.argmax(np.abs(y) > 1e-3))
    assert onset + conv.latency - 3 * vocoder.HOP - 40 <= first <= onset + conv.latency + 2 * 3 * vocoder.HOP


def test_reset_restores_a_fresh_converter():
    a = make_voice(load_config(), RATE, "alto")
    a.process_samples(SPEECH)
    a.reset()
    b = make_voice(load_config(), RATE, "alto")
    assert np.array_equal(a.process_samples(SPEECH[:9600]), b.process_samples(SPEECH[:9600]))


def test_a_damaged_target_pool_is_a_clear_error(tmp_path, monkeypatch):
    from ravasd.audio.voices import target
    from ravasd.errors import RavasError

    (tmp_path / "alto.npz").write_bytes(b"not a zip")
    monkeypatch.setattr(target, "POOL_DIR", tmp_path)
    monkeypatch.setattr(target, "_CACHE", {})
    with pytest.raises(RavasError, match="alto.*pool.*cannot be read"):
        TargetVoice(RATE, "alto")


def test_target_pools_are_rebuilt_as_committed(tmp_path):
    """The shipped pool is what the generator makes: a small rebuild (2 reference speakers × 2
    sentences) gives exactly the shipped pool's rows for those hops."""
    from ravasd.audio.voices import target
    from ravasd.evaluation import build_pools as pools

    shipped = np.load(target.POOL_DIR / "alto.npz")
    fresh = np.load(pools.build_pool("alto", tmp_path, speakers=2, sentences=2, proj=shipped["proj"]))
    assert str(shipped["source"]) == str(fresh["source"]) == "flite:slt"
    assert np.array_equal(shipped["env"][: len(fresh["env"])], fresh["env"])
    where = {tuple(o): i for i, o in enumerate(shipped["origin"])}
    assert len(fresh["origin"]) > 100
    hits = [(i, where[tuple(o)]) for i, o in enumerate(fresh["origin"]) if tuple(o) in where]
    assert len(hits) == len(fresh["origin"])
    a, b = zip(*hits)
    assert np.array_equal(fresh["rows"][list(a)], shipped["rows"][list(b)])
    # the key prior differs (2 speakers vs all), so keys agree closely, not exactly
    fk, sk = fresh["keys"][list(a)].astype(float), shipped["keys"][list(b)].astype(float)
    assert np.median(np.abs(fk - sk)) * target.KEY_STEP < 0.2


def test_sound_projection_weighs_sounds_not_speakers():
    """The search space keeps the directions that tell the aligned target sounds apart and drops
    those along which reference speakers differ while saying the same sound."""
    from ravasd.audio.voices import target
    from ravasd.evaluation import build_pools as pools

    rng = np.random.default_rng(1)
    n = 6000
    sound = rng.integers(0, 12, n)
    env = np.zeros((n, 4))
    env[:, 1] = sound  # the aligned target envelope tells the sound
    keys = rng.normal(0, 0.2, (n, target.KEY_DIMS))
    keys[:, 0] += sound * 0.3  # carries the sound
    keys[:, 1] += rng.choice([-3.0, 3.0], n)  # the speaker: large, and no help
    proj = pools.sound_projection(keys, env)
    assert proj.shape == (target.KEY_DIMS, target.SOUND_DIMS)
    weight = np.abs(proj).sum(axis=1)
    assert weight[0] > 10 * weight[1]
    y = keys @ proj
    assert np.corrcoef(y[:, 0], sound)[0, 1] ** 2 > 0.9


def test_reference_speakers_are_not_evaluation_speakers():
    """The evaluation measures speakers the mapping has never seen."""
    from ravasd.evaluation.build_pools import REFERENCE_SPEAKERS
    from ravasd.evaluation.corpus import EVAL_SPEAKERS

    def variant(v):
        return v.split("+")[-1].lower() if "+" in v else v

    ref = {variant(v) for _, v, _ in REFERENCE_SPEAKERS}
    assert not ref & {variant(v) for _, _, v, _ in EVAL_SPEAKERS}


# -- normalised voices ------------------------------------------------------------------------------
def _analyse(y: np.ndarray) -> list:
    """The vocoder analyser's features of every hop of ``y`` (16 kHz)."""
    an = vocoder.Analyzer()
    x = y.astype(np.float64)
    return [an.step(x[i : i + vocoder.HOP]) for i in range(0, len(x) - vocoder.HOP, vocoder.HOP)]


def _ceps_stats(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean mel-cepstrum of the speech hops of ``y`` (16 kHz) and their median F0 (the normalised voices'
    own feature space, measured by the vocoder's analyser on the *output* signal)."""
    from ravasd.audio.voices.normalise import TO_CEPS

    feats = _analyse(y)
    c = np.array([TO_CEPS @ f.logspec for f in feats if f.logspec is not None])
    f0 = np.median([f.f0 for f in feats if f.f0 > 0])
    return c[len(c) // 3 :, 1:].mean(axis=0), float(f0)  # after the first third: the statistics have settled


@pytest.mark.parametrize("name", list(TARGETS))
def test_normalised_voice_gives_different_speakers_the_targets_statistics(name, monkeypatch):
    """Two espeak-ng speakers far apart in spectrum and pitch come out near the target's mean spectrum and
    F0, and near each other (the target's final move switched off here; the next test checks it)."""
    from ravasd.audio.voices import normalise
    from ravasd.audio.voices.normalise import NormalisedVoice, target_stats
    from ravasd.evaluation.corpus import eval_corpus

    monkeypatch.setattr(normalise, "PITCH", 1.0)
    monkeypatch.setattr(normalise, "_SHIFT", np.arange(vocoder.BINS, dtype=float))

    utts = eval_corpus(speakers=2, sentences=3)  # ann and ben: different espeak-ng voices, pitch and rate
    a, b = (np.concatenate([u.audio for u in utts if u.speaker == s]) for s in ("ann", "ben"))
    t = target_stats(name)
    ins = [_ceps_stats(x) for x in (a, b)]
    outs = [_ceps_stats(NormalisedVoice(16000, name).process_samples(x)) for x in (a, b)]
    gap = lambda u, v: float(np.linalg.norm(u - v))  # noqa: E731
    assert gap(outs[0][0], outs[1][0]) < 0.5 * gap(ins[0][0], ins[1][0])  # speakers moved together
    for (ci, _), (co, f0) in zip(ins, outs):
        assert gap(co, t.mean[1:]) < 0.5 * gap(ci, t.mean[1:])  # … onto the target
        assert abs(np.log(f0) - t.lf0_mean) < np.log(1.2)


def test_normalised_voice_moves_the_target_deeper():
    """The shipped voices sit beyond their flite voice: F0 × PITCH and formants lowered by FORMANT."""
    from ravasd.audio.voices import normalise

    assert normalise.PITCH < 1 and normalise.FORMANT < 1
    t = normalise.target_stats("tenor")
    f0 = median_f0(normalise.NormalisedVoice(RATE, "tenor").process_samples(tone_speech(200.0, 3.0)))
    assert abs(np.log(f0) - (t.lf0_mean + np.log(normalise.PITCH))) < np.log(1.08)


def test_normalised_voice_keeps_each_hops_spectral_movement():
    """The conversion is a smooth map of the speaker's own trajectory: hop-to-hop changes of the output's
    mel-cepstra correlate with the input's (a kNN target voice replaces them with the target's frames)."""
    from ravasd.audio.voices.normalise import TO_CEPS, NormalisedVoice

    x = synth_speech(16000, seconds=3.0)
    conv = NormalisedVoice(16000, "baritone")
    y = conv.process_samples(x)[conv.latency :]
    fi, fo = _analyse(x), _analyse(y)
    both = [
        (TO_CEPS @ a.logspec, TO_CEPS @ b.logspec)
        for a, b in zip(fi, fo)
        if a.logspec is not None and b.logspec is not None
    ]
    ci, co = (np.array(v)[:, 1:6] for v in zip(*both))
    corr = [np.corrcoef(np.diff(ci[:, k]), np.diff(co[:, k]))[0, 1] for k in range(5)]
    assert np.mean(corr) > 0.5, corr


def test_voices_sample_writes_what_the_settings_window_plays(tmp_path, capsys):
    """`ravasd voices sample` and the settings window's Play sample share one helper: the same
    sentence through the same streamed voice; an unknown voice is one clear error."""
    from ravasd.cli import main
    from ravasd.config import load_config
    from ravasd.evaluation.sample import sample_speech, voice_sample
    from ravasd.media.reader import iter_media

    out = tmp_path / "tenor.wav"
    assert main(["voices", "sample", "tenor", "-o", str(out)]) == 0
    got = np.concatenate([b.samples for b in iter_media(out, 48000, video=False, audio=True)])
    want = voice_sample("tenor", 48000, load_config())
    assert len(got) == len(want) and np.abs(got - want).max() < 1e-3  # 16-bit WAV
    assert np.abs(want).max() > 0.05 and not np.allclose(want, sample_speech(48000)[: len(want)], atol=0.05)
    assert main(["voices", "sample", "no-such-voice", "-o", str(tmp_path / "x.wav")]) != 0
    assert "no-such-voice" in capsys.readouterr().err and not (tmp_path / "x.wav").exists()


# -- phonetic voices ----------------------------------------------------------------------------


def _espeak(text: str, voice: str, pitch: int) -> np.ndarray:
    from ravasd.evaluation.corpus import synthesize

    return synthesize(text, "espeak-ng", voice, ["-p", str(pitch)])  # 16 kHz


def _phones(x: np.ndarray) -> list[int]:
    from ravasd.audio.phonetic import encoder

    return encoder.decode(encoder.posteriors(x))


def _ltas(x: np.ndarray) -> np.ndarray:
    """Long-term average log-mel spectrum of the speech frames (10 ms) of a 16 kHz signal."""
    from ravasd.audio.phonetic import encoder

    m = encoder.log_mel(encoder.frame(x))
    loud = m.max(axis=1) > m.max() - 6.0
    return m[loud].mean(axis=0)


@pytest.mark.parametrize("name", list(TARGETS))
def test_phonetic_voice_keeps_the_sounds_and_drops_the_speaker(name):
    """A low male and a high female espeak-ng voice say one sentence. Through the phonetic voice the
    phone encoder still hears the sentence's phones (closer to the input's than to another
    sentence's), the two outputs' long-term spectra lie far closer together than the inputs' do,
    and both speak at the target's pitch."""
    from ravasd.audio.phonetic import encoder
    from ravasd.audio.voices.phonetic import PhoneticVoice, load_pool
    from ravasd.evaluation.phonetic.score import edit_distance

    pool = load_pool(name)
    text, other = "the weather was nice so i went for a long walk", "my friends do not know how i feel about it"
    ins = [_espeak(text, "en-us+m3", 20), _espeak(text, "en-us+f4", 90)]
    outs = []
    for x in ins:
        conv = PhoneticVoice(encoder.RATE, pool)
        y = conv.process_samples(np.concatenate([x, np.zeros(conv.latency, np.float32)]))
        outs.append(y[conv.latency :])
    ref = _phones(_espeak(other, "en-us+m3", 20))
    for x, y in zip(ins, outs):
        said, heard = _phones(x), _phones(y)
        kept = edit_distance(said, heard) / len(said)
        assert kept < 0.7 * edit_distance(ref, heard) / len(ref), (name, kept)
    d_in = np.linalg.norm(_ltas(ins[0]) - _ltas(ins[1]))
    d_out = np.linalg.norm(_ltas(outs[0]) - _ltas(outs[1]))
    assert d_out < 0.5 * d_in, (d_in, d_out)
    target_hz = float(np.exp(pool.lf0_mean))
    for y in outs:
        # the low espeak-ng voice itself is voiced at 31 of 46 probes, its outputs at 23–25 (both encoders)
        assert abs(np.log(median_f0(y, encoder.RATE, voiced_share=0.4) / target_hz)) < np.log(1.25)


def test_phonetic_voice_latency_is_the_encoders_look_ahead_and_onsets_line_up():
    from ravasd.audio.phonetic import encoder
    from ravasd.audio.voices import phonetic

    conv = make_voice(load_config(), RATE, "tenor-phonetic", block=240)
    assert conv.latency == 3 * phonetic.LOOKAHEAD + 62  # 48 kHz: the encoder's look-ahead + FIR delays
    assert phonetic.LOOKAHEAD == encoder.HOP * encoder.AHEAD + encoder.WIN - phonetic.SHIFT * vocoder.HOP
    _assert_onset_lines_up(conv)


def test_a_phonetic_voice_rendering_frames_later_keeps_its_contract(monkeypatch):
    """SHIFT (the hops between a frame and where it is rendered; dev chose 0) set to 2: the look-ahead
    is two hops shorter, onsets still line up, speech from the first sample on gives finite output
    (the hops before the first frame take the frames nearest the encoder's start state), and any
    blocking gives the same samples."""
    from ravasd.audio.phonetic import encoder
    from ravasd.audio.voices import phonetic

    monkeypatch.setattr(phonetic, "SHIFT", 2)
    monkeypatch.setattr(phonetic, "LOOKAHEAD", encoder.HOP * encoder.AHEAD + encoder.WIN - 2 * vocoder.HOP)
    pool = phonetic.load_pool("tenor")
    _assert_onset_lines_up(phonetic.PhoneticVoice(RATE, pool))
    x = tone_speech(150.0, seconds=0.5)  # loud from its first sample
    whole = phonetic.PhoneticVoice(RATE, pool).process_samples(x)
    assert np.isfinite(whole).all() and np.abs(whole).max() > 0.01
    for block in (1, 77, 480, 4801):
        conv = phonetic.PhoneticVoice(RATE, pool)
        assert np.array_equal(
            np.concatenate([conv.process_samples(x[i : i + block]) for i in range(0, len(x), block)]), whole
        )


def test_phonetic_voice_restores_the_targets_spectral_spread(monkeypatch):
    """The mean of 16 chosen envelopes has blunter formants than any one frame of the target: without the
    pool's spread gain, the voice's envelope cepstra (1…39) swing less than the target's own frames do;
    with it, as much as they do (within 20 % on average), and around the same mean envelope."""
    import dataclasses

    from ravasd.audio.phonetic import encoder
    from ravasd.audio.voices import phonetic

    pool = phonetic.load_pool("tenor")
    x = _espeak("the weather was nice so i went for a long walk and then we talked for hours", "en-us+f4", 60)
    seen = []
    mapped = phonetic.PhoneticVoice.map

    def capture(self, feat):
        env, f0, rms = mapped(self, feat)
        if feat.logspec is not None:
            seen.append(vocoder.env_to_ceps(env))
        return env, f0, rms

    monkeypatch.setattr(phonetic.PhoneticVoice, "map", capture)
    target = pool.env.reshape(-1, pool.env.shape[-1])
    ratio = {}
    for name, p in (("widened", pool), ("plain", dataclasses.replace(pool, spread=None))):
        seen.clear()
        phonetic.PhoneticVoice(encoder.RATE, p).process_samples(x)
        c = np.array(seen)[:, 1:]
        ratio[name] = np.log(c.std(axis=0) / target[:, 1:].std(axis=0))
        assert np.abs(c.mean(axis=0) - target[:, 1:].mean(axis=0)).mean() < 0.25 * target[:, 1:].std(axis=0).mean()
    assert ratio["plain"].mean() < np.log(0.85), ratio["plain"]
    assert abs(ratio["widened"].mean()) < np.log(1.2), ratio["widened"]
    assert (pool.spread[1:] >= 1).all() and pool.spread[0] == 1


def test_a_damaged_phonetic_pool_is_a_clear_error(tmp_path):
    from ravasd.audio.voices.phonetic import load_pool
    from ravasd.errors import RavasError

    bad = tmp_path / "alto.phon.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RavasError, match="alto.*pool.*cannot be read.*build_phonetic_pools"):
        load_pool("alto", bad)


def test_phonetic_pools_are_rebuilt_as_committed():
    """The shipped pool is what the generator makes: the frames of the pool sentences alone, projected
    and quantised as the shipped pool was, are exactly its first frames (the seeded sentences follow)."""
    from ravasd.audio.voices import phonetic
    from ravasd.audio.voices.phonetic import undelta
    from ravasd.audio.voices.target import POOL_DIR
    from ravasd.evaluation import build_phonetic_pools as build

    shipped = np.load(POOL_DIR / "alto.phon.npz")
    fresh = build.frames("alto", sentences=0)
    n = len(fresh["keys"])
    assert 1000 < n < len(shipped["keys"])
    keys = build.project(fresh["keys"], shipped["center"], shipped["proj"], float(shipped["key_scale"]))
    assert np.array_equal(undelta(shipped["keys"])[:n], keys)
    assert np.array_equal(undelta(shipped["env"])[:n], np.round(fresh["env"] / shipped["env_scale"]).astype(np.int8))
    assert np.allclose(shipped["spread"], phonetic.spread_gain(phonetic.load_pool("alto")), rtol=1e-5)


@pytest.mark.parametrize("prosody", [0.5, 1.0])
def test_target_pitch_puts_the_speakers_contour_on_the_targets_range(prosody):
    """A speaker swinging ±0.2 in log-F0 around 200 Hz comes out around the target's mean, swinging
    ``prosody`` × the target's deviation (the phonetic voices keep 1, the spectral ones 0.5)."""
    from ravasd.audio.voices.target import TargetPitch

    pitch = TargetPitch(np.log(120.0), 0.1, prosody)
    lf0 = np.log(200.0) + 0.2 * np.sign(np.sin(np.arange(3000) * 2 * np.pi / 40))  # 200 ms swings
    out = np.log([pitch(float(f)) for f in np.exp(lf0)])[1500:]  # the running statistics settled
    assert abs(np.mean(out) - np.log(120.0)) < 0.02
    assert abs(np.std(out) - prosody * 0.1) < 0.01, np.std(out)
    assert pitch(0.0) == 0.0
