"""``ravasd soak``: run the daemon for minutes and watch it — memory per process, latency drift,
drops and restarts over time, optionally while other processes saturate the CPU.

The daemon runs as a child (``ravasd run --no-tray`` with the demo sources unless other run
arguments are given) on the user's sound server, or on a private PulseAudio when none answers, so
RAVAS Mic and its clocked output are part of what is measured. Every ``every`` seconds the status
and each process's resident memory (/proc) are sampled. The summary compares the first and last
fifth of the run after a warm-up: RSS growth, audio/video latency drift, dropped items per second,
restarts (each one unexplained in a soak: nothing is meant to fail).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..daemon.control import request
from ..errors import RavasError


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MB (Linux /proc), or None."""
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _sample(t: float, daemon_pid: int) -> dict[str, Any]:
    st = request("status", timeout=5)["status"]
    row: dict[str, Any] = {"t_s": round(t, 1), "rss_daemon_mb": rss_mb(daemon_pid)}
    for k in ("video", "audio"):
        s = st.get(k) or {}
        row[f"{k}_latency_ms"] = round(float(s.get("latency_ms", 0.0)), 1)
        row[f"{k}_rate"] = round(float(s.get("rate", 0.0)), 1)
        row[f"{k}_dropped"] = int(s.get("dropped", 0))
        row[f"{k}_restarts"] = int(s.get("restarts", 0)) + int(s.get("worker_restarts", 0))
        row[f"{k}_state"] = s.get("state")
        row[f"rss_{k}_mb"] = rss_mb(s.get("pid"))
        row[f"{k}_priority"] = s.get("priority")
        dd = s.get("device_dropped") or {}
        row[f"{k}_dropped_source"], row[f"{k}_dropped_sink"] = dd.get("source", 0), dd.get("sink", 0)
        stalls = s.get("device_stalls") or {}
        row[f"{k}_sink_stalls"], row[f"{k}_sink_longest_stall_ms"] = (
            stalls.get("count", 0),
            stalls.get("longest_ms", 0.0),
        )
    row["virtual_mic"] = st.get("virtual_mic")
    return row


