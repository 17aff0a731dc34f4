"""MP-3DMM model, Procrustes pose, sequence fitting and motion transfer.

All data is synthetic: landmarks are rendered from the model itself with
known pose / identity / expression, so every check has a ground truth.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from f2fcli.geometry import (matrix_to_rotvec, robust_procrustes, rotvec_to_euler_deg,
                             rotvec_to_matrix, similarity_procrustes)
from f2fcli.pipeline.transfer import rest_levels, transfer_expression, transfer_pose, transfer_rig
from f2fcli.tracking import keypoints as kp
from f2fcli.tracking.channels import EXPR_INDEX, N_EXPRESSION
from f2fcli.tracking.face_model import FaceModel, transform_points
from f2fcli.tracking.fitting import FitOptions, choose_reference_frame, fit_image, fit_sequence


@pytest.fixture(scope="module")
def model() -> FaceModel:
    # package data: a missing face mesh is a broken install and fails every test here
    return FaceModel.canonical()


def _random_rotations(rng: np.random.Generator, n: int, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    return axis * np.radians(rng.uniform(0, max_deg, size=(n, 1)))


def _render(model: FaceModel, ident, e, hp, noise_px: float = 0.0, seed: int = 0) -> np.ndarray:
    """Tracker-style landmarks (T, 468, 3): px, y down, z smaller = closer."""
    s, detail = ident if isinstance(ident, tuple) else (ident, None)
    pts = transform_points(model.vertices(s, e, detail), hp, model.pivot)
    pts[..., 2] += 37.0  # arbitrary depth offset: the tracker's z is relative
    if noise_px:
        pts = pts + np.random.default_rng(seed).normal(scale=noise_px, size=pts.shape)
    return pts


def _sparse_expressions(rng: np.random.Generator, t: int) -> np.ndarray:
    e = rng.uniform(0, 1, size=(t, N_EXPRESSION)) * (rng.uniform(size=(t, N_EXPRESSION)) < 0.15)
    e[:, EXPR_INDEX["jawOpen"]] = rng.uniform(0, 0.6, size=t)
    return e


# --- rotations and projection ----------------------------------------------

def test_the_model_is_the_same_whatever_the_blas_threads() -> None:
    # Mirror-symmetric modes once took their signs from rounding noise: a track file's
    # identity coefficients then meant another face on a machine with other BLAS threads.
    code = ("import sys, numpy as np\n"
            "from f2fcli.tracking.face_model import FaceModel\n"
            "m = FaceModel.canonical()\n"
            "np.save(sys.argv[1], m.id_basis)\n"
            "print(m.fingerprint())\n")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in ("1", "2"):
            env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
            path = os.path.join(tmp, f"{threads}.npy")
            done = subprocess.run([sys.executable, "-c", code, path], env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            out.append((done.stdout.strip(), np.load(path)))
    assert out[0][0] == out[1][0]
    np.testing.assert_allclose(out[0][1], out[1][1], atol=1e-9)


def test_rotvec_roundtrip_including_near_pi() -> None:
    rng = np.random.default_rng(1)
    r = _random_rotations(rng, 200, 179.0)
    r[0] = 0.0
    r[1] = [1e-9, 0, 0]
    back = matrix_to_rotvec(rotvec_to_matrix(r))
    np.testing.assert_allclose(back, r, atol=1e-9)
    m = rotvec_to_matrix(r)
    np.testing.assert_allclose(m @ np.swapaxes(m, 1, 2), np.broadcast_to(np.eye(3), m.shape),
                               atol=1e-12)
    # exactly pi: axis defined up to sign
    pi_vec = np.array([0.0, np.pi, 0.0])
    np.testing.assert_allclose(rotvec_to_matrix(matrix_to_rotvec(rotvec_to_matrix(pi_vec))),
                               rotvec_to_matrix(pi_vec), atol=1e-9)


def test_projection_convention(model: FaceModel) -> None:
    """Frontal pose: subject's left eye (x>0) is image right, forehead above chin, nose closest."""
    hp = np.array([0, 0, 0, 256.0, 300.0, 20.0])
    uvw = transform_points(model.mean, hp, model.pivot)
    assert uvw[kp.EYE_OUTER_L, 0] > uvw[kp.EYE_OUTER_R, 0]
    assert uvw[10, 1] < uvw[kp.CHIN, 1]  # forehead top has smaller image y
    np.testing.assert_allclose(uvw[kp.NOSE_TIP, :2], [256.0, 300.0])
    assert uvw[kp.NOSE_TIP, 2] == pytest.approx(uvw[:, 2].min())
    # scale = px per cm: outer eye corners are 8.89 cm apart in the mesh
    d_cm = np.linalg.norm(model.mean[kp.EYE_OUTER_L] - model.mean[kp.EYE_OUTER_R])
    assert uvw[kp.EYE_OUTER_L, 0] - uvw[kp.EYE_OUTER_R, 0] == pytest.approx(20.0 * d_cm)
    # positive pitch (about +x) looks down: the nose tip drops relative to the eyes
    down = transform_points(model.mean, hp + [0.3, 0, 0, 0, 0, 0], model.pivot)
    eyes = [kp.EYE_OUTER_L, kp.EYE_OUTER_R]
    drop = down[kp.NOSE_TIP, 1] - down[eyes, 1].mean()
    assert drop > (uvw[kp.NOSE_TIP, 1] - uvw[eyes, 1].mean()) + 5
    assert rotvec_to_euler_deg(np.array([0.3, 0, 0]))[0] == pytest.approx(np.degrees(0.3))


