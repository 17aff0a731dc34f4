"""The moving parts of the render mesh (lids, lips, the face's outline) and the small
geometry that every step of the warp renderer shares."""

from __future__ import annotations

import numpy as np

from ...geometry import smoothstep
from ...tracking import keypoints as kp

N_MESH = kp.N_MESH

# Lid pairs (upper, lower) without the shared corners, and the corners that
# run image-left -> image-right in an upright face.
EYES = (
    (kp.UPPER_LID_R[1:-1], kp.LOWER_LID_R[1:-1], (kp.UPPER_LID_R[0], kp.UPPER_LID_R[-1])),
    (kp.UPPER_LID_L[1:-1], kp.LOWER_LID_L[1:-1], (kp.UPPER_LID_L[-1], kp.UPPER_LID_L[0])),
)
LOWER_LIDS = (kp.LOWER_LID_R, kp.LOWER_LID_L)  # corner to corner, for the lash fringe
LID_BANDS = (kp.LID_BAND_R, kp.LID_BAND_L)  # the ring of vertices above each upper lid
LIP_UP = np.array(kp.LIP_INNER_UPPER)
LIP_LO = np.array(kp.LIP_INNER_LOWER)
LIP_CORNERS = (kp.LIP_INNER_UPPER[0], kp.LIP_INNER_UPPER[-1])
MOUTH_EDGE = len(kp.LIP_INNER_UPPER)  # vertices along each edge of the mouth's bands
EARS = kp.SIDE_POINTS  # the mesh's outermost points beside the eyes, near the ears' depth


def cone(d: np.ndarray, axis: np.ndarray, degrees: float) -> np.ndarray:
    """Per unit ray (n, 2): 1 along `axis`, easing to 0 at `degrees` from it."""
    c = np.cos(np.radians(degrees))
    return smoothstep(np.clip((d @ axis - c) / max(1.0 - c, 1e-6), 0.0, 1.0))


def eye_ring(pts: np.ndarray, eye: int) -> np.ndarray:
    """The lid polygon (n, 2) of eye `eye` (image-left first): upper lid, then lower back."""
    upper, lower = ((kp.UPPER_LID_R, kp.LOWER_LID_R), (kp.UPPER_LID_L, kp.LOWER_LID_L))[eye]
    return np.asarray(pts, np.float64)[list(upper) + list(lower[-2:0:-1]), :2]


def up_normal(pts: np.ndarray, corners: tuple[int, int]) -> np.ndarray:
    """Unit normal pointing 'up' (towards the brow) for a left -> right corner pair."""
    a = pts[corners[1]] - pts[corners[0]]
    n = np.array([a[1], -a[0]])
    return n / max(np.linalg.norm(n), 1e-9)


def ratio(tgt: np.ndarray, src: np.ndarray, corners: tuple[int, int]) -> float:
    """How much longer the corner-to-corner line is in `tgt` than in `src`."""
    wt = np.linalg.norm(tgt[corners[1]] - tgt[corners[0]])
    ws = np.linalg.norm(src[corners[1]] - src[corners[0]])
    return float(wt / max(ws, 1e-9))
