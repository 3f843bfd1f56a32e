"""Real device I/O: microphone and output through a real PulseAudio server; the virtual camera sink
up to pyvirtualcam's call (no kernel module here)."""

from __future__ import annotations

import os
import subprocess
import time

import numpy as np
import pytest
from audiocheck import RATE, TAKES, read_audio, takes, window_fits
from helpers import wait_until
from scipy.signal import fftconvolve

from ravasd.audio.sinks import DeviceAudioSink
from ravasd.audio.sources import MicSource, synth_speech
from ravasd.engine.frames import AnonAudio, AnonFrame, RawFrame
from ravasd.engine.runner import AudioPublisher, StreamRunner
from ravasd.errors import DeviceError


class Lifted:
    """A conversion raw audio cannot pass for: −0.5 × input + 0.25, so every sample of a converted
    block of the test tone (|x| ≤ 0.4) lies in 0.05…0.45, while a raw block swings through zero."""

    rate, latency = 48000, 0

    def process(self, block):
        return AnonAudio((0.25 - 0.5 * block.samples).astype(np.float32), block.rate, block.ts)

    def reset(self):
        pass

    def close(self):
        pass


class NegHalf:
    """A known conversion (−0.5 × input) so the test can tell converted audio from raw."""

    rate, latency = 48000, 0

    def process(self, block):
        return AnonAudio((-0.5 * block.samples).astype(np.float32), block.rate, block.ts)

    def reset(self):
        pass

    def close(self):
        pass


def _take(pulse, tmp_path, wav, x, k) -> str:
    """Speech through a mic → NegHalf → output runner once, recorded at the output; returns what is
    wrong ("" when nothing)."""
    rec_wav = tmp_path / f"rec{k}.wav"
    rec = subprocess.Popen(
        [
            "parecord",
            "--device=test_out.monitor",
            "--latency-msec=20",
            "--channels=1",
            "--rate=48000",
            "--file-format=wav",
            str(rec_wav),
        ],
        env=pulse.env,
    )
    runner = StreamRunner(
        source=lambda: MicSource("pulse", 48000, 240),
        converter=NegHalf,
        sink=lambda: DeviceAudioSink("pulse", 48000, 240, 0.2),
        publisher=AudioPublisher(240 / 48000, 48000, 240),
        deadline=0.06,
        max_backlog=20,
    ).start()
    try:
        assert wait_until(
            lambda: (
                runner.status.state in ("running", "starting")
                and runner.status.published + runner.status.placeholders > 10
            ),
            10,
        )
        # the recorder really records (it can take a second to connect on a loaded box; a take that
        # started playing before it did would miss the start of the speech)
        assert wait_until(lambda: rec_wav.exists() and rec_wav.stat().st_size > RATE, 10)
        subprocess.run(
            ["paplay", "--device=fake_cam_mic", "--latency-msec=20", str(wav)], env=pulse.env, check=True, timeout=30
        )
        time.sleep(0.5)
    finally:
        runner.stop()
        rec.terminate()
        rec.wait(5)
    assert runner.status.published > 100, runner.status
    assert runner.status.latency_ms > 0
    y = read_audio(rec_wav)
    if len(y) < len(x):
        return "the recording is shorter than the speech"
    # the recording holds the converted speech (−0.5 ×): each 250 ms window found near the one before,
    # so a stall of the server costs the windows it falls in, not the rest
    lag = int(np.argmin(fftconvolve(y, x[::-1], mode="valid")))
    w = window_fits(y, x, lag, ringmod=False)
    good = w.fit > 0.95
    if good.mean() < 0.8:
        return f"recorded audio is not the speech scaled: window fits {np.round(w.fit, 2)}"
    win = RATE // 4
    gains = [
        float(x[i : i + win] @ y[at : at + win]) / float(x[i : i + win] @ x[i : i + win])
        for i, at in zip(w.start[good], w.at[good])
    ]
    assert np.median(gains) == pytest.approx(-0.5, abs=0.1), f"take {k}: gain {np.median(gains):.2f}, not −0.5"
    return ""


def test_mic_to_output_device_through_pulseaudio(pulse, tmp_path, monkeypatch):
    from mediagen import make_audio

    monkeypatch.setenv("PULSE_SOURCE", "fake_mic")
    monkeypatch.setenv("PULSE_SINK", "test_out")
    x = synth_speech(48000, seconds=3.0)
    wav = make_audio(tmp_path / "speech.wav", signal=x, rate=48000)
    problems = takes(lambda k: _take(pulse, tmp_path, wav, x, k))
    assert len(problems) < TAKES, "\n".join(problems)


