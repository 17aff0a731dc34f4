"""Expression retargeting in blendshape space.

The rig coefficients that the fit gives the driver (``e_d``) are not what a viewer sees: the
hand-built rig and the driver's face differ, so the same coefficients put on the source look
weaker or different (a smile half as wide, a jaw that barely drops). Retargeting instead asks
for the source face whose *landmarks* make the blendshape network (the same one the tracker
uses) read the driver's change of expression:

    b*(t) = b_s + scale * (b_d(t) - b_d(ref))      (relative; `absolute`/`hybrid` as in fitting)

and solves, per keyframe, for the source's rig coefficients whose 478 landmarks (the photo's
own, moved with the mesh) score b*(t), with the transferred coefficients as a weak prior. The
gaze comes from geometry (`gaze.py`) and is held as given; its landmarks still count for the
other scores (a lowered iris changes how the lids read). The solve is a bounded Gauss-Newton
that starts each frame from finite-difference Jacobians at a few anchor expressions (the
source's and the centres of the driven ones, blended by distance) and updates them per frame
by Broyden steps (the network is small but not batched).

What a detector finds on a rendered frame is not exactly the mesh: lids half cover a shifted
iris, lips pressed together bulge. So the renderer's iris travel is measured on probe frames
(`renderer.iris_response`), and the first solution is rendered and read back once
(`renderer.observer`): the targets are corrected by what the network read minus what the
landmarks predicted, and the keyframes are solved again. The result is interpolated to every
frame and smoothed over time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..choices import ExpressionMode
from ..frames import frame_blocks
from ..geometry import similarity_2d
from ..tracking import keypoints as kp
from ..tracking.channels import EXPR_INDEX, N_EXPRESSION
from ..tracking.face_model import FaceModel, transform_points
from ..tracking.landmarks import BlendshapeModel
from ..tracking.smoothing import bilateral_filter, fill_missing, odd_gaussian
from ..tracking.track import Track
from .gaze import iris_offsets, nominal_response
from .transfer import rest_levels, transfer_expression

# Per eye (image-left first, as the warp renderer orders them): lid ring, iris landmarks.
_LID_RINGS_AND_IRISES = (
    (kp.UPPER_LID_R + kp.LOWER_LID_R[1:-1], kp.IRISES[0]),
    (kp.UPPER_LID_L + kp.LOWER_LID_L[1:-1], kp.IRISES[1]),
)
N_GAZE = 4  # (towards the subject's left, up) per eye
KEY_BLOCK = 256  # keyframes solved or read back at a time: memory does not grow with the video
_BLINKS = [EXPR_INDEX["eyeBlinkLeft"], EXPR_INDEX["eyeBlinkRight"]]


@dataclass(frozen=True)
class RetargetOptions:
    """Solver settings. Units: blendshape scores and rig coefficients are both in [0, 1]."""

    iterations: int = 8
    prior: float = 0.02  # pull towards the transferred rig coefficients
    damping: float = 1e-3
    tolerance: float = 0.02  # relative cost decrease below which a frame stops
    cost_floor: float = 2e-3  # a frame whose cost is below this is done (~0.006 per score)
    fd_step: float = 0.1
    rig_limit: float = 2.0  # rig coefficients may go past 1: the hand-built shapes are modest
    smooth_sigma_t: float = 2.0  # frames; temporal filter of the driver's scores
    smooth_sigma_r: float = 0.1  # score units; keeps blinks sharp
    solution_sigma_t: float = 2.0  # frames; Gaussian filter of the per-frame solutions
    blink_sigma_t: float = 1.2  # frames; the same for the blink channels
    keyframe_stride: int = 2  # solve every this many frames, interpolate between
    observe_stride: int = 1  # render every this many keyframes to correct the targets
    anchors: int = 4  # expressions (the source's included) whose slopes start the solve
    feedback_change: float = 0.1  # score change from the source's at which the correction is full


@dataclass(frozen=True)
class Retargeted:
    """Per frame: source rig coefficients (T, 51), and the fit's mean absolute score error
    before and after (diagnostics); with a read-back, the frames read (M,) and where the
    irises were seen in their eyes there ((M, 2, 2), see `gaze.iris_offsets`; NaN: no face)."""

    expression: np.ndarray
    error_before: float
    error_after: float
    seen_frames: np.ndarray | None = None
    seen_iris: np.ndarray | None = None


class SourceLandmarkModel:
    """The source's 478 landmarks as a function of rig coefficients, gaze and head pose."""

    def __init__(self, model: FaceModel, identity: np.ndarray, identity_detail: np.ndarray,
                 source_pose: np.ndarray, source_expression: np.ndarray,
                 source_landmarks: np.ndarray, options: RetargetOptions,
                 iris_response: np.ndarray | None = None) -> None:
        """`iris_response` (2, 2, 2): per eye, how far (source pixels) the renderer moves the
        iris per unit of gaze right and up, as measured on rendered frames; default: the
        warp renderer's nominal shift."""
        self.model = model
        self.neutral = model.neutral(identity, identity_detail)
        self.basis = model.expression_basis(self.neutral)
        self.options = options
        mesh = self.mesh(source_expression[None], source_pose[None])[0]
        # The fit leaves a few pixels between the mesh and the photo's own landmarks (lip
        # outlines, brows); the renderer carries the photo along with the mesh, so what a
        # detector finds on a frame is the photo's landmarks moved with it, not the mesh.
        self._mesh_src = mesh
        residual = np.asarray(source_landmarks, np.float64)[:len(mesh), :2] - mesh
        self._residual = residual[:, 0] + 1j * residual[:, 1]
        response = np.asarray(iris_response if iris_response is not None
                              else nominal_response(source_landmarks), np.float64)
        self._rings = []
        for k, (ring, iris) in enumerate(_LID_RINGS_AND_IRISES):
            ring_src = np.c_[mesh[list(ring)], np.ones(len(ring))]
            iris_src = np.asarray(source_landmarks, np.float64)[list(iris), :2]
            self._rings.append((list(ring), np.linalg.pinv(ring_src), iris_src, response[k]))

    def mesh(self, e: np.ndarray, pose: np.ndarray, offset: np.ndarray | None = None
             ) -> np.ndarray:
        """Image xy of the 468 vertices, (N, 468, 2); `offset` (N, 468, 3) as in
        `motion.DrivenMotion`."""
        v = self.neutral + np.einsum("nk,kvc->nvc", e, self.basis)
        if offset is not None:
            v = v + offset
        return transform_points(v, pose, self.model.pivot)[..., :2]

    def landmarks(self, e: np.ndarray, gaze: np.ndarray, pose: np.ndarray,
                  offset: np.ndarray | None = None) -> np.ndarray:
        """(N, 478, 2): the mesh plus irises that ride with their lids and shift by `gaze`
        ((N, 4): per eye the renderer's look direction, towards the subject's left and up)."""
        mesh = self.mesh(e, pose, offset)
        turn = similarity_2d(self._mesh_src, mesh)  # (N,) complex: in-plane rotation and scale
        moved_res = turn[:, None] * self._residual[None]
        out = [mesh + np.stack([moved_res.real, moved_res.imag], -1)]
        for k, (ring, pinv, iris_src, unit) in enumerate(self._rings):
            affine = np.einsum("ij,njc->nic", pinv, mesh[:, ring])  # (N, 3, 2)
            shift = gaze[:, 2 * k:2 * k + 2] @ unit  # source pixels
            moved = iris_src[None] + shift[:, None, :]  # (N, 5, 2)
            out.append(moved @ affine[:, :2] + affine[:, None, 2])
        return np.concatenate(out, 1)


