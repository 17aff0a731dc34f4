"""Landmark images: sizes, keypoint subsets, colours, pixel convention, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from f2fcli.model.generator import landmark_tensors
from f2fcli.model.landmark_images import draw_landmark_images, landmark_image_sizes
from f2fcli.tracking.keypoints import K8, K27, PART_COLORS


def face_landmarks() -> np.ndarray:
    """A plausible frontal face in the 72-keypoint layout, normalised coordinates (1, 72, 2)."""
    pts = np.zeros((72, 2))
    left = np.linspace(np.pi, np.pi / 2, 9)  # contour 0..8: image-left ear level -> chin
    pts[0:9] = np.stack([0.45 * np.cos(left), 0.55 * np.sin(left) - 0.05], 1)
    right = np.linspace(0.0, np.pi / 2 - 0.12, 8)  # 9..16: image-right ear level -> near chin
    pts[9:17] = np.stack([0.45 * np.cos(right), 0.55 * np.sin(right) - 0.05], 1)
    pts[17:22] = np.stack([np.linspace(-0.38, -0.08, 5), np.full(5, -0.32)], 1)
    pts[22:27] = np.stack([np.linspace(0.08, 0.38, 5), np.full(5, -0.32)], 1)
    pts[27:31] = np.stack([np.zeros(4), np.linspace(-0.2, 0.08, 4)], 1)
    pts[31:36] = np.stack([np.linspace(-0.1, 0.1, 5), np.full(5, 0.14)], 1)

    def ring(cx: float, cy: float, rx: float, ry: float, angles: np.ndarray) -> np.ndarray:
        return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], 1)

    eye = np.pi + np.arange(8) * np.pi / 4  # outer corner, upper lid, inner corner, lower lid
    pts[36:44] = ring(-0.22, -0.18, 0.1, 0.05, eye)
    pts[44:52] = ring(0.22, -0.18, 0.1, 0.05, -eye)  # starts at the inner corner (image-left)
    outer = (52, 54, 53, 62, 58, 59, 57, 65, 66, 71, 69, 68)
    pts[list(outer)] = ring(0.0, 0.3, 0.2, 0.09, np.pi + np.arange(12) * np.pi / 6)
    inner = (55, 56, 63, 61, 60, 64, 70, 67)
    pts[list(inner)] = ring(0.0, 0.3, 0.12, 0.04, np.pi + np.arange(8) * np.pi / 4)
    return pts[None]


def test_sizes_and_value_range() -> None:
    assert landmark_image_sizes(512) == (32, 64, 128)
    assert landmark_image_sizes(256) == (16, 32, 64)
    images = landmark_tensors(np.repeat(face_landmarks(), 2, 0), 512)
    assert [tuple(t.shape) for t in images] == [(2, 3, 32, 32), (2, 3, 64, 64), (2, 3, 128, 128)]
    for t in images:
        assert t.dtype == torch.float32
        assert t.min() == -1.0 and t.max() == 1.0
        # Background -1 dominates a face sketch.
        assert (t == -1).all(1).float().mean() > 0.6


def _depends_on(level: int, official_eye: bool = False) -> set[int]:
    base = face_landmarks()
    reference = draw_landmark_images(base, 512, official_eye)[level]
    used = set()
    for i in range(72):
        moved = base.copy()
        moved[0, i] += (0.31, 0.23)
        if not np.array_equal(draw_landmark_images(moved, 512, official_eye)[level], reference):
            used.add(i)
    return used


def test_keypoint_subsets_per_scale() -> None:
    assert _depends_on(0) == set(K8)
    assert len(K8) == 8
    assert _depends_on(1) == set(K27)
    assert len(K27) == 27
    assert _depends_on(2) == set(range(72))
    # The official drawer leaves point 49 (right eye, lower lid) out of the finest image.
    assert _depends_on(2, official_eye=True) == set(range(72)) - {49}


def test_part_colours_and_normalisation() -> None:
    canvas = draw_landmark_images(face_landmarks(), 1024)[2][0]
    colours = {tuple(int(v) for v in c) for c in canvas.reshape(-1, 3)}
    assert colours == set(PART_COLORS.values()) | {(0, 0, 0)}
    # Gray contour (125) maps to 2 * 125 / 255 - 1; channels are not reordered.
    t = landmark_tensors(face_landmarks(), 1024)[2][0]
    gray = (canvas == 125).all(-1)
    assert np.allclose(t[:, torch.from_numpy(gray)].numpy(), 2 * 125 / 255 - 1, atol=1e-6)


def test_pixel_convention_and_dot_shape() -> None:
    points = np.full((1, 72, 2), 5.0)  # everything far off the canvas ...
    points[0, 30] = (1.0, -1.0)  # ... except the nose tip, at the top-right pixel centre
    canvas = draw_landmark_images(points, 512)[0][0]  # 32x32, nose = one dot
    ys, xs = np.nonzero(canvas.any(-1))
    assert set(zip(ys.tolist(), xs.tolist())) == {(0, 31), (1, 31), (0, 30)}  # clipped "+"
    points[0, 30] = (-0.6, 0.2)  # pixel (0.2 * 31, 0.6 * 31) = (6.2, 18.6) -> (6, 18)
    canvas = draw_landmark_images(points, 512)[0][0]
    ys, xs = np.nonzero(canvas.any(-1))
    assert set(zip(ys.tolist(), xs.tolist())) == {(18, 6), (17, 6), (19, 6), (18, 5), (18, 7)}
    assert tuple(canvas[18, 6]) == PART_COLORS["nose"]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="72"):
        draw_landmark_images(np.zeros((1, 68, 2)), 512)
    bad = face_landmarks()
    bad[0, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        draw_landmark_images(bad, 512)
    with pytest.raises(ValueError, match="multiple"):
        landmark_image_sizes(500)
    # Far-off but finite points are clipped, not an error.
    assert draw_landmark_images(face_landmarks() * 1e9, 512)[2].shape == (1, 128, 128, 3)


def test_drawing_one_frame_at_512_is_well_under_a_millisecond() -> None:
    torch.set_num_threads(1)
    landmarks = face_landmarks()
    landmark_tensors(landmarks, 512)
    times = []
    for _ in range(50):
        start = time.perf_counter()
        landmark_tensors(landmarks, 512)
        times.append(time.perf_counter() - start)
    assert np.median(times) < 0.5e-3, f"median {np.median(times) * 1e3:.3f} ms"