def test_missing_microphone_is_a_clear_device_error():
    with pytest.raises(DeviceError, match="Microphone 'No Such Mic' cannot be opened"):
        MicSource("No Such Mic", 48000, 480)


def test_virtual_camera_sink_up_to_pyvirtualcam(monkeypatch):
    import pyvirtualcam

    from ravasd.video.sinks import VirtualCameraSink

    # the real call on this machine: no v4l2loopback → a DeviceError with the fix
    with pytest.raises(DeviceError) as err:
        VirtualCameraSink(640, 360, 30)
    assert "v4l2loopback" in str(err.value) and "setup-v4l2loopback.sh" in str(err.value)

    sent = []

    class FakeCamera:
        def __init__(self, width, height, fps, **kw):
            self.args = (width, height, fps, kw)
            self.device = "/dev/video10"
            FakeCamera.last = self

        def send(self, frame):
            sent.append(frame)

        def close(self):
            self.closed = True

    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCamera)
    v4l2 = VirtualCameraSink(641, 360, 30, device="/dev/video10", backend="v4l2loopback")
    w, h, fps, kw = FakeCamera.last.args
    assert (w, h, kw["fmt"], kw["device"]) == (642, 360, pyvirtualcam.PixelFormat.I420, "/dev/video10")
    v4l2.write(AnonFrame(np.full((360, 641, 3), 255, np.uint8), 0.0))
    assert sent[-1].shape == (540, 642) and sent[-1][:360].min() >= 235  # Y plane of white
    sent.clear()
    sink = VirtualCameraSink(640, 360, 30)
    w, h, fps, kw = FakeCamera.last.args
    assert (w, h, fps) == (640, 360, 30) and kw["fmt"] == pyvirtualcam.PixelFormat.RGB
    sink.write(AnonFrame(np.zeros((180, 320, 3), np.uint8), 0.0))  # scaled to the device size
    with pytest.raises(TypeError):
        sink.write(RawFrame(np.zeros((360, 640, 3), np.uint8), 0.0))
    sink.close()
    assert len(sent) == 1 and sent[0].shape == (360, 640, 3) and sent[0].flags.c_contiguous
    assert FakeCamera.last.closed


def test_devices_lists_pulse_sources(pulse, ravas_home):
    import json
    import sys

    env = dict(pulse.env, RAVAS_HOME=str(ravas_home), RAVAS_MODELS_DIR=os.environ["RAVAS_MODELS_DIR"])
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "devices", "--json"], capture_output=True, text=True, env=env, timeout=30
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert any(s["name"] == "fake_mic" and s["description"] == "Fake Mic" for s in info["pulse"]["sources"])
    assert info["virtual"]["camera"] is None  # no v4l2loopback on this machine
    r = subprocess.run([sys.executable, "-m", "ravasd", "devices"], capture_output=True, text=True, env=env)
    assert "fake_mic" in r.stdout and "RAVAS Camera: not found" in r.stdout


def test_microphone_that_vanishes_gives_silence_and_recovers(pulse, monkeypatch):
    """Unload the microphone's module mid-stream: the output turns to silence (never stalls), and
    when the device comes back the stream resumes by itself."""
    from helpers import RecordingSink

    from ravasd.devices import pulse as pulsectl

    idx = pulsectl.load_module(
        "module-remap-source",
        "source_name=vanishing_mic",
        "master=fake_cam_mic.monitor",
        "channels=1",
        "channel_map=mono",
    )
    sink = RecordingSink(AnonAudio)

    from ravasd.audio.sources import open_mic as _open_mic

    def open_mic():  # the daemon's own way of opening a microphone by name
        mic = _open_mic("vanishing_mic", 48000, 480)
        mic.timeout = 0.3
        return mic

    paplay = subprocess.Popen(
        [
            "bash",
            "-c",
            f"while true; do paplay --device=fake_cam_mic --latency-msec=20 {_tone_wav()} || sleep 0.2; done",
        ],
        env=pulse.env,
    )
    runner = StreamRunner(
        source=open_mic,
        converter=Lifted,
        sink=lambda: sink,
        publisher=AudioPublisher(0.01, 48000, 480),
        deadline=0.05,
        max_backlog=20,
    ).start()
    try:
        assert wait_until(lambda: runner.status.published > 50, 10)
        pulsectl.unload_module(idx)  # the device disappears
        assert wait_until(lambda: runner.status.source_errors > 0, 10)
        n_silence = runner.status.placeholders
        assert wait_until(lambda: runner.status.placeholders > n_silence + 20, 5), runner.status  # silence
        published = runner.status.published
        idx = pulsectl.load_module(
            "module-remap-source",
            "source_name=vanishing_mic",
            "master=fake_cam_mic.monitor",
            "channels=1",
            "channel_map=mono",
        )
        assert wait_until(lambda: runner.status.published > published + 50, 15)  # and it came back
    finally:
        runner.stop()
        paplay.kill()
        pulsectl.unload_module(idx)

    # everything written was converted (all samples lifted into 0.05…0.45) or silence: never the raw
    # input, whose every 10 ms block swings through zero (checked on the tone itself)
    def converted_or_silent(x):
        return not x.any() or (x.min() >= 0.05 - 1e-6 and x.max() <= 0.45 + 1e-6)

    from audiocheck import read_audio

    raw = read_audio(_tone_wav())
    assert not any(converted_or_silent(raw[i : i + 480]) for i in range(0, len(raw) - 480, 480))
    blocks = [b.samples for _, b in sink.snapshot()]
    assert blocks and all(converted_or_silent(b) for b in blocks)