def _readable(track: Track) -> np.ndarray:
    """(N,) bool: the driver frames with a face and all its landmarks."""
    return track.found & np.all(np.isfinite(track.landmarks), axis=(1, 2))


def driver_scores(track: Track, blendshapes: BlendshapeModel,
                  options: RetargetOptions) -> np.ndarray:
    """The driver's 51 ARKit scores per frame, missing frames filled, lightly smoothed."""
    ok = _readable(track)
    scores = np.zeros((len(track), N_EXPRESSION))
    frames = np.flatnonzero(ok)
    for b in frame_blocks(len(frames), 1024):  # blocks: no copy of a long video's landmarks
        scores[frames[b]] = blendshapes(track.landmarks[frames[b], :, :2])[:, 1:]
    scores = fill_missing(scores, ok)
    return np.clip(bilateral_filter(scores, options.smooth_sigma_t, options.smooth_sigma_r),
                   0.0, 1.0)


class Retargeter:
    """Solves rig coefficients so that the source's landmarks score given targets."""

    def __init__(self, landmarks: SourceLandmarkModel, blendshapes: BlendshapeModel,
                 free: np.ndarray) -> None:
        self.lm = landmarks
        self.bs = blendshapes
        self.options = landmarks.options
        nonzero = np.abs(landmarks.basis).reshape(len(landmarks.basis), -1).max(1) > 0
        self.free = np.flatnonzero(nonzero & np.asarray(free, bool))

    def scores(self, e: np.ndarray, gaze: np.ndarray, pose: np.ndarray,
               offset: np.ndarray | None = None) -> np.ndarray:
        """(N, 51) scores of rig coefficients `e` (N, 51) with `gaze` (N, 4)."""
        return self.bs(self.lm.landmarks(e, gaze, pose, offset))[:, 1:]

    def _with(self, x: np.ndarray, e_base: np.ndarray) -> np.ndarray:
        """`e_base` (N, 51) with the free channels set to `x` (N, F)."""
        e = e_base.copy()
        e[:, self.free] = x
        return e

    def jacobians(self, anchors: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """d scores / d free rig channels at each of `anchors` (K, 51), source gaze and
        `pose`: (K, 51, F), by forward differences in one batch."""
        nf = len(self.free)
        step = self.options.fd_step
        rows = []
        for e in anchors:
            x0 = e[self.free]
            steps = np.where(x0 + step <= self.options.rig_limit, step, -step)
            rows.append((np.concatenate([x0[None], x0[None] + np.diag(steps)]), steps))
        x = np.concatenate([r[0] for r in rows])
        base = np.repeat(anchors, nf + 1, 0)
        n = len(x)
        s = self.scores(self._with(x, base), np.zeros((n, N_GAZE)), np.broadcast_to(pose, (n, 6)))
        s = s.reshape(len(anchors), nf + 1, N_EXPRESSION)
        return np.stack([((sk[1:] - sk[0]) / st[:, None]).T for sk, (_x, st) in zip(s, rows)])

    def solve(self, pose: np.ndarray, target: np.ndarray, e_prior: np.ndarray,
              gaze: np.ndarray, jac: np.ndarray, weights: np.ndarray,
              iterations: int | None = None, offset: np.ndarray | None = None) -> tuple:
        """Per frame ``min |w (s(x) - target)|^2 + prior |x - x_prior|^2``, bounded, at the
        given `gaze` (N, 4); `offset` (N, 468, 3) per frame, see `SourceLandmarkModel.mesh`.
        Returns the rig coefficients and the mean score error before and after."""
        o = self.options
        nf = len(self.free)
        x_prior = e_prior[:, self.free]
        w = np.sqrt(weights)

        def cost(x: np.ndarray, s: np.ndarray, idx: np.ndarray) -> np.ndarray:
            return (np.sum((w * (s - target[idx])) ** 2, 1)
                    + o.prior * np.sum((x - x_prior[idx]) ** 2, 1))

        x = x_prior.copy()
        # a transferred coefficient may lie outside the rig's range (relative transfer)
        lower = np.minimum(x_prior, 0.0)
        upper = np.maximum(x_prior, o.rig_limit)
        s = self.scores(e_prior, gaze, pose, offset)
        before = float(np.abs(s - target).mean())
        c = cost(x, s, np.arange(len(x)))
        jt = np.broadcast_to(jac, (len(x), N_EXPRESSION, nf)).copy()  # (51, F) or one per frame
        step = np.ones(len(x))
        active = c >= o.cost_floor
        for _ in range(o.iterations if iterations is None else iterations):
            i = np.flatnonzero(active)
            if not len(i):
                break
            jw = w[..., None] * jt[i]
            a = np.einsum("tki,tkj->tij", jw, jw) + np.eye(nf) * (o.prior + o.damping)
            g = np.einsum("tki,tk->ti", jw, w * (s[i] - target[i])) + o.prior * (x[i] - x_prior[i])
            delta = -np.linalg.solve(a, g[..., None])[..., 0] * step[i, None]
            x_new = np.clip(x[i] + delta, lower[i], upper[i])
            s_new = self.scores(self._with(x_new, e_prior[i]), gaze[i], pose[i],
                                None if offset is None else offset[i])
            c_new = cost(x_new, s_new, i)
            # Broyden: the observed change corrects this frame's Jacobian either way
            dx = x_new - x[i]
            dd = np.sum(dx * dx, 1)
            resid = (s_new - s[i]) - np.einsum("tki,ti->tk", jt[i], dx)
            jt[i] += np.einsum("tk,ti->tki", resid, dx) / np.maximum(dd, 1e-12)[:, None, None] \
                * (dd > 1e-12)[:, None, None]
            better = c_new < c[i]
            gain = (c[i] - c_new) / np.maximum(c[i], 1e-12)
            ib = i[better]
            x[ib], s[ib], c[ib] = x_new[better], s_new[better], c_new[better]
            step[i] = np.where(better, np.minimum(step[i] * 1.5, 1.0), step[i] * 0.5)
            # a frame is done when a step barely helps or the steps have shrunk away
            active[i] = ~((better & (gain < o.tolerance)) | (step[i] < 1.0 / 16)
                          | (c[i] < o.cost_floor))
        return self._with(x, e_prior), before, float(np.abs(s - target).mean())


Observe = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]
"""(head pose (N, 6), rig coefficients (N, 51), gaze (N, 2, 2), vertex offset (N, 468, 3) or
None) -> the 478 landmarks (N, 478, 2, source-image pixels) that the landmarker finds on the
frames the renderer draws for them; NaN rows where it finds no face."""


