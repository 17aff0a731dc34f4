"""Fit the MP-3DMM to tracked frames and transfer driver motion onto a source.

Inputs per frame: MediaPipe landmarks in image pixels (x right, y down, z
relative depth in the same pixel scale, smaller = closer), the first 468 of
them used, and the 52 blendshape scores (``_neutral`` + 51 ARKit) or just
the 51.

Algorithm (``fit_sequence``; closed form, batched over frames):

1. Landmarks go to the right-handed y-up camera frame ``Q = (x, -y, -z)``.
2. Pose, pass 1: weighted similarity Procrustes (batched 3x3 SVDs,
   reflections rejected) of the mean shape onto Q with MediaPipe's rigid
   Procrustes weights, Huber IRLS per vertex.
3. Alternate ``iterations`` times:
   a. canonicalise every frame, ``Z_t = R_t^T (Q_t - t_t) / scale_t``;
   b. optionally refine the rig per video: ridge regression of Z_t on the
      scores, shrunk towards the hand-defined rig, each shape restricted to
      its support region (``refine_rig``);
   c. identity, shared by all frames: neutral ``n`` = per-coordinate median
      over frames of ``Z_t - B w_t`` (``w_t`` the network scores: the joint
      least-squares solution over neutral and per-frame expressions),
      similarity-aligned to the mean shape;
      ``s`` is its ridge projection on the identity basis (unit prior,
      noise ``identity_noise`` cm) and ``detail`` the remainder, kept with
      weight ``detail``;
   d. expression per frame: ``min ||Z_t - n - B e||^2 + L ||e - w_t||^2``
      subject to 0 <= e <= 1 (scores ``w_t`` as the prior, ``L`` =
      ``expression_ridge``), a small batched active-set solve.  The geometry
      term calibrates the network scores to the rig (e.g. MediaPipe's blink
      saturates near 0.75 on a closed eye); a huge ``L`` returns the scores;
   e. pose against the model shape ``n + B e_t`` with the rigid weights
      plus a uniform share over all vertices, Huber IRLS.
4. Report the RMS 3D residual and the 72-keypoint image error as a fraction
   of face size (sqrt of the area of the observed keypoints' bounding box).

On videos longer than ``shared_frames`` the shared parts (identity, refined
rig) come from that many evenly spaced frames, and then steps 2, 3a, 3d and
3e run on every frame with them held fixed, ``chunk_frames`` at a time, so
the working memory does not grow with the video.

Transfer: rig coefficients absolute, relative
(``e_s + e_d - e_ref``) or hybrid per channel (``transfer_rig``); pose relative
(``R_d R_ref^-1 R_s``, translation and scale changes relative to the
reference, scaled to the source) or absolute.  The driver reference frame
is chosen by ``choose_reference_frame`` unless given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..frames import frame_blocks
from ..geometry import (centred_complex, matrix_to_rotvec, robust_procrustes, rotvec_to_matrix,
                        similarity_2d, similarity_procrustes)
from . import keypoints as kp
from .channels import EXPR_INDEX, GAZE_CHANNELS, N_EXPRESSION
from .face_model import FaceModel

__all__ = [
    "FitOptions", "Identity", "SequenceFit",
    "landmarks_to_camera", "fit_sequence", "fit_image", "keypoint_error",
    "choose_reference_frame", "refine_rig", "fit_residual",
]


@dataclass(frozen=True)
class FitOptions:
    """Tuning knobs of ``fit_sequence`` (units: model centimetres)."""

    iterations: int = 5
    irls_steps: int = 3
    huber: float = 2.0  # Huber threshold in robust residual sigmas
    expression_ridge: float = 1.0  # cm^2; larger trusts the network scores more
    identity_noise: float = 0.1  # cm; ridge of the identity projection
    detail: float = 1.0  # share of the off-basis identity residual kept
    uniform_pose_share: float = 0.5  # passes 2+: pose weight spread over all vertices
    # Per-video rig refinement lowers the driver's reprojection error
    # (0.73 -> 0.47 % median on a real clip) but the source must then be fitted
    # with the driver's rig, the lid adaptation is lost, and correlated score
    # channels (gaze vs blink) soak up each other's motion; off by default.
    refine_rig: bool = False
    rig_ridge: float = 1.0  # in units of summed squared (centred) scores
    rig_min_frames: int = 50
    shared_frames: int = 600  # at most this many frames fit the identity (and rig)
    chunk_frames: int = 256  # frames fitted at a time: bounds the memory on long videos


@dataclass(frozen=True)
class Identity:
    """Per-subject shape: GP coefficients plus a free-form residual."""

    s: np.ndarray  # (50,)
    detail: np.ndarray  # (N, 3) cm

    def neutral(self, model: FaceModel) -> np.ndarray:
        """Neutral (expression-free) shape in the model frame, (N, 3)."""
        return model.vertices(self.s, None, self.detail)


@dataclass(frozen=True)
class SequenceFit:
    """Result of fitting one video (or one image, T = 1)."""

    hp: np.ndarray  # (T, 6) head pose; NaN where no face
    expression: np.ndarray  # (T, 51) fitted e in [0, 1]; NaN where no face
    scores: np.ndarray  # (T, 51) the network scores that were given
    identity: Identity  # shared by all frames
    model: FaceModel  # the model used (with the refined rig, if refined)
    valid: np.ndarray  # (T,) bool, frames with a face
    residual_cm: np.ndarray  # (T,) RMS 3D model residual in the model frame
    keypoint_error: np.ndarray  # (T,) mean 72-keypoint error / face size
    face_size: np.ndarray  # (T,) observed face size, px

    def keypoints72(self) -> np.ndarray:
        """The fitted model's 72 keypoints per frame, (T, 72, 2) px."""
        return self.model.keypoints72(self.identity.s, self.expression, self.hp,
                                      self.identity.detail)


