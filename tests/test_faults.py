"""The daemon under faults: recordings tell the truth (disk full, bad names, durations), inputs are
checked at start, and every file RAVAS writes is private to the user."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
from helpers import ravasd, wait_until


def _env(home: Path) -> dict:
    return {
        "RAVAS_HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "RAVAS_MODELS_DIR": os.environ["RAVAS_MODELS_DIR"],
        "PULSE_SERVER": "unix:/nonexistent",
        "OPENBLAS_NUM_THREADS": "1",
    }


DEMO = ["run", "--no-tray", "--video-source", "demo", "--audio-source", "demo"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A folder whose file system fills up after ~300 KB: a tmpfs when mounting is allowed, else a
    file-size limit (RLIMIT_FSIZE) on the daemon, which fails writes the same way (EFBIG)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    limit = None
    if not mounted:

        def limit():  # preexec_fn: only the daemon and its workers are limited
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    yield folder, limit
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_disk_full_stops_the_recording_once_keeps_the_daemon_and_says_what_was_kept(tiny_disk, ravas_home):
    folder, limit = tiny_disk
    env = _env(ravas_home)
    out = folder / "session.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ravasd", *DEMO, "--record", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=limit,
    )
    try:

        def failed():
            r = ravasd(env, "ctl", "status", "--json")
            if r.returncode:
                return False
            st = json.loads(r.stdout)
            return any((st.get(k) or {}).get("recording_error") for k in ("video", "audio"))

        assert wait_until(failed, 90, 0.5), "the full disk was not noticed"
        time.sleep(2)  # more blocks arrive after the failure: they must not be reported one by one
        st = json.loads(ravasd(env, "ctl", "status", "--json").stdout)
        assert st["video"]["alive"] and st["audio"]["alive"]  # the daemon and its streams keep running
        ravasd(env, "ctl", "quit")
        text = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, text[-2000:]
    stopped = [ln for ln in text.splitlines() if "stopped:" in ln and "recording" in ln]
    assert 1 <= len(stopped) <= 2, stopped  # once per stream that hit the full disk, not per block
    last = [ln for ln in text.splitlines() if ln.startswith("ravasd: error: the recording")]
    assert last and str(out) in last[-1] and "nothing was kept" in last[-1], text[-2000:]
    assert "recording written" not in text and "Traceback" not in text
    assert not list(folder.iterdir()), "partial files were left behind"


def test_recordings_are_refused_at_start_when_they_cannot_work(ravas_home, tmp_path):
    env = _env(ravas_home)
    for args, why in (
        ((["--record", str(tmp_path / "r.avi")]), "unsupported extension '.avi'"),
        ((["--record", str(tmp_path / "nowhere" / "r.mp4")]), "does not exist"),
        ((["--duration", "-1"]), "more than 0 seconds"),
        ((["--duration", "soon"]), "not a number"),
    ):
        r = ravasd(env, *DEMO, *args, timeout=60)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-800:])
        assert "ravasd running" not in r.stderr + r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ravas-home"]


def test_a_wav_recording_is_written_and_lasts_the_duration(ravas_home, tmp_path):
    out = tmp_path / "voice.wav"
    r = ravasd(_env(ravas_home), *DEMO, "--record", str(out), "--duration", "4", timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"recording written to {out}" in r.stderr
    with wave.open(str(out)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert seconds >= 3.8, seconds  # the duration counts from when the streams run, not from launch


def test_input_file_is_checked_at_start(ravas_home, tmp_path, media_dir):
    from mediagen import make_video

    env = _env(ravas_home)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    silent = make_video(tmp_path / "silent.mp4", seconds=1.0, acodec=None)
    for args, why in (
        (["--input", str(tmp_path / "nothere.mp4")], "does not exist"),
        (["--input", str(corrupt)], "not a readable media file"),
        (["--input", str(silent)], "has no audio stream"),
    ):
        r = ravasd(env, "run", "--no-tray", *args, timeout=60)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-800:])


def test_files_ravas_writes_are_private(ravas_home, tmp_path):
    env = _env(ravas_home)
    assert ravasd(env, "config", "set", "audio.voice", "alto").returncode == 0
    cfg = ravas_home / "config" / "config.yaml"
    os.chmod(cfg, 0o644)  # as an older version left it
    assert ravasd(env, "config", "set", "audio.voice", "tenor").returncode == 0
    rec = tmp_path / "r.wav"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ravasd", *DEMO, "--record", str(rec)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def recording():
            r = ravasd(env, "ctl", "status", "--json")
            return r.returncode == 0 and json.loads(r.stdout)["audio"].get("published", 0) > 0

        assert wait_until(recording, 60, 0.5)
        run_dir = ravas_home / "run"
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run_dir.iterdir()}
        from ravasd.daemon.control import socket_path

        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700, oct(run_dir.stat().st_mode)
        assert stat.S_IMODE(socket_path().stat().st_mode) == 0o600
        assert all(m & 0o077 == 0 for m in modes.values()), modes
        ravasd(env, "ctl", "quit")
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    private = [cfg, rec, *(ravas_home / "log").iterdir()]
    for p in private:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p, oct(p.stat().st_mode))
    for d in (cfg.parent, ravas_home / "log"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, (d, oct(d.stat().st_mode))


def _status(env) -> dict:
    r = ravasd(env, "ctl", "status", "--json")
    return json.loads(r.stdout) if r.returncode == 0 else {}


def test_a_stopped_worker_is_found_stalled_and_replaced_and_a_short_stop_is_no_hang(ravas_home):
    env = _env(ravas_home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ravasd", *DEMO], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert wait_until(
            lambda: all((_status(env).get(k) or {}).get("state") == "running" for k in ("video", "audio")), 90, 0.5
        )
        # a short stop (3 s) of the audio worker: it resumes; neither a hang nor a stall is reported
        audio_pid = _status(env)["audio"]["pid"]
        os.kill(audio_pid, signal.SIGSTOP)
        time.sleep(3)
        os.kill(audio_pid, signal.SIGCONT)
        time.sleep(3)
        a = _status(env)["audio"]
        assert a["pid"] == audio_pid and a["hangs"] == 0 and a["stalls"] == 0, a
        # a long stop (12 s) of the video worker: found stalled, replaced, running again
        video_pid = _status(env)["video"]["pid"]
        os.kill(video_pid, signal.SIGSTOP)
        try:
            assert wait_until(lambda: (_status(env).get("video") or {}).get("pid") not in (None, video_pid), 30, 0.5)
        finally:
            try:
                os.kill(video_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        v = _status(env)["video"]
        assert v["stalls"] == 1 and v["worker_restarts"] == 1, v
        assert wait_until(lambda: (_status(env).get("video") or {}).get("state") == "running", 90, 0.5)
        ravasd(env, "ctl", "quit")
        out = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in out
    log = (ravas_home / "log" / "ravasd.log").read_text()
    assert "video worker made no progress" in log and "audio worker made no progress" not in log


def _ravas_modules(pulse) -> list[str]:
    return [ln for ln in pulse.pactl("list", "short", "modules").splitlines() if "ravas" in ln]


def test_ravas_mic_is_owned_survives_other_instances_and_a_sound_server_restart(sound_server, tmp_path):
    """Probes from #15: a second instance or `doctor` must not remove a running daemon's RAVAS Mic
    (nor while it is stopped); after the server restarts RAVAS Mic comes back, status tells the truth,
    and quitting unloads only our own modules. On PulseAudio and on PipeWire."""
    pulse = sound_server
    env_a = dict(
        pulse.env,
        RAVAS_HOME=str(tmp_path / "a"),
        RAVAS_MODELS_DIR=os.environ["RAVAS_MODELS_DIR"],
        OPENBLAS_NUM_THREADS="1",
    )
    env_b = dict(env_a, RAVAS_HOME=str(tmp_path / "b"))
    a = subprocess.Popen(
        [sys.executable, "-m", "ravasd", "run", "--no-tray", "--no-video", "--audio-source", "demo"],
        env=env_a,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_until(lambda: _status(env_a).get("virtual_mic") == "RAVAS Mic", 60, 0.3)
        mine = _ravas_modules(pulse)
        assert len(mine) == 2 and all(f":{a.pid}:" in m for m in mine), mine
        # doctor and a second daemon from another RAVAS_HOME: they leave A's modules alone
        d = ravasd(env_b, "doctor", timeout=60)
        assert "RAVAS Mic exists (made by ravasd" in d.stdout, d.stdout
        b = ravasd(env_b, "run", "--no-tray", "--no-video", "--audio-source", "demo", "--duration", "2", timeout=90)
        assert b.returncode == 0 and "RAVAS Mic already exists" in b.stderr, b.stderr[-1500:]
        os.kill(a.pid, signal.SIGSTOP)  # a stopped daemon still owns it
        try:
            ravasd(env_b, "doctor", timeout=60)
        finally:
            os.kill(a.pid, signal.SIGCONT)
        assert _ravas_modules(pulse) == mine
        # the sound server dies and comes back: RAVAS Mic is re-created, status is truthful meanwhile
        pulse.restart()
        unrelated = pulse.pactl("load-module", "module-null-sink", "sink_name=someone_elses").strip()
        seen_states = set()

        def back():
            st = _status(env_a)
            seen_states.add(st.get("virtual_mic_state"))
            return st.get("virtual_mic") == "RAVAS Mic" and len(_ravas_modules(pulse)) == 2

        assert wait_until(back, 20, 0.2), (seen_states, _ravas_modules(pulse))
        assert wait_until(lambda: (_status(env_a).get("audio") or {}).get("state") == "running", 30, 0.3)
        sources = pulse.pactl("list", "short", "sources")
        assert "ravas_mic" in sources
        # paused, and someone unloads our sink: the server's event brings RAVAS Mic back at once
        # (no polling), and the daemon is still paused afterwards
        assert ravasd(env_a, "ctl", "pause").returncode == 0
        sink_module = next(ln.split("\t")[0] for ln in _ravas_modules(pulse) if "module-null-sink" in ln)
        pulse.pactl("unload-module", sink_module)
        t0 = time.monotonic()
        assert wait_until(back, 20, 0.1), _ravas_modules(pulse)
        assert time.monotonic() - t0 < 5  # within 2 s on an idle box; the margin is for a busy one
        assert _status(env_a).get("paused") is True
        assert ravasd(env_a, "ctl", "resume").returncode == 0
        assert ravasd(env_a, "ctl", "quit").returncode == 0
        a.wait(20)
    finally:
        if a.poll() is None:
            a.kill()
    assert not _ravas_modules(pulse)  # ours are gone…
    modules = pulse.pactl("list", "short", "modules")
    assert any(ln.startswith(f"{unrelated}\t") and "someone_elses" in ln for ln in modules.splitlines())  # …nor others'
    assert "fake_mic" in pulse.pactl("list", "short", "sources")
    pulse.pactl("unload-module", unrelated)


def test_audio_worker_gets_priority_and_video_gives_way_and_status_says_so(ravas_home):
    env = _env(ravas_home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ravasd", *DEMO], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert wait_until(lambda: all((_status(env).get(k) or {}).get("priority") for k in ("video", "audio")), 90, 0.5)
        st = _status(env)
        v, a = st["video"], st["audio"]
        assert v["priority"] == f"nice {os.getpriority(os.PRIO_PROCESS, 0) + 10:+d}"
        assert os.getpriority(os.PRIO_PROCESS, v["pid"]) == os.getpriority(os.PRIO_PROCESS, 0) + 10
        if a["priority"].startswith("realtime"):  # what status says is what the kernel has
            assert os.sched_getscheduler(a["pid"]) & ~getattr(os, "SCHED_RESET_ON_FORK", 0) == os.SCHED_RR
        elif a["priority"].startswith("nice"):
            assert os.getpriority(os.PRIO_PROCESS, a["pid"]) == int(a["priority"].split()[1])
        else:
            assert a["priority"] == "normal"
        ravasd(env, "ctl", "quit")
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_soak_summary_compares_the_first_and_last_fifth_after_warm_up():
    from ravasd.bench.soak import summarise

    rows = []
    for i in range(50):
        t = i * 10.0
        rows.append(
            {
                "t_s": t,
                "rss_daemon_mb": 100.0,
                "rss_video_mb": 200 + (20 if t > 400 else 0),
                "rss_audio_mb": 150.0,
                "video_latency_ms": 60.0,
                "audio_latency_ms": 30 + (12 if t > 400 else 0),
                "video_dropped": i,
                "audio_dropped": 0,
                "video_restarts": 0,
                "audio_restarts": 1 if t > 300 else 0,
                "video_priority": "nice +10",
                "audio_priority": "normal",
            }
        )
    s = summarise(rows, warmup_s=100)
    assert s["rss_daemon_growth_pct"] == 0.0 and s["rss_video_growth_pct"] == 10.0
    assert s["audio_latency_drift_ms"] == 12.0 and s["video_latency_drift_ms"] == 0.0
    assert s["video_dropped_per_s"] == 0.1 and s["audio_dropped_per_s"] == 0.0
    assert s["audio_restarts"] == 1 and s["video_restarts"] == 0


@pytest.mark.slow
def test_soak_runs_the_daemon_and_reports(ravas_home, tmp_path):
    env = dict(_env(ravas_home), HOME=str(tmp_path))
    env.pop("PULSE_SERVER")  # the soak starts a private sound server when none answers
    r = ravasd(env, "soak", "--minutes", "0.3", "--every", "3", "--json", timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert len(res["samples"]) >= 4
    s = res["summary"]
    assert s["rss_end_daemon_mb"] and s["rss_end_video_mb"] and s["rss_end_audio_mb"]
    assert s["audio_restarts"] == 0 and s["video_restarts"] == 0
    assert res["samples"][-1]["virtual_mic"] == "RAVAS Mic"
    assert s["listener"] is True and s["audio_sink_stalls"] >= 0 and "audio_dropped_sink" in s
    assert not ravasd(env, "ctl", "status").returncode == 0  # the soak's daemon is gone


def test_a_corrupt_face_model_leaves_the_avatar_idling_and_doctor_says_so(ravas_home, tmp_path):
    corrupt = tmp_path / "face_landmarker.task"
    corrupt.write_bytes((Path(os.environ["RAVAS_MODELS_DIR"]) / "face_landmarker.task").read_bytes()[:100_000])
    env = _env(ravas_home)
    d = ravasd(env, "doctor", "--set", f"models.face_landmarker={corrupt}", timeout=120)
    assert "FAIL  model files" in d.stdout and "cannot be loaded" in d.stdout, d.stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "ravasd", *DEMO, "--set", f"models.face_landmarker={corrupt}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # the avatar is rendered (anonymized frames published), not the "starting" card for good
        assert wait_until(lambda: (_status(env).get("video") or {}).get("published", 0) > 30, 90, 0.5)
        v = _status(env)["video"]
        assert v["state"] == "running" and v["face"] is False
        ravasd(env, "ctl", "quit")
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "face tracking is off" in (ravas_home / "log" / "ravasd-video.log").read_text()


def test_anonymize_cleans_up_on_sigterm_and_refuses_an_unwritable_output(ravas_home, tmp_path):
    from mediagen import make_video

    env = _env(ravas_home)
    src = make_video(tmp_path / "in.mp4", seconds=20.0, width=320, height=240)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ravasd", "anonymize", str(src), "-o", str(out_dir / "o.mp4")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert wait_until(lambda: any(out_dir.iterdir()), 60, 0.1), "anonymize never started writing"
    proc.send_signal(signal.SIGTERM)
    text = proc.communicate(timeout=30)[0]
    assert "Traceback" not in text, text[-1500:]
    if proc.returncode == 130:  # stopped mid-way: nothing partial is left
        assert not list(out_dir.iterdir()), list(out_dir.iterdir())
    else:  # it had already finished (a fast machine): the whole output is there, no partial file
        assert proc.returncode == 0 and [p.name for p in out_dir.iterdir()] == ["o.mp4"], list(out_dir.iterdir())
    r = ravasd(env, "anonymize", str(src), "-o", "/proc/x.wav", timeout=120)
    assert r.returncode == 2 and "/proc/x.wav" in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]


def test_a_vanishing_microphone_is_never_replaced_by_ravas_mic_and_is_used_again_when_back(sound_server, tmp_path):
    """Worst case from #15: RAVAS Mic is the default source, the microphone vanishes and the server
    moves the capture stream onto RAVAS Mic (feedback). The guard reacts to the server's event, not
    a poll: the stream leaves at once (old: 0.3–1.2 s); when the microphone is back it is used again."""
    import threading

    pulse = sound_server
    env = dict(
        pulse.env,
        RAVAS_HOME=str(tmp_path / "h"),
        RAVAS_MODELS_DIR=os.environ["RAVAS_MODELS_DIR"],
        OPENBLAS_NUM_THREADS="1",
    )
    fake_mic_args = next(
        ln.split("\t")[2] for ln in pulse.pactl("list", "short", "modules").splitlines() if "source_name=fake_mic" in ln
    )
    d = subprocess.Popen(
        [sys.executable, "-m", "ravasd", "run", "--no-tray", "--no-video", "--mic", "fake_mic", "--voice", "ringmod"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def our_inputs() -> list[str]:
        """The sources the daemon's audio worker records from now."""
        names = {ln.split("\t")[0]: ln.split("\t")[1] for ln in pulse.pactl("list", "short", "sources").splitlines()}
        out = json.loads(pulse.pactl("--format=json", "list", "source-outputs") or "[]")
        pid = str((_status(env).get("audio") or {}).get("pid"))
        return [
            names.get(str(o.get("source")), "?")
            for o in out
            if str((o.get("properties") or {}).get("application.process.id")) == pid
        ]

    try:
        assert wait_until(lambda: our_inputs() == ["fake_mic"], 60, 0.3), our_inputs()
        pulse.pactl("set-default-source", "ravas_mic")
        pid = str(_status(env)["audio"]["pid"])
        on_ravas, stop = [], threading.Event()

        def sample():
            names = {}
            while not stop.is_set():
                out = json.loads(pulse.pactl("--format=json", "list", "source-outputs") or "[]")
                if not names or any(str(o.get("source")) not in names for o in out):
                    names = {
                        ln.split("\t")[0]: ln.split("\t")[1]
                        for ln in pulse.pactl("list", "short", "sources").splitlines()
                    }
                on_ravas.append(
                    any(
                        names.get(str(o.get("source"))) == "ravas_mic"
                        for o in out
                        if str((o.get("properties") or {}).get("application.process.id")) == pid
                    )
                )

        t = threading.Thread(target=sample)
        t.start()
        time.sleep(0.3)
        idx = next(
            ln.split("\t")[0]
            for ln in pulse.pactl("list", "short", "modules").splitlines()
            if "source_name=fake_mic" in ln
        )
        pulse.pactl("unload-module", idx)
        time.sleep(2.5)
        stop.set()
        t.join()
        window = sum(on_ravas) / max(1, len(on_ravas)) * 2.8  # seconds the stream sat on RAVAS Mic
        print(f"capture sat on RAVAS Mic for ~{window:.3f} s")
        assert window < 0.25, (
            f"captured from RAVAS Mic for ~{window:.2f} s ({sum(on_ravas)} of {len(on_ravas)} samples)"
        )
        assert "ravas_mic" not in our_inputs()
        # the microphone comes back: it is recorded again (and only it)
        pulse.pactl("load-module", "module-remap-source", *fake_mic_args.split(" ", 4))
        assert wait_until(lambda: our_inputs() == ["fake_mic"], 30, 0.3), our_inputs()
        assert (_status(env).get("audio") or {}).get("source_errors", 0) >= 1
        ravasd(env, "ctl", "quit")
        d.wait(30)
    finally:
        if d.poll() is None:
            d.kill()
        pulse.pactl("set-default-source", "fake_mic")
        if "source_name=fake_mic" not in pulse.pactl("list", "short", "modules"):
            pulse.pactl("load-module", "module-remap-source", *fake_mic_args.split(" ", 4))
