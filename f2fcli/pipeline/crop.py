"""The square face crop the renderers work on, and its mapping to source-image pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_RES, MAX_RES = 256, 2048


@dataclass(frozen=True)
class CropBox:
    """A square of `size` source pixels at (x0, y0), rendered at `res` x `res`."""

    x0: int
    y0: int
    size: int
    res: int

    @property
    def scale(self) -> float:
        """Crop pixels per source pixel."""
        return self.res / self.size

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Source-image points (..., 2|3) to crop pixels; z scales like x and y."""
        out = np.array(points, dtype=np.float64, copy=True)
        out[..., 0] -= self.x0
        out[..., 1] -= self.y0
        out *= self.scale
        return out

    def cut(self, image: np.ndarray) -> np.ndarray:
        """The crop at `res`; parts outside the image repeat its edge pixels."""
        h, w = image.shape[:2]
        x0, y0, x1, y1 = self.x0, self.y0, self.x0 + self.size, self.y0 + self.size
        pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
        region = image[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
        if any(pad):
            region = cv2.copyMakeBorder(region, *pad, cv2.BORDER_REPLICATE)
        if self.size == self.res:
            return np.ascontiguousarray(region)
        shrink = self.res < self.size
        return cv2.resize(region, (self.res, self.res),
                          interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)

    def to_dict(self) -> dict[str, int]:
        return {"x0": self.x0, "y0": self.y0, "size": self.size, "res": self.res}


def face_crop_box(landmarks: np.ndarray, crop_scale: float, res: int) -> CropBox:
    """A square around the face: `crop_scale` times the face's larger side, centred on it.

    The centre sits slightly above the landmark box centre, because the mesh stops at the
    hairline and the crop should hold the head, not the neck.
    """
    if not MIN_RES <= res <= MAX_RES:
        raise ValueError(f"face resolution must be within {MIN_RES}..{MAX_RES}, got {res}")
    xy = np.asarray(landmarks)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    side = float(max(hi - lo)) * crop_scale
    cx, cy = (lo + hi) / 2 - np.array([0.0, 0.08 * float(hi[1] - lo[1])])
    size = max(16, int(round(side)))
    return CropBox(int(round(cx - size / 2)), int(round(cy - size / 2)), size, res)