# --------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------

def landmarks_to_camera(landmarks: np.ndarray) -> np.ndarray:
    """Tracker landmarks (..., N, 3) px (y down, z smaller = closer) -> y-up, z-to-camera frame."""
    lm = np.asarray(landmarks, np.float64)
    return lm * np.array([1.0, -1.0, -1.0])


def _pose_from_similarity(rot: np.ndarray, scale: np.ndarray, t: np.ndarray,
                          pivot: np.ndarray) -> np.ndarray:
    """(R, scale, t) of ``Q = scale R X + t`` -> hp with the nose-tip pivot."""
    t3 = t + scale[:, None] * (rot @ pivot)
    return np.concatenate([matrix_to_rotvec(rot), t3[:, :1], -t3[:, 1:2], scale[:, None]], -1)


def _canonicalise(q: np.ndarray, rot: np.ndarray, scale: np.ndarray, t: np.ndarray) -> np.ndarray:
    return ((q - t[:, None]) @ rot) / scale[:, None, None]


def _split_scores(scores: np.ndarray) -> np.ndarray:
    sc = np.asarray(scores, np.float64)
    if sc.shape[-1] == N_EXPRESSION + 1:
        sc = sc[..., 1:]  # drop _neutral
    if sc.shape[-1] != N_EXPRESSION:
        raise ValueError(f"expected 52 or 51 blendshape scores, got {sc.shape[-1]}")
    return np.clip(sc, 0.0, 1.0)


def _bounded_expression(basis: np.ndarray, y: np.ndarray, prior: np.ndarray,
                        ridge: float, steps: int = 4) -> np.ndarray:
    """Batched ``min ||y_t - B e||^2 + ridge ||e - prior_t||^2``, 0 <= e <= 1.

    Active set without release: solve, clamp the violators, re-solve for the
    rest with the clamped values fixed.  A few rounds suffice in practice.
    """
    bf = basis.reshape(len(basis), -1)  # (K, 3N)
    gram = bf @ bf.T + ridge * np.eye(len(basis))
    rhs = y.reshape(len(y), -1) @ bf.T + ridge * prior  # (T, K)
    e = np.linalg.solve(gram, rhs.T).T
    fixed = np.zeros(e.shape, bool)
    val = np.zeros_like(e)
    for _ in range(steps):
        viol = (e < 0.0) | (e > 1.0)
        if not viol.any():
            break
        fixed |= viol
        val = np.where(fixed, np.clip(e, 0.0, 1.0), 0.0)
        free = ~fixed
        # Free block: gram_ff e_f = rhs_f - gram_fc val_c; fixed rows -> identity.
        m = np.where(free[:, :, None] & free[:, None, :], gram[None], 0.0)
        m = m + np.where(fixed, 1.0, 0.0)[:, :, None] * np.eye(len(basis))[None]
        r = np.where(free, rhs - val @ gram.T, val)
        e = np.linalg.solve(m, r[..., None])[..., 0]
        e = np.where(fixed, val, e)
    return np.clip(e, 0.0, 1.0)


