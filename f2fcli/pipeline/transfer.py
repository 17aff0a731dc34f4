"""Driver expression and pose put on the source: absolute, relative or hybrid per channel.

Absolute coefficients do not carry over between two faces' fits; changes do. Relative
transfer adds the driver's change since its reference (a frame, or each channel's rest level)
to the source's own values; the hybrid mode stretches the contact channels (blinks, jaw, lip
closure) so that the driver's full closure is the source's.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from ..choices import EXPRESSION_MODES, ExpressionMode, check_choice
from ..geometry import matrix_to_rotvec, rotvec_to_matrix
from ..tracking.channels import CONTACT_CHANNELS, GAZE_CHANNELS

# How the driver's head pose maps to the source's (`transfer_pose`): the pose mode `off` never
# gets here, and `absolute_rotation` (rotation absolute, position relative) serves tests.
PoseTransfer = Literal["relative", "absolute", "absolute_rotation"]
POSE_TRANSFERS: tuple[PoseTransfer, ...] = get_args(PoseTransfer)


def rest_levels(values: np.ndarray, valid: np.ndarray | None = None,
                percentile: float = 5.0) -> np.ndarray:
    """Per channel, the level a driver's expression rests at over a clip (T, C) -> (C,).

    One reference frame is a poor neutral for relative transfer: a channel the driver holds
    there (brows raised while talking, a smile at the start) can then only be released, and a
    release takes the source below its own zero, where it is clipped: that half of the motion
    is lost. Relative to each channel's rest level every change is a rise. A low percentile
    rather than the minimum, so that one misread frame does not set it.
    """
    x = np.asarray(values, np.float64)
    ok = np.all(np.isfinite(x), 1)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if not ok.any():
        raise ValueError("no valid frame to take rest levels from")
    return np.percentile(x[ok], percentile, axis=0)


def transfer_expression(e_src: np.ndarray, e_drv: np.ndarray, e_ref: np.ndarray,
                        mode: ExpressionMode = "hybrid") -> np.ndarray:
    """Driver expression for the source, for quantities that mean the same on every face
    (blendshape scores).

    ``absolute``: e_d (the paper).  ``relative``: clip(e_s + e_d - e_ref).
    ``hybrid``: absolute on the contact channels (blinks, jawOpen,
    mouthClose, funnel, pucker) and gaze, relative elsewhere, so the
    source keeps its resting look while lids and lips still close fully.
    """
    check_choice("expression_mode", mode, EXPRESSION_MODES)
    e_drv = np.asarray(e_drv, np.float64)
    rel = np.clip(np.asarray(e_src, np.float64) + e_drv - np.asarray(e_ref, np.float64), 0.0, 1.0)
    if mode == "absolute":
        return e_drv.copy()
    if mode == "relative":
        return rel
    out = rel.copy()  # hybrid
    absolute = list(CONTACT_CHANNELS) + list(GAZE_CHANNELS)
    out[..., absolute] = e_drv[..., absolute]
    return out


def transfer_rig(e_src: np.ndarray, e_drv: np.ndarray, e_ref: np.ndarray,
                 mode: ExpressionMode = "hybrid") -> np.ndarray:
    """Driver rig coefficients for the source, whose own fit is a different one.

    Two fits split a face between identity and expression differently (the same photo can
    fit with a pucker of 0.16 alone and 0.6 within a video), so absolute coefficients do not
    carry over; changes do, and the rig is linear. ``relative`` (and ``hybrid``): e_s + e_d -
    e_ref, not clipped: a channel the driver releases from its reference moves the source by
    the same vertices even below the source's zero. ``hybrid`` stretches the contact
    channels' way up so that the driver's 1 is the source's 1 (lids and lips close fully);
    ``absolute``: e_d (the paper).
    """
    check_choice("expression_mode", mode, EXPRESSION_MODES)
    e_drv = np.asarray(e_drv, np.float64)
    e_src = np.broadcast_to(np.asarray(e_src, np.float64), e_drv.shape)
    e_ref = np.broadcast_to(np.asarray(e_ref, np.float64), e_drv.shape)
    if mode == "absolute":
        return e_drv.copy()
    out = e_src + e_drv - e_ref
    if mode == "hybrid":
        c = list(CONTACT_CHANNELS)
        up = e_drv[..., c] > e_ref[..., c]
        rise = (e_drv[..., c] - e_ref[..., c]) * (1.0 - e_src[..., c]) \
            / np.maximum(1.0 - e_ref[..., c], 1e-6)
        out[..., c] = np.where(up, e_src[..., c] + rise, out[..., c])
    return out


def transfer_pose(hp_src: np.ndarray, hp_drv: np.ndarray, hp_ref: np.ndarray,
                  mode: PoseTransfer = "relative") -> np.ndarray:
    """Driver head pose for the source image.

    ``relative``: R = R_d R_ref^-1 R_s; translation moves by the driver's
    pivot displacement since the reference, rescaled by scale_s/scale_ref;
    scale = scale_s * scale_d / scale_ref.  ``absolute_rotation``: R = R_d,
    translation and scale relative.  ``absolute``: hp_d copied (only
    meaningful when source and driver share the same crop framing).
    """
    hs = np.asarray(hp_src, np.float64)
    hd = np.asarray(hp_drv, np.float64)
    hr = np.asarray(hp_ref, np.float64)
    if mode == "absolute":
        return hd.copy()
    check_choice("pose_transfer", mode, POSE_TRANSFERS)
    k = hs[..., 5] / hr[..., 5]
    out = np.empty(np.broadcast_shapes(hs.shape, hd.shape))
    if mode == "relative":
        rot = rotvec_to_matrix(hd[..., :3]) @ np.swapaxes(rotvec_to_matrix(hr[..., :3]), -1, -2) \
            @ rotvec_to_matrix(hs[..., :3])
        out[..., :3] = matrix_to_rotvec(rot)
    else:
        out[..., :3] = hd[..., :3]
    out[..., 3:5] = hs[..., 3:5] + (hd[..., 3:5] - hr[..., 3:5]) * k[..., None]
    out[..., 5] = hs[..., 5] * hd[..., 5] / hr[..., 5]
    return out
