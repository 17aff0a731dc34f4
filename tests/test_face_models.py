"""Face detector / 478-point landmarks / blendshapes on the installed package.

Real-face input: skimage's ``astronaut`` (NASA, public domain). Reference data
in tests/data is produced by tools/vendor_face_models.py: LiteRT outputs of the
original .tflite models (parity) and Google's MediaPipe 0.10.21 FaceLandmarker
run on the same image (end-to-end equivalence). No network needed.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from f2fcli.tracking import onnx_runtime
from f2fcli.tracking.channels import BLENDSHAPE_NAMES
from f2fcli.tracking.detector import FaceDetector, ssd_anchors
from f2fcli.tracking.landmarks import (BLENDSHAPE_SUBSET, BlendshapeModel, FaceLandmarker, FaceRoi,
                                       roi_from_detection)
from f2fcli.tracking.tracker import VideoFaceTracker

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(threads=1)


@pytest.fixture(scope="module")
def landmarker() -> FaceLandmarker:
    return FaceLandmarker(threads=1)


@pytest.fixture(scope="module")
def blendshapes() -> BlendshapeModel:
    return BlendshapeModel(threads=1)


@pytest.fixture(scope="module")
def face(astronaut, detector, landmarker):
    (det,) = detector(astronaut)
    return det, landmarker(astronaut, roi_from_detection(det))


def _pipeline(image, detector, landmarker):
    det = detector(image)[0]
    return det, landmarker(image, roi_from_detection(det))


# -- packaged files -------------------------------------------------------------

def test_weights_match_provenance():
    prov = json.loads(onnx_runtime.weights_file("provenance.json").read_text())
    for name, info in prov["derived"].items():
        assert hashlib.sha256(onnx_runtime.weights_file(name).read_bytes()).hexdigest() == info["sha256"], name
    assert prov["source"]["task_sha256"] == "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
    assert all(r["ok"] for r in prov["parity"]["results"])
    assert prov["blendshape_subset"]["indices"] == list(BLENDSHAPE_SUBSET)
    for extra in ("LICENSE-APACHE-2.0.txt", "NOTICE.txt", "PROVENANCE.md"):
        assert onnx_runtime.weights_file(extra).read_text()
    with pytest.raises(FileNotFoundError):
        onnx_runtime.weights_file("no_such_model.onnx")


def test_canonical_mesh():
    with onnx_runtime.weights_file("canonical_face_mesh.npz").open("rb") as f:
        z = np.load(f)
        mesh = {k: z[k] for k in z.files}
    assert mesh["vertices"].shape == (468, 3) and mesh["vertices"].dtype == np.float32
    assert mesh["uv"].shape == (468, 2) and mesh["uv"].dtype == np.float32
    assert mesh["triangles"].shape == (898, 3) and mesh["triangles"].dtype == np.int32
    assert mesh["triangles"].min() == 0 and mesh["triangles"].max() == 467
    assert mesh["procrustes_indices"].shape == (33,) and mesh["procrustes_weights"].shape == (33,)
    v = mesh["vertices"]
    np.testing.assert_allclose(np.ptp(v, axis=0), [15.49, 17.67, 10.02], atol=0.01)  # cm
    assert np.linalg.norm(v[33] - v[263]) == pytest.approx(8.89, abs=0.01)
    assert mesh["procrustes_weights"].sum() == pytest.approx(1.055, abs=1e-3)
    w = dict(zip(mesh["procrustes_indices"].tolist(), mesh["procrustes_weights"].tolist()))
    assert w[4] == pytest.approx(0.07091, abs=1e-5) and w[129] == w[358]


def test_session_threads(monkeypatch):
    monkeypatch.setenv(onnx_runtime.THREADS_ENV, "2")
    assert onnx_runtime.default_threads() == 2
    s = onnx_runtime.create_session("face_blendshapes.onnx")
    assert s.get_providers() == ["CPUExecutionProvider"]
    monkeypatch.delenv(onnx_runtime.THREADS_ENV)
    assert onnx_runtime.default_threads() == 1
    assert onnx_runtime.get_session("face_blendshapes.onnx") is onnx_runtime.get_session("face_blendshapes.onnx", 1)


# -- parity with the original TFLite models (LiteRT reference outputs) ------------

def _upsample2x(a: np.ndarray) -> np.ndarray:
    """Same float64 bilinear 2x as tools/vendor_face_models.py (exact input)."""
    a = a.astype(np.float64)

    def along(x, axis):
        n = x.shape[axis]
        prev = np.concatenate([np.take(x, [0], axis), np.take(x, range(n - 1), axis)], axis)
        nxt = np.concatenate([np.take(x, range(1, n), axis), np.take(x, [-1], axis)], axis)
        out = np.stack([0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt], axis=axis + 1)
        shape = list(x.shape)
        shape[axis] *= 2
        return out.reshape(shape)

    return along(along(a, 0), 1)


def _close(got, ref, name):
    # onnxruntime vs LiteRT kernels; CPUs differ a little, so 5x the build check
    tol = 5e-4 + 2.5e-4 * np.abs(ref).max()
    assert np.abs(got - ref).max() <= tol, f"{name}: {np.abs(got - ref).max()} > {tol}"


def test_onnx_matches_litert_reference(astronaut):
    ref = dict(np.load(DATA / "face_model_reference.npz"))
    det_in = (astronaut.reshape(128, 4, 128, 4, 3).astype(np.float64).mean(axis=(1, 3)) / 127.5 - 1.0)
    reg, cls = onnx_runtime.get_session("face_detector.onnx").run(None, {"input": det_in.astype(np.float32)[None]})
    _close(cls.reshape(-1), ref["face_detector.classificators"], "classificators")
    top = ref["face_detector.regressors_top_idx"]
    _close(reg.reshape(-1, 16)[top], ref["face_detector.regressors_top"], "regressors")

    y0, x0 = ref["landmark_crop_yx"]
    lm_in = (_upsample2x(astronaut[y0:y0 + 128, x0:x0 + 128]) / 255.0).astype(np.float32)[None]
    sess = onnx_runtime.get_session("face_landmarks_detector.onnx")
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": lm_in})))
    for k in ("landmarks", "presence_logit", "tongue_out"):
        _close(out[k].reshape(-1), ref[f"face_landmarks_detector.{k}"], k)

    bs = onnx_runtime.get_session("face_blendshapes.onnx").run(None, {"points": ref["blendshapes_input"][None]})[0]
    _close(bs, ref["face_blendshapes.blendshapes"], "blendshapes")


# -- detector ------------------------------------------------------------------

def test_anchors():
    a = ssd_anchors()
    assert a.shape == (896, 2)
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8])
    assert (a[:2] == a[0]).all() and (a[512:518] == a[512]).all()


def test_detect_astronaut(face):
    det, _ = face
    x, y, w, h = det.box
    # face of the astronaut: centre ~ (225, 130), ~95 px box
    assert 200 < x + w / 2 < 250 and 105 < y + h / 2 < 155
    assert 70 < w < 120 and 70 < h < 120
    assert det.score > 0.8
    kp = det.keypoints
    assert kp.shape == (6, 2)
    assert kp[0, 0] < kp[2, 0] < kp[1, 0]  # subject's right eye left of nose, left eye right
    assert max(kp[0, 1], kp[1, 1]) < kp[2, 1] < kp[3, 1]  # eyes above nose above mouth
    inside = (kp[:4] >= det.box[:2]) & (kp[:4] <= det.box[:2] + det.box[2:])
    assert inside.all()


def test_detector_matches_mediapipe(face):
    mp = np.load(DATA / "mediapipe_reference.npz")
    det, _ = face
    assert det.score == pytest.approx(float(mp["detection_score"]), abs=1e-3)
    np.testing.assert_allclose(det.keypoints, mp["detection_keypoints"], atol=0.05)
    # MediaPipe Tasks reports integer pixel boxes
    assert np.abs(det.box - mp["detection_box_int"]).max() < 1.0


def test_blank_and_grey_images(detector, landmarker, astronaut):
    assert detector(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector(np.full((300, 200), 128, np.uint8)) == []
    lost = landmarker(np.zeros((480, 640, 3), np.uint8), FaceRoi(320, 240, 200))
    assert not lost.present and lost.presence < 0.5
    assert not VideoFaceTracker(threads=1)(np.zeros((240, 320, 3), np.uint8)).found
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    (gdet,) = detector(grey)  # 2-D input
    (cdet,) = detector(astronaut)
    assert np.abs(gdet.center - cdet.center).max() < 6


def test_face_near_border(detector, landmarker, astronaut):
    img = np.ascontiguousarray(astronaut[40:300, 150:])  # face ~30 px from the left edge
    det, lm = _pipeline(img, detector, landmarker)
    assert lm.present and det.box[0] < 40
    shifted = lm.points[:, :2] + (150, 40)
    _, full = _pipeline(astronaut, detector, landmarker)
    assert np.abs(shifted - full.points[:, :2]).mean() < 1.0


def test_batch_equals_single(detector, landmarker, astronaut):
    other = np.ascontiguousarray(astronaut[:, ::-1])
    batch = detector.detect_batch([astronaut, other])
    for img, res in zip([astronaut, other], batch):
        (single,) = detector(img)
        np.testing.assert_allclose(res[0].box, single.box, atol=1e-3)
    (det,) = batch[0]
    rois = [roi_from_detection(det), FaceRoi(det.center[0] + 3, det.center[1], 150, 0.1)]
    both = landmarker.detect_batch(astronaut, rois)
    for roi, res in zip(rois, both):
        np.testing.assert_allclose(res.points, landmarker(astronaut, roi).points, atol=1e-3)


# -- landmarks -----------------------------------------------------------------

def test_landmarks_on_face(face):
    det, lm = face
    p = lm.points
    assert p.shape == (478, 3) and p.dtype == np.float32
    assert lm.present and lm.presence > 0.9
    core = p[[33, 133, 362, 263, 1, 13, 14, 61, 291, 468, 473], :2]
    assert ((core >= det.box[:2]) & (core <= det.box[:2] + det.box[2:])).all()
    # subject's right eye (33 outer, 133 inner) is on the image left
    assert p[33, 0] < p[133, 0] < p[362, 0] < p[263, 0]
    assert p[33, 0] < p[468, 0] < p[133, 0] and p[362, 0] < p[473, 0] < p[263, 0]  # irises in the eyes
    assert p[159, 1] < p[1, 1] < p[13, 1] < p[14, 1] < p[152, 1]  # eye, nose, lips, chin
    assert p[1, 2] < 0 < min(p[234, 2], p[454, 2])  # nose tip nearer than the ears
    assert 0.05 < lm.roi.rotation < 0.25  # head tilted ~5 degrees clockwise on screen


def test_landmarks_match_mediapipe(face, blendshapes):
    mp = np.load(DATA / "mediapipe_reference.npz")
    _, lm = face
    d = np.abs(lm.points - mp["landmarks"])
    assert d[:, :2].mean() < 0.05 and d[:, :2].max() < 0.3
    assert d[:, 2].mean() < 0.2
    assert np.abs(blendshapes(lm.points) - mp["blendshapes"]).max() < 0.02
    # same landmarks in -> same blendshapes out
    np.testing.assert_allclose(blendshapes(mp["landmarks"]), mp["blendshapes"], atol=1e-4)


@pytest.mark.parametrize("scale,shift,size", [(1.3, (-60.0, -25.0), (560, 520)),
                                              (0.9, (35.0, 20.0), (520, 500))])
def test_shifted_scaled_copy(detector, landmarker, astronaut, face, scale, shift, size):
    _, ref = face
    a = np.array([[scale, 0.0, shift[0]], [0.0, scale, shift[1]]])
    moved = cv2.warpAffine(astronaut, a, size, flags=cv2.INTER_LINEAR)
    _, lm = _pipeline(moved, detector, landmarker)
    # continuous pixel coordinates: cv2's map acts on pixel centres
    expect = (ref.points[:, :2] - 0.5) @ a[:, :2].T + a[:, 2] + 0.5
    err = np.linalg.norm(lm.points[:, :2] - expect, axis=1)
    assert err.mean() < 1.5 * scale and np.percentile(err, 95) < 3.5 * scale, (err.mean(), err.max())
    np.testing.assert_allclose(lm.points[:, 2], ref.points[:, 2] * scale, atol=3.0 * scale)


def test_tracking_roi(face, landmarker, astronaut):
    _, lm = face
    nxt = lm.next_roi()
    assert abs(nxt.rotation - np.arctan2(*(lm.points[263, 1::-1] - lm.points[33, 1::-1]))) < 1e-6
    again = landmarker(astronaut, nxt)
    assert again.present
    assert np.abs(again.points[:, :2] - lm.points[:, :2]).mean() < 1.0
    tracker = VideoFaceTracker(threads=1)
    first, second = tracker(astronaut), tracker(astronaut)
    assert first.found and first.detected and second.found and not second.detected
    assert tracker.detections == 1
    det, _ = face
    settled = landmarker.settled(astronaut, roi_from_detection(det))
    assert np.abs(first.landmarks - settled.points).max() < 1e-3  # first frame = detection path
    # settling on its own ROI makes the first frame agree with the tracked ones after it
    assert np.abs(second.landmarks - first.landmarks).mean() \
        < 0.5 * np.abs(second.landmarks - lm.points).mean()


# -- blendshapes ---------------------------------------------------------------

def test_blendshapes(face, blendshapes):
    _, lm = face
    assert len(BLENDSHAPE_SUBSET) == 146 and len(set(BLENDSHAPE_SUBSET)) == 146
    assert BLENDSHAPE_SUBSET[-10:] == tuple(range(468, 478))
    assert len(BLENDSHAPE_NAMES) == 52 and BLENDSHAPE_NAMES[0] == "_neutral"
    scores = blendshapes(lm.points)
    assert scores.shape == (52,) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    named = dict(zip(BLENDSHAPE_NAMES, scores))
    assert named["mouthSmileLeft"] > 0.5 and named["mouthSmileRight"] > 0.5  # she smiles
    assert named["jawOpen"] < 0.2 and named["eyeBlinkLeft"] < 0.3
    batch = blendshapes(np.stack([lm.points, lm.points * 2.0 + 7.0]))  # scale/shift invariant
    assert batch.shape == (2, 52)
    np.testing.assert_allclose(batch[0], batch[1], atol=1e-3)
