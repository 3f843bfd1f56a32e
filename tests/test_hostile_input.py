"""Hostile input: every loader rejects bad input with one clear error (the project's error types,
never a traceback) in bounded time and memory. A seeded mutation fuzzer (tests/fuzz.py) runs
≥ 1,000 cases per loader — YAML config, detection log, glTF/GLB/VRM, media files, control-socket
requests — plus the crashers found while building it (alias bomb, deep nesting, invalid UTF-8,
wrong-typed glTF, unknown codec, oversized and flooding control clients).
"""

from __future__ import annotations

import json
import random
import socket
import stat
import struct
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml
from fuzz import dumps, mutate_bytes, mutate_tree

from ravasd.errors import RavasError

CASES = 1000
BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
)


def _only_ours(fn, *args):
    """Run ``fn``; a RavasError is an accepted refusal, anything else fails the test (with the case)."""
    try:
        return fn(*args)
    except RavasError:
        return None


# ------------------------------------------------------------------ YAML config
def test_yaml_alias_bomb_deep_nesting_and_bad_utf8_are_refused_in_bounded_memory(tmp_path):
    from ravasd.config import ConfigError, read_yaml

    cases = {
        "bomb": BOMB.encode(),
        "deep_list": b"a: " + b"[" * 100_000 + b"]" * 100_000,
        "deep_map": ("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 300))).encode(),
        "utf8": b"video:\n  fps: \xff\xfe\n",
        "huge": b"# " + b"x" * 300_000 + b"\n",
    }
    for name, data in cases.items():
        f = tmp_path / f"{name}.yaml"
        f.write_bytes(data)
        tracemalloc.start()
        with pytest.raises(ConfigError) as err:
            read_yaml(f)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert str(f) in str(err.value)
        assert peak < 20 * 2**20, f"{name}: {peak / 2**20:.0f} MB while refusing it"
    from ravasd.config import parse_value

    assert parse_value("#336699") == "#336699" and parse_value("null") is None and parse_value("12") == 12
    assert isinstance(parse_value(BOMB), str)  # a --set value never expands aliases


def test_config_loader_fuzz(tmp_path):
    from ravasd.config import Config, read_yaml, to_dict

    rng = random.Random(1)
    base = to_dict(Config())
    text = yaml.safe_dump(base)
    f = tmp_path / "c.yaml"
    accepted = 0
    for i in range(CASES):
        if i % 2:
            data = mutate_bytes(text.encode(), rng)
        else:
            try:
                data = yaml.safe_dump(mutate_tree(base, rng)).encode()
            except (yaml.YAMLError, RecursionError):
                data = mutate_bytes(text.encode(), rng)
        f.write_bytes(data)
        try:
            got = read_yaml(f)
            assert isinstance(got, dict)
            accepted += 1
        except RavasError:
            pass
        except Exception as err:  # pragma: no cover - a finding
            raise AssertionError(f"case {i}: {type(err).__name__}: {err}\n{data[:300]!r}") from err
    assert 0 < accepted < CASES  # the fuzzer made both valid and invalid files


# ------------------------------------------------------------------ detection logs
def _log_text(tmp_path: Path) -> str:
    from ravasd.video.detection_log import DetectionLogWriter
    from ravasd.video.tracking import FacePose

    p = tmp_path / "log.json"
    w = DetectionLogWriter(p)
    for k in range(3):
        w.write(
            FacePose(
                np.full(52, 0.1 * k, np.float32),
                0,
                0,
                0,
                np.eye(4, dtype=np.float32),
                np.zeros((478, 3), np.float32),
                k / 30,
            )
        )
    w.close()
    return p.read_text()


def test_detection_log_fuzz(tmp_path):
    from ravasd.video.detection_log import read_log

    rng = random.Random(2)
    text = _log_text(tmp_path)
    doc = json.loads(text)
    f = tmp_path / "fuzzed.json"
    crashers = [
        b"[" * 100_000,
        b"\xff\xfe[{}]",
        b'[{"blendshapes": 5, "transformation_matrix": [], "ts": 1}]',
        b'[{"blendshapes": [[]], "transformation_matrix": [0], "ts": "x"}]',
        b"[1, 2, 3]",
        b'[{"blendshapes": [], "transformation_matrix": [1e999], "ts": 0}]',
    ]
    for i in range(CASES + len(crashers)):
        if i < len(crashers):
            data = crashers[i]
        elif i % 2:
            data = mutate_bytes(text.encode(), rng)
        else:
            data = dumps(mutate_tree(doc, rng)).encode()
        f.write_bytes(data)
        try:
            for pose in read_log(f):
                assert pose.weights.shape == (52,) and np.isfinite(pose.matrix).all()
        except RavasError:
            pass
        except Exception as err:  # pragma: no cover - a finding
            raise AssertionError(f"case {i}: {type(err).__name__}: {err}\n{data[:300]!r}") from err


# ------------------------------------------------------------------ glTF / GLB / VRM
def _tiny_glb() -> tuple[dict, bytes]:
    """A skinned, textured triangle with a morph target named like ARKit: every feature the loader reads."""
    import cv2

    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    nrm = np.tile(np.array([0, 0, 1], np.float32), (3, 1))
    uv = np.array([[0, 0], [1, 0], [0, 1]], np.float32)
    idx = np.array([0, 1, 2], np.uint16)
    delta = np.array([[0, 0, 0.1], [0, 0, 0], [0, 0, 0]], np.float32)
    joints = np.zeros((3, 4), np.uint8)
    weights = np.tile(np.array([1, 0, 0, 0], np.float32), (3, 1))
    ibm = np.eye(4, dtype=np.float32).reshape(1, 16)
    png = cv2.imencode(".png", np.full((2, 2, 3), 200, np.uint8))[1].tobytes()
    blobs = [pos, nrm, uv, idx, delta, joints, weights, ibm]
    views, accessors, binary = [], [], b""
    kinds = [
        ("VEC3", 5126),
        ("VEC3", 5126),
        ("VEC2", 5126),
        ("SCALAR", 5123),
        ("VEC3", 5126),
        ("VEC4", 5121),
        ("VEC4", 5126),
        ("MAT4", 5126),
    ]
    for arr, (typ, comp) in zip(blobs, kinds):
        data = arr.tobytes()
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(data)})
        accessors.append({"bufferView": len(views) - 1, "componentType": comp, "count": len(arr), "type": typ})
        binary += data + b"\0" * (-len(data) % 4)
    views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(png)})
    binary += png + b"\0" * (-len(png) % 4)
    gltf = {
        "asset": {"version": "2.0", "copyright": "test"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "root", "children": [1, 2]}, {"name": "Head", "mesh": 0, "skin": 0}, {"name": "joint"}],
        "meshes": [
            {
                "name": "face",
                "primitives": [
                    {
                        "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2, "JOINTS_0": 5, "WEIGHTS_0": 6},
                        "indices": 3,
                        "material": 0,
                        "targets": [{"POSITION": 4}],
                    }
                ],
                "extras": {"targetNames": ["jawOpen"]},
            }
        ],
        "materials": [
            {
                "pbrMetallicRoughness": {"baseColorFactor": [1, 0.8, 0.7, 1], "baseColorTexture": {"index": 0}},
                "alphaMode": "OPAQUE",
            }
        ],
        "textures": [{"source": 0}],
        "images": [{"bufferView": len(views) - 1, "mimeType": "image/png"}],
        "skins": [{"joints": [2], "inverseBindMatrices": 7}],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    return gltf, binary