# --- Procrustes -------------------------------------------------------------

def test_procrustes_recovers_similarity_exactly(model: FaceModel) -> None:
    rng = np.random.default_rng(2)
    t = 6
    rot = rotvec_to_matrix(_random_rotations(rng, t, 60.0))
    scale = rng.uniform(5, 40, t)
    trans = rng.normal(scale=100, size=(t, 3))
    dst = scale[:, None, None] * (model.mean @ np.swapaxes(rot, 1, 2)) + trans[:, None]
    r, s, tt = similarity_procrustes(model.mean, dst, model.pose_weights)
    np.testing.assert_allclose(r, rot, atol=1e-10)
    np.testing.assert_allclose(s, scale, rtol=1e-10)
    np.testing.assert_allclose(tt, trans, atol=1e-8)


def test_procrustes_rejects_reflection(model: FaceModel) -> None:
    mirrored = (model.mean * [-1.0, 1.0, 1.0])[None]
    # Break the mesh's exact symmetry so the mirror image is not itself a rotation of it.
    mirrored = mirrored + np.random.default_rng(3).normal(scale=0.3, size=mirrored.shape)
    r, s, _ = similarity_procrustes(model.mean, mirrored, np.ones(len(model.mean)))
    assert np.linalg.det(r[0]) == pytest.approx(1.0)
    assert s[0] > 0


def test_robust_procrustes_ignores_outliers(model: FaceModel) -> None:
    rng = np.random.default_rng(4)
    rot = rotvec_to_matrix(np.array([[0.1, -0.3, 0.2]]))
    dst = 12.0 * (model.mean @ rot[0].T)[None] + np.array([40.0, -20.0, 5.0])
    bad = rng.choice(len(model.mean), 40, replace=False)
    dst = dst.copy()
    dst[0, bad] += rng.normal(scale=30.0, size=(40, 3))
    w = np.ones(len(model.mean))
    r_plain, _, _ = similarity_procrustes(model.mean, dst, w)
    r_rob, s_rob, _ = robust_procrustes(model.mean, dst, w, steps=6)
    err = lambda r: np.degrees(np.linalg.norm(matrix_to_rotvec(r[0].T @ rot[0])))  # noqa: E731
    assert err(r_rob) < 0.05
    assert err(r_plain) > 5 * err(r_rob)
    assert s_rob[0] == pytest.approx(12.0, rel=1e-3)


def test_in_plane_rotation_recovered_within_0_1_degree(model: FaceModel) -> None:
    rolls = np.radians([-35.0, -12.5, 0.0, 7.3, 21.0, 44.0])
    hp = np.zeros((len(rolls), 6))
    hp[:, 2] = rolls
    hp[:, 3:6] = [320.0, 240.0, 18.0]
    lm = _render(model, None, None, hp, noise_px=0.3, seed=5)
    fit = fit_sequence(model, lm, np.zeros((len(rolls), 52)))
    roll_est = rotvec_to_euler_deg(fit.hp[:, :3])[:, 2]
    assert np.max(np.abs(roll_est - np.degrees(rolls))) < 0.1
    np.testing.assert_allclose(fit.hp[:, 3:5], hp[:, 3:5], atol=0.5)
    np.testing.assert_allclose(fit.hp[:, 5], 18.0, rtol=5e-3)


