"""Paste-back: the rendered face crop blended into the full source image."""

from __future__ import annotations

import cv2
import numpy as np

from .crop import CropBox


def feather_mask(size: int, feather: float = 0.08) -> np.ndarray:
    """(size, size) float32 weights: 1 inside, a smooth ramp to 0 over the outer `feather`."""
    ramp = max(1, int(round(size * feather)))
    edge = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    line = np.clip(edge / ramp, 0.0, 1.0)
    line = line * line * (3 - 2 * line)  # smoothstep: no visible edge where the ramp ends
    return np.outer(line, line)


class PasteBack:
    """Blends crops rendered at `box.res` into copies of the full source image."""

    def __init__(self, image: np.ndarray, box: CropBox, feather: float = 0.08) -> None:
        self.image = image
        self.box = box
        h, w = image.shape[:2]
        self._dst = (max(0, box.y0), min(h, box.y0 + box.size),
                     max(0, box.x0), min(w, box.x0 + box.size))
        y0, y1, x0, x1 = self._dst
        self._src = (y0 - box.y0, y1 - box.y0, x0 - box.x0, x1 - box.x0)
        sy0, sy1, sx0, sx1 = self._src
        # OpenCV's per-pixel blend runs on every core and stays in uint8: at a 2048-px source
        # it is a seventh of the float32 arithmetic's time on the encoder's thread
        self._mask = np.ascontiguousarray(feather_mask(box.size, feather)[sy0:sy1, sx0:sx1])
        self._keep = np.ascontiguousarray(1.0 - self._mask)
        self._background = np.ascontiguousarray(image[y0:y1, x0:x1])

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        size = self.box.size
        if crop.shape[0] != size:
            shrink = crop.shape[0] > size
            crop = cv2.resize(crop, (size, size),
                              interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        sy0, sy1, sx0, sx1 = self._src
        face = np.ascontiguousarray(crop[sy0:sy1, sx0:sx1])
        out = self.image.copy()
        y0, y1, x0, x1 = self._dst
        out[y0:y1, x0:x1] = cv2.blendLinear(face, self._background, self._mask, self._keep)
        return out
