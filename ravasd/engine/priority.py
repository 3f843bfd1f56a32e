"""Audio first under load: the audio worker asks for a higher priority, the video worker steps back.

Called once at the start of a stream worker process, before its threads exist (threads inherit the
policy). The audio worker gets nice −10 where the OS allows it (root, CAP_SYS_NICE, an RLIMIT_NICE);
with ``engine.audio_realtime`` it asks for ``SCHED_RR`` first — off by default: with two busy
processes it measured no better than nice −10 (both ≈ 0 % drops), and the worker's threads share
Python's GIL, where equal-priority real-time threads risk convoys. The video worker's ``nice +10`` always works,
and with it video is what gives way when another program saturates the CPU. A real-time thread that
spins (a hung converter) is stopped by ``RLIMIT_RTTIME`` (SIGXCPU; the supervisor restarts the
worker), so it can never freeze the desktop.
"""

from __future__ import annotations

import os
import sys

RT_PRIORITY = 10  # low among real-time priorities: PulseAudio/PipeWire (rtkit) run at 20
RT_CPU_LIMIT_US = 500_000  # CPU time an RT thread may use without sleeping before SIGXCPU
AUDIO_NICE = -10
VIDEO_NICE = 10


def raise_audio_priority(realtime: bool = True) -> str:
    """Best priority the OS grants this (audio) process; returns what was got, for status."""
    if not sys.platform.startswith("linux"):
        return _nice(AUDIO_NICE) if hasattr(os, "nice") else "normal"
    if realtime and hasattr(os, "SCHED_RR"):
        try:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_RTTIME)
            cap = RT_CPU_LIMIT_US if hard == resource.RLIM_INFINITY else min(RT_CPU_LIMIT_US, hard)
            resource.setrlimit(resource.RLIMIT_RTTIME, (cap, hard))
            # RESET_ON_FORK: processes this one starts (pactl, a bench's load) are not real-time
            os.sched_setscheduler(0, os.SCHED_RR | getattr(os, "SCHED_RESET_ON_FORK", 0), os.sched_param(RT_PRIORITY))
            return f"realtime (SCHED_RR {RT_PRIORITY})"
        except (OSError, ValueError, AttributeError):
            pass
    return _nice(AUDIO_NICE)


def lower_video_priority() -> str:
    """Let the video worker give way to audio (and to the user's other programs) under load."""
    return _nice(VIDEO_NICE)


def _nice(delta: int) -> str:
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, max(-20, min(19, current + delta)))
        return f"nice {os.getpriority(os.PRIO_PROCESS, 0):+d}"
    except (OSError, AttributeError):
        return "normal"