def _pack_glb(gltf: dict, binary: bytes) -> bytes:
    js = json.dumps(gltf).encode()
    js += b" " * (-len(js) % 4)
    body = struct.pack("<II", len(js), 0x4E4F534A) + js + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(body)) + body


def test_gltf_loader_fuzz_and_what_is_accepted_renders(tmp_path):
    from ravasd.video.avatar.library import check_renders
    from ravasd.video.avatar.model import load_avatar

    gltf, binary = _tiny_glb()
    glb = _pack_glb(gltf, binary)
    f = tmp_path / "a.glb"
    f.write_bytes(glb)
    check_renders(load_avatar(f))  # the seed itself is a valid, renderable avatar
    rng = random.Random(3)
    crashers = [  # wrong types found by probing: a list where an object belongs, a short colour, a cycle
        dict(gltf, nodes=[[1], {"mesh": 0}]),
        dict(gltf, materials=[{"pbrMetallicRoughness": {"baseColorFactor": [1]}}]),
        dict(gltf, nodes=[{"children": [1]}, {"children": [0], "mesh": 0}]),
        dict(gltf, accessors=[dict(gltf["accessors"][0], count=2**40)] + gltf["accessors"][1:]),
        dict(gltf, buffers=[{"uri": "../../../../etc/passwd", "byteLength": 10}]),
        [1, 2, 3],
    ]
    rendered = 0
    for i in range(CASES + len(crashers)):
        if i < len(crashers):
            data = _pack_glb(crashers[i], binary) if isinstance(crashers[i], dict) else json.dumps(crashers[i]).encode()
        elif i % 2:
            data = mutate_bytes(glb, rng)
        else:
            data = _pack_glb(mutate_tree(gltf, rng), binary)
        f.write_bytes(data)
        try:
            model = load_avatar(f)
            if rendered < 120:  # what `avatars add` accepts must render
                rendered += 1
                _only_ours(check_renders, model)
        except RavasError:
            pass
        except Exception as err:  # pragma: no cover - a finding
            raise AssertionError(f"case {i}: {type(err).__name__}: {err}") from err
    assert rendered > 10


