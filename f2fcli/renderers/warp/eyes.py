"""Gaze for the warp renderer: the iris is moved as a whole disc inside the lid opening.

Sliding the eye interior through the mesh (the older way) compresses the iris against one
corner and stretches it away from the other, so a sideways look smears it and it cannot
reach the corner. Here the source eye is prepared once without its iris (inpainted, then
lightened towards the white that shows beside it: inpainting alone pulls in the lashes and
leaves a murky disc where the iris was) and the iris as a separate patch; per frame the
opening is drawn from the iris-free source through the same warp, and the iris patch is laid
over it at its warped position plus the gaze shift, clipped by the driven lids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ...geometry import smoothstep
from .parts import EYES, LOWER_LIDS, eye_ring, up_normal
from .settings import WarpSettings

_SHIFT = 4
_SUB = float(1 << _SHIFT)
IRIS_RADIUS = 0.2  # of the eye's width, when the iris must be found in the image


@dataclass(frozen=True)
class IrisPatch:
    """One eye's iris, cut out of the source crop: RGB (S, S, 3) float32, alpha (S, S)
    float32 (the disc where the source shows it), and the source centre (x, y) of the patch."""

    rgb: np.ndarray
    alpha: np.ndarray
    centre: np.ndarray


def opening_mask(shape: tuple[int, int], ring: np.ndarray, origin: np.ndarray,
                 soften: float) -> np.ndarray:
    """(H, W) float32 in [0, 1]: inside the lid polygon `ring` (n, 2), in a window whose
    top-left is `origin`, with edges blurred by `soften` px."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.rint((ring - origin) * _SUB).astype(np.int32)], 255, cv2.LINE_AA,
                 _SHIFT)
    out = mask.astype(np.float32) * (1.0 / 255.0)
    return cv2.GaussianBlur(out, (0, 0), soften) if soften > 0 else out


def _window(lo: np.ndarray, hi: np.ndarray, image: np.ndarray, least: int = 2
            ) -> tuple[np.ndarray, np.ndarray] | None:
    """The whole-pixel box around the points `lo`..`hi` (x, y), clipped to `image`; None if
    it is narrower than `least` pixels."""
    a = np.maximum(np.floor(lo).astype(int), 0)
    b = np.minimum(np.ceil(hi).astype(int) + 1, image.shape[1::-1])
    return None if np.any(b - a < least) else (a, b)


