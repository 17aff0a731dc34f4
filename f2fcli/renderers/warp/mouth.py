"""Mouth interior for the warp renderer: a dark cavity where the driven mouth opens wider.

The warp maps the lips' own texture with the lips; the part of the driven
mouth opening that the source does not have is painted here.  The colour is
derived from the source's lips (so a greyscale photo gets a grey cavity and
a painting keeps its palette): darkest in the middle of the opening,
lighter and redder towards the lips, with a faint shadow under the upper
lip and, optionally, a dim band of upper teeth.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...geometry import smoothstep
from .field import MouthOpening
from .parts import EYES, ratio
from .settings import WarpSettings

_SHIFT = 4
TOOTH_WIDTH = 0.11  # of the mouth's width: eight to ten teeth show across a smile
TONGUE = 0.7  # how far the tongue at the bottom of a tall opening lightens it to the lips' shade
_SUB = float(1 << _SHIFT)


def region_pixels(image: np.ndarray, outer: np.ndarray, inner: np.ndarray | None = None
                  ) -> np.ndarray:
    """RGB (n, 3) float64 of the pixels inside polygon ``outer`` and outside ``inner``."""
    h, w = image.shape[:2]
    lo = np.floor(np.clip(outer.min(0), 0, [w - 1, h - 1])).astype(int)
    hi = np.ceil(np.clip(outer.max(0), 0, [w - 1, h - 1])).astype(int) + 1
    if np.any(hi - lo < 2):
        return np.zeros((0, 3))
    mask = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
    cv2.fillPoly(mask, [np.rint((outer - lo) * _SUB).astype(np.int32)], 255, cv2.LINE_8, _SHIFT)
    if inner is not None and len(inner) >= 3:
        cv2.fillPoly(mask, [np.rint((inner - lo) * _SUB).astype(np.int32)], 0, cv2.LINE_8,
                     _SHIFT)
    return image[lo[1]:hi[1], lo[0]:hi[0]][mask > 0].reshape(-1, 3).astype(np.float64)


def region_colour(image: np.ndarray, outer: np.ndarray, inner: np.ndarray | None = None
                  ) -> np.ndarray | None:
    """Median RGB (3,) float of the pixels inside polygon ``outer`` and outside ``inner``."""
    pix = region_pixels(image, outer, inner)
    return np.median(pix, axis=0) if len(pix) >= 4 else None


def teeth_showing(image: np.ndarray, inner: np.ndarray, skin: np.ndarray | None,
                  full: float = 0.2) -> float:
    """In [0, 1]: whether the source's mouth opening (polygon ``inner``) shows teeth, from
    the share of its pixels that are light and grey for this face; 1 from ``full``."""
    pix = region_pixels(image, inner)
    if len(pix) < 8 or skin is None:
        return 0.0
    luma = pix.mean(1)
    spread = np.ptp(pix, axis=1) / np.maximum(luma, 1.0)
    skin_spread = float(np.ptp(skin)) / max(float(np.mean(skin)), 1.0)
    # teeth in a mouth are shaded well below the skin but stay greyer than it (lips: redder)
    teeth = (luma > 0.6 * float(np.mean(skin))) & (spread < 1.5 * max(skin_spread, 0.1))
    return float(np.clip(teeth.mean() / full, 0.0, 1.0))


def cavity_colours(lip: np.ndarray | None, skin: np.ndarray | None, edge_gain: float,
                   core_gain: float, teeth_gain: float,
                   override: tuple[int, int, int] | None = None,
                   white: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edge, core, teeth) RGB float colours of the cavity from the source's lips and skin;
    ``white`` (the eyes' white, if seen) gives the light's colour for the teeth."""
    if lip is None:
        lip = np.array([150.0, 80.0, 80.0]) if skin is None else skin * np.array([1.0, 0.7, 0.7])
    lip = np.asarray(lip, np.float64)
    if override is not None:
        base = np.asarray(override, np.float64)
        return base * 1.6, base, np.clip(base * 4.0 + 40.0, 0, 255)
    # push the hue a little towards red-brown, but only as far as the source is
    # coloured at all: a grey photo gives a grey cavity
    grey = lip.mean()
    sat = float(np.ptp(lip)) / max(grey, 1.0)
    warm = np.array([1.08, 0.9, 0.86])
    tint = 1.0 + np.clip(sat * 2.0, 0.0, 1.0) * (warm - 1.0)
    edge = np.clip(lip * tint * edge_gain, 0, 255)
    core = np.clip(lip * tint * core_gain, 0, 255)
    ref = np.asarray(skin if skin is not None else lip, np.float64)
    # teeth: brighter than the skin and nearly neutral, warm only as far as the photo is
    # coloured (a grey photo gets grey teeth); `teeth_gain` dims them into the mouth's shade
    ivory = 1.0 + np.clip(sat * 2.0, 0.0, 1.0) * (np.array([1.0, 0.96, 0.88]) - 1.0)
    if _lit_like_skin(white, ref):
        # under a coloured light (warm room, old film) neutral teeth look blue against the
        # skin: they take the hue the eyes' white has in this photo
        ivory = ivory * np.asarray(white, np.float64) / float(np.max(white))
    teeth = np.clip(min(ref.max() * 1.2, 245.0) * ivory * teeth_gain, 0, 255)
    return edge, core, teeth


