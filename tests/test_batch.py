"""`ravasd anonymize IN... -o OUTDIR`: whole folders, --jobs at once or as Ray tasks, resumable, and
each output byte for byte what a one-file run writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED_MODELS
from helpers import wait_until
from mediagen import make_audio, make_video

from ravasd.errors import RavasError
from ravasd.model_files import sha256
from ravasd.research import batch

N_VIDEO, N_AUDIO = 11, 9  # + one corrupt file and one video without audio = 22 inputs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """22 mixed files in a tree: videos in three containers, audio in three formats, a video
    without audio, a corrupt file."""
    root = tmp_path_factory.mktemp("corpus") / "sessions"
    for i in range(N_VIDEO):
        ext = [".mp4", ".mkv", ".mov"][i % 3]
        (root / f"p{i % 4}").mkdir(parents=True, exist_ok=True)
        make_video(
            root / f"p{i % 4}" / f"spk{i % 4}_video{i}{ext}", seconds=0.6 + 0.1 * (i % 3), width=160, height=120, fps=15
        )
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for i in range(N_AUDIO):
        ext = [".wav", ".flac", ".mp3"][i % 3]
        make_audio(root / "audio" / f"spk{i % 3}_utt{i}{ext}", seconds=0.8, rate=16000)
    make_video(root / "p0" / "silent_video.mp4", seconds=0.6, width=160, height=120, fps=15, acodec=None)
    (root / "p1" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    return root


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAVAS_")}
    env.update(RAVAS_HOME=str(home), RAVAS_MODELS_DIR=str(SHARED_MODELS), PULSE_SERVER="unix:/nonexistent")
    return env


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _last(out: Path) -> dict[str, dict]:
    return {r["rel"]: r for r in _manifest(out)}


def test_expand_mirrors_folders_and_globs_and_refuses_collisions(tmp_path):
    (tmp_path / "a" / "x").mkdir(parents=True)
    for p in ("a/one.mp4", "a/x/two.wav", "a/notes.txt", "a/.hidden.mp4", "three.flac"):
        (tmp_path / p).write_bytes(b"")
    got = batch.expand([tmp_path / "a", tmp_path / "three.flac"])
    assert [(p.name, rel) for p, rel in got] == [("one.mp4", "a/one"), ("two.wav", "a/x/two"), ("three.flac", "three")]
    got = batch.expand([str(tmp_path / "a" / "**" / "*.wav")])
    assert [rel for _, rel in got] == ["x/two"]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "one.mp4").write_bytes(b"")
    with pytest.raises(RavasError, match="would both be written"):
        batch.expand([tmp_path / "a" / "one.mp4", tmp_path / "b" / "one.mp4"])
    with pytest.raises(RavasError, match="does not exist"):
        batch.expand([tmp_path / "nothere"])
    assert len(batch.expand([tmp_path / "three.flac", tmp_path / "three.flac"])) == 1


def test_manifest_reader_keeps_the_last_record_and_skips_a_torn_line(tmp_path):
    lines = [{"rel": "a", "status": "failed"}, {"rel": "b", "status": "done"}, {"rel": "a", "status": "done"}]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"rel": "c", "sta')
    recs = batch.read_manifest(tmp_path)
    assert {k: v["status"] for k, v in recs.items()} == {"a": "done", "b": "done"}


def test_a_folder_in_one_command_resumes_after_a_kill_and_matches_one_file_runs(corpus, tmp_path):
    out = tmp_path / "out"
    env = _env(tmp_path / "home")
    cmd = [sys.executable, "-m", "ravasd", "anonymize", str(corpus), "-o", str(out), "--jobs", "2", "--no-progress"]
    first = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    try:
        assert wait_until(lambda: (out / "manifest.jsonl").exists() and len(_manifest(out)) >= 6, 240, 0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the whole batch, workers included, half-way
        first.wait(10)
    first_lines = len((out / "manifest.jsonl").read_text().splitlines())  # the last one may be torn
    before = batch.read_manifest(out)
    assert 6 <= len(before) < 22, "the kill came too late to test resuming"
    done_before = {rel for rel, r in before.items() if r["status"] == "done"}

    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]  # one corrupt file: not all succeeded
    assert f"{len(done_before)} already done before" in r.stdout and "1 failed" in r.stdout
    assert "FAILED" in r.stdout and "broken.mp4" in r.stdout and "Traceback" not in r.stdout + r.stderr
    new = (out / "manifest.jsonl").read_text().splitlines()[first_lines:]
    redone = [json.loads(line)["rel"] for line in new if json.loads(line)["rel"] in done_before]
    assert redone == [], f"finished files were redone: {redone}"
    last = _last(out)
    assert len(last) == 22
    assert {rel for rel, x in last.items() if x["status"] == "failed"} == {"sessions/p1/broken"}
    assert not list(out.rglob(".*.partial-*"))  # no partial file survives the kill and the resume
    for x in last.values():
        if x["status"] == "done":
            assert (out / x["output"]).is_file() and sha256(out / x["output"]) == x["output_sha256"]
            assert x["input_sha256"] == sha256(x["input"]) and x["config_digest"] and x["ravasd_version"]
    assert (
        last["sessions/p0/silent_video"]["output"].endswith(".mp4")
        and not last["sessions/p0/silent_video"]["has_audio"]
    )
    assert last["sessions/audio/spk0_utt0"]["output"] == "sessions/audio/spk0_utt0.wav"
    assert last["sessions/audio/spk1_utt1"]["output"] == "sessions/audio/spk1_utt1.flac"

    # byte for byte what a one-file run writes (a video with audio, one without, audio)
    for rel in ("sessions/p1/spk1_video1", "sessions/p0/silent_video", "sessions/audio/spk2_utt2"):
        x = last[rel]
        single = tmp_path / ("single" + Path(x["output"]).suffix)
        s = subprocess.run(
            [sys.executable, "-m", "ravasd", "anonymize", x["input"], "-o", str(single), "--force", "--no-progress"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert s.returncode == 0, s.stderr[-2000:]
        assert single.read_bytes() == (out / x["output"]).read_bytes(), rel

    # a changed input is redone; nothing else is
    victim = Path(last["sessions/audio/spk0_utt0"]["input"])
    make_audio(victim, seconds=0.9, rate=16000)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert "20 already done before" in r.stdout, r.stdout[-1500:]
    assert _last(out)["sessions/audio/spk0_utt0"]["input_sha256"] == sha256(victim)


def test_one_worker_that_dies_loses_only_its_file(tmp_path, monkeypatch):
    """A crash inside a native library kills the worker process: that file is retried once on a
    fresh worker, then recorded as failed; the other files are done."""
    from ravasd.config import load_config

    jobs = [batch.Job(f"/nowhere/{i}.wav", f"f{i}", 1, 1, 1.0) for i in range(4)]
    monkeypatch.setattr(batch, "_worker", _crashy_worker)
    seen: list[dict] = []
    batch.run_local(jobs, load_config(), tmp_path, 2, seen.append)
    status = {r["rel"]: r["status"] for r in seen}
    assert status == {"f0": "done", "f1": "failed", "f2": "done", "f3": "done"}
    assert "died on this file 2 times" in next(r["error"] for r in seen if r["rel"] == "f1")


def _crashy_worker(conn, cfg, outdir):  # module level: spawned workers import it
    while True:
        job = conn.recv()
        if job is None:
            return
        if job.rel == "f1":
            os._exit(3)  # what a segfault in a native library looks like from outside
        conn.send({"rel": job.rel, "input": job.input, "status": "done"})


def test_ray_engine_gives_the_same_manifest_and_outputs_and_survives_a_killed_worker(corpus, tmp_path):
    pytest.importorskip("ray")
    env = _env(tmp_path / "home")
    local, remote = tmp_path / "local", tmp_path / "ray"
    base = [sys.executable, "-m", "ravasd", "anonymize", str(corpus), "--jobs", "2", "--no-progress"]
    subprocess.run([*base, "-o", str(local)], env=env, capture_output=True, text=True, timeout=600)
    proc = subprocess.Popen(
        [*base, "-o", str(remote), "--engine", "ray"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    killed = None
    try:
        t_end = time.monotonic() + 240
        while killed is None and time.monotonic() < t_end and proc.poll() is None:
            ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
            busy = [int(line.split()[0]) for line in ps.splitlines() if "ray::_task" in line]
            if busy and (remote / "manifest.jsonl").exists():
                killed = busy[0]
                os.kill(killed, signal.SIGKILL)  # a worker lost mid-task: Ray must run the task again
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed is not None, "no Ray worker was seen running a task"
    assert proc.returncode == 1, stdout[-2000:] + stderr[-2000:]  # the corrupt file
    a, b = _last(local), _last(remote)
    keys = ("status", "output", "output_sha256", "input_sha256", "config_digest", "kind", "frames")
    assert {rel: tuple(r.get(k) for k in keys) for rel, r in a.items()} == {
        rel: tuple(r.get(k) for k in keys) for rel, r in b.items()
    }
    assert all(r.get("engine") == "ray" for r in b.values()) and len(b) == 22


def test_bench_batch_prints_throughput_per_job_count(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ravasd",
            "bench",
            "batch",
            "--files",
            "2",
            "--seconds",
            "1",
            "--width",
            "320",
            "--height",
            "240",
            "--jobs",
            "1",
            "--json",
        ],
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(r.stdout)
    assert [row["jobs"] for row in rows] == [1] and rows[0]["failed"] == 0
    assert rows[0]["media_s"] == pytest.approx(2.0, abs=0.1) and rows[0]["media_h_per_wall_h"] > 0


def _truncated(src: Path, dst: Path, keep: float, garbage: int = 0) -> Path:
    """``src`` cut after ``keep`` of its bytes, with ``garbage`` random bytes appended (a broken copy)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)] + os.urandom(garbage))
    return dst


