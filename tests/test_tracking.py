"""Face tracking (real MediaPipe model), pose filtering, FaceMask converter, detection logs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_MODELS
from helpers import CAMERA_LIMIT, leaks
from skimage import data

from ravasd.engine.frames import AnonFrame, RawFrame
from ravasd.errors import MediaError
from ravasd.video.detection_log import DetectionLogWriter, read_log
from ravasd.video.filters import OneEuroFilter, PoseFilter
from ravasd.video.tracking import ARKIT_NAMES, FaceTracker

MODEL = SHARED_MODELS / "face_landmarker.task"


@pytest.fixture(scope="module")
def tracker():
    t = FaceTracker(MODEL)
    yield t
    t.close()


@pytest.fixture(scope="module")
def astronaut():
    return np.ascontiguousarray(data.astronaut())


def test_tracker_finds_the_face_and_maps_blendshapes_by_name(tracker, astronaut):
    pose = tracker.track(astronaut, 0.0)
    assert pose is not None
    assert pose.weights.shape == (52,) and pose.landmarks.shape == (478, 3)
    assert pose.weights[ARKIT_NAMES.index("tongueOut")] == 0.0  # the model has no tongueOut
    assert {c[2] for c in pose.categories} >= set(ARKIT_NAMES) - {"tongueOut"}
    assert abs(pose.roll) < 25 and abs(pose.yaw) < 35
    mirrored = tracker.track(np.ascontiguousarray(astronaut[:, ::-1]), 0.04)
    assert mirrored is not None and np.sign(mirrored.yaw) != np.sign(pose.yaw) or abs(pose.yaw) < 3
    assert tracker.track(np.zeros_like(astronaut), 0.08) is None


def test_one_euro_smooths_noise_and_follows_steps():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    rng = np.random.default_rng(0)
    noisy = [f(np.array([0.5 + rng.normal(0, 0.05)]), i / 30)[0] for i in range(90)]
    assert np.std(noisy[30:]) < 0.05 / 3
    g = OneEuroFilter(min_cutoff=1.0, beta=5.0)
    out = [g(np.array([0.0 if i < 10 else 1.0]), i / 30)[0] for i in range(30)]
    assert out[9] == 0.0 and out[-1] > 0.95  # a real movement is followed within ~0.6 s


def test_pose_filter_calibration_and_left_right_noise():
    from ravasd.video.tracking import FacePose

    def pose(w, t, yaw=10.0):
        return FacePose(
            np.asarray(w, np.float32), yaw, 0.0, 0.0, np.eye(4, dtype=np.float32), np.zeros((478, 3), np.float32), t
        )

    pf = PoseFilter(min_cutoff=50, beta=0)
    rest = np.zeros(52)
    rest[ARKIT_NAMES.index("mouthSmileLeft")] = 0.3
    rest[ARKIT_NAMES.index("mouthSmileRight")] = 0.25
    pf.start_calibration()
    for i in range(40):
        pf.apply(pose(rest, i / 30))
    assert not pf.calibrating
    w, yaw, _, _ = pf.apply(pose(rest, 2.0))
    assert w.max() < 0.02 and abs(yaw) < 0.5  # the resting face now reads neutral
    smile = rest.copy()
    smile[ARKIT_NAMES.index("mouthSmileLeft")] = 0.9
    smile[ARKIT_NAMES.index("mouthSmileRight")] = 0.85
    for i in range(10):
        w, *_ = pf.apply(pose(smile, 2.1 + i / 30))
    li, ri = ARKIT_NAMES.index("mouthSmileLeft"), ARKIT_NAMES.index("mouthSmileRight")
    assert w[li] == pytest.approx(w[ri]) and w[li] > 0.7  # symmetric smile stays symmetric


def test_facemask_draws_the_mesh_without_camera_pixels_and_fades_when_lost(astronaut, tmp_path):
    from ravasd.video.facemask import BG, FaceMaskConverter

    log = tmp_path / "det.json"
    conv = FaceMaskConverter(FaceTracker(MODEL), 640, 360, log_path=str(log))
    frames = [conv.process(RawFrame(astronaut, i / 30, i)) for i in range(5)]
    assert all(type(f) is AnonFrame for f in frames) and conv.face_visible
    out = frames[-1].image
    assert out.shape == (360, 640, 3) and (out != BG).any(axis=2).mean() > 0.01
    # no camera pixel: high-passed output does not correlate with the (scaled, centred) input
    placed = np.zeros_like(out)
    placed[:, 140:500] = __import__("cv2").resize(astronaut, (360, 360))
    assert leaks(out, [placed]) < CAMERA_LIMIT
    blank = np.zeros_like(astronaut)
    held = conv.process(RawFrame(blank, 5 / 30 + 0.3, 6)).image
    assert not conv.face_visible and np.array_equal(held, out)  # held for 0.5 s
    gone = conv.process(RawFrame(blank, 5 / 30 + 1.2, 7)).image
    assert (gone == BG).all()  # then an empty stage, never a raw frame
    conv.close()
    entries = json.loads(log.read_text())
    assert entries[-1] == {} and len(entries) == 6
    first = entries[0]
    assert set(first) == {"blendshapes", "transformation_matrix", "ts"} and len(first["transformation_matrix"]) == 16
    assert {"index", "score", "categoryName", "displayName"} <= set(first["blendshapes"][0])
    poses = list(read_log(log))
    assert len(poses) == 5 and poses[0].weights.shape == (52,)


def test_detection_log_reader_tolerates_a_cut_log_and_rejects_garbage(tmp_path):
    from ravasd.video.tracking import FacePose

    p = tmp_path / "cut.json"
    w = DetectionLogWriter(p)
    m = np.eye(4, dtype=np.float32)
    m[0, 3] = 5.0  # translation lives in the last column; column-major puts it at [12]
    w.write(FacePose(np.full(52, 0.5, np.float32), 0, 0, 0, m, np.zeros((478, 3)), 1.25))
    w.fh.close()  # crashed before close(): no closing bracket
    assert json.loads(p.read_text().rstrip(",\n") + "]")[0]["transformation_matrix"][12] == 5.0
    (pose,) = list(read_log(p))
    assert pose.ts == 1.25 and pose.matrix[0, 3] == 5.0 and pose.weights[0] == 0.5
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MediaError, match="not valid JSON"):
        list(read_log(bad))


def test_anonymize_with_facemask_on_a_face_video(tmp_path, astronaut):
    """A clip of a real face (the astronaut, moving) through `anonymize` with face tracking."""
    import av

    from ravasd.config import load_config
    from ravasd.research.anonymize import anonymize
    from ravasd.video.facemask import BG

    src = tmp_path / "face.mp4"
    inputs = []
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 512, 512, "yuv420p"
        for i in range(25):
            img = np.roll(astronaut, 3 * i, axis=1)
            inputs.append(img)
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        c.mux(s.encode(None))
    out = tmp_path / "mask.mp4"
    res = anonymize(src, out, load_config(overrides={"video.converter": "facemask"}), progress=False)
    assert res.frames == 25 and res.converter_errors == 0
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 25
    drawn = [(np.abs(f.astype(int) - BG).sum(axis=2) > 60).mean() for f in frames]
    assert min(drawn) > 0.005  # the mesh is there in every frame
    assert max(leaks(f, inputs[::4]) for f in frames[::4]) < CAMERA_LIMIT
