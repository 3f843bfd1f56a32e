"""End to end against a real PulseAudio server: speech into a fake microphone → `ravasd run` →
"RAVAS Mic" → recorded; checked converted, on time, without dropouts; then `ravasd ctl quit`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
from audiocheck import RATE, TAKES, align, plain_fit, read_audio, takes, window_fits
from helpers import ravasd
from mediagen import make_audio

from ravasd.audio.sources import synth_speech


def speech(tmp_path) -> np.ndarray:
    if shutil.which("espeak-ng"):
        import av

        raw = tmp_path / "espeak.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                "en-us",
                "-s",
                "150",
                "-w",
                str(raw),
                "Please call Stella and ask her to bring these things with her from the store.",
            ],
            check=True,
        )
        with av.open(str(raw)) as c:
            res = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            x = np.concatenate([o.to_ndarray().reshape(-1) for f in c.decode(audio=0) for o in res.resample(f)])
        return (0.5 * x / np.abs(x).max()).astype(np.float32)
    return synth_speech(RATE, seconds=3.0)


def _locate(ref: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, str]:
    """The stretch of ``ref`` that holds ``x`` (found by cross-correlation), and what is wrong with it
    ("" when nothing). The playing client can underrun on a loaded box (then ``ref`` and the daemon
    both got the speech with a gap in it), so delivery is checked per 250 ms window, each found near
    the one before."""
    from scipy.signal import fftconvolve

    c = fftconvolve(ref, x[::-1], mode="valid")
    lag = int(np.argmax(c))
    fits = window_fits(ref, x, lag, ringmod=False).fit
    if np.median(fits) <= 0.99:
        return x, f"the fake microphone did not deliver the speech: window fits {np.round(fits, 2)}"
    return ref[lag : lag + len(x)], ""


def _status(env) -> dict:
    st = ravasd(env, "ctl", "status", "--json")
    assert st.returncode == 0, st.stderr
    return json.loads(st.stdout)


def _wait_size(path, size, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size > size:
            return True
        time.sleep(0.05)
    return False


def _sources(env):
    r = subprocess.run(["pactl", "--format=json", "list", "sources"], env=env, capture_output=True, text=True)
    return json.loads(r.stdout)


def _modules(env):
    r = subprocess.run(["pactl", "list", "short", "modules"], env=env, capture_output=True, text=True)
    return r.stdout


def _take(env, tmp_path, wav, x, k) -> tuple[str, dict]:
    """Play the speech once into the fake microphone while recording RAVAS Mic; returns what is
    wrong with this take ("" when nothing) and the audio status after it. Raises at once (no second
    take) when unconverted speech reached RAVAS Mic: a leak is never the sound server's fault."""
    rec_wav, ref_wav = tmp_path / f"rec{k}.wav", tmp_path / f"ref{k}.wav"
    rec = subprocess.Popen(
        [
            "parecord",
            "--device=ravas_mic",
            "--latency-msec=20",
            "--channels=1",
            f"--rate={RATE}",
            "--file-format=wav",
            str(rec_wav),
        ],
        env=env,
    )
    # what the daemon really received (servers may ramp/resample a starting stream): the reference
    ref = subprocess.Popen(
        [
            "parecord",
            "--device=fake_mic",
            "--latency-msec=20",
            "--channels=1",
            f"--rate={RATE}",
            "--file-format=wav",
            str(ref_wav),
        ],
        env=env,
    )
    try:
        # wait until the recorder really receives data (the daemon keeps RAVAS Mic fed with silence)
        assert _wait_size(rec_wav, RATE) and _wait_size(ref_wav, RATE)  # 0.5 s
        deadline = time.monotonic() + 10
        while "published" not in _status(env)["audio"] and time.monotonic() < deadline:
            time.sleep(0.1)
        # start-up transients are not counted: the first capture burst, and the output's jitter buffer
        # growing to the server's burst size (an underrun per step): settled = 1.5 s without an xrun
        before, calm = _status(env)["audio"], time.monotonic()
        while time.monotonic() < min(calm + 1.5, deadline + 6):
            time.sleep(0.25)
            now = _status(env)["audio"]
            if (now["xruns"], now["dropped"]) != (before["xruns"], before["dropped"]):
                before, calm = now, time.monotonic()
        subprocess.run(
            ["paplay", "--device=fake_cam_mic", "--latency-msec=20", str(wav)], env=env, check=True, timeout=60
        )
        time.sleep(1.5)
    finally:
        for p in (rec, ref):
            p.terminate()
            p.wait(5)
    a = _status(env)["audio"]
    y, ref = read_audio(rec_wav), read_audio(ref_wav)
    xs, problem = _locate(ref, x)  # the speech as the daemon's microphone delivered it
    if problem:
        return problem, a
    lag = align(y, xs)
    seg = y[lag : lag + len(xs)]
    if len(seg) < len(xs):
        return "the recording ended before the speech did", a
    # converted: ring-modulated speech explains the recording; the raw speech does not
    assert plain_fit(seg, xs) < 0.2, f"take {k}: unconverted speech reached RAVAS Mic"
    # no dropouts: each 250 ms window with speech, found on its own (``window_fits``), is a clean
    # ring-modulated copy, and the daemon counted no drops and no device xruns while the speech
    # played. Two scheduling hiccups of a loaded 2-core VM are tolerated (its timers run up to ~12 ms
    # late, measured: more than the 5 ms blocks here).
    fits = window_fits(y, xs, lag).fit
    # one hiccup counts twice (the device's underrun is an xrun, the late burst after it a trim): count
    # hiccups as the larger of the two
    glitches = max(a["dropped"] - before["dropped"], a["xruns"] - before["xruns"])
    counts = {k: (before[k], a[k]) for k in ("dropped", "device_dropped", "xruns", "device_stalls")}
    if glitches > 2:
        return f"{glitches} glitches while the speech played: {counts}", a
    if (fits < 0.9).sum() > 2 or np.median(fits) <= 0.99:
        return f"window fits {np.round(fits, 2)}; {counts}", a
    return "", a