_TONE = {}


def _tone_wav():
    if "path" not in _TONE:
        import tempfile

        from mediagen import make_audio

        d = tempfile.mkdtemp()
        _TONE["path"] = str(make_audio(__import__("pathlib").Path(d) / "tone.wav", seconds=2.0, rate=48000))
    return _TONE["path"]


def test_microphone_close_from_two_threads_runs_once(pulse):
    """stop() and the capture thread both close the source: two concurrent PortAudio abort/close
    calls on one stream deadlocked the audio bench once. Only the first close may touch the stream."""
    import threading

    from ravasd.audio.sources import open_mic as _open_mic
    from ravasd.devices import pulse as pulsectl

    idx = pulsectl.load_module(
        "module-remap-source",
        "source_name=close_twice_mic",
        "master=fake_cam_mic.monitor",
        "channels=1",
        "channel_map=mono",
    )
    try:
        src = _open_mic("close_twice_mic", 48000, 240)
    finally:
        pulsectl.unload_module(idx)  # the open stream keeps running on its own; it is closed below
    real, calls, inside, release = src.stream, [], threading.Event(), threading.Event()

    class SlowStream:  # the real stream, with an abort that waits while the second close comes in
        active = True

        def abort(self):
            calls.append("abort")
            inside.set()
            release.wait(5)
            real.abort()

        def close(self):
            calls.append("close")
            real.close()

    src.stream = SlowStream()
    first = threading.Thread(target=src.close)
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=src.close)
    second.start()
    time.sleep(0.2)
    release.set()
    first.join(5)
    second.join(5)
    assert not first.is_alive() and not second.is_alive()
    assert calls == ["abort", "close"]
    src.close()  # and again, later: nothing
    assert calls == ["abort", "close"]


def test_output_starts_at_the_preroll_after_a_start_up_burst(pulse, monkeypatch):
    """The first capture arrives in a burst while the voice loads: playback must start with the
    newest blocks (the pre-roll), not 200 ms behind, and skipping the stale part (before anything
    played) is counted."""
    monkeypatch.setenv("PULSE_SINK", "test_out")
    sink = DeviceAudioSink("pulse", 48000, 240, 0.2)
    sink.stream.stop()  # we play the PortAudio thread's part by hand
    try:
        for i in range(30):
            sink.write(AnonAudio(np.full(240, i / 100, np.float32), 48000, i * 0.005))
        keep = sink.preroll // 240
        out = np.zeros((240, 1), np.float32)
        for k in range(keep):
            sink._callback(out, 240, None, None)
            assert out[0, 0] == pytest.approx((30 - keep + k) / 100)  # the newest blocks, in order
            assert sink.dropped == 1 and len(sink._buf) == (keep - 1 - k) * 240
    finally:
        sink.close()


def test_output_device_stalls_are_counted_and_logged(pulse, monkeypatch, caplog):
    """A device that stops asking for data (PulseAudio's null sink rendering in 2 s steps when no
    one records RAVAS Mic at a low latency) shows as counted stalls and one log line each, and the
    blocks a full buffer drops meanwhile are logged once per second, not once per block."""
    import logging

    sink = DeviceAudioSink(None, 48000, 240, 0.05, pulse_sink="test_out")
    sink.stream.stop()  # we play the PortAudio thread's part by hand
    out = np.zeros((240, 1), np.float32)
    try:
        sink._callback(out, 240, None, None)
        # the real stream ran until stop(): on a busy machine the gap before this first hand-made
        # callback is itself a stall. Count from here.
        sink.stalls, sink.longest_stall_ms = 0, 0.0
        caplog.clear()
        time.sleep(0.25)
        with caplog.at_level(logging.INFO, logger="ravasd.audio.sinks"):
            for i in range(40):  # 200 ms of blocks into a 50 ms buffer that nothing reads
                sink.write(AnonAudio(np.full(240, 0.1, np.float32), 48000, i * 0.005))
            sink._callback(out, 240, None, None)
            sink.write(AnonAudio(np.full(240, 0.1, np.float32), 48000, 0.2))
        assert sink.stalls == 1 and sink.longest_stall_ms >= 240
        assert sink.dropped >= 30
        lines = [r.getMessage() for r in caplog.records]
        assert sum("took no data" in m for m in lines) == 1
        assert sum("buffer full" in m for m in lines) == 1, lines
    finally:
        sink.close()