def refine_rig(basis0: np.ndarray, support: np.ndarray, z: np.ndarray, scores: np.ndarray,
               ridge: float, frame_weights: np.ndarray | None = None) -> np.ndarray:
    """Per-video rig: ridge regression of canonical shapes on blendshape scores.

    Solves, for every vertex, ``min sum_t f_t ||zc_t - B wc_t||^2 + ridge ||B - B0||^2``
    with centred shapes/scores (so the neutral is the intercept) and only
    the shapes whose support covers that vertex free; the others keep B0.
    """
    t = len(z)
    f = np.ones(t) if frame_weights is None else np.asarray(frame_weights, np.float64)
    f = f / max(f.sum(), 1e-300)
    zc = z - np.einsum("t,tnc->nc", f, z)[None]
    wc = scores - f @ scores
    g = np.einsum("t,tk,tl->kl", f, wc, wc) * t  # scores' scatter, in frame units
    r = np.einsum("t,tk,tnc->nkc", f, wc, zc) * t  # (N, K, 3)
    d = support.T  # (N, K) 1 where shape k may move vertex n
    k = len(basis0)
    b0 = np.transpose(basis0, (1, 0, 2))  # (N, K, 3)
    m = d[:, :, None] * g[None] * d[:, None, :] + ridge * np.eye(k)[None]
    rhs = d[:, :, None] * r + ridge * b0
    b = np.linalg.solve(m, rhs)
    return np.transpose(b, (1, 0, 2))


# --------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------

