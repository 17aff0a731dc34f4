"""Landmark images: 72 keypoints -> face sketches at 1/16, 1/8 and 1/4 of the output size.

Drawn like the official generator: 8, 27 and 72 keypoints per scale, OpenCV 4-connected
lines of width 1, a single keypoint as a radius-1 filled circle (a small "+"), one colour
triple per part written to channels 0, 1, 2 in that order, on a black canvas, parts drawn
in a fixed order; then mapped to [-1, 1] (background -1). Keypoint coordinates are
normalised to the full image (-1 = left/top edge, +1 = right/bottom edge) and mapped to
canvas pixels by (v + 1) / 2 * (S - 1), truncated toward zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from ..tracking.keypoints import N_KEYPOINTS, PART_COLORS, STROKES

SCALES = (16, 8, 4)
"""Output size divisor of each landmark image, coarsest first."""

# The official drawer's finest right eye: the polyline 48,47,46,45,44,51,50,48,48 skips 49.
_OFFICIAL_RIGHT_EYE = (48, 47, 46, 45, 44, 51, 50)


@dataclass(frozen=True)
class _Primitive:
    indices: np.ndarray  # keypoint indices (int)
    closed: bool
    color: tuple[int, int, int]


@cache
def _primitives(official_eye: bool) -> tuple[tuple[_Primitive, ...], ...]:
    levels = []
    for level, strokes in enumerate(STROKES):
        prims = []
        for stroke in strokes:
            indices, closed = stroke.indices, stroke.closed
            if official_eye and level == len(STROKES) - 1 and stroke.part == "right_eye":
                indices, closed = _OFFICIAL_RIGHT_EYE, True
            prims.append(_Primitive(np.asarray(indices), closed, PART_COLORS[stroke.part]))
        levels.append(tuple(prims))
    return tuple(levels)


def landmark_image_sizes(size: int) -> tuple[int, ...]:
    """Side of each landmark image for a (padded) output of `size` pixels."""
    if size % SCALES[0]:
        raise ValueError(f"size {size} is not a multiple of {SCALES[0]}")
    return tuple(size // s for s in SCALES)


def _draw(canvas: np.ndarray, points: np.ndarray, prims: tuple[_Primitive, ...]) -> None:
    for prim in prims:
        pts = points[prim.indices]
        if len(pts) == 1:
            cv2.circle(canvas, (int(pts[0, 0]), int(pts[0, 1])), 1, prim.color, -1)
        else:
            cv2.polylines(canvas, [pts], prim.closed, prim.color, 1, cv2.LINE_4)


def draw_landmark_images(landmarks: np.ndarray, size: int,
                         official_eye: bool = False) -> list[np.ndarray]:
    """Draw (N, 72, 2) normalised keypoints; returns uint8 (N, s, s, 3) canvases per scale.

    `official_eye` reproduces the official drawer's right eye (point 49 left out), which
    the released official weights were trained with.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (N_KEYPOINTS, 2):
        raise ValueError(f"landmarks must be (N, {N_KEYPOINTS}, 2), got {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks contain NaN or infinite values")
    canvases = []
    for side, prims in zip(landmark_image_sizes(size), _primitives(official_eye)):
        # Clip far-off points so that they fit OpenCV's int32 coordinates.
        pixels = np.clip((landmarks + 1.0) / 2.0 * (side - 1), -1e6, 1e6).astype(np.int32)
        canvas = np.zeros((len(landmarks), side, side, 3), np.uint8)
        for image, points in zip(canvas, pixels):
            _draw(image, points, prims)
        canvases.append(canvas)
    return canvases
