"""Driving motion on the source: the paper's [hp_d, e_d, s_s], with the user's transfer options."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..choices import (EXPRESSION_MODES, POSE_MODES, REGIONS, ExpressionMode, PoseMode, Region,
                       check_choice)
from ..frames import frame_blocks
from ..geometry import similarity_2d
from ..tracking import keypoints as kp
from ..tracking.channels import ARKIT_NAMES, GAZE_CHANNELS, N_EXPRESSION
from ..tracking.face_model import FaceModel
from ..tracking.fitting import choose_reference_frame, fit_residual
from ..tracking.landmarks import BlendshapeModel
from ..tracking.smoothing import adaptive_gaussian, bias_limited_sigma, fill_missing
from ..tracking.track import Track
from .gaze import correct_gaze, gaze_targets, nominal_response, transfer_gaze
from .head import head_similarity
from .retarget import Driven, Observe, RetargetOptions, retarget
from .source import SourceFace
from .transfer import rest_levels, transfer_pose, transfer_rig

_EYE_CHANNELS = np.array([n.startswith(("eyeBlink", "eyeSquint", "eyeWide", "eyeLook"))
                          for n in ARKIT_NAMES])
_LIP_CHANNELS = np.array([n.startswith(("jaw", "mouth")) for n in ARKIT_NAMES])


@dataclass(frozen=True)
class MotionOptions:
    """How the driver's motion is put on the source.

    expression_mode: `hybrid` (default; changes from the driver's rest levels, see
    `Reference`, with blinks, jaw and lip closure stretched to close fully, see
    `transfer.transfer_rig`), `relative` or `absolute` (the paper).
    pose_mode: `relative` (the driver's head motion since the reference frame, applied to the
    source's pose), `absolute` (the driver's pose in the source image) or `off` (source pose).
    region: which parts move: all, expression (no head motion), pose (no expression),
    eyes or lips (only those expression channels; no head motion).
    retarget: solve the source's expression so that the blendshape network reads the
    driver's change of expression on it (`retarget.py`); off, the fitted rig coefficients
    are transferred as they are (weaker and less faithful, but no solve).
    residual: also move the source mesh by what the rig fit misses of the driver's observed
    mesh since the reference frame (`residual_motion`): an asymmetric smile, lips the rig
    cannot shape. Exact geometry in self-reenactment.
    pose_sigma: the widest Gaussian (frames) over the driven head pose, after the track's
    bilateral filter, which keeps fast head motion but with it frame-to-frame noise that a
    re-rendered face shows as jitter; narrower where the head changes direction, see
    `steady_pose` (0 = off).
    """

    expression_mode: ExpressionMode = "hybrid"
    pose_mode: PoseMode | None = None  # None: relative for a photo, off for a video source
    expression_scale: float = 1.0
    region: Region = "all"
    ref_frame: int | None = None
    retarget: bool = True
    residual: bool = True
    pose_sigma: float = 2.0

    def __post_init__(self) -> None:
        check_choice("expression_mode", self.expression_mode, EXPRESSION_MODES)
        if self.pose_mode is not None:
            check_choice("pose_mode", self.pose_mode, POSE_MODES)
        check_choice("region", self.region, REGIONS)


@dataclass(frozen=True)
class DrivenMotion:
    """Per output frame: head pose (source-image pixels), expression of the source face, the
    change of gaze from the source's ((N, 2, 2), see `gaze.transfer_gaze`) and a vertex offset
    added after the expression ((N, 468, 3) model cm, see `residual_motion`; None: none);
    and the head's rigid part of the pose ((N, 2, 3) similarities of source-image pixels,
    see `head.head_similarity`)."""

    pose: np.ndarray
    expression: np.ndarray
    gaze: np.ndarray
    ref_frame: int
    head: np.ndarray
    offset: np.ndarray | None = None


@dataclass(frozen=True)
class Reference:
    """The driver's neutral: `frame` for the pose, the gaze and the mesh residual; `exact`
    when it is the user's choice or the frame the source photo was taken from, and then also
    the expression's reference (else each channel's rest level, `transfer.rest_levels`)."""

    frame: int
    exact: bool


def reference_frame(track: Track, requested: int | None,
                    source_landmarks: np.ndarray | None = None) -> Reference:
    """The driver's neutral frame: the user's, else the frame the source photo was taken
    from (self-reenactment), else the track's, else chosen now."""
    if requested is not None:
        if not 0 <= requested < len(track):
            raise ValueError(f"reference frame {requested} is outside 0..{len(track) - 1}")
        return Reference(requested, True)
    if source_landmarks is not None:
        same = source_frame(track, source_landmarks)
        if same is not None:
            return Reference(same, True)
    stored = track.meta.get("reference_frame")
    if isinstance(stored, int) and 0 <= stored < len(track):
        return Reference(stored, False)
    return Reference(int(choose_reference_frame(track.pose, track.expression, track.found)),
                     False)