@dataclass(frozen=True)
class Driven:
    """The frames to retarget, as the motion transfer drives them, and what counts."""

    pose: np.ndarray  # (N, 6) head poses
    expression: np.ndarray  # (N, 51) transferred rig coefficients: the prior and the start
    gaze: np.ndarray  # (N, 2, 2), held as given
    ref: int | None  # the driver's reference frame; None: each score's rest level
    mode: ExpressionMode
    scale: float  # expression scale
    free: np.ndarray  # (51,) bool: the rig channels that may move
    weights: np.ndarray  # (51,): the scores that count
    offset: np.ndarray | None = None  # (N, 468, 3) the motion's vertex offset
    still: bool = False  # a still driver: its scores are the targets (source's are the reference)


def retarget(model: FaceModel, source, track: Track, driven: Driven,
             blendshapes: BlendshapeModel, iris_response: np.ndarray | None = None,
             observe: Observe | None = None,
             options: RetargetOptions = RetargetOptions()) -> Retargeted:
    """Rig coefficients for every frame so the source reads as the driver does.

    The driver's change of scores is taken from `driven.ref` (`transfer.rest_levels` if
    None); `iris_response`: see `SourceLandmarkModel`. With `observe`, a second pass corrects
    the targets by what the network reads on rendered frames of the first solution, where
    the prediction from landmarks falls short.
    """
    pose, expression, gaze, offset = driven.pose, driven.expression, driven.gaze, driven.offset
    lm = SourceLandmarkModel(model, source.identity, source.identity_detail, source.pose,
                             source.expression, source.landmarks, options, iris_response)
    solver = Retargeter(lm, blendshapes, driven.free)
    b_src = solver.scores(source.expression[None], np.zeros((1, N_GAZE)), source.pose[None])[0]
    b_drv = driver_scores(track, blendshapes, options)
    if driven.still:
        b_ref = b_src
    elif driven.ref is not None:
        b_ref = b_drv[driven.ref]
    else:
        b_ref = rest_levels(b_drv, _readable(track))
    target = transfer_expression(b_src, b_drv, b_ref, driven.mode)
    target = np.clip(b_src + driven.scale * (target - b_src), 0.0, 1.0)
    # The rig reads differently at different expressions (a jaw that barely registers at rest
    # does once the lips part), so each keyframe starts from the slopes at a few anchors,
    # the source's own expression and the centres of the driven ones, blended by distance.
    n = len(pose)
    key = np.unique(np.r_[np.arange(0, n, max(options.keyframe_stride, 1)), n - 1])
    anchors, weights_k = _anchors(source.expression, expression[key], solver.free,
                                  options.anchors)
    jac = np.einsum("nk,kij->nij", weights_k, solver.jacobians(anchors, source.pose))
    # Solve on keyframes and interpolate: the targets are smooth at this scale, and the
    # network (about 0.7 ms a call) is most of the cost.
    solve = _BlockSolver(solver, pose, np.asarray(gaze, np.float64).reshape(n, N_GAZE), offset,
                         key, jac, driven.weights)
    e, before, after = solve(target[key], expression[key])
    seen_frames = seen_iris = None
    if observe is not None:
        correction, seen_frames, seen_iris = _observed_offset(solve, observe, e)
        if correction is not None:
            # Correct only what the driver asks to change: at the source's own expression the
            # rendered face is the photo, and a read-back there is the detector's noise.
            change = np.abs(target[key] - b_src)
            correction = correction * np.clip(change / options.feedback_change, 0.0, 1.0)
            e, _, after = solve(target[key] - correction, e)
    t = np.arange(n)
    x = np.stack([np.interp(t, key, c) for c in e.T], 1)
    # Frames are solved independently and may settle on slightly different mixes of
    # channels; a plain Gaussian removes the jitter that adds (an edge-keeping filter would
    # keep those jumps). Blinks last a few frames: a narrower one keeps them.
    blinks = x[:, _BLINKS].copy()
    x = odd_gaussian(x, options.solution_sigma_t)
    x[:, _BLINKS] = odd_gaussian(blinks, options.blink_sigma_t)
    return Retargeted(np.clip(x, np.minimum(expression, 0.0),
                              np.maximum(expression, options.rig_limit)), before, after,
                      seen_frames, seen_iris)


