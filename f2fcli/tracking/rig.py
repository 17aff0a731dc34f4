"""The hand-defined expression rig of the face model (`face_model.FaceModel`).

``B`` (51, 468, 3): expression rig for the 51 ARKit coefficients of the
  MediaPipe blendshape network (``_neutral`` dropped), in MediaPipe order
  (`channels.ARKIT_NAMES`; "Left" = the subject's left = +x, checked on tracked
  video).  Hand-defined from mesh regions, no third-party data
  (``build_expression_rig``): jaw as the tangent of a 16 degree rotation
  about a hinge near the jaw joints, lids meeting (upper 80 %, lower 20 %), brow,
  cheek and lip-corner pulls with Gaussian falloff, lip regions found by
  point-in-polygon on the lip contours.  Lid shapes (blink, wide, squint,
  cheek squint) are defined relative to the subject's *own* lid gap
  (``GapTerm``), so eyeBlink = 1 closes any eye; everything else is a fixed
  field.  Gaze channels (eyeLook*) are zero in the mesh (the warp renderer
  slides the eye interior by them instead).  Amplitudes were sanity-checked
  against regressions on tracked talking-head video; the fitter can also
  refine the rig per video (``fitting.refine_rig``, off by default).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..geometry import smoothstep
from . import keypoints as kp
from .channels import ARKIT_NAMES, EXPR_INDEX, GAZE_CHANNELS, N_EXPRESSION


def _side(x: np.ndarray, sign: float, width: float = 0.6) -> np.ndarray:
    """Soft indicator of the subject's left (sign=+1, x>0) or right (sign=-1) half."""
    return 1.0 / (1.0 + np.exp(-sign * x / width))


