"""MP-3DMM: a linear 3D face model on the 468-vertex MediaPipe FaceMesh topology.

Shape
-----
``X(s, e) = mean + sum_i s_i U_i + sum_k e_k B_k (+ detail)``, in the canonical
model frame, centimetres.

* ``mean`` (468, 3): MediaPipe's canonical face mesh.
* ``U`` (50, 468, 3): identity basis.  Data-free: the top-50 eigenfunctions of
  a squared-exponential Gaussian-process kernel (length scale 4 cm, amplitude
  0.5 cm per coordinate) on the mean-shape vertices, with the 7 similarity
  modes (translation, rotation, scale) projected out because head pose absorbs
  them.  Each mode is scaled by the square root of its eigenvalue, so the prior
  on ``s`` is N(0, I).  ``detail`` is an optional free-form per-subject residual
  (468, 3) that the fitter keeps because FaceMesh measures dense 3D directly
  and 50 smooth modes miss fine identity structure.
* ``B`` (51, 468, 3): expression rig for the 51 ARKit coefficients of the
  MediaPipe blendshape network (``_neutral`` dropped), in MediaPipe order
  (``ARKIT_NAMES``; "Left" = the subject's left = +x, checked on tracked
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

Frames and head pose
--------------------
Model frame: x towards the subject's left (image right in a frontal view),
y up, z towards the camera; right-handed.  Image: pixels, x right, y down.

``hp = (r0, r1, r2, tx, ty, scale)``:

* ``r`` is an axis-angle (Rodrigues) vector in radians giving the rotation
  matrix ``R = exp([r]x)`` that acts on model points about the pivot ``c``
  (the canonical nose tip, vertex 4 of ``mean``).  No Euler order is involved;
  rotations compose by matrix product.  ``r = 0`` is an upright frontal face.
* weak-perspective projection of a model point ``X``::

      P = R (X - c)
      u = scale * P_x + tx
      v = -scale * P_y + ty      # minus: image y points down

  so ``scale`` is image pixels per model centimetre and ``(tx, ty)`` is the
  pixel position of the pivot.  Anchoring at the nose tip keeps ``(tx, ty)``
  nearly unchanged when the head only rotates, which relative pose transfer
  relies on.
* Relative depth (tracker convention, smaller = closer) is
  ``w = -scale * P_z + tz``; ``tz`` is not part of ``hp``.

Equivalently, in the right-handed y-up camera frame ``Q = (u, -v, -w)``:
``Q = scale * R (X - c) + (tx, -ty, -tz)``; the fitter works in that frame.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from contextlib import nullcontext
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.linalg

from . import keypoints as kp

N_VERTICES = 468
N_IDENTITY = 50

ARKIT_NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
"""The 51 expression channels, MediaPipe blendshape order without ``_neutral``."""

N_EXPRESSION = len(ARKIT_NAMES)
BLENDSHAPE_NAMES: tuple[str, ...] = ("_neutral", *ARKIT_NAMES)
EXPR_INDEX: dict[str, int] = {n: i for i, n in enumerate(ARKIT_NAMES)}
GAZE_CHANNELS: tuple[int, ...] = tuple(
    i for i, n in enumerate(ARKIT_NAMES) if n.startswith("eyeLook"))
CONTACT_CHANNELS: tuple[int, ...] = tuple(EXPR_INDEX[n] for n in (
    "eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker"))
"""Channels whose absolute value matters (lids shut, lips sealed, jaw open)."""


# --------------------------------------------------------------------------
# rotations (batched over leading dimensions)
# --------------------------------------------------------------------------

def _skew(v: np.ndarray) -> np.ndarray:
    z = np.zeros(v.shape[:-1])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([np.stack([z, -w, y], -1),
                     np.stack([w, z, -x], -1),
                     np.stack([-y, x, z], -1)], -2)


def rotvec_to_matrix(r: np.ndarray) -> np.ndarray:
    """Rodrigues: axis-angle (..., 3) -> rotation matrices (..., 3, 3)."""
    r = np.asarray(r, dtype=np.float64)
    th2 = np.sum(r * r, axis=-1)
    th = np.sqrt(th2)
    small = th < 1e-4
    ths = np.where(small, 1.0, th)
    # Taylor series near zero avoids 0/0 in sin(t)/t and (1-cos t)/t^2.
    a = np.where(small, 1.0 - th2 / 6.0, np.sin(ths) / ths)
    b = np.where(small, 0.5 - th2 / 24.0, (1.0 - np.cos(ths)) / (ths * ths))
    k = _skew(r)
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def matrix_to_rotvec(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> axis-angle (..., 3), angle in [0, pi].

    Goes through a unit quaternion (Shepperd's branch choice) so it stays
    accurate near 0 and near pi, where arccos-based formulas break down.
    """
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    tr = m00 + m11 + m22
    cand = np.stack([tr, m00, m11, m22], -1)
    branch = np.argmax(cand, axis=-1)
    # w-major branch
    s = np.sqrt(np.maximum(1.0 + tr, 1e-12)) * 2.0
    qw = np.stack([0.25 * s, (m[..., 2, 1] - m[..., 1, 2]) / s,
                   (m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 1, 0] - m[..., 0, 1]) / s], -1)
    s = np.sqrt(np.maximum(1.0 + m00 - m11 - m22, 1e-12)) * 2.0
    qx = np.stack([(m[..., 2, 1] - m[..., 1, 2]) / s, 0.25 * s,
                   (m[..., 0, 1] + m[..., 1, 0]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s], -1)
    s = np.sqrt(np.maximum(1.0 - m00 + m11 - m22, 1e-12)) * 2.0
    qy = np.stack([(m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 0, 1] + m[..., 1, 0]) / s,
                   0.25 * s, (m[..., 1, 2] + m[..., 2, 1]) / s], -1)
    s = np.sqrt(np.maximum(1.0 - m00 - m11 + m22, 1e-12)) * 2.0
    qz = np.stack([(m[..., 1, 0] - m[..., 0, 1]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s,
                   (m[..., 1, 2] + m[..., 2, 1]) / s, 0.25 * s], -1)
    q = np.choose(branch[..., None], [qw, qx, qy, qz])
    q = np.where(q[..., :1] < 0, -q, q)  # w >= 0 gives the short way round
    v = q[..., 1:]
    sn = np.linalg.norm(v, axis=-1)
    ang = 2.0 * np.arctan2(sn, q[..., 0])
    scale = np.where(sn < 1e-12, 2.0 / np.maximum(q[..., 0], 1e-12), ang / np.maximum(sn, 1e-300))
    return v * scale[..., None]


def compose_rotvec(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Axis-angle of ``R(a) @ R(b)`` (apply b first, then a)."""
    return matrix_to_rotvec(rotvec_to_matrix(a) @ rotvec_to_matrix(b))


def rotvec_to_euler_deg(r: np.ndarray) -> np.ndarray:
    """(pitch, yaw, roll) in degrees, for display only: R = Rz(roll) Ry(yaw) Rx(pitch).

    Pitch is about the model x axis (positive = looking down), yaw about y
    (positive = turning towards the subject's left, image right), roll
    about z (positive = counter-clockwise in the image).  Never filter or
    transfer in this space.
    """
    m = rotvec_to_matrix(r)
    yaw = np.arcsin(np.clip(-m[..., 2, 0], -1.0, 1.0))
    pitch = np.arctan2(m[..., 2, 1], m[..., 2, 2])
    roll = np.arctan2(m[..., 1, 0], m[..., 0, 0])
    return np.degrees(np.stack([pitch, yaw, roll], -1))


# --------------------------------------------------------------------------
# projection
# --------------------------------------------------------------------------

def transform_points(points: np.ndarray, hp: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Model points (..., N, 3) -> image (u, v, w) with w the relative depth (tz = 0)."""
    hp = np.asarray(hp, dtype=np.float64)
    rot = rotvec_to_matrix(hp[..., :3])
    p = np.einsum("...ij,...nj->...ni", rot, np.asarray(points, np.float64) - pivot)
    sc = hp[..., 5, None]
    u = sc * p[..., 0] + hp[..., 3, None]
    v = -sc * p[..., 1] + hp[..., 4, None]
    w = -sc * p[..., 2]
    return np.stack([u, v, w], -1)


def project_points(points: np.ndarray, hp: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Weak-perspective projection of model points (..., N, 3) to image xy (..., N, 2)."""
    return transform_points(points, hp, pivot)[..., :2]


def warp_pose(hp: np.ndarray, scale: float | np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Pose after an image similarity ``p' = scale * p + offset`` (no in-plane rotation).

    Use it to move a pose from full-frame pixels into a crop (e.g. scale =
    2 / crop_size, offset = -1 - 2 * crop_origin / crop_size for [-1, 1]
    crop coordinates).
    """
    hp = np.array(hp, dtype=np.float64, copy=True)
    scale = np.asarray(scale, dtype=np.float64)
    hp[..., 3:5] = scale[..., None] * hp[..., 3:5] + np.asarray(offset, np.float64)
    hp[..., 5] = scale * hp[..., 5]
    return hp


# --------------------------------------------------------------------------
# identity basis
# --------------------------------------------------------------------------

def similarity_modes(points: np.ndarray) -> np.ndarray:
    """Orthonormal basis (7, N*3) of infinitesimal similarity motions of ``points``."""
    c = points - points.mean(0)
    n = len(points)
    modes = []
    for ax in range(3):
        t = np.zeros((n, 3))
        t[:, ax] = 1.0
        modes.append(t)
    for ax in range(3):
        w = np.zeros(3)
        w[ax] = 1.0
        modes.append(np.cross(w, c))
    modes.append(c)
    q, _ = np.linalg.qr(np.stack([m.ravel() for m in modes], 1))
    return q.T


def gp_identity_basis(mean: np.ndarray, n_modes: int = N_IDENTITY,
                      length_scale: float = 4.0,
                      amplitude: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Data-free identity basis: eigenfunctions of a Gaussian-process kernel.

    Returns ``(basis (n_modes, N, 3), eigenvalues (n_modes,))`` with basis
    vectors scaled by sqrt(eigenvalue) so coefficients have a unit prior.
    """
    n = len(mean)
    d2 = np.sum((mean[:, None, :] - mean[None, :, :]) ** 2, -1)
    k_scalar = amplitude ** 2 * np.exp(-0.5 * d2 / length_scale ** 2)
    k = np.kron(k_scalar, np.eye(3))  # vertex-major (v, axis) ordering
    q = similarity_modes(mean)  # (7, 3N)
    # Project out similarity motions: pose fitting already explains them.
    kq = k @ q.T
    k = k - q.T @ kq.T - kq @ q + q.T @ (q @ kq) @ q
    k = 0.5 * (k + k.T)
    # Only the leading modes are needed: a subset solve is several times faster than a full one.
    size = k.shape[0]
    val, vec = scipy.linalg.eigh(k, subset_by_index=[size - n_modes, size - 1], driver="evr")
    val, vec = np.maximum(val[::-1], 0.0), vec[:, ::-1]
    # Deterministic signs: largest-magnitude component positive.
    big = np.argmax(np.abs(vec), axis=0)
    vec = vec * np.sign(vec[big, np.arange(vec.shape[1])])
    basis = (vec * np.sqrt(val)).T.reshape(n_modes, n, 3)
    return basis, val


def mirror_map(mean: np.ndarray) -> np.ndarray:
    """Index of each vertex's mirror partner (x -> -x) by nearest neighbour."""
    mirrored = mean * np.array([-1.0, 1.0, 1.0])
    d2 = np.sum((mean[:, None, :] - mirrored[None, :, :]) ** 2, -1)
    return np.argmin(d2, axis=1)


# --------------------------------------------------------------------------
# hand-defined expression rig
# --------------------------------------------------------------------------

def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


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
    below = _smoothstep((y_line + 0.3 - mean[:, 1]) / 0.6)
    # Mandible weight: full on the lower lip and below the mouth, fading
    # upwards over the cheeks, zero on the upper lip, half at the corners.
    jaw = _smoothstep((y_line + 1.0 - mean[:, 1]) / 3.0)
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
        above = _smoothstep((mean[:, 1] - lid_y) / 0.3) * near_eye
        below = _smoothstep((lid_y - mean[:, 1]) / 0.3) * near_eye
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
        allow = _smoothstep((mean[:, 1] - lid_y - 0.2) / 0.4)
        put(f"browDown{side}", _spread(mean, br, [-0.15 * sg, -0.5, 0.0], 1.0, allow))
        outer = br[[0, 1, 5, 6]]
        put(f"browOuterUp{side}", _spread(mean, outer, [0.0, 0.4, 0.0], 1.2, allow))
        # Nose sneer: the ala and the skin beside it go up.
        put(f"noseSneer{side}", _spread(mean, alae[side], [0.0, 0.25, 0.05], 0.8,
                                        1.0 - reg.below_mouth))

    inner = np.array([kp.BROW_R[i] for i in (3, 4, 8, 9)] + [kp.BROW_L[i] for i in (3, 4, 8, 9)])
    lid_top = max(mean[list(kp.UPPER_LID_R), 1].max(), mean[list(kp.UPPER_LID_L), 1].max())
    put("browInnerUp", _spread(mean, inner, [0.0, 0.45, 0.0], 1.4,
                               _smoothstep((mean[:, 1] - lid_top) / 0.6)))

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


# --------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------

CANONICAL_MESH_FILE = "canonical_face_mesh.npz"


def _canonical_mesh_file():
    """Context manager giving a filesystem path to the canonical mesh.

    The installed wheel has it in ``f2fcli.weights``; a source checkout that
    shadows the installed package (``python -m pytest`` from the repo root)
    has it in the top-level ``weights/`` folder instead.
    """
    try:
        return resources.as_file(resources.files("f2fcli.weights") / CANONICAL_MESH_FILE)
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parents[2] / "weights" / CANONICAL_MESH_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{CANONICAL_MESH_FILE} not found (no f2fcli.weights)")
        return nullcontext(path)

@dataclass(frozen=True, eq=False)
class FaceModel:
    """Linear face model: mean + identity basis + expression rig (see module doc).

    All methods broadcast over leading (batch/frame) dimensions.
    """

    mean: np.ndarray  # (N, 3) cm
    id_basis: np.ndarray  # (50, N, 3) cm per unit coefficient (prior N(0, I))
    id_eigenvalues: np.ndarray  # (50,) GP kernel eigenvalues, cm^2
    rig: ExpressionRig
    pose_weights: np.ndarray  # (N,) Procrustes weights (rigid, stable vertices), sum 1
    mirror: np.ndarray  # (N,) mirror partner of each vertex
    triangles: np.ndarray | None = None  # (F, 3) int
    uv: np.ndarray | None = None  # (N, 2)

    @property
    def pivot(self) -> np.ndarray:
        """Rotation pivot and translation anchor: the canonical nose tip."""
        return self.mean[kp.NOSE_TIP]

    def fingerprint(self) -> str:
        """SHA-256 of the mean, identity basis and rig: coefficients are only comparable
        between models with the same fingerprint (e.g. in caches)."""
        digest = hashlib.sha256()
        for array in (self.mean, self.id_basis, self.expr_basis):
            digest.update(np.ascontiguousarray(array, np.float64).tobytes())
        return digest.hexdigest()

    @property
    def expr_basis(self) -> np.ndarray:
        """The rig on the mean shape, (51, N, 3)."""
        return self.rig.basis(self.mean)

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, triangles: np.ndarray | None = None,
                  uv: np.ndarray | None = None, pose_weights: np.ndarray | None = None,
                  n_identity: int = N_IDENTITY, length_scale: float = 4.0) -> "FaceModel":
        """Build the model on a mean mesh (>= 468 vertices in MediaPipe order)."""
        mean = np.asarray(vertices, np.float64)[:N_VERTICES]
        basis, ev = gp_identity_basis(mean, n_identity, length_scale)
        w = np.ones(len(mean)) if pose_weights is None else np.asarray(pose_weights, np.float64)
        return cls(mean=mean, id_basis=basis, id_eigenvalues=ev,
                   rig=build_expression_rig(mean), pose_weights=w / w.sum(),
                   mirror=mirror_map(mean),
                   triangles=None if triangles is None else np.asarray(triangles),
                   uv=None if uv is None else np.asarray(uv))

    @classmethod
    def canonical(cls) -> "FaceModel":
        """Model on the packaged MediaPipe canonical mesh (``f2fcli.weights``).

        Built once per process (the identity basis costs an eigensolve); treat it as read-only.
        """
        return _canonical_model(cls)

    @classmethod
    def _build_canonical(cls) -> "FaceModel":
        with _canonical_mesh_file() as p, np.load(p) as z:
            verts = z["vertices"]
            w = np.zeros(len(verts))
            w[z["procrustes_indices"]] = z["procrustes_weights"]
            tris = z["triangles"] if "triangles" in z else None
            uv = z["uv"] if "uv" in z else None
        # Vertices 136/365 are on the jaw: with them, mouth opening leaks into
        # pitch (design notes §4.1), so they get no pose weight.
        w[[136, 365]] = 0.0
        return cls.from_mesh(verts, tris, uv, w)

    def with_expression_basis(self, basis: np.ndarray) -> "FaceModel":
        """Copy with a fixed (e.g. per-video refined) rig; lid adaptation is dropped."""
        return replace(self, rig=ExpressionRig(np.asarray(basis, np.float64), self.rig.support))

    # --- geometry ------------------------------------------------------------

    def neutral(self, s: np.ndarray | None, detail: np.ndarray | None = None) -> np.ndarray:
        """Expression-free shape (..., N, 3) of identity ``s`` (..., 50) (+ detail)."""
        out = self.mean
        if s is not None:
            out = out + np.einsum("...i,ivc->...vc", np.asarray(s, np.float64), self.id_basis)
        if detail is not None:
            out = out + np.asarray(detail, np.float64)
        return out

    def expression_basis(self, neutral: np.ndarray | None = None, idx=None) -> np.ndarray:
        """Rig adapted to a neutral shape (default: the mean), rows ``idx`` only."""
        return self.rig.basis(self.mean if neutral is None else neutral, idx)

    def vertices(self, s: np.ndarray | None, e: np.ndarray | None,
                 detail: np.ndarray | None = None, idx=None,
                 offset: np.ndarray | None = None) -> np.ndarray:
        """Vertices (..., N, 3) for identity ``s`` (..., 50), expression ``e`` (..., 51).

        ``idx`` restricts the output to those vertices (the lid adaptation
        still sees the whole neutral). ``offset`` (..., 468, 3) is added after
        the expression (a per-frame fit residual; it does not adapt the rig).
        """
        n = self.neutral(s, detail)
        sl = slice(None) if idx is None else np.asarray(idx)
        out = n[..., sl, :]
        if e is not None:
            b = self.rig.basis(n, idx)
            out = out + np.einsum("...k,...kvc->...vc", np.asarray(e, np.float64), b)
        if offset is not None:
            out = out + np.asarray(offset, np.float64)[..., sl, :]
        return out

    def project(self, vertices: np.ndarray, hp: np.ndarray) -> np.ndarray:
        """Image xy (..., N, 2) of model-frame vertices under head pose ``hp`` (..., 6)."""
        return project_points(vertices, hp, self.pivot)

    def keypoints72(self, s: np.ndarray | None, e: np.ndarray | None, hp: np.ndarray,
                    detail: np.ndarray | None = None, clamp_contacts: bool = True,
                    offset: np.ndarray | None = None) -> np.ndarray:
        """The 72 Face2Face^rho keypoints in image pixels, (..., 72, 2).

        With ``clamp_contacts`` an upper lid / upper inner lip point that the
        expression pushed below its lower partner (model y) meets it at
        their midpoint instead of crossing over.
        """
        pts = self.vertices(s, e, detail, kp.K72, offset)
        if clamp_contacts and e is not None:
            up, lo = (list(c) for c in zip(*kp.CONTACT_PAIRS))
            yu, yl = pts[..., up, 1], pts[..., lo, 1]
            mid = 0.5 * (yu + yl)
            crossed = yu < yl
            pts = pts.copy()
            pts[..., up, 1] = np.where(crossed, mid, yu)
            pts[..., lo, 1] = np.where(crossed, mid, yl)
        return self.project(pts, hp)

    def keypoints27(self, s, e, hp, detail=None) -> np.ndarray:
        """Coarse 27-point subset (..., 27, 2)."""
        return self.keypoints72(s, e, hp, detail)[..., list(kp.K27), :]

    def keypoints8(self, s, e, hp, detail=None) -> np.ndarray:
        """Coarse 8-point subset (..., 8, 2)."""
        return self.keypoints72(s, e, hp, detail)[..., list(kp.K8), :]

    def reenact_keypoints(self, hp_d: np.ndarray, e_d: np.ndarray, s_s: np.ndarray | None,
                          detail_s: np.ndarray | None = None) -> np.ndarray:
        """Keypoints of [hp_d, e_d, s_s]: driving pose and expression on the source identity.

        ``hp_d`` (T, 6) and ``e_d`` (T, 51) per driving frame; ``s_s`` (50,)
        and ``detail_s`` (N, 3) of the source are shared by all frames.
        Returns (T, 72, 2), the paper's M_d, free of the driver's identity.
        """
        return self.keypoints72(s_s, e_d, hp_d, detail_s)


@lru_cache(maxsize=1)
def _canonical_model(cls: type) -> "FaceModel":
    return cls._build_canonical()