def source_frame(track: Track, source_landmarks: np.ndarray,
                 tolerance: float = 0.01) -> int | None:
    """The driver frame whose face is the source's (landmarks within `tolerance` of the
    face size after a similarity fit), if any: relative motion from it is then exact."""
    src = np.asarray(source_landmarks, np.float64)[:kp.N_MESH, :2]
    zs = src[:, 0] + 1j * src[:, 1]
    zs = zs - zs.mean()
    size = np.sqrt(np.mean(np.abs(zs) ** 2))
    error = np.full(len(track), np.inf)
    for part in frame_blocks(len(track), 512):  # no float64 copy of all the landmarks
        drv = np.asarray(track.landmarks[part, :kp.N_MESH, :2], np.float64)
        ok = np.flatnonzero(track.found[part] & np.all(np.isfinite(drv), axis=(1, 2)))
        zd = drv[ok, :, 0] + 1j * drv[ok, :, 1]
        zd = zd - zd.mean(1, keepdims=True)
        fit = similarity_2d(src, drv[ok])[:, None] * zs[None]
        error[part.start + ok] = np.sqrt(np.mean(np.abs(zd - fit) ** 2, 1)) / size
    best = int(np.argmin(error))
    return best if error[best] < tolerance else None


def drive(source: SourceFace, track: Track, model: FaceModel,
          options: MotionOptions = MotionOptions(),
          blendshapes: BlendshapeModel | None = None,
          iris_response: np.ndarray | None = None,
          observe: Observe | None = None, observe_stride: int = 1) -> DrivenMotion:
    """Transfer the driver's pose and expression onto the source face.

    With `options.retarget`, `blendshapes` (the tracker's network) is required;
    `iris_response` is the renderer's measured iris motion (`renderer.iris_response`) and
    `observe` reads rendered frames back (`renderer.observer`) to correct the solve, every
    `observe_stride`-th keyframe.
    """
    reference = reference_frame(track, options.ref_frame, source.landmarks)
    ref = reference.frame
    n = len(track)
    still_driver = bool(track.meta.get("still"))
    expression = driven_expression(source.expression, track.expression,
                                   expression_rest(track, reference, source.expression), options)
    still = np.broadcast_to(source.pose, (n, 6))
    pose_mode = options.pose_mode or "relative"
    if pose_mode == "off" or options.region in ("expression", "eyes", "lips"):
        pose = still.copy()
    else:
        mode = "relative" if pose_mode == "relative" else "absolute"
        pose = transfer_pose(source.pose, track.pose, track.pose[ref], mode)
        if options.pose_sigma > 0 and n > 2:
            pose = steady_pose(pose, options.pose_sigma)
    moving = moving_channels(options.region)
    gaze = np.zeros((n, 2, 2))
    response = nominal_response(source.landmarks) if iris_response is None else iris_response
    if moving[_EYE_CHANNELS].any():
        gaze = options.expression_scale * transfer_gaze(
            track, ref, source.landmarks, options.expression_mode, response)
    offset = None
    if options.residual and moving.any():
        vertices = None if options.region in ("all", "expression") else \
            model.rig.support[moving].max(0) > 0
        offset = residual_motion(model, track, ref, vertices) * options.expression_scale
    if options.retarget and moving.any():
        if blendshapes is None:
            raise ValueError("retargeting needs the blendshape model")
        # the gaze is the geometry's (`gaze.py`): the solve keeps it and ignores eyeLook scores
        weights = moving.astype(np.float64)
        weights[list(GAZE_CHANNELS)] = 0.0
        driven = Driven(pose=pose, expression=expression, gaze=gaze,
                        ref=ref if reference.exact and not still_driver else None,
                        still=still_driver, mode=options.expression_mode,
                        scale=options.expression_scale, free=moving, weights=weights,
                        offset=offset)
        solved = retarget(model, source, track, driven, blendshapes, iris_response=response,
                          observe=observe,
                          options=RetargetOptions(observe_stride=observe_stride))
        expression = solved.expression
        if solved.seen_frames is not None and moving[_EYE_CHANNELS].any():
            targets = gaze_targets(track, ref, source.landmarks, options.expression_mode,
                                   options.expression_scale)
            gaze = correct_gaze(gaze, targets, solved.seen_frames, solved.seen_iris,
                                source.landmarks, response)
    pose = pose.astype(np.float64)
    return DrivenMotion(pose, expression.astype(np.float64), gaze, ref,
                        head_similarity(model, source.pose, pose), offset)