def _in_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test in 2D, vectorised over points."""
    x, y = pts[:, None, 0], pts[:, None, 1]
    x0, y0 = poly[None, :, 0], poly[None, :, 1]
    x1, y1 = np.roll(poly, -1, 0)[None, :, 0], np.roll(poly, -1, 0)[None, :, 1]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return np.sum(crosses & (x < xint), axis=1) % 2 == 1


def _spread_operator(mean: np.ndarray, idx, radius: float, allow: np.ndarray | None = None,
                     interp: float = 0.5) -> np.ndarray:
    """Linear operator (N, m) extending displacements at anchor vertices to their surroundings.

    Each vertex takes a Gaussian-weighted blend of the anchor displacements
    (kernel ``interp`` cm), attenuated by a Gaussian in its distance to the
    nearest anchor (``radius`` cm) and by the optional ``allow`` mask.
    Anchors keep their own displacement exactly.
    """
    idx = np.asarray(idx)
    d2 = np.sum((mean[:, None, :] - mean[idx][None]) ** 2, -1)
    dmin = d2.min(1, keepdims=True)
    k = np.exp(-0.5 * (d2 - dmin) / interp ** 2)  # shifted by the min: no underflow
    op = k / k.sum(1, keepdims=True) * np.exp(-0.5 * dmin / radius ** 2)
    op[idx] = np.eye(len(idx))
    if allow is not None:
        op = op * allow[:, None]
    return op


def _spread(mean: np.ndarray, idx, disp, radius: float, allow: np.ndarray | None = None,
            interp: float = 0.5) -> np.ndarray:
    """Displacement field (N, 3) from anchor displacements (m, 3) or one shared (3,)."""
    disp = np.broadcast_to(np.asarray(disp, np.float64), (len(np.atleast_1d(idx)), 3))
    return _spread_operator(mean, np.atleast_1d(idx), radius, allow, interp) @ disp


def _spread_mask(mean: np.ndarray, mask: np.ndarray, radius: float) -> np.ndarray:
    """Soft dilation of a vertex mask: max over members of a Gaussian in distance."""
    idx = np.flatnonzero(mask > 0)
    d2 = np.sum((mean[:, None, :] - mean[idx][None]) ** 2, -1)
    return np.max(mask[idx][None] * np.exp(-0.5 * d2 / radius ** 2), axis=1)


@dataclass(frozen=True)
class _RigRegions:
    """Mesh regions the hand-defined rig is built from (all (N,) weights in [0, 1])."""

    upper_lip: np.ndarray
    lower_lip: np.ndarray
    below_mouth: np.ndarray  # soft: below the mouth line
    jaw: np.ndarray  # how much each vertex follows the mandible
    lip_profile: np.ndarray  # 1 at the lip centre, 0 at the corners
    mouth_half_width: float


def _rig_regions(mean: np.ndarray) -> _RigRegions:
    xy = mean[:, :2]
    ou, ol = np.array(kp.LIP_OUTER_UPPER), np.array(kp.LIP_OUTER_LOWER)
    iu, il = np.array(kp.LIP_INNER_UPPER), np.array(kp.LIP_INNER_LOWER)
    upper = _in_polygon(xy, np.concatenate([xy[ou], xy[iu[::-1]]])).astype(float)
    lower = _in_polygon(xy, np.concatenate([xy[ol], xy[il[::-1]]])).astype(float)
    upper[ou] = upper[iu] = 1.0
    lower[ol] = lower[il] = 1.0
    lower[upper > 0] = 0.0  # a vertex belongs to one lip only
    corners = [kp.MOUTH_CORNER_R, kp.MOUTH_CORNER_L, iu[0], iu[-1]]
    upper[corners] = lower[corners] = 0.5  # corners are shared by both lips
    # Mouth line: midway between the inner lip contours, flat beyond the corners.
    mx = 0.5 * (mean[iu, 0] + mean[il, 0])
    my = 0.5 * (mean[iu, 1] + mean[il, 1])
    order = np.argsort(mx)
    y_line = np.interp(mean[:, 0], mx[order], my[order])
    below = smoothstep((y_line + 0.3 - mean[:, 1]) / 0.6)
    # Mandible weight: full on the lower lip and below the mouth, fading
    # upwards over the cheeks, zero on the upper lip, half at the corners.
    jaw = smoothstep((y_line + 1.0 - mean[:, 1]) / 3.0)
    jaw = np.where(upper > 0, 0.0, jaw)
    jaw = np.where(lower > 0, 1.0, jaw)
    jaw[corners] = 0.5
    half_w = 0.5 * abs(mean[kp.MOUTH_CORNER_L, 0] - mean[kp.MOUTH_CORNER_R, 0])
    profile = np.clip(1.0 - (mean[:, 0] / max(half_w, 1e-6)) ** 2, 0.0, 1.0)
    return _RigRegions(upper, lower, below, jaw, profile, half_w)


@dataclass(frozen=True, eq=False)
class GapTerm:
    """Identity-dependent part of a lid shape.

    Adds ``spread @ (coeff * (n[partner] - n[moving]))`` to channel
    ``channel`` for a subject with neutral ``n``: e.g. a blink moves each
    upper-lid vertex onto its lower-lid partner *of that subject*, so
    eyeBlink = 1 closes small and large eyes alike.
    """

    channel: int
    moving: np.ndarray  # (m,) vertex indices
    partner: np.ndarray  # (m,)
    coeff: float
    spread: np.ndarray  # (N, m)


@dataclass(frozen=True, eq=False)
class ExpressionRig:
    """Linear expression rig: fixed displacement fields + identity-adapted lid terms."""

    fixed: np.ndarray  # (51, N, 3) cm per unit activation
    support: np.ndarray  # (51, N) 1 where a shape may move (for refinement)
    gap_terms: tuple[GapTerm, ...] = ()

    def basis(self, neutral: np.ndarray, idx=None) -> np.ndarray:
        """Rig for a subject's neutral shape (..., N, 3): (..., 51, n_idx, 3)."""
        sl = slice(None) if idx is None else np.asarray(idx)
        neutral = np.asarray(neutral, np.float64)
        out = np.broadcast_to(self.fixed[:, sl], neutral.shape[:-2] + self.fixed[:, sl].shape)
        if not self.gap_terms:
            return out
        out = out.copy()
        for g in self.gap_terms:
            gap = g.coeff * (neutral[..., g.partner, :] - neutral[..., g.moving, :])
            out[..., g.channel, :, :] += np.einsum("nm,...mc->...nc", g.spread[sl], gap)
        return out