class _NoStream:
    """Stands in for PortAudio's stream: the test plays the callback thread's part by hand."""

    latency = 0.0

    def __init__(self, *a, **k) -> None:
        pass

    def start(self) -> None:
        pass

    abort = close = stop = start


def _clocked_sink(monkeypatch):
    """A device sink on a fake clock with no PortAudio stream: the test calls its callback itself.
    Returns (sink, clock dict with "t", a callback output buffer, a 5 ms block to write)."""
    import sounddevice as sd

    from ravasd.audio import sinks

    clock = {"t": 1000.0}
    monkeypatch.setattr(sinks.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(sd, "OutputStream", _NoStream)
    sink = DeviceAudioSink(None, 48000, 240, 0.2)
    return sink, clock, np.zeros((240, 1), np.float32), AnonAudio(np.full(240, 0.1, np.float32), 48000, 0.0)


def test_jitter_buffer_grows_on_underruns_and_gives_it_back_when_calm(monkeypatch):
    """A busy minute grows the pre-roll (underruns); once calm for 10 s it shrinks one block at a
    time back to where it started, and the latency follows (measured: a 30-min soak kept ~120 ms
    after a busy spell before this)."""
    sink, clock, out, block = _clocked_sink(monkeypatch)
    start = sink.preroll
    try:
        for _ in range(6):  # bursty input: the buffer runs dry six times
            for _ in range(sink.preroll // 240):
                sink.write(block)
            for _ in range(sink.preroll // 240 + 1):
                clock["t"] += 0.005
                sink._callback(out, 240, None, None)
        grown = sink.preroll
        assert grown == start + 6 * 240
        for _ in range(200 * 75):  # calm for 75 s: one block in, one block out
            sink.write(block)
            clock["t"] += 0.005
            sink._callback(out, 240, None, None)
        assert sink.preroll == start and sink.underruns == 6
        assert len(sink._buf) <= start  # the fill (latency) came down with it
    finally:
        sink.close()


def test_jitter_buffer_does_not_repeat_a_give_back_that_caused_an_underrun(monkeypatch):
    """Measured on PipeWire at its desktop quantum (1024 samples): each give-back below the quantum
    was followed by an underrun within seconds, a glitch every 10–25 s for the whole call. A
    give-back that an underrun follows before the next one was due sets the floor: calm again,
    the pre-roll stays there (other growth above it is still given back)."""
    sink, clock, out, block = _clocked_sink(monkeypatch)
    start = sink.preroll

    def dry_runs(n):  # input stops until the device runs dry, then resumes: n times
        for _ in range(n):
            for _ in range(sink.preroll // 240):
                sink.write(block)
            before = sink.underruns
            while sink.underruns == before:
                clock["t"] += 0.005
                sink._callback(out, 240, None, None)

    def calm(seconds):
        for _ in range(int(200 * seconds)):
            sink.write(block)
            clock["t"] += 0.005
            sink._callback(out, 240, None, None)

    try:
        dry_runs(3)
        assert sink.preroll == start + 3 * 240
        calm(11.5)  # one block given back …
        assert sink.preroll == start + 2 * 240
        dry_runs(1)  # … and the device runs dry at once: that give-back was too much
        floor = sink.preroll
        assert floor == start + 3 * 240
        calm(60)
        assert sink.preroll == floor and sink.underruns == 4
        dry_runs(2)  # a busy spell later grows it further; calm gives that back, down to the floor
        calm(45)
        assert sink.preroll == floor
    finally:
        sink.close()


def test_what_counts_as_a_microphone():
    """One rule (the doctor, the auto source and the settings window's list use it): monitors of outputs
    and RAVAS Mic itself are never a microphone."""
    from ravasd.devices.virtual import PulseVirtualMic, is_microphone

    assert is_microphone("alsa_input.usb-Blue_Yeti-00.analog-stereo")
    assert not is_microphone("alsa_output.pci-0000_00_1f.3.analog-stereo.monitor")
    assert not is_microphone(PulseVirtualMic.SOURCE) and not is_microphone(PulseVirtualMic.SINK + ".monitor")
    assert not is_microphone("")