def expression_rest(track: Track, reference: Reference, source_expression: np.ndarray
                    ) -> np.ndarray:
    """What the driver's changes of expression are taken from. A still driver (an expression
    photo) has no motion, only an expression: the source takes it as it is (its own
    expression is the reference). A video's changes are taken from its exact reference frame,
    else from each channel's rest level (`transfer.rest_levels`)."""
    if track.meta.get("still"):
        return source_expression
    if reference.exact:
        return track.expression[reference.frame]
    return rest_levels(track.expression, track.found)


def moving_channels(region: Region) -> np.ndarray:
    """(51,) bool: the expression channels that follow the driver in `region`."""
    return {"eyes": _EYE_CHANNELS, "lips": _LIP_CHANNELS,
            "pose": np.zeros(N_EXPRESSION, bool)}.get(region, np.ones(N_EXPRESSION, bool))


def driven_expression(source_expression: np.ndarray, driver_expression: np.ndarray,
                      rest: np.ndarray, options: MotionOptions) -> np.ndarray:
    """Rig coefficients (N, 51): the driver's (N, 51) change from `rest` on the source's own
    (51,) or (N, 51) expression, scaled, in the channels `options.region` moves."""
    source = np.broadcast_to(np.asarray(source_expression, np.float64),
                             np.shape(driver_expression))
    expression = transfer_rig(source, driver_expression, rest, options.expression_mode)
    expression = source + options.expression_scale * (expression - source)
    still = ~moving_channels(options.region)
    expression[:, still] = source[:, still]
    return expression


def steady_pose(pose: np.ndarray, sigma_max: float, bias_px: float = 0.05,
                face_cm: float = 8.0) -> np.ndarray:
    """Head poses (N, 6) smoothed over time by a Gaussian whose width adapts per frame.

    A Gaussian of width s moves a motion by about s^2 / 2 times its acceleration, so where
    the head turns round (large acceleration of the lightly smoothed pose, in pixels at
    `face_cm` from the pivot) the width shrinks until that bias is `bias_px`; still or
    steadily moving heads get the full `sigma_max`, which is what removes the noise.
    """
    pose = np.asarray(pose, np.float64)
    coarse = gaussian_filter1d(pose, 2.0, axis=0, mode="nearest")
    size = coarse[:, 5:6] * face_cm  # pixels per radian of turn at the face's edge
    px = np.concatenate([coarse[:, :3] * size, coarse[:, 3:5], size], 1)
    return adaptive_gaussian(pose, bias_limited_sigma(px, sigma_max, bias_px), sigma_max)


def residual_motion(model: FaceModel, track: Track, ref: int,
                    vertices: np.ndarray | None = None, sigma_t: float = 1.0,
                    noise: float = 0.02, chunk: int = 512) -> np.ndarray:
    """The driver's fit residual (`fitting.fit_residual`), filled over frames without a face,
    smoothed over time (the landmarks are raw, the fit is smoothed) and taken relative to the
    reference frame: (N, 468, 3) float32 model cm; `vertices` (468,) bool limits it to a region.

    The rig cannot make every mouth or lid shape; this carries what it misses. In
    self-reenactment it makes the driven mesh the observed one.
    """
    n = len(track)
    out = np.zeros((n, kp.N_MESH, 3), np.float32)
    ok = track.found & np.all(np.isfinite(track.landmarks[:, :kp.N_MESH, :2]), axis=(1, 2))
    if not ok.any():
        return out
    for part in frame_blocks(n, chunk):
        out[part] = fit_residual(model, track.landmarks[part], track.pose[part],
                                 track.expression[part], track.identity,
                                 track.identity_detail)
    for lo in range(0, kp.N_MESH, 24):  # vertex blocks keep the temporaries small on long videos
        block = out[:, lo:lo + 24]
        if not ok.all():
            block = fill_missing(block.reshape(n, -1), ok).reshape(block.shape)
        if n > 1:
            block = gaussian_filter1d(block, sigma_t, axis=0, mode="nearest")
        # after smoothing: one frame's detector noise at the reference would shift every frame
        block = block - block[ref]
        # The detector's own scatter (`noise` cm, about a tenth of a percent of the face) is
        # no expression: shrink every vertex's offset by it, so a still or rigidly moving face
        # stays exactly as the rig moves it and only larger misses come through.
        size = np.linalg.norm(block, axis=-1, keepdims=True)
        out[:, lo:lo + 24] = block * np.clip(1.0 - noise / np.maximum(size, 1e-9), 0.0, 1.0)
    if vertices is not None:
        out[:, ~np.asarray(vertices, bool)] = 0.0
    return out
