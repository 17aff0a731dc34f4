"""Paste-back: the rendered face crop put into the full source image, carried with the head.

The renderer draws the face in a crop that rides with the head (`head.stabilise_pose`): it
holds the turn and the expression, not the head's travel. Paste-back puts the head's travel
back: every output pixel `p` looks up the source at ``q = p + a(p) (H^-1 p - p)``, where `H`
is the frame's head similarity and `a` is 1 on the carried head region (`head.HeadRegion`,
moved by `H`), falling smoothly to 0 around it. Inside the head the whole picture (face, hair,
ears) moves as one body; around it the background and the neck stretch smoothly into the parts
that stay (torso, far background), with no edge; where the head has moved away, the uncovered
picture is the background beside it, stretched, never head pixels. Where `q` falls in the
crop, the rendered crop is taken (feathered into the photo at the crop's border, where the
two show the same source pixels).

The stretch band is at least ``band`` head half-heights wide and at least ``fold_margin``
times the head's displacement at its outline: a band narrower than the displacement would
fold the map and mirror the head into the place it left.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import smoothstep
from .crop import CropBox
from .head import HeadRegion, apply_affine, invert_similarity


def feather_line(t: np.ndarray, size: float, feather: float) -> np.ndarray:
    """Weights at crop coordinates `t` along a side of `size` pixels: 1 inside, a smooth
    ramp (no visible edge where it ends) to 0 over the outer `feather` share at both ends."""
    ramp = max(1.0, round(size * feather))
    return smoothstep(np.minimum(t, size - 1.0 - t) / ramp)


@dataclass(frozen=True)
class CarrierSettings:
    """How the head region carries the picture around it."""

    # Narrowest stretch band round the head, in head half-heights: wide enough that a small
    # carry stretches the background by a few per cent, narrow enough to leave the torso.
    band: float = 0.6
    # The band is at least this many times the head's displacement: the smoothstep's steepest
    # slope is 1.5 / band, so the map's Jacobian stays above 1 - 1.5 / 2 = 0.25 (no fold).
    fold_margin: float = 2.0
    grid: int = 8  # the field is evaluated every `grid` output pixels (it is smooth)
    feather: float = 0.08  # the crop's ramp into the photo, share of the crop's side


class PasteBack:
    """Turns crops rendered at `box.res` into full output frames over the source image."""

    def __init__(self, image: np.ndarray, box: CropBox, region: HeadRegion,
                 settings: CarrierSettings = CarrierSettings()) -> None:
        self.image = np.ascontiguousarray(image)
        self.box = box
        self.region = region
        self.settings = settings
        h, w = image.shape[:2]
        g = max(int(settings.grid), 1)
        gy, gx = np.mgrid[0:-(-h // g) + 1, 0:-(-w // g) + 1].astype(np.float64) * g
        self._grid = np.stack([gx, gy], -1)
        # full-size pixels in grid units: the field is interpolated with the grid's corners
        # on the pixels they sample (cv2.resize would shift it by half a cell)
        self._pixels = np.meshgrid(np.arange(w, dtype=np.float32),
                                   np.arange(h, dtype=np.float32))
        self._up = (self._pixels[0] / g, self._pixels[1] / g)

    def over(self, image: np.ndarray, box: CropBox, region: HeadRegion) -> "PasteBack":
        """The same paste-back over another image of the same size (a source video's next
        frame): the pixel grids are shared, not rebuilt."""
        other = copy.copy(self)
        other.image, other.box, other.region = np.ascontiguousarray(image), box, region
        return other

    def field(self, head: np.ndarray
              ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray]:
        """For the head similarity `head` (2, 3): the window (y0, y1, x0, x1) of output pixels
        that do not simply show the source pixel they sit on, and inside it the backward map
        (map_x, map_y) into source pixels and the rendered crop's weight."""
        window, map_x, map_y, weight, _claim = self._field(head, claims=False)
        return window, map_x, map_y, weight

    def _field(self, head: np.ndarray, claims: bool
               ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray,
                          np.ndarray | None]:
        """`field`, and with `claims` this face's claim on each pixel of the window
        (`paste_faces`)."""
        s = self.settings
        h, w = self.image.shape[:2]
        inv = invert_similarity(np.asarray(head, np.float64))
        rigid = apply_affine(inv, self._grid.reshape(-1, 2)).reshape(self._grid.shape)
        rho = self.region.radius(rigid)
        displacement = float(self.region.displacement(head))
        half = self.region.half_axes[1] * abs(float(np.linalg.det(head[:, :2]))) ** 0.5
        band = max(s.band * half, s.fold_margin * displacement, 1.0)
        # distance beyond the outline, measured along the head's own scale
        beyond = np.maximum(rho - 1.0, 0.0) * half
        carry = 1.0 - smoothstep(beyond / band)
        q = self._grid + carry[..., None] * (rigid - self._grid)
        box = self.box
        c = (q - np.array([box.x0, box.y0])) * box.scale
        weight = feather_line(c[..., 0], box.res, s.feather) \
            * feather_line(c[..., 1], box.res, s.feather)
        busy = (carry > 0) | (weight > 0)
        if not busy.any():
            empty = np.empty((0, 0), np.float32)
            return (0, 0, 0, 0), empty, empty, empty, (empty if claims else None)
        g = max(int(s.grid), 1)
        rows, cols = np.flatnonzero(busy.any(1)), np.flatnonzero(busy.any(0))
        y0, y1 = max((rows[0] - 1) * g, 0), min((rows[-1] + 1) * g + 1, h)
        x0, x1 = max((cols[0] - 1) * g, 0), min((cols[-1] + 1) * g + 1, w)
        # the displacement is interpolated, not the position: remap quantises where it
        # samples to 1/32 of a grid cell, which is far less of the displacement's change
        layers = [q - self._grid, weight[..., None]]
        if claims:
            layers.append(face_claim(np.maximum(carry, weight), rho)[..., None])
        stack = np.concatenate(layers, -1).astype(np.float32)
        win = (slice(y0, y1), slice(x0, x1))
        full = cv2.remap(stack, self._up[0][win], self._up[1][win], cv2.INTER_LINEAR)
        return ((y0, y1, x0, x1), full[..., 0] + self._pixels[0][win],
                full[..., 1] + self._pixels[1][win], full[..., 2],
                full[..., 3] if claims else None)

    def __call__(self, crop: np.ndarray, head: np.ndarray) -> np.ndarray:
        """The output frame for a rendered crop (R, R, 3) and its head similarity (2, 3)."""
        window, map_x, map_y, weight, _claim = self._field(head, claims=False)
        out = self.image.copy()
        y0, y1, x0, x1 = window
        if y1 > y0 and x1 > x0:
            out[y0:y1, x0:x1] = self._draw(crop, map_x, map_y, weight)
        return out

    def layer(self, crop: np.ndarray, head: np.ndarray
              ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]:
        """This face's part of a picture with several faces (`paste_faces`): the window
        (y0, y1, x0, x1) its paste-back changes, the one-face output there, and the face's
        claim on each of its pixels."""
        window, map_x, map_y, weight, claim = self._field(head, claims=True)
        y0, y1, x0, x1 = window
        if y1 <= y0 or x1 <= x0:
            return window, np.empty((0, 0, 3), np.uint8), np.empty((0, 0), np.float32)
        return window, self._draw(crop, map_x, map_y, weight), claim

    def _draw(self, crop: np.ndarray, map_x: np.ndarray, map_y: np.ndarray,
              weight: np.ndarray) -> np.ndarray:
        """The output pixels of a `field` window: the carried source, the crop blended in."""
        box = self.box
        out = cv2.remap(self.image, map_x, map_y, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT101)
        rows = np.flatnonzero(weight.max(1) > 0)
        cols = np.flatnonzero(weight.max(0) > 0)
        if not len(rows) or not len(cols):
            return out
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        cx = (map_x[r0:r1, c0:c1] - box.x0) * box.scale - 0.5 * (1.0 - box.scale)
        cy = (map_y[r0:r1, c0:c1] - box.y0) * box.scale - 0.5 * (1.0 - box.scale)
        face = cv2.remap(np.ascontiguousarray(crop), cx, cy, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        wgt = np.ascontiguousarray(weight[r0:r1, c0:c1])
        view = out[r0:r1, c0:c1]
        view[:] = cv2.blendLinear(face, view, wgt, 1.0 - wgt)
        return out


# A face's claim on a pixel falls with this power of its elliptical head radius there: each
# face's crop also shows its neighbours, unmoved, so where two paste-backs overlap the face
# whose head the pixel belongs to must win almost outright (at 0.8 of its own head's radius
# and 2.5 of the other's, the other keeps (0.8 / 2.5)^8 < 1e-4), yet smoothly (no seam).
CLAIM_POWER = 8.0


def face_claim(busy: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """How strongly a face claims pixels where its paste-back weight is `busy` (0 where it
    leaves the picture as it is) at elliptical head radius `rho`."""
    return busy * np.maximum(rho, 0.05) ** -CLAIM_POWER


def paste_faces(pastes: Sequence[PasteBack], crops: Sequence[np.ndarray],
                heads: Sequence[np.ndarray]) -> np.ndarray:
    """The output frame of one picture with several faces, each rendered in its own crop
    (`pastes` over the same image). Each face's one-face output counts where its claim is
    (`face_claim`), shared in proportion where claims overlap: where one face alone changes
    the picture the result is exactly its one-face output, and it blends without seams into
    its neighbour's."""
    if len(pastes) == 1:
        return pastes[0](crops[0], heads[0])
    base = pastes[0].image
    layers = [layer for layer in (p.layer(c, h) for p, c, h in zip(pastes, crops, heads))
              if layer[0][1] > layer[0][0] and layer[0][3] > layer[0][2]]
    out = base.copy()
    if not layers:
        return out
    # only the union of the faces' windows is blended (a group photo is mostly untouched)
    y0, x0 = (min(layer[0][i] for layer in layers) for i in (0, 2))
    y1, x1 = (max(layer[0][i] for layer in layers) for i in (1, 3))
    region = base[y0:y1, x0:x1].astype(np.float32)
    change = np.zeros(region.shape, np.float32)
    total = np.zeros(region.shape[:2], np.float32)
    for (wy0, wy1, wx0, wx1), pixels, claim in layers:
        win = (slice(wy0 - y0, wy1 - y0), slice(wx0 - x0, wx1 - x0))
        change[win] += claim[..., None] * (pixels.astype(np.float32) - region[win])
        total[win] += claim
    blended = region + change / np.maximum(total, 1e-30)[..., None]
    out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out