def build_expression_rig(mean: np.ndarray) -> ExpressionRig:
    """Hand-defined linear expression rig on the canonical mesh.

    Amplitudes are plausible adult values at activation 1 and were sanity
    checked against regressions on tracked talking-head video (jaw: chin
    ~3.5 cm down/back; lip corner ~0.6 cm up/out/back on a full smile); they
    are a prior, not a measurement.  Lid shapes are ``GapTerm``s that adapt
    to the subject's own lid gap.
    """
    mean = np.asarray(mean, np.float64)
    n = len(mean)
    reg = _rig_regions(mean)
    x = mean[:, 0]
    fixed = np.zeros((N_EXPRESSION, n, 3))
    terms: list[GapTerm] = []
    ex = EXPR_INDEX

    def put(name: str, disp: np.ndarray) -> None:
        fixed[ex[name]] += disp

    def gap(name: str, moving, partner, coeff: float, op: np.ndarray) -> None:
        terms.append(GapTerm(ex[name], np.asarray(moving), np.asarray(partner), coeff, op))

    sides = {"Left": 1.0, "Right": -1.0}
    lids = {"Left": (kp.UPPER_LID_L, kp.LOWER_LID_L), "Right": (kp.UPPER_LID_R, kp.LOWER_LID_R)}
    brows = {"Left": kp.BROW_L, "Right": kp.BROW_R}
    corners = {"Left": kp.MOUTH_CORNER_L, "Right": kp.MOUTH_CORNER_R}
    alae = {"Left": (358, 327, 278), "Right": (129, 98, 48)}

    # --- eyes and brows ------------------------------------------------------
    for side, sg in sides.items():
        up, lo = np.array(lids[side][0]), np.array(lids[side][1])
        both = np.concatenate([up, lo])
        xs, ys = mean[both, 0], mean[both, 1]
        o = np.argsort(xs)
        lid_y = np.interp(x, xs[o], ys[o])
        eye_c = mean[both].mean(0)
        near_eye = np.exp(-0.5 * np.sum((mean - eye_c) ** 2, 1) / 1.6 ** 2)
        above = smoothstep((mean[:, 1] - lid_y) / 0.3) * near_eye
        below = smoothstep((lid_y - mean[:, 1]) / 0.3) * near_eye
        above[up] = 1.0
        below[lo] = 1.0
        op_up = _spread_operator(mean, up, 0.45, above, 0.25)
        op_lo = _spread_operator(mean, lo, 0.45, below, 0.25)
        # Blink: the upper lid folds down and the lower lid rises a little;
        # they meet at 80 % of the subject's lid gap, so eyeBlink = 1 is
        # full contact and a closing lower lid is not left to eyeSquint.
        gap(f"eyeBlink{side}", up, lo, 0.8, op_up)
        gap(f"eyeBlink{side}", lo, up, 0.2, op_lo)
        gap(f"eyeWide{side}", up, lo, -0.35, op_up)
        gap(f"eyeSquint{side}", lo, up, 0.3, op_lo)
        gap(f"eyeSquint{side}", up, lo, 0.1, op_up)
        # Cheek raise: tissue under the eye moves up, the lower lid a little.
        cheek_c = eye_c + np.array([0.4 * sg, -1.6, 0.0])
        d2 = np.sum((mean - cheek_c) ** 2, 1)
        put(f"cheekSquint{side}", (np.exp(-0.5 * d2 / 1.3 ** 2) * (1.0 - np.maximum(
            reg.upper_lip, reg.lower_lip)))[:, None] * np.array([0.0, 0.3, 0.1]))
        gap(f"cheekSquint{side}", lo, up, 0.12, op_lo)

        # Brows: the whole brow down (and slightly inwards), or its outer part up.
        br = np.array(brows[side])
        allow = smoothstep((mean[:, 1] - lid_y - 0.2) / 0.4)
        put(f"browDown{side}", _spread(mean, br, [-0.15 * sg, -0.5, 0.0], 1.0, allow))
        outer = br[[0, 1, 5, 6]]
        put(f"browOuterUp{side}", _spread(mean, outer, [0.0, 0.4, 0.0], 1.2, allow))
        # Nose sneer: the ala and the skin beside it go up.
        put(f"noseSneer{side}", _spread(mean, alae[side], [0.0, 0.25, 0.05], 0.8,
                                        1.0 - reg.below_mouth))

    inner = np.array([kp.BROW_R[i] for i in (3, 4, 8, 9)] + [kp.BROW_L[i] for i in (3, 4, 8, 9)])
    lid_top = max(mean[list(kp.UPPER_LID_R), 1].max(), mean[list(kp.UPPER_LID_L), 1].max())
    put("browInnerUp", _spread(mean, inner, [0.0, 0.45, 0.0], 1.4,
                               smoothstep((mean[:, 1] - lid_top) / 0.6)))

    # --- jaw -----------------------------------------------------------------
    # Tangent of a rotation about an x-parallel hinge near the jaw joints,
    # (y, z) = (-1, -5) cm: the chin moves about as much down as back and
    # the lower lip mostly down, as tracked video shows.
    hinge = np.array([0.0, -1.0, -5.0])
    theta = np.radians(16.0)
    rel = mean - hinge
    jaw_rot = theta * np.stack([np.zeros(n), -rel[:, 2], rel[:, 1]], 1)
    put("jawOpen", reg.jaw[:, None] * jaw_rot)
    put("jawForward", reg.jaw[:, None] * np.array([0.0, 0.0, 0.45]))
    put("jawLeft", reg.jaw[:, None] * np.array([0.5, 0.0, 0.0]))
    put("jawRight", reg.jaw[:, None] * np.array([-0.5, 0.0, 0.0]))
    # Lips together while the jaw is open: the lower lip undoes 70 % of the
    # jaw motion and the upper lip comes down by the other 30 %, so that
    # jawOpen = mouthClose seals the lips.
    lower_soft = np.maximum(reg.lower_lip, _spread_mask(mean, reg.lower_lip, 0.5) * reg.below_mouth)
    upper_soft = _spread_mask(mean, reg.upper_lip, 0.4) * (1.0 - reg.below_mouth)
    put("mouthClose", (-0.7 * lower_soft + 0.3 * np.maximum(reg.upper_lip, upper_soft))[:, None]
        * jaw_rot)

    # --- mouth ---------------------------------------------------------------
    up_w, lo_w, prof = reg.upper_lip, reg.lower_lip, reg.lip_profile
    lips = np.maximum(up_w, lo_w)
    lip_soft = _spread_mask(mean, lips, 0.6)
    xn = np.clip(x / reg.mouth_half_width, -1.0, 1.0)
    # Funnel: lips forward and rounded open, corners in.
    put("mouthFunnel", np.stack([-0.35 * xn * lip_soft, 0.2 * prof * (up_w - lo_w),
                                 0.35 * lip_soft], 1))
    # Pucker: lips forward, mouth narrower, closed.
    put("mouthPucker", np.stack([-0.3 * x * lip_soft, np.zeros(n),
                                 0.5 * lip_soft * (0.5 + 0.5 * prof)], 1))
    mouth_soft = _spread_mask(mean, lips, 1.2)
    put("mouthLeft", mouth_soft[:, None] * np.array([0.5, 0.0, 0.0]))
    put("mouthRight", mouth_soft[:, None] * np.array([-0.5, 0.0, 0.0]))
    # Roll: the outer lip edge turns in (towards the mouth line, backwards).
    put("mouthRollLower", (lo_w * (0.5 + 0.5 * prof))[:, None] * np.array([0.0, 0.25, -0.25]))
    put("mouthRollUpper", (up_w * (0.5 + 0.5 * prof))[:, None] * np.array([0.0, -0.25, -0.2]))
    # Shrug: lower lip and chin boss up / upper lip up.
    chin_soft = np.maximum(lo_w, reg.below_mouth * _spread_mask(mean, lo_w, 1.5))
    put("mouthShrugLower", chin_soft[:, None] * np.array([0.0, 0.25, 0.12]))
    put("mouthShrugUpper", np.maximum(up_w, upper_soft)[:, None] * np.array([0.0, 0.2, 0.08]))

    for side, sg in sides.items():
        c = corners[side]
        put(f"mouthSmile{side}", _spread(mean, c, [0.55 * sg, 0.6, -0.4], 1.3))
        put(f"mouthFrown{side}", _spread(mean, c, [0.1 * sg, -0.4, 0.0], 1.1))
        put(f"mouthDimple{side}", _spread(mean, c, [0.25 * sg, 0.0, -0.3], 1.0))
        put(f"mouthStretch{side}", _spread(mean, c, [0.45 * sg, -0.25, -0.1], 1.3))
        side_w = _side(x, sg)
        # Press: the lips thin on one side (outer edges towards the mouth line).
        put(f"mouthPress{side}", (side_w * (up_w - lo_w))[:, None] * np.array([0.0, -0.12, 0.0]))
        # One side of a lip lifts / drops, strongest between corner and centre.
        lateral = side_w * np.exp(-0.5 * ((xn - 0.5 * sg) / 0.6) ** 2)
        put(f"mouthLowerDown{side}", (lower_soft * lateral)[:, None] * np.array([0.0, -0.35, 0.0]))
        put(f"mouthUpperUp{side}", (np.maximum(up_w, upper_soft) * lateral)[:, None]
            * np.array([0.0, 0.35, 0.05]))
        # Cheek puff: the cheek bulges outwards and forwards.
        cheek_c = np.array([sg * 4.2, mean[c, 1] + 1.2, mean[c, 2] - 1.5])
        d2 = np.sum((mean - cheek_c) ** 2, 1)
        put("cheekPuff", np.exp(-0.5 * d2 / 1.8 ** 2)[:, None] * np.array([0.3 * sg, 0.0, 0.15]))

    rig = ExpressionRig(fixed, np.zeros((N_EXPRESSION, n)), tuple(terms))
    support = _support_from_basis(mean, rig.basis(mean))
    # Gaze channels are zero but may move the lids: let refinement learn that.
    for i in GAZE_CHANNELS:
        blink = "eyeBlinkLeft" if ARKIT_NAMES[i].endswith("Left") else "eyeBlinkRight"
        support[i] = support[ex[blink]]
    return replace(rig, support=support)


def _support_from_basis(mean: np.ndarray, basis: np.ndarray, radius: float = 0.8) -> np.ndarray:
    """Influence region of each shape: where it moves, dilated by ``radius`` cm."""
    mag = np.linalg.norm(basis, axis=-1)
    support = np.zeros(mag.shape)
    for k in range(len(basis)):
        peak = mag[k].max()
        if peak > 0:
            support[k] = _spread_mask(mean, (mag[k] > 0.05 * peak).astype(float), radius) > 0.3
    return support