def test_a_truncated_input_fails_with_its_reason_unless_allowed_and_the_manifest_says_so(tmp_path):
    """A WAV cut mid-file with garbage appended (its header still states 2.1 s), a FLAC and an MKV
    cut in half: each fails alone, in one-file mode and in a batch, with a one-line reason;
    ``--allow-truncated`` anonymizes what decodes and the manifest records it."""
    src = tmp_path / "in"
    src.mkdir()
    whole = make_audio(tmp_path / "whole.wav", seconds=2.1, rate=16000)
    _truncated(whole, src / "cut.wav", 0.06, garbage=500)
    _truncated(make_audio(tmp_path / "whole.flac", seconds=3.0, rate=16000), src / "half.flac", 0.5)
    _truncated(make_video(tmp_path / "whole.mkv", seconds=3.0, width=160, height=120, fps=15), src / "short.mkv", 0.5)
    make_audio(src / "fine.wav", seconds=1.0, rate=16000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAVAS_")}
    env.update(RAVAS_HOME=str(tmp_path / "home"), RAVAS_MODELS_DIR=str(SHARED_MODELS), PULSE_SERVER="unix:/nonexistent")

    def ravasd(*args):
        return subprocess.run(
            [sys.executable, "-m", "ravasd", *args], env=env, capture_output=True, text=True, timeout=300
        )

    r = ravasd("anonymize", str(src / "cut.wav"), "-o", str(tmp_path / "cut-out.wav"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-1500:]
    assert "truncated or damaged: its header states 2.10 s but only 0.1" in r.stderr and "--allow-truncated" in r.stderr
    assert not (tmp_path / "cut-out.wav").exists()
    r = ravasd("anonymize", str(src / "cut.wav"), "-o", str(tmp_path / "cut-out.wav"), "--allow-truncated")
    assert r.returncode == 0 and "truncated or damaged" in r.stdout and (tmp_path / "cut-out.wav").exists(), r.stderr

    out = tmp_path / "out"
    r = ravasd("anonymize", str(src), "-o", str(out), "--jobs", "2", "--no-progress")
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    recs = {Path(rec["input"]).name: rec for rec in batch.read_manifest(out).values()}
    assert recs["fine.wav"]["status"] == "done" and recs["fine.wav"]["truncated"] == ""
    for name in ("cut.wav", "half.flac", "short.mkv"):
        assert recs[name]["status"] == "failed" and "truncated or damaged" in recs[name]["error"], recs[name]
        assert f"FAILED  {src / name}: " in r.stdout
    assert "header states 3.0" in recs["short.mkv"]["error"]
    r = ravasd("anonymize", str(src), "-o", str(out), "--jobs", "2", "--no-progress", "--allow-truncated")
    assert r.returncode == 0, r.stdout[-2000:]
    recs = {Path(rec["input"]).name: rec for rec in batch.read_manifest(out).values()}
    for name in ("cut.wav", "half.flac", "short.mkv"):
        assert recs[name]["status"] == "done" and recs[name]["truncated"] and recs[name]["allow_truncated"]
    assert "1 already done" in r.stdout or "already done" in r.stdout
    # accepted only while allowed: a run without the flag fails them again
    r = ravasd("anonymize", str(src), "-o", str(out), "--jobs", "2", "--no-progress")
    assert r.returncode == 1 and "4 files" in r.stdout and "1 already done" in r.stdout, r.stdout[-2000:]