def _lit_like_skin(white: np.ndarray | None, skin: np.ndarray) -> bool:
    """Whether `white` can be the eyes' white under the light that falls on `skin`: not
    much darker, and tinted, if at all, the way the skin is (dark or coloured glasses and
    a shadowed eye are not)."""
    if white is None:
        return False
    white, skin = np.asarray(white, np.float64), np.asarray(skin, np.float64)
    if white.mean() <= 0.5 * skin.mean():
        return False
    tint = white / white.mean() - 1.0
    own = skin / max(float(skin.mean()), 1.0) - 1.0
    return bool(np.abs(tint).max() < 0.1 or tint @ own > 0.5 * np.linalg.norm(tint)
                * np.linalg.norm(own))


def fill_cavity(image: np.ndarray, upper: np.ndarray, lower: np.ndarray, strength: float,
                colours: tuple[np.ndarray, np.ndarray, np.ndarray], feather: float,
                teeth: float = 0.0, shown: float = 0.0, spread: float = 1.0) -> None:
    """Paint the cavity bounded by polylines ``upper``/``lower`` (each (n, 2), same ends) in place.

    ``strength`` in [0, 1] scales the whole fill (0 = nothing); ``feather``
    is the edge blur in pixels; ``teeth`` in [0, 1] the opacity of the
    teeth; ``shown``: px of the source's own upper teeth already above the
    cavity (the synthetic row is that much shorter); ``spread`` in [0, 1]: how far
    the lips are drawn back (1: a smile bares both rows; 0: relaxed lips, which cover
    them as the jaw drops).
    """
    if strength <= 0.0:
        return
    h, w = image.shape[:2]
    poly = np.concatenate([upper, lower[::-1]], 0)
    gaps = np.linalg.norm(lower - upper, axis=1)
    height = float(gaps.max())
    width = float(np.linalg.norm(upper[-1] - upper[0]))
    if height <= 0.0 or not np.all(np.isfinite(poly)):
        return
    margin = int(np.ceil(3.0 * feather + 0.5 * height + 3))
    lo = np.floor(poly.min(0)).astype(int) - margin
    hi = np.ceil(poly.max(0)).astype(int) + margin + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [w, h])
    if np.any(hi - lo < 2):
        return
    rw, rh = int(hi[0] - lo[0]), int(hi[1] - lo[1])
    mask = np.zeros((rh, rw), np.uint8)
    cv2.fillPoly(mask, [np.rint((poly - lo) * _SUB).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT)
    alpha = mask.astype(np.float32) * (1.0 / 255.0)
    if feather > 0.0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather)
    # depth cue: distance into the opening, from a blurred copy of the mask
    sigma = max(1.0, 0.2 * height)
    core = cv2.GaussianBlur(alpha, (0, 0), sigma)
    core = np.clip((core - 0.2) * 2.5, 0.0, 1.0)
    edge_c, core_c, teeth_c = colours
    colour = edge_c[None, None, :] + core[..., None] * (core_c - edge_c)[None, None, :]
    # shadow under the upper lip: a copy of the upper edge pulled down a little
    down = lower.mean(0) - upper.mean(0)
    nd = np.linalg.norm(down)
    down = down / nd if nd > 1e-6 else np.array([0.0, 1.0])
    shadow = np.clip(alpha - _shift(alpha, down * max(1.0, 0.15 * height)), 0.0, 1.0)
    colour *= 1.0 - 0.35 * shadow[..., None]
    colour += _tongue_mask(alpha, down, height, width)[..., None] * (edge_c - colour)
    if teeth > 0.0 and height > 2.0:
        tmask = _teeth_mask(alpha, down, upper, height, width, shown, spread)
        # teeth fade in as the lips part (a smile shows them at once), dimmer towards the
        # corners, where the cheeks shade them,
        tmask *= teeth * float(np.clip((height - 0.02 * width) / (0.05 * width), 0.0, 1.0))
        along = (np.indices(alpha.shape)[::-1].transpose(1, 2, 0) + lo
                 - 0.5 * (upper[0] + upper[-1])) @ ((upper[-1] - upper[0]) / max(width, 1e-6))
        # and gone at them: the rows do not run down the sides of a tall opening
        tmask *= 1.0 - smoothstep((np.abs(along) / (0.5 * width) - 0.5) / 0.45)
        # faint gaps between the teeth, the central pair meeting in the middle
        phase = along / (TOOTH_WIDTH * width)
        tmask *= 1.0 - 0.15 * np.exp(-0.5 * ((phase - np.round(phase)) / 0.07) ** 2)
        # the upper lip shades the teeth less than the dark cavity behind them
        lit = teeth_c[None, None, :] * (1.0 - 0.12 * shadow[..., None])
        colour += tmask[..., None] * (lit - colour)
    alpha *= float(strength)
    roi = image[lo[1]:hi[1], lo[0]:hi[0]]
    out = roi.astype(np.float32)
    out += alpha[..., None] * (colour - out)
    roi[...] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _tongue_mask(alpha: np.ndarray, down: np.ndarray, height: float, width: float
                 ) -> np.ndarray:
    """How far the floor of the opening shows the tongue, in the lips' shade rather than the
    black behind it: the lower part of a tall opening, fading in as the jaw drops."""
    drop = float(np.clip((height - 0.15 * width) / (0.15 * width), 0.0, 1.0))
    if drop <= 0.0:
        return np.zeros_like(alpha)
    floor = np.clip(alpha - _shift(alpha, -down * 0.4 * height), 0.0, 1.0)
    return TONGUE * drop * cv2.GaussianBlur(floor, (0, 0), max(1.0, 0.1 * height))


