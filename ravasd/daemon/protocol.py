"""The control protocol: every verb the daemon answers, written once with its arguments.

A request is one JSON object ``{"cmd": VERB, ARG: value, …}``; the reply ``{"ok": true, …}`` or
``{"ok": false, "error": "…"}``. The server (:meth:`ravasd.daemon.service.Daemon.handle`) checks each
request with :func:`check` before acting; clients (``ravasd ctl``, the settings window, the soak and
doctor probes) go through :func:`ravasd.daemon.control.request`, which checks the same way before
sending and takes each verb's timeout from here; ``ravasd ctl``'s help is each verb's ``help``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

REQUIRED = object()


@dataclass(frozen=True)
class Arg:
    """One argument: its JSON type (``float`` accepts integers, ``object`` anything), and its default
    (:data:`REQUIRED` when it must be given)."""

    name: str
    kind: type
    default: Any = REQUIRED


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    args: tuple[Arg, ...] = ()
    timeout: float = 5.0  # seconds a client waits for the reply


VERBS: dict[str, Verb] = {
    v.name: v
    for v in (
        Verb("status", "per-stream fps, latency, drops, xruns, restarts"),
        Verb("pause", "close the privacy curtain (placeholder + silence)"),
        Verb("resume", "open the privacy curtain"),
        Verb("voice", "switch the voice live (and remember it)", (Arg("name", str),)),
        Verb("avatar", "switch the video converter / avatar live (and remember it)", (Arg("name", str),)),
        Verb("converter", "switch the video converter live (and remember it)", (Arg("name", str),)),
        Verb("calibrate", "record the neutral face (avatar converter)"),
        Verb("preview", "show or hide the preview window", (Arg("on", bool, True),)),
        Verb("snapshot", "save the frame the call sees now as a PNG (works headless)", (Arg("max_width", float, 0.0),)),
        Verb(
            "frame",
            "the frame the call sees now, as a small JPEG (the settings window's preview)",
            (Arg("max_width", float, 0.0),),
        ),
        Verb("devices", "cameras and microphones the daemon can use, and the current ones"),
        Verb(
            "set",
            "change a setting live (validated, remembered): e.g. set video.camera 1",
            (Arg("changes", dict, None), Arg("key", str, None), Arg("value", object, None), Arg("parse", bool, True)),
        ),
        Verb("level", "the microphone's input level (dBFS) and the converted voice's level"),
        Verb(
            "sample",
            "record a few seconds of the converted voice (what RAVAS Mic plays)",
            (Arg("seconds", float, 3.0),),
            timeout=20.0,
        ),
        Verb("config", "the settings the daemon runs with (its config file, defaults filled in)"),
        Verb("quit", "stop the daemon (removes RAVAS Mic)"),
    )
}


def check(req: Any) -> tuple[Verb, dict[str, Any]]:
    """The verb of request ``req`` and its arguments, defaults filled in; :class:`ConfigError` naming
    the verb or argument that is unknown, missing or of the wrong type."""
    if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
        raise ConfigError("a control request is a JSON object with a 'cmd' string.")
    verb = VERBS.get(req["cmd"])
    if verb is None:
        raise ConfigError(f"unknown command {str(req['cmd'])[:40]!r}.")
    known = {a.name for a in verb.args}
    extra = sorted(set(req) - known - {"cmd"})
    if extra:
        raise ConfigError(
            f"{verb.name}: unknown argument {extra[0][:40]!r}"
            + (f" (it takes {', '.join(sorted(known))})." if known else " (it takes none).")
        )
    args = {}
    for a in verb.args:
        value = req.get(a.name, a.default)
        if value is REQUIRED:
            raise ConfigError(f"{verb.name}: '{a.name}' is missing.")
        if a.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = (
            a.kind is object
            or value is None
            and a.default is None
            or isinstance(value, a.kind)
            and not (a.kind is not bool and isinstance(value, bool))
            and not (a.kind is float and not math.isfinite(value))
        )
        if not ok:
            raise ConfigError(f"{verb.name}: '{a.name}' must be {a.kind.__name__}, got {str(value)[:60]!r}.")
        args[a.name] = value
    return verb, args
