"""The control protocol is written once (ravasd/daemon/protocol.py): the server checks requests with
it, clients check before sending, and `ravasd ctl` offers its verbs with their help."""

from __future__ import annotations

import pytest

from ravasd.daemon import protocol
from ravasd.errors import ConfigError


def test_requests_are_checked_against_the_verbs_arguments():
    verb, args = protocol.check({"cmd": "sample", "seconds": 2})
    assert verb.timeout == 20.0 and args == {"seconds": 2.0} and isinstance(args["seconds"], float)
    assert protocol.check({"cmd": "preview"})[1] == {"on": True}
    assert protocol.check({"cmd": "set", "key": "video.fps", "value": 12})[1]["value"] == 12
    for req, why in (
        ({"cmd": "voice"}, "'name' is missing"),
        ({"cmd": "voice", "name": 3}, "'name' must be str"),
        ({"cmd": "preview", "on": "yes"}, "'on' must be bool"),
        ({"cmd": "sample", "seconds": float("nan")}, "'seconds' must be float"),
        ({"cmd": "sample", "seconds": True}, "'seconds' must be float"),
        ({"cmd": "pause", "now": 1}, r"unknown argument 'now' \(it takes none\)"),
        ({"cmd": "lounge"}, "unknown command 'lounge'"),
        ({"cmd": 1}, "'cmd' string"),
        ([], "'cmd' string"),
    ):
        with pytest.raises(ConfigError, match=why):
            protocol.check(req)


def test_clients_check_before_sending(tmp_path, monkeypatch):
    from ravasd.daemon import control

    monkeypatch.setattr(control, "socket_path", lambda: tmp_path / "none.sock")
    with pytest.raises(ConfigError, match="unknown command"):
        control.request("lounge")  # refused here, before any socket is tried
    with pytest.raises(Exception, match="not running"):
        control.request("status")


def test_ctl_offers_every_verb_with_its_help():
    from ravasd.cli import build_parser
    from ravasd.cli.ctl import CTL_HIDDEN

    p = build_parser()
    ctl = next(
        a
        for a in p._subparsers._group_actions[0].choices["ctl"]._actions
        if a.__class__.__name__ == "_SubParsersAction"
    )
    assert set(ctl.choices) == set(protocol.VERBS) - set(CTL_HIDDEN)
    helps = {a.dest: a.help for a in ctl._choices_actions}
    assert all(helps[name] == protocol.VERBS[name].help for name in ctl.choices)