def test_avatars_add_refuses_a_file_that_loads_but_cannot_render(tmp_path, monkeypatch):
    from ravasd.video.avatar import library
    from ravasd.video.avatar.model import AvatarError

    gltf, binary = _tiny_glb()
    f = tmp_path / "ok.glb"
    f.write_bytes(_pack_glb(gltf, binary))
    assert library.add(f).exists()

    def broken(self, *a, **k):
        raise IndexError("list index out of range")

    monkeypatch.setattr("ravasd.video.avatar.renderer.AvatarRenderer.render", broken)
    g = tmp_path / "cannot.glb"
    g.write_bytes(_pack_glb(gltf, binary))
    with pytest.raises(AvatarError, match="cannot be drawn"):
        library.add(g)
    assert not (library.user_dir() / "cannot.glb").exists()


# ------------------------------------------------------------------ media files
def test_media_reader_fuzz_and_unknown_codec(tmp_path):
    from mediagen import make_audio, make_video

    from ravasd.media.reader import iter_media, probe

    seeds = [
        make_video(tmp_path / "v.mp4", seconds=0.4, width=64, height=48).read_bytes(),
        make_audio(tmp_path / "a.wav", seconds=0.3).read_bytes(),
        make_video(tmp_path / "v.mkv", seconds=0.4, width=64, height=48).read_bytes(),
    ]
    rng = random.Random(4)
    for i in range(CASES):
        seed = seeds[i % len(seeds)]
        f = tmp_path / f"fuzz{Path(['v.mp4', 'a.wav', 'v.mkv'][i % 3]).suffix}"
        f.write_bytes(mutate_bytes(seed, rng))
        try:
            probe(f)
            for n, _ in enumerate(iter_media(f, 16000)):
                if n > 200:
                    break
        except RavasError:
            pass
        except Exception as err:  # pragma: no cover - a finding
            raise AssertionError(f"case {i}: {type(err).__name__}: {err}") from err
    # a stream whose codec FFmpeg cannot decode: a clear refusal, not an AttributeError
    import av

    unknown = tmp_path / "unknown.mkv"
    with av.open(str(unknown), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
    raw = unknown.read_bytes().replace(b"A_PCM/INT/LIT", b"A_XYZ/INT/LIT")  # a Matroska codec id FFmpeg lacks
    unknown.write_bytes(raw)
    with pytest.raises(RavasError):
        probe(unknown)


# ------------------------------------------------------------------ control socket
def test_control_requests_fuzz_never_hit_an_internal_error(tmp_path):
    from ravasd.config import Config
    from ravasd.daemon.control import ControlServer
    from ravasd.daemon.service import Daemon

    daemon = Daemon(Config())  # not started: every handler must still answer sensibly
    server = ControlServer(daemon.handle, path=tmp_path / "unused.sock")
    seeds = [
        {"cmd": "status"},
        {"cmd": "voice", "name": "tenor"},
        {"cmd": "avatar", "name": "sol"},
        {"cmd": "set", "key": "video.fps", "value": "15"},
        {"cmd": "set", "changes": {"video.background": "#112233"}},
        {"cmd": "frame", "max_width": 160},
        {"cmd": "sample", "seconds": 1},
        {"cmd": "preview", "on": False},
        {"cmd": "level"},
        {"cmd": "calibrate"},
        {"cmd": "pause"},
    ]
    rng = random.Random(5)
    for i in range(CASES):
        seed = seeds[i % len(seeds)]
        if i % 3 == 0:
            line = mutate_bytes(json.dumps(seed).encode(), rng)
        else:
            line = dumps(mutate_tree(seed, rng)).encode()
        reply = server.dispatch(line)
        assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), (i, line[:200])
        assert not reply.get("internal"), f"case {i}: {reply['error']}\n{line[:300]!r}"
        json.dumps(reply)  # every reply can be sent
    assert server.dispatch(b"[" * 100_000)["ok"] is False