@dataclass
class _BlockSolver:
    """`Retargeter.solve` on the keyframes `key` of a video, a block of them at a time: the
    solver's per-frame Jacobians and landmarks would otherwise grow with the video."""

    solver: Retargeter
    pose: np.ndarray  # (N, 6), every frame
    gaze: np.ndarray  # (N, 4), every frame
    offset: np.ndarray | None  # (N, 468, 3), every frame
    key: np.ndarray
    jac: np.ndarray  # (keyframes, 51, F): the slopes each keyframe starts from
    weights: np.ndarray

    def __call__(self, target: np.ndarray, e: np.ndarray, iterations: int | None = None
                 ) -> tuple[np.ndarray, float, float]:
        """Per keyframe rig coefficients, and the mean score error before/after."""
        parts = []
        for b in frame_blocks(len(self.key), KEY_BLOCK):
            at = self.key[b]
            parts.append(self.solver.solve(
                self.pose[at], target[b], e[b], self.gaze[at], self.jac[b], self.weights,
                iterations, None if self.offset is None else self.offset[at]))
        sizes = np.array([len(p[0]) for p in parts], np.float64)
        return (np.concatenate([p[0] for p in parts]),
                float(np.average([p[1] for p in parts], weights=sizes)),
                float(np.average([p[2] for p in parts], weights=sizes)))


