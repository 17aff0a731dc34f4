"""Geometry shared by tracking, motion and rendering: rotations, similarity fits, ramps.

Rotations are axis-angle vectors (radians) or 3x3 matrices acting on column vectors; batched
over leading axes. Similarity fits find the scale, rotation and shift that best map one point
set onto another.
"""

from __future__ import annotations

import numpy as np


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


def similarity_procrustes(src: np.ndarray, dst: np.ndarray, weights: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted similarity Procrustes, batched: ``dst ~ scale * R @ src + t``.

    ``src`` (N, 3) or (T, N, 3), ``dst`` (T, N, 3), ``weights`` (N,) or (T, N).
    Returns ``R`` (T, 3, 3) proper rotations (reflections are rejected by
    flipping the weakest singular direction), ``scale`` (T,), ``t`` (T, 3).
    """
    dst = np.asarray(dst, np.float64)
    src = np.broadcast_to(np.asarray(src, np.float64), dst.shape)
    w = np.broadcast_to(np.asarray(weights, np.float64), dst.shape[:-1])
    wsum = np.maximum(w.sum(-1, keepdims=True), 1e-300)
    wn = w / wsum
    # Batched matmuls rather than multi-operand einsum: BLAS, ~10x faster.
    mu_s = (wn[:, None, :] @ src)[:, 0]
    mu_d = (wn[:, None, :] @ dst)[:, 0]
    a = src - mu_s[:, None]
    b = dst - mu_d[:, None]
    h = np.swapaxes(b * wn[..., None], 1, 2) @ a  # cross-covariance dst x src
    u, sv, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    fix = np.ones_like(sv)
    fix[:, 2] = d
    rot = u @ (fix[:, :, None] * vt)
    var_s = np.sum(wn * np.sum(a * a, -1), -1)
    scale = np.sum(sv * fix, -1) / np.maximum(var_s, 1e-300)
    t = mu_d - scale[:, None] * (rot @ mu_s[..., None])[..., 0]
    return rot, scale, t


def robust_procrustes(src: np.ndarray, dst: np.ndarray, weights: np.ndarray,
                      steps: int = 3, huber: float = 2.0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity Procrustes with Huber IRLS on per-vertex residuals.

    The residual scale per frame is 1.4826 x the median residual norm over
    vertices with weight, so outlier landmarks (occlusion, tracker glitches)
    lose influence without a fixed pixel threshold.
    """
    dst = np.asarray(dst, np.float64)
    w0 = np.broadcast_to(np.asarray(weights, np.float64), dst.shape[:-1])
    w = w0
    src_b = np.broadcast_to(np.asarray(src, np.float64), dst.shape)
    for i in range(steps + 1):
        rot, scale, t = similarity_procrustes(src_b, dst, w)
        if i == steps:
            break
        pred = scale[:, None, None] * (src_b @ np.swapaxes(rot, 1, 2)) + t[:, None]
        r = np.linalg.norm(pred - dst, axis=-1)
        rm = np.where(w0 > 0, r, np.nan)
        sig = 1.4826 * np.nanmedian(rm, axis=-1, keepdims=True)
        sig = np.maximum(sig, 1e-9 * np.maximum(scale[:, None], 1e-9))
        w = w0 * np.minimum(1.0, huber * sig / np.maximum(r, 1e-300))
    return rot, scale, t


def centred_complex(points: np.ndarray) -> np.ndarray:
    """(..., V, 2) points as complex numbers about their mean, (..., V)."""
    z = points[..., 0] + 1j * points[..., 1]
    return z - z.mean(-1, keepdims=True)


def similarity_2d(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2-D rotation and scale, as a complex factor, from `src` to `dst` (both
    (..., V, 2), broadcast against each other; translation taken out), shape (...)."""
    zs = centred_complex(np.asarray(src, np.float64))
    zd = centred_complex(np.asarray(dst, np.float64))
    return np.sum(zd * np.conj(zs), -1) / np.maximum(np.sum(np.abs(zs) ** 2, -1), 1e-12)


def smoothstep(t: np.ndarray | float) -> np.ndarray:
    """0 below 0, 1 above 1, a cubic with flat ends between."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