def _listener(env: dict[str, str]) -> subprocess.Popen:
    """A recorder on RAVAS Mic at 20 ms latency, discarding what it reads (parecord, or a no-op)."""
    from ..devices.virtual import PulseVirtualMic

    cmd = ["parecord", f"--device={PulseVirtualMic.SOURCE}", "--latency-msec=20", "--raw", os.devnull]
    try:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return subprocess.Popen([sys.executable, "-c", "pass"])


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def summarise(rows: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """RSS growth (%), latency drift (ms), drops per second and restarts, first vs last fifth after warm-up."""
    after = [r for r in rows if r["t_s"] >= warmup_s] or rows
    n = max(1, len(after) // 5)
    first, last = after[:n], after[-n:]
    out: dict[str, Any] = {"samples": len(rows), "duration_s": rows[-1]["t_s"] if rows else 0, "warmup_s": warmup_s}
    for key in ("rss_daemon_mb", "rss_video_mb", "rss_audio_mb"):
        a, b = _mean([r[key] for r in first]), _mean([r[key] for r in last])
        out[key.replace("_mb", "_growth_pct")] = round(100 * (b - a) / a, 1) if a and b else None
        out[key.replace("rss_", "rss_end_")] = round(b, 1) if b else None
    span = (after[-1]["t_s"] - after[0]["t_s"]) or 1.0
    for k in ("video", "audio"):
        a, b = _mean([r[f"{k}_latency_ms"] for r in first]), _mean([r[f"{k}_latency_ms"] for r in last])
        out[f"{k}_latency_ms"] = round(_mean([r[f"{k}_latency_ms"] for r in after]) or 0, 1)
        out[f"{k}_latency_drift_ms"] = round(b - a, 1) if a is not None and b is not None else None
        out[f"{k}_dropped_per_s"] = round((after[-1][f"{k}_dropped"] - after[0][f"{k}_dropped"]) / span, 2)
        out[f"{k}_restarts"] = rows[-1][f"{k}_restarts"] if rows else 0
        out[f"{k}_priority"] = rows[-1][f"{k}_priority"] if rows else None
    # where audio drops came from: the source, or the output device not taking data (stalls)
    out["audio_dropped_sink"] = after[-1].get("audio_dropped_sink", 0) - after[0].get("audio_dropped_sink", 0)
    out["audio_dropped_source"] = after[-1].get("audio_dropped_source", 0) - after[0].get("audio_dropped_source", 0)
    out["audio_sink_stalls"] = after[-1].get("audio_sink_stalls", 0) - after[0].get("audio_sink_stalls", 0)
    out["audio_sink_longest_stall_ms"] = max((r.get("audio_sink_longest_stall_ms", 0) for r in after), default=0)
    return out


def soak(
    minutes: float,
    every: float = 10.0,
    load: int = 0,
    run_args: list[str] | None = None,
    out: Callable[[str], None] = print,
    listener: bool = True,
) -> dict[str, Any]:
    from .audio import SoundServer

    try:
        request("status", timeout=2)
        raise RavasError("soak: ravasd is already running for this user.", "stop it first (`ravasd ctl quit`).")
    except RavasError as err:
        if "already running" in str(err):
            raise
    srv = SoundServer()  # the user's sound server, or a private one for the soak
    env = dict(os.environ, PULSE_SERVER=srv.env.get("PULSE_SERVER", os.environ.get("PULSE_SERVER", "")))
    if not env["PULSE_SERVER"]:
        env.pop("PULSE_SERVER")
    args = run_args or ["--video-source", "demo", "--audio-source", "demo"]
    daemon = subprocess.Popen(
        [sys.executable, "-m", "ravasd", "run", "--no-tray", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    busy: list[subprocess.Popen] = []
    rows: list[dict[str, Any]] = []
    old_server = os.environ.get("PULSE_SERVER")
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                request("status", timeout=2)
                break
            except RavasError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RavasError("soak: the daemon did not start.", "run `ravasd run` to see why.") from None
                time.sleep(0.5)
        if listener:  # as a call app: it asks for a low latency (PulseAudio's null sink otherwise
            # renders in 2 s steps now and then, and nobody would hear the gap anyway)
            busy.append(_listener(env))
        busy += [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(0, load))]
        t0 = time.monotonic()
        end = t0 + minutes * 60
        out("    t   rss d/v/a MB      audio ms  drop  rst | video ms  fps  drop  rst")
        while time.monotonic() < end and daemon.poll() is None:
            r = _sample(time.monotonic() - t0, daemon.pid)
            rows.append(r)
            out(
                f"{r['t_s']:6.0f}  {r['rss_daemon_mb'] or 0:4.0f}/{r['rss_video_mb'] or 0:4.0f}/"
                f"{r['rss_audio_mb'] or 0:4.0f}   {r['audio_latency_ms']:7.1f} {r['audio_dropped']:5d} "
                f"{r['audio_restarts']:4d} | {r['video_latency_ms']:7.1f} {r['video_rate']:4.0f} "
                f"{r['video_dropped']:5d} {r['video_restarts']:4d}"
            )
            time.sleep(max(0.0, min(every, end - time.monotonic())))
    finally:
        for p in busy:
            p.kill()
            p.wait()
        try:
            request("quit", timeout=5)
            daemon.wait(20)
        except (RavasError, subprocess.TimeoutExpired):
            daemon.kill()
        srv.close()
        if old_server is None:
            os.environ.pop("PULSE_SERVER", None)
    if not rows:
        raise RavasError("soak: no samples were taken (the daemon stopped at once).")
    summary = summarise(rows, warmup_s=min(120.0, minutes * 60 * 0.2))
    summary.update(load=load, minutes=minutes, listener=listener)
    return {"summary": summary, "samples": rows}


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2)