def test_daemon_creates_ravas_mic_converts_speech_and_cleans_up(sound_server, tmp_path, ravas_home):
    pulse = sound_server
    x = speech(tmp_path)
    wav = make_audio(tmp_path / "speech.wav", signal=x, rate=RATE)
    env = dict(pulse.env, RAVAS_HOME=str(ravas_home), RAVAS_MODELS_DIR=os.environ["RAVAS_MODELS_DIR"])
    # a stale module, as a crashed run would leave it: its owner token names a process that is gone
    from ravasd.devices.virtual import owner_token

    gone = subprocess.Popen(["true"])
    gone.wait()
    subprocess.run(
        [
            "pactl",
            "load-module",
            "module-null-sink",
            "sink_name=ravas_mic_sink",
            f"sink_properties=ravas.owner={owner_token(gone.pid)}",
        ],
        env=env,
        check=True,
    )
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ravasd",
            "run",
            "--no-tray",
            "--no-video",
            "--voice",
            "ringmod",
            "--mic",
            "fake_mic",
            "--set",
            "audio.block_ms=5",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    problems = []
    try:
        out = []
        for line in daemon.stdout:
            out.append(line)
            if "ravasd running" in line:
                break
        assert "audio mic→virtual" in "".join(out), "".join(out)
        mics = [s for s in _sources(env) if s["description"] == "RAVAS Mic"]
        assert len(mics) == 1 and mics[0]["name"] == "ravas_mic"
        assert _modules(env).count("sink_name=ravas_mic_sink") == 1  # the stale one was replaced
        last = {}

        def play(k):
            problem, last["audio"] = _take(env, tmp_path, wav, x, k)
            return problem

        problems = takes(play)
        a = last["audio"]
        status = _status(env)
        assert status["virtual_mic"] == "RAVAS Mic" and status["voice"] == "ringmod"
        assert a["state"] == "running" and a["published"] > 100 and a["restarts"] == 0
        for key in ("rate", "latency_ms", "dropped", "xruns"):
            assert key in a
        q = ravasd(env, "ctl", "quit")
        assert q.returncode == 0, q.stderr
        assert daemon.wait(10) == 0
        out.append(daemon.stdout.read())  # its log, for the messages below
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert not [s for s in _sources(env) if "ravas" in s["name"]]
    assert "ravas_mic" not in _modules(env)
    # a defect spoils every take; the sound server's stalls (not ours to fix) spoil the odd one:
    # one retried take is reported (takes), a second spoiled one fails
    assert len(problems) < TAKES, "\n".join(problems) + "\n" + "".join(out)[-3000:]
    # the whole path (pulse capture → daemon → RAVAS Mic) adds a bounded delay; parecord started earlier
    assert 0 < a["latency_ms"] < 150