def _fill_backlog(path: Path) -> list[socket.socket]:
    """Connect to the listening ``path`` until its backlog is full (a non-blocking connect says EAGAIN)."""
    out = []
    for _ in range(64):
        c = socket.socket(socket.AF_UNIX)
        c.setblocking(False)
        try:
            c.connect(str(path))
        except BlockingIOError:
            c.close()
            return out
        out.append(c)
    pytest.skip("this kernel never reported a full backlog")


def test_a_full_backlog_makes_the_client_wait_not_fail(tmp_path, monkeypatch):
    """A Unix socket with a timeout does not wait for room in a full backlog (EAGAIN at once): the
    client tries again until its timeout, so a busy daemon answers late instead of "cannot be reached"."""
    from ravasd.daemon import control

    path = tmp_path / "c.sock"
    monkeypatch.setattr(control, "socket_path", lambda: path)
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(str(path))
        srv.listen(0)
        parked = _fill_backlog(path)  # connections nobody accepts yet

        def serve():  # the daemon catches up a moment later (the parked clients give up)
            threading.Event().wait(0.3)
            for c in parked:
                c.close()
            while True:
                conn, _ = srv.accept()
                with conn:
                    data = conn.recv(1024)
                    if data:
                        conn.sendall(b'{"ok": true, "echo": "late"}\n')
                        return

        threading.Thread(target=serve, daemon=True).start()
        assert control.request("status", timeout=10)["echo"] == "late"  # (giving up: the test below)


def test_control_socket_backlog_long_lines_and_a_full_backlog(tmp_path, monkeypatch):
    from ravasd.daemon import control

    path = tmp_path / "c.sock"
    server = control.ControlServer(lambda req: {"ok": True, "echo": req["cmd"]}, path=path)
    server.start()
    monkeypatch.setattr(control, "socket_path", lambda: path)
    try:
        results: list = []

        def client():
            try:
                results.append(control.request("status", timeout=20)["echo"])
            except RavasError as err:
                results.append(str(err))

        threads = [threading.Thread(target=client) for _ in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results.count("status") == 200, [r for r in results if r != "status"][:3]
        # a 1 MB line: refused with an answer, never buffered whole; the server keeps serving
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(path))
            try:
                s.sendall(b'{"cmd": "' + b"x" * 1_000_000)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and hung up before taking it all: that is the point
            reply = json.loads(s.makefile("rb").readline())
        assert reply["ok"] is False and "longer than" in reply["error"]
        assert control.request("status")["echo"] == "status"
    finally:
        server.close()
    # a daemon whose backlog is full: `ctl` says so instead of a BlockingIOError traceback
    full = tmp_path / "full.sock"
    lst = socket.socket(socket.AF_UNIX)
    lst.bind(str(full))
    lst.listen(0)
    monkeypatch.setattr(control, "socket_path", lambda: full)
    held = _fill_backlog(full)
    try:
        with pytest.raises(RavasError, match="cannot be reached"):  # after waiting its timeout for room
            control.request("status", timeout=1)
    finally:
        for s in held:
            s.close()
        lst.close()


def test_control_socket_works_when_ravas_home_is_longer_than_a_unix_socket_path(tmp_path, monkeypatch):
    from ravasd.daemon import control

    home = tmp_path / ("very-long-folder-name-" * 5) / "ravas-home"
    monkeypatch.setenv("RAVAS_HOME", str(home))
    path = control.socket_path()
    assert len(str(home / "run" / "ravasd.sock")) > 108 and len(str(path)) < 100
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    server = control.ControlServer(lambda req: {"ok": True, "echo": req["cmd"]})
    server.start()
    try:
        assert control.request("status")["echo"] == "status"
    finally:
        server.close()