def _teeth_mask(alpha: np.ndarray, down: np.ndarray, upper: np.ndarray, height: float,
                width: float, shown: float = 0.0, spread: float = 1.0) -> np.ndarray:
    """Where teeth show in the opening: the upper row (about a fifth of the mouth's width
    tall, less the `shown` px of it above the opening) under the upper lip and, once the
    jaw drops further, the lower row above the lower lip, with the dark gap between them."""
    full_row = 0.2 * width
    # relaxed lips over a dropped jaw: the upper lip hangs over half the upper row and the
    # lower lip over the lower one; a narrow or drawn-back opening shows them
    covered = (1.0 - spread) * float(smoothstep((height / max(width, 1e-6) - 0.15) / 0.2))
    upper_row = min(height, max(full_row * (1.0 - 0.5 * covered) - shown, 0.0))
    mask = np.clip(alpha - _shift(alpha, down * upper_row), 0.0, 1.0)
    opening = height + min(shown, full_row)
    lower_row = (1.0 - covered) * float(np.clip(opening - full_row - 0.03 * width, 0.0,
                                                0.12 * width))
    if lower_row > 0.5:
        mask = np.maximum(mask, np.clip(alpha - _shift(alpha, -down * lower_row), 0.0, 1.0))
    # the edge between the rows and at the lips is soft
    return cv2.GaussianBlur(mask, (0, 0), max(0.6, 0.04 * width))


def _shift(img: np.ndarray, d: np.ndarray) -> np.ndarray:
    m = np.array([[1.0, 0.0, d[0]], [0.0, 1.0, d[1]]], np.float32)
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def paint_mouth(img: np.ndarray, dst: np.ndarray, mouth_mu: np.ndarray, mouth_ml: np.ndarray,
                opening: MouthOpening, face_widening: float, colours: tuple, teeth_share: float,
                own_teeth: float, scale_px: float, settings: WarpSettings) -> None:
    """In place: paint the cavity of a driven mouth opened wider than the source's, between
    the cavity rows `mouth_mu`/`mouth_ml` at their driven positions `dst`."""
    s = settings
    m_open = s.mouth_min_opening * scale_px
    strength = float(np.clip((opening.excess.max() - 0.5 * m_open) / max(m_open, 1e-6), 0, 1))
    if strength <= 0.0:
        return
    # the upper band already carries this much of the source's own teeth
    shown = opening.split * float(opening.keep.max()) * own_teeth
    # rounded, pushed-out lips (an "o") stand away from the teeth: they hide in the
    # dark; a mouth as wide as at rest or wider (speech, a grin) shows them
    narrowed = opening.widening / max(face_widening, 1e-6)
    teeth = s.teeth * teeth_share * smoothstep((narrowed - 0.75) / 0.2)
    spread = smoothstep((narrowed - 0.95) / 0.15)
    fill_cavity(img, dst[mouth_mu], dst[mouth_ml], strength, colours,
                s.mouth_feather * scale_px, float(teeth), shown, float(spread))


def face_widening(target: np.ndarray, source: np.ndarray) -> float:
    """How much wider the driven face is than the source's, outer eye corner to outer eye
    corner."""
    return ratio(target, source, (EYES[0][2][0], EYES[1][2][1]))
