"""Gaze transfer by geometry: the source's irises move within their eyes as the driver's do.

The blendshape network's eyeLook scores depend on each person's eye shape, and a landmarker
reads a drawn iris differently from the mesh the scores were predicted from; matching scores
left the eyes turning about 60% as far as the driver's. Here the driver's iris centre is
measured in its own eye (along the corner line and up from it, in eye widths), its change
is put on the source eye at the source's eye width, and the renderer's measured iris travel
(`renderer.iris_response`) turns that into the renderer's gaze units. Where the frames that
retargeting reads back show the irises short of that, the gaze is corrected once
(`correct_gaze`).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..choices import EXPRESSION_MODES, ExpressionMode, check_choice
from ..tracking import keypoints as kp
from ..tracking.smoothing import bilateral_filter, fill_missing
from ..tracking.track import Track

# A unit of gaze, as the pipeline hands it to a renderer: the iris moved this far along the
# eye's corner line and up from it, in eye widths (the renderers are built with it, see
# `renderer.WarpFaceRenderer`). Upwards the lids cover the iris sooner, so it travels less.
GAZE_TRAVEL = (0.2, 0.1)

# Bound on the gaze, in the renderer's units (along, up): along, 1.5 puts the iris's edge in
# the corner; the read-back travels less upwards than drawn, so more is allowed there.
GAZE_LIMIT = (1.5, 2.5)

# Per eye (image-left first): iris centre landmark and the corners, image-left to right.
_IRIS_AND_CORNERS = ((kp.IRIS_CENTRES[0], (kp.UPPER_LID_R[0], kp.UPPER_LID_R[-1])),
                     (kp.IRIS_CENTRES[1], (kp.UPPER_LID_L[-1], kp.UPPER_LID_L[0])))


def eye_frames(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For landmarks (..., 478, 2): per eye the middle of its corners (..., 2, 2), the unit
    axes (..., 2, 2, 2: along the corner line towards image-right, and up) and the width
    (..., 2)."""
    mids, axes, widths = [], [], []
    for _iris, (a, b) in _IRIS_AND_CORNERS:
        d = points[..., b, :2] - points[..., a, :2]
        w = np.linalg.norm(d, axis=-1)
        along = d / np.maximum(w, 1e-9)[..., None]
        up = np.stack([along[..., 1], -along[..., 0]], -1)  # image y points down
        mids.append((points[..., a, :2] + points[..., b, :2]) / 2)
        axes.append(np.stack([along, up], -2))
        widths.append(w)
    return np.stack(mids, -2), np.stack(axes, -3), np.stack(widths, -1)


def iris_offsets(points: np.ndarray) -> np.ndarray:
    """(..., 478, 2) landmarks -> (..., 2, 2): per eye where the iris centre sits, from the
    middle of the corners, along and up, in eye widths."""
    mids, axes, widths = eye_frames(points)
    iris = np.stack([points[..., i, :2] for i, _c in _IRIS_AND_CORNERS], -2)
    rel = iris - mids
    return np.einsum("...ec,...ekc->...ek", rel, axes) / np.maximum(widths, 1e-9)[..., None]


def source_iris_offsets(source_landmarks: np.ndarray) -> np.ndarray:
    """`iris_offsets` (2, 2) of the source photo's landmarks (478, 2|3)."""
    return iris_offsets(np.asarray(source_landmarks, np.float64)[None, :kp.N_LANDMARKS, :2])[0]


def driver_iris_offsets(track: Track, sigma_t: float = 1.5, sigma_r: float = 0.03
                        ) -> np.ndarray:
    """The driver's iris offsets per frame (T, 2, 2), missing frames filled, smoothed with an
    edge-keeping filter (`sigma_r` eye widths) so saccades stay quick."""
    ok = track.found & np.all(np.isfinite(track.landmarks[:, kp.IRIS_POINTS, :2]), axis=(1, 2))
    n = len(track)
    if not ok.any():
        return np.zeros((n, 2, 2))
    offsets = np.zeros((n, 4))
    offsets[ok] = iris_offsets(np.asarray(track.landmarks[ok, :, :2], np.float64)).reshape(-1, 4)
    offsets = fill_missing(offsets, ok)
    return bilateral_filter(offsets, sigma_t, sigma_r).reshape(n, 2, 2)