def _observed_offset(solve: _BlockSolver, observe: Observe, e: np.ndarray
                     ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """What the network reads on rendered frames minus what the landmarks predicted, per
    keyframe of `solve` (`e`: their rig coefficients), interpolated over keyframes it could
    not read, smoothed (None if it read none); and the frames rendered with where their
    irises were seen (`gaze.iris_offsets`, NaN where no face was found)."""
    solver = solve.solver
    n = len(solve.key)
    step = max(solver.options.observe_stride, 1)
    idx = np.unique(np.r_[np.arange(0, n, step), n - 1])
    seen, gap, irises = [], [], []
    for b in frame_blocks(len(idx), KEY_BLOCK):
        i = idx[b]
        at = solve.key[i]
        off = None if solve.offset is None else solve.offset[at]
        pose, gaze = solve.pose[at], solve.gaze[at]
        points = observe(pose, e[i], gaze.reshape(-1, 2, 2), off)
        irises.append(iris_offsets(points))
        ok = np.all(np.isfinite(points), axis=(1, 2))
        if ok.any():
            read = solver.bs(points[ok])[:, 1:]
            predicted = solver.scores(e[i][ok], gaze[ok], pose[ok],
                                      None if off is None else off[ok])
            seen.append(i[ok])
            gap.append(read - predicted)
    frames, irises = solve.key[idx], np.concatenate(irises)
    if not seen:
        return None, frames, irises
    at, gap = np.concatenate(seen), np.concatenate(gap)
    t = np.arange(n)
    offset = np.stack([np.interp(t, at, gap[:, c]) for c in range(N_EXPRESSION)], 1)
    return bilateral_filter(offset, 1.0, np.inf), frames, irises


def _anchors(source: np.ndarray, driven: np.ndarray, free: np.ndarray, count: int,
             iterations: int = 10, softness: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Up to `count` anchor expressions (K, 51) for the driven ones (N, 51): the source's,
    then k-means centres of the driven (free channels) seeded farthest-first; and each driven
    expression's weights over them (N, K): inverse squared distance (`softness` keeps it
    finite), so that neighbouring frames start from nearly the same slopes."""
    x = driven[:, free]
    centres = [source[free]]
    for _ in range(max(count, 1) - 1):
        d = np.min([np.sum((x - c) ** 2, 1) for c in centres], 0)
        if d.max() <= 1e-12:
            break
        centres.append(x[int(np.argmax(d))])
    centres = np.array(centres)
    for _ in range(iterations):
        nearest = np.argmin(((x[:, None] - centres[None]) ** 2).sum(-1), 1)
        for k in range(1, len(centres)):  # the source's anchor stays where it is
            if np.any(nearest == k):
                centres[k] = x[nearest == k].mean(0)
    inverse = 1.0 / (((x[:, None] - centres[None]) ** 2).sum(-1) + softness)
    anchors = np.repeat(source[None], len(centres), 0)
    anchors[:, free] = centres
    return anchors, inverse / inverse.sum(1, keepdims=True)