# --- sequence fitting ---------------------------------------------------------

def _aligned(model: FaceModel, shape: np.ndarray) -> np.ndarray:
    r, s, t = similarity_procrustes(shape, model.mean[None], model.pose_weights)
    return s[0] * shape @ r[0].T + t[0]


def _gauge_detail(model: FaceModel, s: np.ndarray) -> np.ndarray:
    """Detail that similarity-aligns the neutral of ``s`` to the mean shape.

    The fitter defines pose relative to that alignment (the neutral is
    Procrustes-aligned to the mean), so ground truth built this way has an
    unambiguous pose.
    """
    n = model.neutral(s)
    return _aligned(model, n) - n


def _subject_sequence(model, seed: int, t: int = 40):
    """Identity (s, detail), expressions and poses of a synthetic subject."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=model.id_basis.shape[0])
    e = _sparse_expressions(rng, t)
    hp = np.zeros((t, 6))
    hp[:, :3] = _random_rotations(rng, t, 25.0)
    hp[:, 3:5] = rng.uniform(200, 300, size=(t, 2))
    hp[:, 5] = rng.uniform(14, 22, size=t)
    return (s, _gauge_detail(model, s)), e, hp


def test_fit_recovers_pose_identity_and_expression(model: FaceModel) -> None:
    s, e, hp = _subject_sequence(model, 6)
    lm = _render(model, s, e, hp)
    fit = fit_sequence(model, lm, e)  # scores = true activations
    assert fit.valid.all()
    rot_err = np.linalg.norm(matrix_to_rotvec(
        np.swapaxes(rotvec_to_matrix(fit.hp[:, :3]), 1, 2) @ rotvec_to_matrix(hp[:, :3])), axis=1)
    assert np.degrees(rot_err).max() < 0.05
    np.testing.assert_allclose(fit.hp[:, 5], hp[:, 5], rtol=2e-3)
    np.testing.assert_allclose(fit.hp[:, 3:5], hp[:, 3:5], atol=0.1)
    true_neutral = model.neutral(*s)
    assert np.abs(fit.identity.neutral(model) - true_neutral).max() < 0.01  # cm
    np.testing.assert_allclose(fit.expression, e, atol=0.02)
    assert np.nanmax(fit.keypoint_error) < 1e-3


def test_identity_is_shared_across_frames(model: FaceModel) -> None:
    """Two disjoint halves of one video give the same identity; another subject does not."""
    s, e, hp = _subject_sequence(model, 7, t=60)
    lm = _render(model, s, e, hp, noise_px=0.2, seed=8)
    a = fit_sequence(model, lm[:30], e[:30]).identity.neutral(model)
    b = fit_sequence(model, lm[30:], e[30:]).identity.neutral(model)
    s2, e2, hp2 = _subject_sequence(model, 9, t=30)
    c = fit_sequence(model, _render(model, s2, e2, hp2), e2).identity.neutral(model)
    same = np.sqrt(np.mean(np.sum((a - b) ** 2, -1)))
    other = np.sqrt(np.mean(np.sum((a - c) ** 2, -1)))
    assert same < 0.03
    assert other > 10 * same
    # The code is a single (50,) vector for the whole video.
    assert fit_sequence(model, lm, e).identity.s.shape == (model.id_basis.shape[0],)


def test_long_videos_fit_in_chunks_like_short_ones(model: FaceModel) -> None:
    """The bounded-memory path (identity from a subset, frames in chunks) fits as well."""
    s, e, hp = _subject_sequence(model, 11, t=60)
    lm = _render(model, s, e, hp, noise_px=0.2, seed=12)
    lm[[5, 33]] = np.nan
    whole = fit_sequence(model, lm, e)
    chunked = fit_sequence(model, lm, e, options=FitOptions(shared_frames=20, chunk_frames=16))
    np.testing.assert_array_equal(chunked.valid, whole.valid)
    ok = whole.valid
    assert np.abs(chunked.identity.neutral(model) - whole.identity.neutral(model)).max() < 0.02
    np.testing.assert_allclose(chunked.hp[ok, :3], whole.hp[ok, :3], atol=1e-3)  # radians
    np.testing.assert_allclose(chunked.hp[ok, 3:], whole.hp[ok, 3:], atol=0.02)  # px
    np.testing.assert_allclose(chunked.expression[ok], whole.expression[ok], atol=0.02)
    np.testing.assert_allclose(chunked.keypoint_error[ok], whole.keypoint_error[ok], atol=2e-4)


def test_missing_frames_are_flagged_not_fitted(model: FaceModel) -> None:
    s, e, hp = _subject_sequence(model, 10, t=12)
    lm = _render(model, s, e, hp)
    lm[[3, 7]] = np.nan
    fit = fit_sequence(model, lm, e)
    assert list(np.flatnonzero(~fit.valid)) == [3, 7]
    assert np.isnan(fit.hp[3]).all() and np.isfinite(fit.hp[4]).all()


def test_lid_shapes_adapt_to_the_subject(model: FaceModel) -> None:
    """eyeBlink = 1 closes the lid exactly, for the mean eye and for a wider one."""
    e = np.zeros(N_EXPRESSION)
    e[EXPR_INDEX["eyeBlinkRight"]] = 1.0
    up, lo = list(kp.UPPER_LID_R), list(kp.LOWER_LID_R)
    detail = np.zeros_like(model.mean)
    detail[up[1:-1], 1] += 0.3  # a subject with a taller eye opening
    for d in (None, detail):
        closed = model.vertices(None, e, d)
        np.testing.assert_allclose(closed[up], closed[lo], atol=1e-9)
        opened = model.vertices(None, None, d)
        assert np.linalg.norm(opened[159] - opened[145]) > 0.5


def test_keypoints_clamp_lids_at_contact(model: FaceModel) -> None:
    """Blink + squint would push the upper lid past the lower one; keypoints stop at contact."""
    e = np.zeros(N_EXPRESSION)
    e[[EXPR_INDEX["eyeBlinkRight"], EXPR_INDEX["eyeSquintRight"]]] = 1.0
    hp = np.array([0, 0, 0, 100.0, 100.0, 10.0])
    raw = model.keypoints72(None, e, hp, clamp_contacts=False)
    kp72 = model.keypoints72(None, e, hp)
    assert raw[38, 1] > raw[42, 1] + 1.0  # crossed (image y grows downwards)
    assert kp72[38, 1] == pytest.approx(kp72[42, 1])
    np.testing.assert_allclose(kp72[[36, 40, 44, 52]], raw[[36, 40, 44, 52]])


# --- transfer ---------------------------------------------------------------

def test_keypoints_of_driving_motion_on_the_source_identity(model: FaceModel) -> None:
    # the paper's M_d: the driver's pose and expression, the source's identity
    rng = np.random.default_rng(11)
    s_src = rng.normal(size=model.id_basis.shape[0])
    s_drv, e_drv, hp_drv = _subject_sequence(model, 12, t=5)
    got = model.keypoints72(s_src, e_drv, hp_drv)
    # Independent route: whole mesh of the source identity, per frame, then index.
    want = np.stack([model.project(model.vertices(s_src, e_drv[i]), hp_drv[i])[list(kp.K72)]
                     for i in range(len(e_drv))])
    np.testing.assert_allclose(got, want, atol=1e-9)
    drv_kp = model.keypoints72(s_drv[0], e_drv, hp_drv, s_drv[1])
    assert np.abs(got - drv_kp).max() > 2.0  # the driver's identity really is gone
    np.testing.assert_allclose(model.keypoints8(s_src, e_drv, hp_drv), got[:, list(kp.K8)])


def test_transfer_puts_driver_expression_on_source(model: FaceModel) -> None:
    """End to end: fitted source + fitted driver -> keypoints of the source mesh
    deformed by the driver's expression at the driver's pose."""
    rng = np.random.default_rng(13)
    s_src = rng.normal(size=model.id_basis.shape[0])
    s_src = (s_src, _gauge_detail(model, s_src))
    e_src = np.zeros(N_EXPRESSION)
    hp_src = np.array([0.05, -0.1, 0.02, 250.0, 260.0, 19.0])
    src = fit_image(model, _render(model, s_src, e_src, hp_src), e_src)
    s_drv, e_drv, hp_drv = _subject_sequence(model, 14, t=40)
    drv = fit_sequence(model, _render(model, s_drv, e_drv, hp_drv), e_drv)
    hp = transfer_pose(src.hp[0], drv.hp, drv.hp[0], "absolute")
    e = transfer_rig(src.expression[0], drv.expression, drv.expression[0], "absolute")
    got = model.keypoints72(src.identity.s, e, hp, src.identity.detail)
    want = model.keypoints72(s_src[0], e_drv, hp_drv, s_src[1])
    face = np.ptp(want[..., 0], axis=-1)
    err = np.linalg.norm(got - want, axis=-1).max(-1) / face
    assert err.max() < 2e-3
    wrong = model.keypoints72(s_drv[0], e_drv, hp_drv, s_drv[1])
    assert (np.linalg.norm(wrong - want, axis=-1).max(-1) / face).min() > 10 * err.max()


def test_relative_pose_transfer() -> None:
    hp_s = np.array([0.1, 0.2, -0.05, 300.0, 310.0, 20.0])
    hp_ref = np.array([-0.2, 0.05, 0.1, 100.0, 120.0, 10.0])
    delta = rotvec_to_matrix(np.array([0.0, 0.3, 0.0]))
    hp_d = np.array([*matrix_to_rotvec(delta @ rotvec_to_matrix(hp_ref[:3])), 110.0, 115.0, 12.0])
    out = transfer_pose(hp_s, np.stack([hp_ref, hp_d]), hp_ref, "relative")
    np.testing.assert_allclose(out[0], hp_s, atol=1e-12)  # reference frame -> source pose
    np.testing.assert_allclose(rotvec_to_matrix(out[1, :3]), delta @ rotvec_to_matrix(hp_s[:3]),
                               atol=1e-12)
    np.testing.assert_allclose(out[1, 3:5], [300.0 + 20.0, 310.0 - 10.0])  # x2 = 20/10
    assert out[1, 5] == pytest.approx(24.0)
    absolute = transfer_pose(hp_s, hp_d, hp_ref, "absolute_rotation")
    np.testing.assert_allclose(absolute[:3], hp_d[:3])


def test_expression_transfer_modes() -> None:
    names = ["eyeBlinkLeft", "mouthSmileLeft", "browDownLeft"]
    idx = [EXPR_INDEX[n] for n in names]
    e_s, e_d, e_ref = (np.zeros(N_EXPRESSION) for _ in range(3))
    e_s[idx] = [0.1, 0.4, 0.0]
    e_ref[idx] = [0.2, 0.3, 0.5]
    e_d[idx] = [0.9, 0.5, 0.2]
    for mode, want in (("absolute", [0.9, 0.5, 0.2]), ("relative", [0.8, 0.6, 0.0]),
                       # hybrid: blink absolute (contact channel), the others relative
                       ("hybrid", [0.9, 0.6, 0.0])):
        np.testing.assert_allclose(transfer_expression(e_s, e_d, e_ref, mode)[idx], want)


def test_rest_levels_keep_a_released_channel_moving() -> None:
    # A driver talks with raised brows (0.5) and lowers them now and then (0.1); its
    # reference frame is a raised one. Relative to that frame the lowering takes a neutral
    # source below zero and is clipped away; relative to the rest level it is all kept.
    brow = EXPR_INDEX["browInnerUp"]
    t = np.arange(60)
    e_d = np.zeros((60, N_EXPRESSION))
    e_d[:, brow] = 0.3 + 0.2 * np.cos(2 * np.pi * t / 20)
    valid = np.ones(60, bool)
    valid[10] = False  # a frame without a face does not count
    e_d[10, brow] = -5.0
    rest = rest_levels(e_d, valid)
    assert rest[brow] == pytest.approx(0.1, abs=0.01)
    e_s = np.zeros(N_EXPRESSION)
    from_ref = transfer_expression(e_s, e_d, e_d[0], "relative")[valid, brow]
    from_rest = transfer_expression(e_s, e_d, rest, "relative")[valid, brow]
    assert np.ptp(from_ref) == pytest.approx(0.0, abs=1e-9)
    assert np.ptp(from_rest) == pytest.approx(0.4, abs=0.01)
    with pytest.raises(ValueError):
        rest_levels(e_d, np.zeros(60, bool))


def test_reference_frame_prefers_neutral_frontal_and_still() -> None:
    t = 30
    rng = np.random.default_rng(15)
    e = rng.uniform(0.2, 0.6, size=(t, N_EXPRESSION))
    hp = np.zeros((t, 6))
    hp[:, 1] = np.radians(np.linspace(-30, 30, t))
    hp[:, 5] = 1.0
    e[14:19] = 0.02  # a still neutral stretch around the frontal frames
    e[3] = 0.0  # one neutral frame, but turned 25 degrees away
    ref = choose_reference_frame(hp, e)
    assert 14 <= ref <= 18
    # Asking for the source's rotation moves the choice towards it.
    assert choose_reference_frame(hp, e, target_rotation=hp[3, :3], pose_weight=5.0) < 10
    # Closed eyes are not neutral even if every other channel is quiet.
    e2 = e.copy()
    e2[14:19, EXPR_INDEX["eyeBlinkLeft"]] = e2[14:19, EXPR_INDEX["eyeBlinkRight"]] = 0.9
    e2[20:25] = 0.03
    assert 20 <= choose_reference_frame(hp, e2) <= 24


# --- keypoint tables ----------------------------------------------------------

def test_keypoint_tables_are_consistent(model: FaceModel) -> None:
    assert len(kp.K72) == 72 and len(set(kp.K72)) == 72
    assert kp.K8_MP == (127, 152, 356, 4, 145, 374, 61, 291)
    assert len(set(kp.K27)) == 27
    mirror = model.mirror[list(kp.K72)]
    np.testing.assert_array_equal(mirror, np.array(kp.K72)[list(kp.K72_MIRROR)])
    for level, count in ((0, 8), (1, 27), (2, 72)):
        used = {i for st in kp.STROKES[level] for i in st.indices}
        assert len(used) == count
    assert set().union(*kp.PARTS.values()) == set(range(72))
    # Frontal mean face: image-left contour starts on the image left, chin lowest.
    pts = model.keypoints72(None, None, np.array([0, 0, 0, 0, 0, 1.0]))
    assert pts[0, 0] < 0 < pts[9, 0]
    assert np.argmax(pts[:17, 1]) == 8


def test_rig_refinement_learns_a_stronger_jaw(model: FaceModel) -> None:
    """Per-video rig refinement recovers a driver whose jaw moves 1.5x the prior."""
    rng = np.random.default_rng(16)
    true_b = model.expr_basis.copy()
    jaw = EXPR_INDEX["jawOpen"]
    true_b[jaw] *= 1.5
    truth = model.with_expression_basis(true_b)
    t = 80
    e = _sparse_expressions(rng, t)
    hp = np.zeros((t, 6))
    hp[:, :3] = _random_rotations(rng, t, 15.0)
    hp[:, 3:] = [250.0, 250.0, 20.0]
    lm = _render(truth, None, e, hp)
    plain = fit_sequence(model, lm, e)
    refined = fit_sequence(model, lm, e, options=FitOptions(refine_rig=True, rig_min_frames=20))
    gain = refined.model.expr_basis[jaw, kp.CHIN, 1:] / model.expr_basis[jaw, kp.CHIN, 1:]
    np.testing.assert_allclose(gain, 1.5, rtol=0.1)
    # Without refinement the geometry term pulls e above the scores to make
    # up for the weaker prior jaw; with it, e stays at the scores.
    active = e[:, jaw] > 0.2

    def ratio(fit) -> float:
        return float(np.median(fit.expression[active, jaw] / e[active, jaw]))

    assert ratio(plain) > 1.1
    assert ratio(refined) == pytest.approx(1.0, rel=0.05)


def test_rig_transfer_carries_changes_not_the_fits_resting_values() -> None:
    names = ["eyeBlinkLeft", "mouthPucker", "mouthSmileLeft", "mouthRollUpper"]
    idx = [EXPR_INDEX[n] for n in names]
    e_s, e_d, e_ref = (np.zeros(N_EXPRESSION) for _ in range(3))
    # the driver's fit rests with a pucker and a rolled lip that the source's fit has not
    e_s[idx] = [0.2, 0.1, 0.0, 0.0]
    e_ref[idx] = [0.0, 0.6, 0.0, 0.4]
    e_d[idx] = [1.0, 0.0, 0.9, 0.0]
    # released channels go below the source's zero: the same vertex motion (linear rig);
    # a full blink stays a full blink
    np.testing.assert_allclose(transfer_rig(e_s, e_d, e_ref, "hybrid")[idx],
                               [1.0, -0.5, 0.9, -0.4])
    np.testing.assert_allclose(transfer_rig(e_s, e_d, e_ref, "relative")[idx],
                               [1.2, -0.5, 0.9, -0.4])
    np.testing.assert_allclose(transfer_rig(e_s, e_d, e_ref, "absolute")[idx], e_d[idx])
    # at the reference the source keeps its own expression
    np.testing.assert_allclose(transfer_rig(e_s, e_ref, e_ref, "hybrid"), e_s)
