"""Piecewise-affine backward maps from a triangulated 2D mesh.

A mesh has per-vertex *target* positions (where the vertex is drawn in the
output) and *source* positions (where its texture comes from).  Each
triangle defines the affine map target -> source that fixes its three
corners; together they form a continuous piecewise-affine field.

``FieldEvaluator`` rasterises the target triangles (in the order given,
later ones on top) into an int32 image of triangle numbers with OpenCV's
polygon filler, one call per triangle (about 1 us each), and evaluates the
per-pixel backward displacement ``source - target`` from that index map: on
a coarse grid for the smooth background (upsampled bilinearly: the field is
continuous) and at full resolution around the face.
"""

from __future__ import annotations

import cv2
import numpy as np

SUBPIXEL_BITS = 4
_SUB = float(1 << SUBPIXEL_BITS)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle (F,) of 2D ``points`` (image axes, y down)."""
    a, b, c = (points[triangles[:, k], :2] for k in range(3))
    ab, ac = b - a, c - a
    return ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0]


def affine_displacements(target_tri: np.ndarray, source_tri: np.ndarray) -> np.ndarray:
    """Per-triangle coefficients of the backward displacement, (F, 6) float64.

    ``target_tri``/``source_tri`` are (F, 3, 2).  For a target pixel (x, y)
    inside triangle f the source position is (x + dx, y + dy) with
    ``dx = c0 x + c1 y + c2`` and ``dy = c3 x + c4 y + c5``.  Degenerate
    target triangles get the translation of their first corner.
    """
    f = len(target_tri)
    m = np.ones((f, 3, 3))
    m[:, :, :2] = target_tri
    det = np.linalg.det(m)
    ok = np.abs(det) > 1e-9
    out = np.zeros((f, 6))
    if ok.any():
        # rhs: displacement at the corners; solve m @ coef = disp per axis
        disp = source_tri[ok] - target_tri[ok]
        sol = np.linalg.solve(m[ok], disp)  # (k, 3, 2)
        out[ok, 0:3] = sol[:, :, 0]
        out[ok, 3:6] = sol[:, :, 1]
    if (~ok).any():
        d = source_tri[~ok, 0] - target_tri[~ok, 0]
        out[~ok, 2] = d[:, 0]
        out[~ok, 5] = d[:, 1]
    return out


class FieldEvaluator:
    """Evaluates backward displacement fields for one crop size.

    Two levels: a coarse grid (``coarse_scale`` of the crop) for the smooth
    background, and full resolution inside a region of interest around the
    face, where the field has folds (silhouettes, lids, lips) that bilinear
    upsampling would blur.
    """

    def __init__(self, full_shape: tuple[int, int], coarse_scale: float) -> None:
        h, w = full_shape
        self.full_shape = (int(h), int(w))
        self.grid_shape = (max(2, int(round(h * coarse_scale))),
                           max(2, int(round(w * coarse_scale))))
        # the actual scale per axis after rounding
        self.sy = self.grid_shape[0] / h
        self.sx = self.grid_shape[1] / w
        gh, gw = self.grid_shape
        self.cxs = ((np.arange(gw) + 0.5) / self.sx - 0.5).astype(np.float32)
        self.cys = ((np.arange(gh) + 0.5) / self.sy - 0.5).astype(np.float32)
        self.cids = np.empty(self.grid_shape, np.int32)
        self.fxs = np.arange(w, dtype=np.float32)
        self.fys = np.arange(h, dtype=np.float32)
        self.full_x = np.broadcast_to(self.fxs[None, :], (h, w))
        self.full_y = np.broadcast_to(self.fys[:, None], (h, w))

    def _raster(self, out: np.ndarray, tri: np.ndarray, sx: float, sy: float,
                ox: float, oy: float) -> np.ndarray:
        out.fill(-1)
        pts = np.empty(tri.shape, np.float64)
        pts[..., 0] = (tri[..., 0] + 0.5) * sx - 0.5 - ox
        pts[..., 1] = (tri[..., 1] + 0.5) * sy - 0.5 - oy
        pts = np.rint(pts * _SUB).astype(np.int32)
        fill = cv2.fillConvexPoly
        for i, t in enumerate(pts):
            fill(out, t, i, 8, SUBPIXEL_BITS)
        return out

    @staticmethod
    def _evaluate(ids: np.ndarray, coef: np.ndarray, xs: np.ndarray, ys: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        table = np.zeros((6, len(coef) + 1), np.float32)
        table[:, 1:] = coef.T
        idx = ids + 1
        c = [np.take(table[k], idx) for k in range(6)]
        xs, ys = xs[None, :], ys[:, None]
        dx = c[0] * xs
        dx += c[1] * ys
        dx += c[2]
        dy = c[3] * xs
        dy += c[4] * ys
        dy += c[5]
        return dx, dy

    def coarse(self, target_tri: np.ndarray, coef: np.ndarray) -> np.ndarray:
        """(gh, gw, 2) displacement on the coarse grid; zero where no triangle."""
        ids = self._raster(self.cids, target_tri, self.sx, self.sy, 0.0, 0.0)
        return np.dstack(self._evaluate(ids, coef, self.cxs, self.cys))

    def fine(self, target_tri: np.ndarray, coef: np.ndarray, roi: tuple[int, int, int, int]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Full-resolution (dx, dy, triangle index) inside ``roi`` = (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = roi
        ids = np.empty((y1 - y0, x1 - x0), np.int32)
        self._raster(ids, target_tri, 1.0, 1.0, float(x0), float(y0))
        dx, dy = self._evaluate(ids, coef, self.fxs[x0:x1], self.fys[y0:y1])
        return dx, dy, ids

    def maps(self, coarse: np.ndarray, fine: tuple[np.ndarray, np.ndarray] | None = None,
             roi: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Absolute float32 remap maps: the coarse field upsampled, the fine one pasted in."""
        h, w = self.full_shape
        if coarse.shape[:2] == (h, w):
            up = coarse
        else:
            up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        map_x = up[..., 0] + self.full_x
        map_y = up[..., 1] + self.full_y
        if fine is not None and roi is not None:
            x0, y0, x1, y1 = roi
            map_x[y0:y1, x0:x1] = fine[0] + self.fxs[None, x0:x1]
            map_y[y0:y1, x0:x1] = fine[1] + self.fys[y0:y1, None]
        return map_x, map_y