def gaze_targets(track: Track, ref: int, source_landmarks: np.ndarray, mode: ExpressionMode,
                 scale: float = 1.0, noise: float = 0.015) -> np.ndarray:
    """Where the source's irises should be seen in their eyes per frame (T, 2, 2), in eye
    widths as `iris_offsets` measures them; `scale` multiplies the look.

    `mode` `relative` adds the driver's change since the reference frame to the source's own
    iris position; `absolute` and `hybrid` put the source iris where the driver's sits in its
    eye (gaze is one of hybrid's absolute channels: a driver looking at the camera makes the
    source look at it).
    """
    check_choice("expression_mode", mode, EXPRESSION_MODES)
    driver = driver_iris_offsets(track)
    own = source_iris_offsets(source_landmarks)
    start = driver[ref] if mode == "relative" else own
    change = driver - start  # (T, 2, 2) eye widths
    # The landmarker's own scatter (about a hundredth of an eye width) is no look: changes
    # within it are dropped, so an eye that does not turn is left exactly as the photo has it,
    # and those up to twice it are eased in; real looks keep their full size.
    size = np.abs(change)
    return own + scale * np.sign(change) * np.clip(2.0 * (size - noise), 0.0, size)


def gaze_units(change: np.ndarray, source_landmarks: np.ndarray, response: np.ndarray
               ) -> np.ndarray:
    """A change of the source's iris offsets (..., 2, 2; eye widths) in the renderer's gaze
    units, through `response` (2, 2, 2): per eye the iris travel in source pixels per unit
    of gaze right and up."""
    points = np.asarray(source_landmarks, np.float64)[None, :kp.N_LANDMARKS, :2]
    _mids, axes, widths = eye_frames(points)
    pixels = np.einsum("...ek,ekc->...ec", change, axes[0]) * widths[0][:, None]
    return np.stack([pixels[..., e, :] @ np.linalg.pinv(response[e]) for e in range(2)], -2)


def transfer_gaze(track: Track, ref: int, source_landmarks: np.ndarray, mode: ExpressionMode,
                  response: np.ndarray, limit: tuple[float, float] = GAZE_LIMIT) -> np.ndarray:
    """The renderer's gaze (T, 2, 2) that moves the source's irises as the driver's move
    (`gaze_targets`), bounded by `limit` units (along, up)."""
    change = gaze_targets(track, ref, source_landmarks, mode) - source_iris_offsets(
        source_landmarks)
    return np.clip(gaze_units(change, source_landmarks, response), -np.asarray(limit),
                   np.asarray(limit))


def correct_gaze(gaze: np.ndarray, targets: np.ndarray, frames: np.ndarray, seen: np.ndarray,
                 source_landmarks: np.ndarray, response: np.ndarray,
                 limit: tuple[float, float] = GAZE_LIMIT, sigma: float = 1.5,
                 full: float = 0.05) -> np.ndarray:
    """`gaze` (T, 2, 2) corrected by what a landmarker saw on rendered frames: `seen`
    (M, 2, 2) iris offsets read at `frames` (M,), NaN where it found no face.

    The probe frames measure the iris travel with the lids at rest; a look down lowers them
    over the iris, and a landmarker then reads the shifted iris as moved less (about two
    thirds as far). The shortfall against `targets` is added once, interpolated over the
    frames in between and smoothed over `sigma` frames; it is eased in over the first
    `full` eye widths of look, so eyes that barely move keep the photo's iris.
    """
    ok = np.all(np.isfinite(seen), axis=(1, 2))
    if not ok.any():
        return gaze
    own = source_iris_offsets(source_landmarks)
    at = np.asarray(frames)[ok]
    short = targets[at] - seen[ok]
    short *= np.clip(np.abs(targets[at] - own) / full, 0.0, 1.0)
    t = np.arange(len(gaze))
    filled = np.stack([np.interp(t, at, c) for c in short.reshape(len(at), -1).T], 1)
    filled = gaussian_filter1d(filled, sigma, axis=0, mode="nearest") if sigma > 0 else filled
    fix = gaze_units(filled.reshape(-1, 2, 2), source_landmarks, response)
    return np.clip(gaze + fix, -np.asarray(limit), np.asarray(limit))


def nominal_response(source_landmarks: np.ndarray,
                     travel: tuple[float, float] = GAZE_TRAVEL) -> np.ndarray:
    """The renderer's iris travel as drawn (2, 2, 2), for when it is not measured: `travel`
    eye widths along the corner line and up per unit of gaze."""
    _mids, axes, widths = eye_frames(np.asarray(source_landmarks, np.float64)[:kp.N_LANDMARKS, :2])
    scale = np.asarray(travel, np.float64)
    return axes * (widths[:, None, None] * scale[None, :, None])
