"""Fail closed, proven at the real outputs. One daemon against a real PulseAudio server: a fake
microphone plays speech that carries the leak marker, a fake camera shows known textures
(``faultkit``), RAVAS Mic is recorded by a reader at call latency (20 ms) and every frame sent to the
virtual camera is recorded. Then each fault in turn; for each phase the test asserts what each output
shows and plays, and over the whole run the detectors find no raw content — except in the two
phases where a leak is planted on purpose, where they must find it."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import wait_until
from mediagen import MARKER, marked_speech

from ravasd.evaluation.leaks import CAMERA_LIMIT, FOUND, camera_likeness

KIT_DIR = Path(__file__).parent / "faultkit"
sys.path.insert(0, str(KIT_DIR))
from faultkit import REC_H, REC_W, camera_image  # noqa: E402

RATE = 48000
CAMERAS = [camera_image(k) for k in range(4)]
CARD_TOP = np.array([58, 66, 84])  # the placeholder card's top colour (engine/placeholder.py)
BACKGROUND = np.array([0x8C, 0xAC, 0xC4])  # the avatar's default background (video.background)


class MicReader:
    """Records RAVAS Mic the way a call app does (``parecord`` at 20 ms latency), each chunk with its
    arrival time (CLOCK_MONOTONIC); reconnects when the source goes away (a sound-server restart).

    PulseAudio moves a recording stream that sits on the default source when the default changes
    (measured: this reader followed the default from RAVAS Mic onto the microphone and recorded
    it), so :meth:`where` tells which source it records now, and :meth:`reconnect` puts it back."""

    def __init__(self, env: dict) -> None:
        self.env, self.chunks, self.stop = env, [], threading.Event()
        self.connects = 0
        self.excluded: list[tuple[float, float]] = []
        self.proc: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def where(self) -> str | None:
        """The name of the source this reader's stream is recording, or None when not connected."""
        p = self.proc
        names = {
            ln.split("\t")[0]: ln.split("\t")[1]
            for ln in subprocess.run(
                ["pactl", "list", "short", "sources"], env=self.env, capture_output=True, text=True
            ).stdout.splitlines()
        }
        outs = json.loads(
            subprocess.run(
                ["pactl", "--format=json", "list", "source-outputs"], env=self.env, capture_output=True, text=True
            ).stdout
            or "[]"
        )
        return next(
            (
                names.get(str(o["source"]))
                for o in outs
                if p is not None and str((o.get("properties") or {}).get("application.process.id")) == str(p.pid)
            ),
            None,
        )

    def reconnect(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def _run(self) -> None:
        while not self.stop.is_set():
            p = self.proc = subprocess.Popen(
                [
                    "parecord",
                    "--device=ravas_mic",
                    "--raw",
                    "--format=s16le",
                    f"--rate={RATE}",
                    "--channels=1",
                    "--latency-msec=20",
                ],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            self.connects += 1
            rest = b""
            while not self.stop.is_set():
                data = os.read(p.stdout.fileno(), 8192)
                if not data:
                    break
                data, rest = rest + data, b""
                if len(data) % 2:
                    data, rest = data[:-1], data[-1:]
                self.chunks.append((time.monotonic(), np.frombuffer(data, "<i2").astype(np.float32) / 32768))
            p.kill()
            p.wait()
            self.stop.wait(0.2)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)

    def window(self, t0: float, t1: float) -> np.ndarray:
        """What was recorded from RAVAS Mic between ``t0`` and ``t1`` (spans in ``excluded`` left out)."""
        parts = [c for t, c in list(self.chunks) if t0 <= t < t1 and not any(a <= t < b for a, b in self.excluded)]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def camera_frames(kit: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times, frames) of everything the virtual camera was sent."""
    size = 8 + REC_W * REC_H * 3
    data = (kit / "camera.bin").read_bytes() if (kit / "camera.bin").exists() else b""
    n = len(data) // size
    times = np.array([struct.unpack_from("<d", data, i * size)[0] for i in range(n)])
    frames = (
        np.stack(
            [np.frombuffer(data, np.uint8, REC_W * REC_H * 3, i * size + 8).reshape(REC_H, REC_W, 3) for i in range(n)]
        )
        if n
        else np.zeros((0, REC_H, REC_W, 3), np.uint8)
    )
    return times, frames


def classify(frame: np.ndarray) -> str:
    """'card' (the placeholder), 'avatar' (a render on the background) or 'other'."""
    corner = frame[:6, :6].reshape(-1, 3).mean(axis=0)
    if np.abs(corner - CARD_TOP).max() < 12:
        return "card"
    if np.abs(corner - BACKGROUND).max() < 16:
        return "avatar"
    return "other"


@dataclass
class Phase:
    name: str
    t0: float
    t1: float
    audio: str  # "converted", "silence", "silence or converted", "leak", "any"
    video: str  # "avatar", "card", "card or avatar", "leak", "none or card or avatar"
    settle: float = 0.6  # seconds after t0 before the phase's state must show
    gaps_ok: bool = False  # RAVAS Mic itself is gone for part of the phase (start-up, server restart)


def _status(env) -> dict:
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "ctl", "status", "--json"], env=env, capture_output=True, text=True, timeout=20
    )
    return json.loads(r.stdout) if r.returncode == 0 else {}


def _ctl(env, *args) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "ctl", *args], env=env, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, (args, r.stderr[-1000:])


def _rig(pulse, tmp_path: Path) -> tuple[Path, dict, dict, subprocess.Popen]:
    """The kit folder, the environment of the test's own tools (``base``) and of the daemon (``env``:
    the fault kit loaded), and the fake microphone playing marked speech in a loop (its own process
    group: kill it with ``os.killpg``)."""
    kit = tmp_path / "kit"
    kit.mkdir()
    wav = marked_speech(tmp_path)
    base = dict(
        pulse.env,
        RAVAS_HOME=str(tmp_path / "home"),
        RAVAS_MODELS_DIR=os.environ["RAVAS_MODELS_DIR"],
        OPENBLAS_NUM_THREADS="1",
    )
    env = dict(
        base,
        RAVAS_FAULTKIT=str(kit),
        PYTHONPATH=os.pathsep.join([str(KIT_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    player = subprocess.Popen(
        ["bash", "-c", f"while true; do paplay --device=fake_cam_mic --latency-msec=20 {wav} || sleep 0.2; done"],
        env=base,
        start_new_session=True,
    )
    return kit, base, env, player


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_fault_at_ravas_mic_and_ravas_camera(pulse, tmp_path):
    kit, base, env, player = _rig(pulse, tmp_path)
    mic = MicReader(base)
    phases: list[Phase] = []
    log: list[str] = []
    fake_mic = next(
        ln.split("\t") for ln in pulse.pactl("list", "short", "modules").splitlines() if "source_name=fake_mic" in ln
    )  # its module: index, name, arguments
    t_launch = time.monotonic()
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ravasd",
            "run",
            "--no-tray",
            "--mic",
            "fake_mic",
            "--voice",
            "tenor",
            "--set",
            "video.camera=faultkit",
            "--set",
            "video.source=camera",
            "--set",
            "video.fps=15",
            "--set",
            "video.width=640",
            "--set",
            "video.height=480",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(daemon.stdout), daemon=True)
    reader.start()

    def running(kind):
        return (_status(base).get(kind) or {}).get("state") == "running"

    def steady(timeout=60):
        assert wait_until(lambda: running("video") and running("audio"), timeout, 0.3), (
            _status(base),
            "".join(out)[-3000:],
        )
        time.sleep(1.0)

    def phase(name, seconds, audio, video, settle=0.6):
        t0 = time.monotonic()
        time.sleep(seconds)
        phases.append(Phase(name, t0, time.monotonic(), audio, video, settle))
        assert mic.where() == "ravas_mic", name

    def during(name, switch_on, switch_off, seconds, audio, video, settle=0.6):
        t0 = time.monotonic()
        switch_on()
        time.sleep(seconds)
        phases.append(Phase(name, t0, time.monotonic(), audio, video, settle))
        switch_off()
        assert mic.where() == "ravas_mic", name  # the reader recorded RAVAS Mic, nothing else

    def kit_file(name):
        return (lambda: (kit / name).touch()), (lambda: (kit / name).unlink())

    def kill_worker(kind, sig, paused=False):
        st = _status(base)[kind]
        pid, restarts = st["pid"], st["worker_restarts"]
        t0 = time.monotonic()
        os.kill(pid, sig)
        assert wait_until(lambda: (_status(base).get(kind) or {}).get("pid") not in (None, pid), 40, 0.3), kind
        if sig == signal.SIGSTOP:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        want = "paused" if paused else "running"
        assert wait_until(lambda: (_status(base).get(kind) or {}).get("state") == want, 60, 0.3), _status(base)
        assert _status(base)[kind]["worker_restarts"] == restarts + 1
        recovered = time.monotonic() - t0
        time.sleep(max(1.0, t0 + 3.0 - time.monotonic()))  # a span long enough to hear what plays
        sig_name = "SIGKILL" if sig == signal.SIGKILL else "SIGSTOP"
        if paused:
            phases.append(Phase(f"paused, {kind} worker {sig_name}", t0, time.monotonic(), "silence", "none or card"))
        elif kind == "audio":
            phases.append(Phase(f"audio worker {sig_name}", t0, time.monotonic(), "silence or converted", "avatar"))
        else:
            phases.append(
                Phase(f"video worker {sig_name}", t0, time.monotonic(), "converted", "none or card or avatar")
            )
        log.append(f"{'paused, ' if paused else ''}{kind} worker {sig_name}: running again after {recovered:.1f} s")

    try:
        # start-up: until both streams run, the camera shows the card and RAVAS Mic is silent
        steady(90)
        phases.append(
            Phase(
                "start-up",
                t_launch,
                time.monotonic() - 1.0,
                "silence or converted",
                "none or card or avatar",
                0.0,
                gaps_ok=True,
            )
        )
        phase("running", 5, "converted", "avatar")
        # planted leaks: the detectors must fire here, at the real outputs
        during("planted audio leak", *kit_file("audio_leak"), 8, "leak", "avatar")
        steady()
        during("planted video leak", *kit_file("video_leak"), 3, "converted", "leak")
        steady()
        during("paused", lambda: _ctl(base, "pause"), lambda: _ctl(base, "resume"), 4, "silence", "card")
        steady()
        during("audio converter raises", *kit_file("audio_raise"), 4, "silence", "avatar")
        steady()
        during("audio converter hangs", *kit_file("audio_hang"), 5, "silence", "avatar")
        steady()
        during("video converter raises", *kit_file("video_raise"), 4, "converted", "card")
        steady()
        during("video converter hangs", *kit_file("video_hang"), 5, "converted", "card", settle=1.0)
        steady()
        during(
            "voice switched live",
            lambda: _ctl(base, "voice", "alto"),
            lambda: _ctl(base, "voice", "tenor"),
            5,
            "converted",
            "avatar",
            settle=1.0,
        )
        steady()
        during(
            "avatar switched live",
            lambda: _ctl(base, "avatar", "mira"),
            lambda: _ctl(base, "avatar", "sol"),
            4,
            "converted",
            "card or avatar",
            settle=0.2,
        )
        steady()
        kill_worker("audio", signal.SIGKILL)
        steady()
        kill_worker("video", signal.SIGKILL)
        steady()
        kill_worker("video", signal.SIGSTOP)
        steady()
        _ctl(base, "pause")
        time.sleep(1.0)
        kill_worker("audio", signal.SIGKILL, paused=True)
        kill_worker("video", signal.SIGKILL, paused=True)
        _ctl(base, "resume")
        steady()
        during("camera vanishes", *kit_file("camera_gone"), 4, "converted", "card", settle=1.0)
        steady()
        # the microphone vanishes while RAVAS Mic is the default source: the capture must not feed on it
        pulse.pactl("set-default-source", "ravas_mic")
        during(
            "microphone vanishes (RAVAS Mic default)",
            lambda: pulse.pactl("unload-module", fake_mic[0]),
            lambda: pulse.pactl("load-module", "module-remap-source", *fake_mic[2].split(" ", 4)),
            4,
            "silence",
            "avatar",
            settle=0.5,
        )
        pulse.pactl("set-default-source", "fake_mic")
        t_moved = time.monotonic()
        mic.reconnect()  # the server moved the reader along with the default source (see MicReader)
        assert wait_until(lambda: mic.where() == "ravas_mic", 10, 0.1)
        mic.excluded.append((t_moved - 0.1, time.monotonic() + 0.1))
        steady()
        connects = mic.connects
        t0 = time.monotonic()
        pulse.restart()
        assert wait_until(lambda: _status(base).get("virtual_mic") == "RAVAS Mic" and mic.connects > connects, 30, 0.2)
        steady()
        phases.append(
            Phase("sound server restarted", t0, time.monotonic(), "silence or converted", "avatar", gaps_ok=True)
        )
        phase("running again", 5, "converted", "avatar")
        t_quit = time.monotonic()
        _ctl(base, "quit")
        assert daemon.wait(30) == 0
        phases.append(
            Phase(
                "shutdown",
                t_quit,
                time.monotonic(),
                "silence or converted",
                "none or card or avatar",
                0.0,
                gaps_ok=True,
            )
        )
    finally:
        if daemon.poll() is None:
            daemon.kill()
        mic.close()
        os.killpg(player.pid, signal.SIGKILL)
        player.wait()
        if "source_name=fake_mic" not in pulse.pactl("list", "short", "modules"):
            pulse.pactl("load-module", "module-remap-source", *fake_mic[2].split(" ", 4))
    text = "".join(out)
    # kept for a look at a failure: what RAVAS Mic played (arrival time of each chunk) and the phases
    np.savez_compressed(
        tmp_path / "ravas-mic.npz",
        t=np.array([t for t, _ in mic.chunks]),
        n=np.array([len(c) for _, c in mic.chunks]),
        samples=np.concatenate([c for _, c in mic.chunks]),
    )
    (tmp_path / "phases.json").write_text(json.dumps([p.__dict__ for p in phases] + [{"launch": t_launch}]))
    (tmp_path / "daemon.log").write_text(text)
    assert "Traceback" not in text, text[-3000:]

    times, frames = camera_frames(kit)
    kinds = np.array([classify(f) for f in frames])
    assert len(frames) > 500, len(frames)
    problems = []
    report = []
    for p in phases:
        lo = p.t0 + p.settle
        y = mic.window(lo, p.t1)
        sel = (times >= lo) & (times < p.t1)
        seen = dict(zip(*np.unique(kinds[sel], return_counts=True)))
        rms = float(np.sqrt(np.mean(y**2))) if len(y) else 0.0
        peak = float(np.abs(y).max()) if len(y) else 0.0
        if p.audio == "leak":  # looked for as in the whole-run check: amid the converted speech before it
            marker = MARKER.find(mic.window(p.t0 - 4, p.t1), RATE)
        else:
            marker = MARKER.find(y, RATE) if len(y) > (MARKER.seconds + 0.5) * RATE else None
        cam = max((camera_likeness(f, CAMERAS) for f in frames[sel][::2]), default=-1.0)
        report.append(
            f"{p.name:42s} audio rms {rms:.4f} peak {peak:.3f} marker {marker if marker is None else round(marker, 1)}"
            f" | video {seen} camera {cam:.2f}"
        )
        if not p.gaps_ok and len(y) < (p.t1 - lo) * RATE * 0.7:
            problems.append(f"{p.name}: RAVAS Mic recorded only {len(y) / RATE:.2f} s of {p.t1 - lo:.2f} s")
        if p.audio == "silence" and peak > 1e-3:
            problems.append(f"{p.name}: RAVAS Mic was not silent (peak {peak:.4f})")
        if p.audio == "converted" and rms < 0.01:
            problems.append(f"{p.name}: RAVAS Mic played no converted speech (rms {rms:.4f})")
        if p.audio == "leak" and not (marker and marker > FOUND):
            problems.append(f"{p.name}: the planted audio leak was not found at RAVAS Mic ({marker})")
        # the card is what a late frame gives way to (a busy machine): allowed beside the avatar
        allowed = {
            "avatar": {"avatar", "card"},
            "card": {"card"},
            "card or avatar": {"card", "avatar"},
            "none or card": {"card"},
            "none or card or avatar": {"card", "avatar"},
            "leak": {"other", "avatar"},
        }[p.video]
        if p.video == "leak":
            if cam <= CAMERA_LIMIT:
                problems.append(f"{p.name}: the planted camera leak was not found ({cam:.2f})")
        elif set(seen) - allowed:
            problems.append(f"{p.name}: the camera showed {seen}, allowed {sorted(allowed)}")
        elif p.video == "avatar" and seen.get("avatar", 0) < 0.6 * sel.sum():
            problems.append(f"{p.name}: the camera showed the avatar in too few frames: {seen}")
        if not p.video.startswith("none") and sel.sum() < (p.t1 - lo) * 15 * 0.5:
            problems.append(f"{p.name}: the virtual camera got only {sel.sum()} frames in {p.t1 - lo:.1f} s")

    # over the whole run, outside its planted leak: no marker at RAVAS Mic, no camera image at RAVAS Camera
    def outside(name):
        p = next(p for p in phases if p.name == name)
        return [(t_launch - 1, p.t0 - 0.2), (p.t1 + 1.0, time.monotonic())]

    for a, b in outside("planted audio leak"):
        score = MARKER.find(mic.window(a, b), RATE)
        report.append(f"whole run {a - t_launch:6.1f}–{b - t_launch:6.1f} s: marker {score:.1f}")
        if score > FOUND:
            problems.append(
                f"raw microphone audio reached RAVAS Mic between {a - t_launch:.1f} and {b - t_launch:.1f} s"
                f" (marker {score:.1f})"
            )
    for a, b in outside("planted video leak"):
        sel = (times >= a) & (times < b)
        worst = max((camera_likeness(f, CAMERAS) for f in frames[sel][::2]), default=-1.0)
        report.append(
            f"whole run {a - t_launch:6.1f}–{b - t_launch:6.1f} s: camera {worst:.2f} over {sel.sum()} frames"
        )
        if worst > CAMERA_LIMIT:
            problems.append(
                f"the camera image reached RAVAS Camera between {a - t_launch:.1f} and {b - t_launch:.1f} s"
                f" ({worst:.2f})"
            )
    print("\n".join(report + log))
    assert not problems, "\n".join(problems + report + log + [f"recordings: {tmp_path}"])
    # the first frame the virtual camera got is the "starting" card, the last the "off" card
    assert kinds[0] == "card" and kinds[-1] == "card", (kinds[:5], kinds[-5:])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_far_end_of_a_call_hears_no_raw_voice(pulse, tmp_path):
    """The same marker through a real call client: headless Chromium picks "RAVAS Mic" by its label
    and sends it through a WebRTC loopback call (Opus, echo cancellation, noise suppression, AGC).
    A planted leak is found at the far end (the detector sees through the call); during a pause and
    a worker kill the far end hears silence or converted speech only, and never the marker."""
    from ravasd.evaluation.callclient import Call

    kit, base, env, player = _rig(pulse, tmp_path)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "ravasd", "run", "--no-tray", "--no-video", "--mic", "fake_mic", "--voice", "tenor"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    phases: list[tuple[str, float, float, str]] = []  # name, epoch start, end, what the far end may hear

    def running():
        return (_status(base).get("audio") or {}).get("state") == "running"

    def span(name, seconds, hears, on=None, off=None):
        t0 = time.time()
        if on:
            on()
        time.sleep(seconds)
        phases.append((name, t0, time.time(), hears))
        if off:
            off()

    call = None
    try:
        assert wait_until(running, 90, 0.3)
        call = Call(base, seconds=44)
        call.start()
        span("converted speech", 6, "converted")
        span("planted leak", 8, "leak", (kit / "audio_leak").touch, (kit / "audio_leak").unlink)
        span("converted again", 5, "converted")
        span("paused", 6, "silence", lambda: _ctl(base, "pause"), lambda: _ctl(base, "resume"))
        span("resumed", 5, "converted")
        pid = _status(base)["audio"]["pid"]
        t0 = time.time()
        os.kill(pid, signal.SIGKILL)
        assert wait_until(
            lambda: (_status(base).get("audio") or {}).get("pid") not in (None, pid) and running(), 30, 0.2
        )
        time.sleep(max(0.0, t0 + 4 - time.time()))
        phases.append(("audio worker killed", t0, time.time(), "silence or converted"))
        span("after the kill", 5, "converted")
        far = call.finish()
        _ctl(base, "quit")
        assert daemon.wait(30) == 0
    finally:
        if call is not None:
            call.close()
        if daemon.poll() is None:
            daemon.kill()
        os.killpg(player.pid, signal.SIGKILL)
        player.wait()
    assert len(far.samples) > 30 * far.rate, len(far.samples) / far.rate
    report, problems = [f"capture settings: {far.settings}"], []
    for name, a, b, hears in phases:
        settle = 1.5  # the call path's own delay (jitter buffer, processing) and the pause's flush
        y = far.window(a + settle, b)
        rms = float(np.sqrt(np.mean(y**2))) if len(y) else 0.0
        marker = MARKER.find(far.window(a - 4, b + 0.5), far.rate) if hears == "leak" else None
        report.append(
            f"{name:22s} rms {rms:.4f} peak {float(np.abs(y).max()) if len(y) else 0:.3f} "
            f"marker {marker if marker is None else round(marker, 1)}"
        )
        if hears == "leak" and not marker > FOUND:
            problems.append(f"{name}: the planted leak was not found at the far end ({marker:.1f})")
        if hears == "converted" and rms < 0.005:
            problems.append(f"{name}: the far end heard no speech (rms {rms:.4f})")
        if hears == "silence" and rms > 0.002:
            problems.append(f"{name}: the far end was not silent (rms {rms:.4f})")
    leak = next((a, b) for name, a, b, _ in phases if name == "planted leak")
    for a, b in ((far.t0, leak[0] - 0.2), (leak[1] + 1.5, far.t0 + len(far.samples) / far.rate)):
        score = MARKER.find(far.window(a, b), far.rate)
        report.append(f"outside the planted leak {a - far.t0:5.1f}–{b - far.t0:5.1f} s: marker {score:.1f}")
        if score > FOUND:
            problems.append(f"raw microphone audio reached the far end between {a - far.t0:.1f} and {b - far.t0:.1f} s")
    print("\n".join(report))
    assert not problems, "\n".join(problems + report)
