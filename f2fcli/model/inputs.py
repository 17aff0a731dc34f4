"""The networks' input geometry, without torch: working sizes, keypoint coordinates on the
padded canvas, batch rules. Shared by the torch generator and the onnxruntime one."""

from __future__ import annotations

from typing import Any

import numpy as np

PAD_MULTIPLE = 64
MIN_SIZE = 64
POSE_DIMS = 6


def padded_size(size: int) -> int:
    """Internal working size for an output of `size` pixels."""
    return -(-size // PAD_MULTIPLE) * PAD_MULTIPLE


def padded_coordinates(landmarks: Any, size: int, padded: int) -> np.ndarray:
    """Keypoints normalised to a `size` image -> normalised to the centred `padded` canvas.

    Uses the drawer's pixel convention: -1/+1 are the centres of the first/last pixel.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if padded == size:
        return landmarks
    pixel = (landmarks + 1.0) / 2.0 * (size - 1) + (padded - size) // 2
    return pixel / (padded - 1) * 2.0 - 1.0


def check_drive_batch(poses: int, landmarks: int, sources: int) -> None:
    """Driving poses and landmarks pair up; one source drives all frames, or one per frame."""
    if landmarks != poses:
        raise ValueError("driving poses and landmarks need the same batch size")
    if sources not in (1, poses):
        raise ValueError(f"a source batch of {sources} cannot drive {poses} frames")
