"""The warp renderer's tunables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

EyeMode = Literal["centre", "cover", "squash"]
EYE_MODES: tuple[str, ...] = get_args(EyeMode)
"""How the strip between the lids maps when the driven eye is narrower than the source's:
``centre`` shows the middle band of the source eye at full scale (the lids cover top and
bottom; closing ends on the iris line), ``cover`` the band above the lower lid (the upper
lid slides down over a still eye), ``squash`` the whole source eye compressed."""


@dataclass(frozen=True)
class WarpSettings:
    """Tunables of the warp renderer (pixel sizes are for a 512 crop and scale with it)."""

    background_scale: float = 0.25  # resolution of the (smooth) background field vs the crop
    face_margin: float = 6.0  # px beyond the driven face's box evaluated at full resolution
    # Background motion fades out over `falloff` face radii; `plateau` of that distance moves
    # fully with the contour. Narrow, because in real footage collar, neck, wall and the
    # outline of a turning head stay put, and hair beside the face stretched by the contour
    # matches its real motion worse than hair left still (self-reenactment, talking clip:
    # reach 0.9 radii -1.8 dB; 0.4 with a tenth rigid -0.45 dB and -0.005 SSIM against 0.3).
    falloff: float = 0.3
    plateau: float = 0.0
    ring_fractions: tuple[float, ...] = (0.15, 0.3, 0.5, 0.7, 0.85, 1.0)
    # Above the forehead the hair sits on the skull and moves with the head: rays within
    # `crown_angle` degrees of the face's up direction blend to a reach of `crown_falloff`
    # radii with a `crown_plateau` share riding rigidly on the head (a flat, squashed hairline
    # showed on every nod and brow raise when the hair stayed put).
    crown_falloff: float = 1.0
    crown_plateau: float = 0.5
    crown_angle: float = 60.0
    # Below the chin the jaw drags the skin of the neck along (a short reach there flattened
    # the chin's drop: jaw correlation 0.86 -> 0.83 on a painted child).
    chin_falloff: float = 0.4
    chin_plateau: float = 0.1
    chin_angle: float = 60.0
    eye_mode: EyeMode = "centre"  # how a narrowed eye shows the source eye, see EYE_MODES
    eye_centre: float = 0.5  # 'centre' mode: height of the kept band in the source opening
    eye_shut: float = 0.4  # 'centre' mode: below this share of its opening an eye closes like 'cover'
    lash_shade: float = 0.75  # how dark a nearly shut eye's slit gets (lashes, lid shadow)
    lash_open: float = 0.9  # share of its opening below which an eye starts to darken
    # A shut eye's upper lashes hang over the lower lid: without them a closed or downcast
    # eye read as a slit with a bright rim below it (talking clip, high-res photo: expression
    # error 0.506 -> 0.483, painting 0.431 -> 0.412; ten-run sum 4.074 -> 4.033).
    lash_fringe: float = 1.0  # their darkness (0: off)
    fringe_open: float = 0.5  # share of its opening below which they show, fully when shut
    fringe_depth: float = 0.06  # how far below the lid line they reach, in eye widths
    gaze_shift: float = 0.2  # iris travel at full eyeLook, in eye widths (0: off)
    gaze_vertical: float = 0.5  # vertical travel relative to horizontal
    sclera: float = 0.85  # how far the painted-out iris is lightened to the eye's white
    mouth_fill: bool = True  # paint the cavity of a mouth opened wider than the source's
    mouth_color: tuple[int, int, int] | None = None  # RGB cavity core; None: from the lips
    mouth_edge_gain: float = 0.42  # cavity colour near the lips, times the lip colour
    mouth_core_gain: float = 0.15  # cavity colour in the middle, times the lip colour
    mouth_feather: float = 1.0  # edge blur of the cavity, px
    mouth_min_opening: float = 1.0  # extra opening (px) below which nothing is painted
    mouth_split: float = 0.65  # share of the source's own opening that stays with the upper lip
    teeth: float = 1.0  # opacity of the synthetic teeth in an opened mouth (0 = off)
    teeth_gain: float = 0.9  # teeth brightness relative to a light, near-neutral tone
    edge_smoothing: bool = True  # anti-alias the field's folds (silhouettes, lid and lip lines)
    min_area: float = 0.02  # driven triangles smaller than this (px^2) are not drawn
    cull_backfaces: bool = False  # drop face triangles whose winding flips (else depth order only)

    def __post_init__(self) -> None:
        if self.eye_mode not in EYE_MODES:
            raise ValueError(f"eye_mode must be one of {EYE_MODES}, got {self.eye_mode!r}")
        fr = np.asarray(self.ring_fractions, np.float64)
        if fr.ndim != 1 or len(fr) == 0 or np.any(np.diff(fr) <= 0) or fr[0] <= 0:
            raise ValueError("ring_fractions must be increasing and positive")
        if not 0.0 < self.background_scale <= 1.0:
            raise ValueError("background_scale must be in (0, 1]")
        for name in ("crown", "chin"):
            if getattr(self, f"{name}_falloff") <= 0.0 \
                    or not 0.0 <= getattr(self, f"{name}_plateau") < 1.0:
                raise ValueError(f"{name}_falloff must be positive and {name}_plateau in [0, 1)")
        if not 0.0 <= self.lash_shade <= 1.0 or self.lash_open <= 0.0:
            raise ValueError("lash_shade must be in [0, 1] and lash_open positive")
        if not 0.0 <= self.lash_fringe <= 1.0 or self.fringe_open <= 0.0 \
                or self.fringe_depth < 0.0:
            raise ValueError("lash_fringe must be in [0, 1], fringe_open positive and "
                             "fringe_depth not negative")