def soften_folds(img: np.ndarray, dx: np.ndarray, dy: np.ndarray, ids: np.ndarray,
                  roi: tuple[int, int, int, int], jump: float = 1.0) -> None:
    """Anti-alias occlusion edges in place: blur the pixels where the backward map jumps.

    The piecewise-affine field is continuous except where a nearer surface
    covers another (silhouettes, lids, lips); there the index map's pixel
    staircase would show.  Only pixel pairs that lie in different triangles
    are candidates; those whose source positions differ by more than
    ``jump`` px get a 3x3 Gaussian blur on both sides of the edge.
    """
    x0, y0, x1, y1 = roi
    h, w = ids.shape
    if h < 3 or w < 3:
        return
    pts_y, pts_x = [], []
    for axis in (1, 0):
        a = ids[:, :-1] if axis == 1 else ids[:-1, :]
        b = ids[:, 1:] if axis == 1 else ids[1:, :]
        ys, xs = np.nonzero(a != b)
        if not len(ys):
            continue
        ys2, xs2 = (ys, xs + 1) if axis == 1 else (ys + 1, xs)
        d = np.abs(dx[ys, xs] - dx[ys2, xs2]) + np.abs(dy[ys, xs] - dy[ys2, xs2])
        hit = d > jump
        pts_y += [ys[hit], ys2[hit]]
        pts_x += [xs[hit], xs2[hit]]
    ys = np.concatenate(pts_y) if pts_y else np.empty(0, np.int64)
    xs = np.concatenate(pts_x) if pts_x else np.empty(0, np.int64)
    if not len(ys):
        return
    # blur the box around the hits once (3x3 binomial), then copy only the hits
    by0, by1 = max(int(ys.min()) + y0 - 1, 0), min(int(ys.max()) + y0 + 2, img.shape[0])
    bx0, bx1 = max(int(xs.min()) + x0 - 1, 0), min(int(xs.max()) + x0 + 2, img.shape[1])
    box = img[by0:by1, bx0:bx1]
    soft = cv2.GaussianBlur(box, (3, 3), 0, borderType=cv2.BORDER_REPLICATE)
    ys = ys + (y0 - by0)
    xs = xs + (x0 - bx0)
    box[ys, xs] = soft[ys, xs]