def _opening_pixels(image: np.ndarray, ring: np.ndarray,
                    iris: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """RGB (n, 3) float32 of the pixels inside the lid polygon `ring`, outside the disc
    `iris` (centre, radius) if given."""
    box = _window(ring.min(0), ring.max(0), image)
    if box is None:
        return np.zeros((0, 3), np.float32)
    lo, hi = box
    mask = opening_mask((hi[1] - lo[1], hi[0] - lo[0]), ring, lo.astype(np.float64), 0.0) > 0.5
    if iris is not None:
        ys, xs = np.indices(mask.shape)
        mask &= np.hypot(xs + lo[0] - iris[0][0], ys + lo[1] - iris[0][1]) > iris[1]
    return image[lo[1]:hi[1], lo[0]:hi[0]][mask].astype(np.float32)


def darkest_tone(image: np.ndarray, ring: np.ndarray, share: float = 0.2) -> np.ndarray:
    """Mean RGB (3,) float32 of the darkest `share` of the pixels inside the lid polygon
    `ring` (the lashes and the iris); mid-grey if the opening is empty."""
    pix = _opening_pixels(image, ring)
    if len(pix) < 4:
        return np.full(3, 128.0, np.float32)
    luma = pix.mean(1)
    return pix[luma <= np.quantile(luma, share)].mean(0)


def find_iris(image: np.ndarray, ring: np.ndarray, width: float) -> tuple[np.ndarray, float]:
    """Centre and radius of the iris in the opening `ring` when no iris landmarks are known:
    the darkness-weighted centroid of the inner part of the opening."""
    centre = ring.mean(0)
    box = _window(ring.min(0), ring.max(0), image, least=3)
    if box is None:
        return centre, IRIS_RADIUS * width
    lo, hi = box
    inner = centre + 0.7 * (ring - centre)  # away from the lashes
    mask = opening_mask((hi[1] - lo[1], hi[0] - lo[0]), inner, lo.astype(np.float64), 0.0)
    grey = cv2.cvtColor(image[lo[1]:hi[1], lo[0]:hi[0]], cv2.COLOR_RGB2GRAY).astype(np.float64)
    weight = mask * np.clip(grey.max() - grey, 0.0, None) ** 2
    if weight.sum() <= 0:
        return centre, IRIS_RADIUS * width
    ys, xs = np.indices(weight.shape)
    found = np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum() + lo
    return found, IRIS_RADIUS * width


def sclera_tone(image: np.ndarray, ring: np.ndarray, centre: np.ndarray, radius: float,
                share: float = 0.4) -> np.ndarray | None:
    """Mean RGB (3,) of the lightest `share` of the opening's pixels outside the iris: the
    white of the eye; None if too little of it shows."""
    pix = _opening_pixels(image, ring, (centre, 1.15 * radius))
    if len(pix) < 8:
        return None
    luma = pix.mean(1)
    return pix[luma >= np.quantile(luma, 1.0 - share)].mean(0)


def prepare_irises(image: np.ndarray, rings: list[np.ndarray],
                   irises: list[tuple[np.ndarray, float]], sclera: float = 0.0,
                   whites: list[np.ndarray | None] | None = None
                   ) -> tuple[np.ndarray, list[IrisPatch]]:
    """The source crop with both irises painted out, and each iris as a patch.

    `rings`: per eye the lid polygon (n, 2); `irises`: per eye (centre (2,), radius);
    `sclera`: how far the painted-out disc is lightened towards the eye's white, per eye
    `whites` (`sclera_tone`; None: not seen, or no lightening)."""
    h, w = image.shape[:2]
    hole = np.zeros((h, w), np.uint8)
    patches = []
    for ring, (centre, radius) in zip(rings, irises):
        cv2.circle(hole, tuple(int(round(v)) for v in centre), int(np.ceil(radius * 1.15)) + 1,
                   255, -1)
        half = int(np.ceil(radius * 1.3)) + 2
        x0, y0 = int(round(centre[0])) - half, int(round(centre[1])) - half
        size = 2 * half + 1
        # whole-pixel centre: an exact copy; outside the crop the edge pixels repeat
        rgb = cv2.getRectSubPix(image, (size, size), (x0 + half, y0 + half)).astype(np.float32)
        ys, xs = np.indices((size, size), np.float64)
        d = np.hypot(xs + x0 - centre[0], ys + y0 - centre[1])
        disc = np.clip(radius + 0.5 - d, 0.0, 1.0)
        seen = opening_mask((size, size), ring, np.array([x0, y0], np.float64), 0.6)
        patches.append(IrisPatch(rgb, (disc * seen).astype(np.float32),
                                 np.array([x0 + half, y0 + half], np.float64)))
    # the lids stay as they are: only the opening is painted
    inside = np.zeros((h, w), np.uint8)
    for ring in rings:
        cv2.fillPoly(inside, [np.rint(ring * _SUB).astype(np.int32)], 255, cv2.LINE_8, _SHIFT)
    hole = cv2.bitwise_and(hole, inside)
    clean = cv2.inpaint(image, hole, 3, cv2.INPAINT_TELEA) if hole.any() else image.copy()
    if sclera > 0.0 and whites is not None and hole.any():
        soft = cv2.GaussianBlur(hole.astype(np.float32) / 255.0, (0, 0), 1.0) * (inside > 0)
        for (centre, radius), tone in zip(irises, whites):
            if tone is None:
                continue
            near = np.zeros_like(soft)
            cv2.circle(near, tuple(int(round(v)) for v in centre), int(np.ceil(radius * 1.6)) + 2,
                       1.0, -1)
            weight = (sclera * soft * near)[..., None]
            lit = clean.astype(np.float32)
            lit += weight * np.maximum(tone - lit, 0.0)
            clean = np.clip(lit + 0.5, 0, 255).astype(np.uint8)
    return clean, patches


def place_iris(out: np.ndarray, clean: Callable[[tuple[slice, slice]], np.ndarray],
               patch: IrisPatch, ring: np.ndarray, affine: np.ndarray, shift: np.ndarray,
               soften: float) -> None:
    """In place: inside the driven lid polygon `ring`, replace `out` by the iris-free source
    through the same warp (`clean(window)` gives it for a window of `out`) and lay the iris
    patch over it, moved by `affine` (2, 3; source -> output) and then by `shift` (output px)."""
    size = patch.rgb.shape[0]
    half = size // 2
    centre = affine[:, :2] @ patch.centre + affine[:, 2] + shift
    lin = affine[:, :2]
    reach = half * max(float(np.abs(lin).sum(1).max()), 1.0) + 2.0
    box = _window(np.minimum(ring.min(0), centre - reach), np.maximum(ring.max(0), centre + reach),
                  out)
    if box is None:
        return
    lo, hi = box
    window = (slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    shape = (int(hi[1] - lo[1]), int(hi[0] - lo[0]))
    mask = opening_mask(shape, ring, lo.astype(np.float64), soften)[..., None]
    # patch pixel (u, v) -> window pixel: centre the patch, apply the linear part
    m = np.zeros((2, 3))
    m[:, :2] = lin
    m[:, 2] = centre - lo - lin @ np.array([half, half], np.float64)
    rgb = cv2.warpAffine(patch.rgb, m, shape[::-1], flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(patch.alpha, m, shape[::-1], flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    roi = out[window].astype(np.float32)
    base = roi + mask * (clean(window).astype(np.float32) - roi)
    base += (alpha * mask) * (rgb - base)
    out[window] = np.clip(base + 0.5, 0, 255).astype(np.uint8)


def darken_opening(out: np.ndarray, ring: np.ndarray, tone: np.ndarray, strength: float
                   ) -> None:
    """In place: inside the lid polygon `ring`, blend `out` by `strength` towards `tone` (3,),
    only where it is lighter: the iris and lashes stay as they are."""
    box = _window(ring.min(0) - 2.0, ring.max(0) + 2.0, out)
    if box is None or strength <= 0.0:
        return
    lo, hi = box
    window = (slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    mask = opening_mask((int(hi[1] - lo[1]), int(hi[0] - lo[0])), ring, lo.astype(np.float64),
                        0.0)
    _darken(out, window, mask, tone, strength)


def lash_fringe(out: np.ndarray, lower: np.ndarray, down: np.ndarray, depth: float,
                tone: np.ndarray, strength: float) -> None:
    """In place: the upper lashes of a shut eye hanging over the lower lid, a band `depth`
    px deep below the lid line `lower` (n, 2, corner to corner; `down` its unit normal),
    tapered to the corners and blended by `strength` towards `tone` where lighter."""
    if strength <= 0.0 or depth <= 0.0:
        return
    taper = np.sin(np.linspace(0.0, np.pi, len(lower)))[:, None]
    band = np.concatenate([lower, (lower + depth * taper * down)[::-1]])
    box = _window(band.min(0) - 2.0, band.max(0) + 2.0, out)
    if box is None:
        return
    lo, hi = box
    window = (slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    mask = opening_mask((int(hi[1] - lo[1]), int(hi[0] - lo[0])), band, lo.astype(np.float64),
                        max(0.25 * depth, 0.5))
    _darken(out, window, mask, tone, strength)


def _darken(out: np.ndarray, window: tuple[slice, slice], mask: np.ndarray, tone: np.ndarray,
            strength: float) -> None:
    """In place: `out[window]` blended by `strength * mask` towards `tone` where lighter."""
    roi = out[window].astype(np.float32)
    roi += strength * mask[..., None] * np.minimum(tone - roi, 0.0)
    out[window] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)


def move_irises(img: np.ndarray, clean: np.ndarray, irises: list, maps: tuple,
                src_mesh: np.ndarray, tgt: np.ndarray, gaze: np.ndarray, open_share: list,
                scale_px: float, settings: WarpSettings) -> None:
    """In place: lay each iris over its iris-free opening (`clean`, the source without its
    irises, through the frame's `maps`), moved by the lids' motion and the gaze (2, 2)."""
    s = settings

    def clean_window(window: tuple[slice, slice]) -> np.ndarray:
        return cv2.remap(clean, np.ascontiguousarray(maps[0][window]),
                         np.ascontiguousarray(maps[1][window]), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    for e, (_u, _l, corners) in enumerate(EYES):
        ring_s, ring_t = eye_ring(src_mesh, e), eye_ring(tgt, e)
        affine = np.linalg.lstsq(np.c_[ring_s, np.ones(len(ring_s))], ring_t,
                                 rcond=None)[0].T
        a0, a1 = src_mesh[corners[0]], src_mesh[corners[1]]
        width = float(np.linalg.norm(a1 - a0))
        if width < 1e-6:
            continue
        axis = (a1 - a0) / width
        # a shutting eye shows its lash line whatever the gaze: looking down with nearly
        # closed lids must not bring the white above the iris into the slit
        lids = float(smoothstep(np.mean(open_share[e]) / s.eye_shut)) if open_share else 1.0
        shift = s.gaze_shift * width * (gaze[e, 0] * axis + lids * s.gaze_vertical
                                        * gaze[e, 1] * up_normal(src_mesh, corners))
        place_iris(img, clean_window, irises[e], ring_t, affine, affine[:, :2] @ shift,
                   0.6 * scale_px)


def shade_slits(img: np.ndarray, tgt: np.ndarray, open_share: list, lashes: list,
                settings: WarpSettings) -> None:
    """In place: darken the opening of a lowering lid. In a narrowing eye the slit fills with
    the lashes and the lid's shadow (a photo's bright lower white would read as an open eye);
    a nearly shut eye's lashes also hang over the lower lid."""
    s = settings
    for e in range(len(EYES)):
        share = float(np.mean(open_share[e]))
        closing = 1.0 - float(smoothstep(share / s.lash_open))
        if closing > 0.0 and s.lash_shade > 0.0:
            darken_opening(img, eye_ring(tgt, e), lashes[e], s.lash_shade * closing)
        shut = 1.0 - float(smoothstep(share / s.fringe_open))
        if shut > 0.0 and s.lash_fringe > 0.0:
            corners = EYES[e][2]
            width = float(np.linalg.norm(tgt[corners[1]] - tgt[corners[0]]))
            lash_fringe(img, tgt[list(LOWER_LIDS[e])], -up_normal(tgt, corners),
                        s.fringe_depth * width, lashes[e], s.lash_fringe * shut)