def keypoint_error(model_kp: np.ndarray, observed_kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean point error / face size per frame, and the face size (px).

    Face size = sqrt(width * height) of the observed keypoints' bounding box.
    """
    obs = np.asarray(observed_kp, np.float64)[..., :2]
    ext = obs.max(-2) - obs.min(-2)
    size = np.sqrt(np.maximum(ext[..., 0] * ext[..., 1], 1e-12))
    err = np.linalg.norm(np.asarray(model_kp)[..., :2] - obs, axis=-1).mean(-1)
    return err / size, size


def fit_sequence(model: FaceModel, landmarks: np.ndarray, scores: np.ndarray,
                 valid: np.ndarray | None = None,
                 options: FitOptions = FitOptions(),
                 shared: SharedFit | None = None) -> SequenceFit:
    """Fit pose per frame, one identity per video and expression per frame.

    ``landmarks`` (T, >=468, 3) px, ``scores`` (T, 52 or 51), ``valid`` (T,)
    optional (frames without a face, or with non-finite landmarks, are
    excluded and get NaN pose/expression). ``shared``: the identity and rig of an earlier
    `fit_shared` (a stream's first frames), held fixed; by default fitted here.

    Memory does not grow with T beyond the per-frame results: the shared parts (identity,
    refined rig) come from at most ``options.shared_frames`` evenly spaced frames, and the
    frames are fitted ``options.chunk_frames`` at a time.
    """
    landmarks = np.asarray(landmarks)
    nv = len(model.mean)
    if landmarks.ndim != 3 or landmarks.shape[1] < nv or landmarks.shape[2] != 3:
        raise ValueError(f"landmarks must be (T, >={nv}, 3), got {landmarks.shape}")
    w_scores = _split_scores(scores)
    if len(w_scores) != len(landmarks):
        raise ValueError("landmarks and scores differ in frame count")
    ok = np.zeros(len(landmarks), bool)
    for part in frame_blocks(len(landmarks), options.chunk_frames):
        ok[part] = np.all(np.isfinite(landmarks[part, :nv]), axis=(1, 2))
    ok &= np.all(np.isfinite(w_scores), axis=1)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if not ok.any():
        raise ValueError("no frame with a face to fit")
    frames = np.flatnonzero(ok)
    fitted_here = False
    if shared is None:
        shared_at = frames
        if len(frames) > options.shared_frames:
            shared_at = frames[np.round(np.linspace(0, len(frames) - 1,
                                                    options.shared_frames)).astype(int)]
        shared = _fit_shared(model, landmarks_to_camera(landmarks[shared_at, :nv]),
                             w_scores[shared_at], options)
        fitted_here = len(shared_at) == len(frames)
    fitted = model.with_expression_basis(shared.basis) if shared.refined else model

    big_t = len(landmarks)
    hp = np.full((big_t, 6), np.nan)
    e_all = np.full((big_t, N_EXPRESSION), np.nan)
    res_all = np.full(big_t, np.nan)
    kp_err = np.full(big_t, np.nan)
    size = np.full(big_t, np.nan)
    for part in frame_blocks(len(frames), options.chunk_frames):
        at = frames[part]
        q = landmarks_to_camera(landmarks[at, :nv])
        if fitted_here:  # every frame was fitted with the shared parts
            rot, scale, t, e = (a[part] for a in shared.frames)
        else:
            rot, scale, t, e = _fit_frames(model, q, w_scores[at], shared, options)
        z = _canonicalise(q, rot, scale, t)
        shape = shared.neutral + np.einsum("tk,knc->tnc", e, shared.basis)
        res_all[at] = np.sqrt(np.mean(np.sum((z - shape) ** 2, -1), -1))
        hp[at] = _pose_from_similarity(rot, scale, t, model.pivot)
        e_all[at] = e
        # Unclamped: this measures the fit itself, not the rendering guard.
        model_kp = fitted.keypoints72(shared.identity.s, e, hp[at], shared.identity.detail,
                                      clamp_contacts=False)
        kp_err[at], size[at] = keypoint_error(model_kp, landmarks[at][:, list(kp.K72), :2])
    return SequenceFit(hp=hp, expression=e_all, scores=w_scores, identity=shared.identity,
                       model=fitted, valid=ok, residual_cm=res_all,
                       keypoint_error=kp_err, face_size=size)


@dataclass
class SharedFit:
    """What all frames share (identity, neutral shape, expression rig), and the frames they
    were fitted on: their (rot, scale, t, e)."""

    identity: Identity
    neutral: np.ndarray  # (N, 3)
    basis: np.ndarray  # (51, N, 3)
    refined: bool
    frames: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _pose_weights(model: FaceModel, options: FitOptions) -> np.ndarray:
    """Passes 2+: the rigid weights plus a uniform share over all vertices."""
    pw = model.pose_weights
    return (1.0 - options.uniform_pose_share) * pw / pw.sum() \
        + options.uniform_pose_share / len(pw)


def _fit_shared(model: FaceModel, q: np.ndarray, w_sc: np.ndarray, options: FitOptions
                ) -> SharedFit:
    """Steps 2-3 of the module doc on frames ``q`` (T, N, 3) (camera frame)."""
    nv = len(model.mean)
    pw = model.pose_weights
    fit_w = _pose_weights(model, options)
    rot, scale, t = robust_procrustes(model.mean, q, pw, options.irls_steps, options.huber)
    neutral = model.mean
    refine = options.refine_rig and len(q) >= options.rig_min_frames
    ub = model.id_basis.reshape(len(model.id_basis), -1)
    # Ridge projection onto the identity basis: unit prior vs noise^2.
    id_proj = np.linalg.solve(ub @ ub.T + options.identity_noise ** 2 * np.eye(len(ub)), ub)
    for _ in range(options.iterations):
        z = _canonicalise(q, rot, scale, t)
        # Lid shapes follow the current neutral's own lid gap.
        basis = model.expression_basis(neutral)
        if refine:
            basis = refine_rig(basis, model.rig.support, z, w_sc, options.rig_ridge)
        # Joint least squares over (neutral, e_t) with the scores as prior on
        # e_t has the neutral at the mean of Z_t - B w_t (the e_t-dependent
        # parts cancel), so the network scores, not the refined e, define the
        # neutral; the median makes it robust to bad frames.  Alternating
        # with the refined e instead would crawl along the identity/expression
        # valley (e.g. a jaw that is never closed).
        neutral = np.median(z - np.einsum("tk,knc->tnc", w_sc, basis), axis=0)
        # Pin the gauge: the neutral keeps the mean shape's position, size
        # and orientation, so that pose carries all rigid motion.
        r1, s1, t1 = similarity_procrustes(neutral, model.mean[None], pw)
        neutral = s1[0] * neutral @ r1[0].T + t1[0]
        resid = (neutral - model.mean).ravel()
        s = id_proj @ resid
        detail = options.detail * (resid - ub.T @ s).reshape(nv, 3)
        neutral = model.neutral(s, detail)
        if not refine:
            basis = model.expression_basis(neutral)
        e, (rot, scale, t) = _expression_then_pose(q, z, neutral, basis, w_sc, fit_w, options)
    return SharedFit(Identity(s=s, detail=detail), neutral, basis, refine, (rot, scale, t, e))


def _expression_then_pose(q: np.ndarray, z: np.ndarray, neutral: np.ndarray,
                          basis: np.ndarray, w_sc: np.ndarray, fit_w: np.ndarray,
                          options: FitOptions) -> tuple[np.ndarray, tuple]:
    """Steps 3d and 3e: expressions of the canonical frames ``z``, then poses against the
    model shape they give. Returns (e, (rot, scale, t))."""
    e = _bounded_expression(basis, z - neutral, w_sc, options.expression_ridge)
    shape = neutral + np.einsum("tk,knc->tnc", e, basis)
    return e, robust_procrustes(shape, q, fit_w, options.irls_steps, options.huber)


def _fit_frames(model: FaceModel, q: np.ndarray, w_sc: np.ndarray, shared: SharedFit,
                options: FitOptions) -> tuple[np.ndarray, ...]:
    """Steps 2, 3a, 3d and 3e for frames ``q`` with the identity and rig held fixed."""
    fit_w = _pose_weights(model, options)
    rot, scale, t = robust_procrustes(model.mean, q, model.pose_weights, options.irls_steps,
                                      options.huber)
    for _ in range(options.iterations):
        e, (rot, scale, t) = _expression_then_pose(q, _canonicalise(q, rot, scale, t),
                                                   shared.neutral, shared.basis, w_sc, fit_w,
                                                   options)
    return rot, scale, t, e


def fit_shared(model: FaceModel, landmarks: np.ndarray, scores: np.ndarray,
               options: FitOptions = FitOptions()) -> SharedFit:
    """The identity and rig of frames with a face (landmarks (T, >=468, 3), scores (T, 52 or
    51)), for `fit_sequence(..., shared=)` to hold fixed."""
    nv = len(model.mean)
    return _fit_shared(model, landmarks_to_camera(np.asarray(landmarks)[:, :nv]),
                       _split_scores(scores), options)


def fit_image(model: FaceModel, landmarks: np.ndarray, scores: np.ndarray,
              options: FitOptions = FitOptions()) -> SequenceFit:
    """Fit a single image (e.g. the source): a sequence of one frame.

    With one frame the identity absorbs whatever the rig does not explain,
    so ``e`` stays at the network scores; pass the driver's refined model to
    keep source and driver on the same rig.
    """
    lm = np.asarray(landmarks, np.float64)
    sc = np.asarray(scores, np.float64)
    return fit_sequence(model, lm[None] if lm.ndim == 2 else lm,
                        sc[None] if sc.ndim == 1 else sc, None, options)


# --------------------------------------------------------------------------
# reference frame and transfer
# --------------------------------------------------------------------------

def choose_reference_frame(hp: np.ndarray, expression: np.ndarray,
                           valid: np.ndarray | None = None,
                           target_rotation: np.ndarray | None = None,
                           window: int = 2, pose_weight: float = 0.3) -> int:
    """Pick the driver frame that best represents "neutral, in a typical pose".

    Cost per frame = mean activation of the non-gaze channels + mean of
    eyeBlink L/R and jawOpen (closed eyes or an open mouth disqualify a
    frame more than, say, a slight brow raise) + ``pose_weight`` x (angle
    to ``target_rotation`` in units of 10 degrees).  The target defaults to
    the driver's mean rotation, so relative transfer moves the source by the
    driver's deviations from its usual pose; pass the source's rotation to
    prefer a frame that faces the way the source does.  The cost is averaged
    over +-``window`` frames so that a still stretch wins over a single
    frame caught mid-motion.
    """
    hp = np.asarray(hp, np.float64)
    ex = np.asarray(expression, np.float64)
    ok = np.all(np.isfinite(hp), 1) & np.all(np.isfinite(ex), 1)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if not ok.any():
        raise ValueError("no valid frame to choose a reference from")
    ex0 = np.nan_to_num(ex)
    keep = [i for i in range(ex.shape[1]) if i not in GAZE_CHANNELS]
    key = [EXPR_INDEX[n] for n in ("eyeBlinkLeft", "eyeBlinkRight", "jawOpen")]
    activity = ex0[:, keep].mean(1) + ex0[:, key].mean(1)
    rots = rotvec_to_matrix(np.nan_to_num(hp[:, :3]))
    if target_rotation is None:
        # Chordal mean of the valid rotations, projected back onto SO(3).
        u, _, vt = np.linalg.svd(rots[ok].sum(0))
        target = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    else:
        target = rotvec_to_matrix(np.asarray(target_rotation, np.float64))
    rel = np.einsum("ji,tjk->tik", target, rots)
    angle = np.linalg.norm(matrix_to_rotvec(rel), axis=-1)
    cost = np.where(ok, activity + pose_weight * angle / np.radians(10.0), np.inf)
    if window > 0:
        padded = np.pad(cost, window, constant_values=np.inf)
        stack = np.stack([padded[i:i + len(cost)] for i in range(2 * window + 1)])
        finite = np.isfinite(stack)
        smooth = np.where(finite, stack, 0).sum(0) / np.maximum(finite.sum(0), 1)
        # Frames near gaps or the ends have fewer neighbours: small penalty.
        cost = np.where(ok, smooth + 1e-3 * (~finite).sum(0), np.inf)
    return int(np.argmin(cost))


def fit_residual(model: FaceModel, landmarks: np.ndarray, hp: np.ndarray,
                 expression: np.ndarray, identity: np.ndarray, detail: np.ndarray
                 ) -> np.ndarray:
    """What the fitted model misses of the observed mesh, per frame, in model space (cm):
    (T, 468, 3), NaN where `landmarks` (T, >=468, 2+) are missing.

    Only the non-rigid part counts: the 2-D similarity that best maps the fitted mesh onto the
    landmarks is taken out first, so the (smoothed) head pose stays the pose. The image-plane
    residual is turned back through each frame's rotation and scale (with no depth part: the
    detector's depth is too coarse), so it can be put on another head pose.
    """
    hp = np.asarray(hp, np.float64)
    fitted = model.project(model.vertices(identity, expression, detail), hp)
    observed = np.asarray(landmarks, np.float64)[:, :fitted.shape[1], :2]
    zf, zo = (centred_complex(p) for p in (fitted, observed))
    z = zo - similarity_2d(fitted, observed)[:, None] * zf
    d = np.stack([z.real, z.imag], -1)
    scale = hp[:, 5, None, None]
    # image (u, v) = (s p_x + t_x, -s p_y + t_y) with p = R (v - pivot)
    local = np.concatenate([d[..., :1] / scale, -d[..., 1:] / scale,
                            np.zeros_like(d[..., :1])], -1)
    return np.einsum("tji,tnj->tni", rotvec_to_matrix(hp[:, :3]), local)


