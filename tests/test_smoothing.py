"""Temporal bilateral filter and missing-frame filling."""

from __future__ import annotations

import numpy as np
import pytest

from f2fcli.geometry import matrix_to_rotvec, rotvec_to_matrix
from f2fcli.tracking.smoothing import (SmoothingParams, adaptive_gaussian, bias_limited_sigma,
                                       bilateral_filter, bilateral_filter_rotations, fill_missing,
                                       fill_missing_rotvec, odd_gaussian, smooth_track)

P = SmoothingParams()


def _jitter(x: np.ndarray) -> float:
    return float(np.std(np.diff(x, axis=0)))


def test_halves_jitter_on_noisy_constant() -> None:
    rng = np.random.default_rng(0)
    x = 0.3 + rng.normal(scale=0.02, size=(400, 3))
    y = bilateral_filter(x, P.sigma_t, P.sigma_expression)
    assert np.std(y - 0.3) < 0.5 * np.std(x - 0.3)
    assert _jitter(y) < 0.5 * _jitter(x)


@pytest.mark.parametrize("blink", [[0.5, 1.0, 0.5], [0.3, 0.8, 1.0, 0.8, 0.3]])
def test_blink_peak_survives(blink: list[float]) -> None:
    rng = np.random.default_rng(1)
    x = np.full(60, 0.05)
    x[30:30 + len(blink)] = blink
    x = x + rng.normal(scale=0.015, size=x.shape)
    peak = x.argmax()
    y = bilateral_filter(x[:, None], P.sigma_t, P.sigma_expression)[:, 0]
    assert y[peak] >= 0.8 * x[peak]
    # The same window without the range term would flatten the blink:
    # proves the test can fail.
    g = bilateral_filter(x[:, None], P.sigma_t, 1e6)[:, 0]
    assert g[peak] < 0.8 * x[peak]
    # and the quiet part is still smoothed
    assert _jitter(y[:25]) < 0.5 * _jitter(x[:25])


def test_fast_mouth_closure_stays_sharp() -> None:
    x = np.concatenate([np.full(20, 0.6), [0.3], np.zeros(20)])[:, None]
    y = bilateral_filter(x, P.sigma_t, P.sigma_expression)[:, 0]
    assert y[19] > 0.55 and y[22] < 0.05


def test_rotation_filter_reduces_jitter_near_pi() -> None:
    """Noisy rotations around a 179 degree turn: smoothed without wrap-around."""
    rng = np.random.default_rng(2)
    base = rotvec_to_matrix(np.array([0.0, np.radians(179.0), 0.0]))
    noise = rng.normal(scale=np.radians(0.3), size=(200, 3))
    r = matrix_to_rotvec(base @ rotvec_to_matrix(noise))
    y = bilateral_filter_rotations(r, P.sigma_t, P.sigma_rotation)

    def err(v: np.ndarray) -> np.ndarray:
        return np.linalg.norm(matrix_to_rotvec(base.T @ rotvec_to_matrix(v)), axis=-1)

    assert np.sqrt(np.mean(err(y) ** 2)) < 0.5 * np.sqrt(np.mean(err(r) ** 2))


def test_rotation_filter_keeps_a_fast_turn() -> None:
    yaw = np.radians(np.concatenate([np.zeros(20), np.linspace(0, 30, 4), np.full(20, 30.0)]))
    r = np.stack([np.zeros_like(yaw), yaw, np.zeros_like(yaw)], 1)
    y = bilateral_filter_rotations(r, P.sigma_t, P.sigma_rotation)
    np.testing.assert_allclose(y[[0, 10, -10, -1]], r[[0, 10, -10, -1]], atol=1e-6)
    assert abs(y[22, 1] - r[22, 1]) < np.radians(1.0)


def test_fill_missing_interpolates_and_holds() -> None:
    x = np.array([[np.nan], [np.nan], [1.0], [np.nan], [np.nan], [4.0], [np.nan]])
    valid = np.isfinite(x[:, 0])
    y = fill_missing(x, valid)
    np.testing.assert_allclose(y[:, 0], [1, 1, 1, 2, 3, 4, 4])
    with pytest.raises(ValueError):
        fill_missing(x, np.zeros(7, bool))


def test_fill_missing_rotation_slerps() -> None:
    r = np.array([[0, 0, 0.0], [0, 0, 0], [0, 0.8, 0]])
    y = fill_missing_rotvec(r, np.array([True, False, True]))
    np.testing.assert_allclose(y[1], [0, 0.4, 0], atol=1e-12)


def test_smooth_track_fills_and_flags_missing_frames() -> None:
    rng = np.random.default_rng(3)
    t = 50
    hp = np.zeros((t, 6))
    hp[:, 1] = 0.2 + rng.normal(scale=0.005, size=t)
    hp[:, 3:5] = [200.0, 220.0]
    hp[:, 5] = 15.0
    ex = np.clip(0.2 + rng.normal(scale=0.02, size=(t, 51)), 0, 1)
    hp[10:13] = np.nan
    ex[10:13] = np.nan
    ex[0] = np.nan  # a missing first frame is held from the next valid one
    out = smooth_track(hp, ex)
    assert np.isfinite(out.hp).all() and np.isfinite(out.expression).all()
    np.testing.assert_array_equal(np.flatnonzero(out.filled), [0, 10, 11, 12])
    assert _jitter(out.hp[:, 1]) < 0.5 * _jitter(np.nan_to_num(hp[:, 1], nan=0.2))
    assert np.abs(out.hp[:, 3:] - [200.0, 220.0, 15.0]).max() < 1e-9


def test_long_inputs_are_filtered_in_blocks_with_the_same_result() -> None:
    x = np.random.default_rng(3).normal(size=(100, 5))
    for radius in (None, 1, 9):
        whole = bilateral_filter(x, 2.0, 0.5, radius=radius)
        np.testing.assert_array_equal(bilateral_filter(x, 2.0, 0.5, radius=radius, block=7), whole)


def test_adaptive_gaussian_narrows_where_the_signal_turns() -> None:
    # a smile held for two frames among noisy stillness: the width follows the clean signal,
    # so the noise is smoothed as by the full Gaussian and the smile keeps its height
    rng = np.random.default_rng(3)
    clean = np.zeros((80, 1))
    clean[40:42] = 0.5
    noisy = clean + rng.normal(0, 0.02, clean.shape)
    sigma = bias_limited_sigma(clean, 2.0, 0.02)
    assert sigma[:30].min() == 2.0 and sigma[39:43].max() < 0.6
    out = adaptive_gaussian(noisy, sigma, 2.0)
    assert out[40:42, 0].min() > 0.45
    assert _jitter(out[:30]) < 0.3 * _jitter(noisy[:30])
    plain = adaptive_gaussian(noisy, np.full(80, 2.0), 2.0)
    assert plain[40:42, 0].max() < 0.3
    ramp = np.linspace(0, 1, 20)[:, None]  # odd reflection: a steady ramp is left as it is
    np.testing.assert_allclose(adaptive_gaussian(ramp, np.full(20, 2.0), 2.0), ramp, atol=1e-9)


def test_odd_gaussian_keeps_the_end_values_of_a_moving_signal() -> None:
    # a smile fading from the first frame: a truncated window would pull frame 0 down
    fade = np.exp(-np.arange(30) / 3.0)[:, None] * 0.5
    out = odd_gaussian(fade, 2.0)
    assert out[0, 0] > 0.45
    truncated = bilateral_filter(fade, 2.0, np.inf)
    assert truncated[0, 0] < 0.4
