import os
import subprocess
import sys

import pytest
import yaml

from ravasd import config, paths
from ravasd.errors import ConfigError


def test_defaults_are_valid_and_typed():
    cfg = config.load_config()
    assert cfg.audio.block_ms == 5 and cfg.video.fps == 30
    assert config.from_dict(config.to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "data, message",
    [
        ({"audio": {"block_ms": 0}}, "audio.block_ms: must be 5..200, got 0"),
        ({"audio": {"block_ms": "ten"}}, "audio.block_ms: must be integer, got 'ten'"),
        ({"audio": {"blok_ms": 5}}, "unknown key 'audio.blok_ms'. Did you mean 'block_ms'?"),
        ({"vidoe": {}}, "unknown key 'vidoe'. Did you mean 'video'?"),
        ({"video": {"sink": "zoom"}}, "video.sink: must be one of auto, virtual, file, preview, null, got 'zoom'"),
        ({"audio": {"sample_rate": 44000}}, "audio.sample_rate: must be one of 16000"),
        ({"video": {"enabled": "yes"}}, "video.enabled: must be true/false, got 'yes'"),
        ([1, 2], "the top level must be a mapping"),
    ],
)
def test_errors_name_key_value_and_allowed(data, message):
    with pytest.raises(ConfigError) as err:
        config.from_dict(data, origin="my.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("my.yaml")


def test_layers_defaults_user_file_extra_file_flags(tmp_path):
    paths.config_file().parent.mkdir(parents=True)
    paths.config_file().write_text("audio:\n  block_ms: 20\n  voice: ringmod\nvideo:\n  fps: 25\n")
    extra = tmp_path / "extra.yaml"
    extra.write_text("audio:\n  block_ms: 40\n")
    cfg = config.load_config(extra, {"video.fps": 15})
    assert (cfg.audio.block_ms, cfg.video.fps, cfg.audio.voice) == (40, 15, "ringmod")
    assert config.load_config(extra).video.fps == 25


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("audio:\n  block_ms: 5\n bad indent: [\n")
    with pytest.raises(ConfigError) as err:
        config.load_config(bad)
    assert str(bad) in str(err.value) and "line" in str(err.value)


def test_save_user_setting_is_validated_and_atomic():
    path = config.save_user_setting("audio.block_ms", 20)
    config.save_user_setting("video.fps", 24)
    data = yaml.safe_load(path.read_text())
    assert data == {"audio": {"block_ms": 20}, "video": {"fps": 24}}
    before = path.read_bytes()
    with pytest.raises(ConfigError):
        config.save_user_setting("audio.block_ms", 999)
    assert path.read_bytes() == before  # rejected value never written
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp files left


def test_reference_lists_every_key():
    ref = config.reference()
    for section, values in config.to_dict(config.Config()).items():
        for key in values:
            assert f"`{section}.{key}`" in ref


def test_cli_config_errors_have_no_traceback(ravas_home):
    env = {"RAVAS_HOME": str(ravas_home), "PATH": "/usr/bin:/bin", "RAVAS_MODELS_DIR": os.environ["RAVAS_MODELS_DIR"]}
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "config", "set", "audio.block_ms", "0"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2
    assert "audio.block_ms: must be 5..200, got 0" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "config", "set", "audio.voice", "ringmod"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "ravasd", "config", "show"], capture_output=True, text=True, env=env)
    assert yaml.safe_load(r.stdout)["audio"]["voice"] == "ringmod"


def test_config_set_and_run_refuse_unknown_voice_and_avatar_names(ravas_home):
    """An unknown name is refused where it enters, before anything is saved or started."""
    env = {"RAVAS_HOME": str(ravas_home), "PATH": "/usr/bin:/bin", "RAVAS_MODELS_DIR": os.environ["RAVAS_MODELS_DIR"]}
    cli = lambda *a: subprocess.run(
        [sys.executable, "-m", "ravasd", *a],
        capture_output=True,
        text=True,  # noqa: E731
        env=env,
        timeout=120,
    )
    for key, value, msg in (
        ("audio.voice", "robot", "unknown voice 'robot'"),
        ("video.avatar", "nobody", "unknown avatar 'nobody'"),
    ):
        r = cli("config", "set", key, value)
        assert r.returncode == 2 and msg in r.stderr and "choose one of" in r.stderr and "Traceback" not in r.stderr
    assert not config.paths.config_file().exists()  # nothing written
    r = cli("config", "set", "video.avatar", "tabby")
    assert r.returncode == 0, r.stderr
    r = cli("run", "--avatar", "nobody", "--duration", "2", "--no-tray")
    assert r.returncode == 2 and "unknown avatar 'nobody'" in r.stderr and "Traceback" not in r.stderr


def test_each_setting_says_how_a_running_daemon_applies_it():
    """The apply policy is the field's own (one place): the daemon's `set`, the settings window and the
    config reference all read it."""
    from ravasd.config import APPLY, LIVE, NEXT_START, RESTART, apply_policy
    from ravasd.daemon.service import settings_effect

    assert apply_policy("audio.voice") == LIVE and apply_policy("video.framing") == LIVE
    assert apply_policy("video.camera") == RESTART and apply_policy("audio.input_device") == RESTART
    assert apply_policy("engine.hang_timeout_ms") == NEXT_START and apply_policy("audio.sample_rate") == NEXT_START
    assert settings_effect("video.fps") == RESTART
    for bad, hint in (("audio.vioce", "Did you mean 'voice'"), ("vidoe.fps", "Did you mean 'video'")):
        with pytest.raises(ConfigError, match=hint):
            apply_policy(bad)
    rows = [line for line in config.reference().splitlines() if line.startswith("| `")]
    assert all(any(w in row for w in ("at once", "restarts", "next start")) for row in rows)
    assert "| `video.camera` |" in next(r for r in rows if "video.camera" in r) and set(APPLY) == {
        LIVE,
        RESTART,
        NEXT_START,
    }
