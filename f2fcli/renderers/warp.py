"""The `warp` renderer: no learned weights, the source crop warped along the face mesh.

Given the source face mesh (468 FaceMesh vertices in crop pixels, with
relative depth) and driven meshes of the same face, every output frame is
the source crop resampled through a dense backward map (output pixel ->
source pixel) that is piecewise affine over a *render mesh*:

* **Face**: the 468-vertex mesh's own triangles, minus those spanning the
  eye openings and the mouth opening, which are rebuilt below.  Triangles
  are drawn far to near (painter's order on the driven depth), so when the
  head turns its far side folds *behind* the near side instead of smearing
  over it (``cull_backfaces`` also drops triangles whose winding flips).
  Where the map jumps (silhouettes, lid and lip lines) the pixel staircase
  of the rasteriser is anti-aliased with a 3x3 blur along the jump.
* **Background**: rings of extra vertices on rays from the face centre
  through each face-contour vertex, out to the crop border.  A ring vertex
  moves by the displacement of its contour vertex times a smooth falloff
  (1 up to ``plateau`` of the way, 0 at ``falloff`` face radii or a few
  pixels inside the border, whichever is nearer); the outermost ring sits
  on the crop border and never moves, nor do the pixels outside all rings
  (the corners).  The band is narrow (0.4 face radii): body, background
  and the outline of a turning head stay where they are, as in real
  footage.  Above the forehead it is wider (``crown_*``): the hair there
  rides on the skull, each ring vertex moved by the head's rigid motion
  (a similarity fitted to the upper face, in 3D) at a depth that recedes
  to the ears' as the skull curves back, so a nod turns the hair with it.
  The field is continuous across the contour (the rings share its
  vertices) and the crop border stays still for the paste-back.
* **Eyes**: the strip between the lids is drawn *behind* the face
  triangles, with its own copies of the lid vertices.  Where the driven
  lid gap is smaller than the source's, those copies get virtual source
  positions (``eye_mode``): by default the opening shows the middle band of
  the source eye at its own scale, so the lids cover the eye rather than
  squashing the iris, and the lid skin above stretches down over it.  A
  lid pushed past its partner is clamped onto it.  Gaze (optional, from
  the eyeLook channels) moves the iris as a whole disc inside the driven
  lids (``iris.py``): the opening is drawn from a copy of the source with
  the irises painted out, and each iris patch is laid over it at its
  warped position plus ``gaze_shift`` eye widths at full gaze.  As a lid
  lowers, the slit darkens towards the eye's own darkest tone (lashes and
  the lid's shadow fill it; a bright lower white would read as open), and
  once it is nearly shut the lashes hang over the lower lid in that tone.
* **Mouth**: the strip between the inner-lip loops is split into an upper
  band that carries most of the source's own opening (upper teeth) with
  the upper lip, a lower band that carries the rest with the lower lip and,
  where the driven mouth is more open than the source, a middle band that
  is painted as a dark cavity (``mouth.py``) instead of stretching lip
  texture.  Lips that the driver closes close with the mesh.

The map is evaluated at full resolution in the box around the driven face
and at ``background_scale`` elsewhere (upsampled bilinearly: the field is
continuous and smooth there), then applied with one ``cv2.remap``;
identical source and target meshes give the source back exactly.
A ``PreparedSource`` holds scratch buffers: render one at a time with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..tracking import keypoints as kp
from ..tracking.face_model import FaceModel
from ..tracking.fitting import similarity_procrustes
from . import iris as iris_fill
from . import mouth as mouth_fill
from .mesh_raster import FieldEvaluator, affine_displacements, signed_areas

N_MESH = 468
EYE_MODES = ("centre", "cover", "squash")
"""How the strip between the lids maps when the driven eye is narrower than the source's:
``centre`` shows the middle band of the source eye at full scale (the lids cover top and
bottom; closing ends on the iris line), ``cover`` the band above the lower lid (the upper
lid slides down over a still eye), ``squash`` the whole source eye compressed."""

# Lid pairs (upper, lower) without the shared corners, and the corners that
# run image-left -> image-right in an upright face.
_EYES = (
    (kp.UPPER_LID_R[1:-1], kp.LOWER_LID_R[1:-1], (kp.UPPER_LID_R[0], kp.UPPER_LID_R[-1])),
    (kp.UPPER_LID_L[1:-1], kp.LOWER_LID_L[1:-1], (kp.UPPER_LID_L[-1], kp.UPPER_LID_L[0])),
)
_LOWER_LIDS = (kp.LOWER_LID_R, kp.LOWER_LID_L)  # corner to corner, for the lash fringe
_LIP_UP = np.array(kp.LIP_INNER_UPPER)
_LIP_LO = np.array(kp.LIP_INNER_LOWER)
_LIP_CORNERS = (kp.LIP_INNER_UPPER[0], kp.LIP_INNER_UPPER[-1])
_EARS = (234, 454)  # the mesh's outermost points beside the eyes, near the ears' depth


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
    eye_mode: str = "centre"  # how a narrowed eye shows the source eye, see EYE_MODES
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


@dataclass(repr=False)
class PreparedSource:
    """Everything about the source that the frames share (built by ``WarpRenderer.prepare``)."""

    image: np.ndarray  # (H, W, 3) uint8
    points: np.ndarray  # (468, 3) source mesh, crop pixels
    src_xy: np.ndarray  # (V, 2) source position of every render vertex (frame-independent part)
    face_tris: np.ndarray  # (F, 3) face triangles (depth-sorted per frame)
    interior_tris: np.ndarray  # (E, 3) eye and mouth strips, drawn behind the face
    ring_tris: np.ndarray  # (G, 3) background triangles, drawn first
    boundary: np.ndarray  # (B,) face-contour vertex indices, in loop order
    ring_weights: np.ndarray  # (K, B) falloff of each ring vertex beyond the contour
    ring_src: np.ndarray  # (K, B, 2) source positions of the ring vertices
    ring_lever: np.ndarray  # (K, B, 3) ring vertex minus its contour vertex, skull depth in z
    crown: np.ndarray  # (B,) 1 where a contour vertex's ray leaves the face through the hair
    upper_face: np.ndarray  # mesh indices above the nose tip: the head's rigid part
    orientation: float  # +1 / -1: winding sign of front-facing triangles
    eye_dups: list  # per eye: render indices of the duplicated (upper, lower) lid vertices
    mouth_mu: np.ndarray  # (11,) render indices of the upper cavity edge (corners included)
    mouth_ml: np.ndarray  # (11,) render indices of the lower cavity edge
    colours: tuple  # cavity colours (edge, core, teeth)
    teeth_share: float  # 1 for a closed mouth or one showing teeth, 0 for a dark open one
    own_teeth: float  # 1 where the source's own teeth show between its lips
    scale_px: float  # crop size / 512
    clean: np.ndarray | None = None  # the source with its irises painted out (for gaze)
    irises: list | None = None  # per eye an `iris.IrisPatch`
    lashes: list | None = None  # per eye (3,) float: its darkest tone (lashes, iris)
    evaluator: FieldEvaluator | None = None

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        return f"PreparedSource({w}x{h}, {len(self.src_xy)} render vertices)"


class WarpRenderer:
    """Training-free renderer: warps the source crop along the driven face mesh."""

    def __init__(self, settings: WarpSettings = WarpSettings()) -> None:
        self.settings = settings
        self._triangles, self._boundary = _mesh_topology()

    # ------------------------------------------------------------------ prepare

    def prepare(self, source: np.ndarray, source_points: np.ndarray,
                iris: np.ndarray | None = None) -> PreparedSource:
        """Precompute everything that depends on the source only; `iris` (2, 5, 2), optional:
        per eye (image-left first) the iris centre and four rim points in crop pixels (else
        the iris is looked for in the image)."""
        image = np.ascontiguousarray(source)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"source must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        pts = np.asarray(source_points, np.float64)
        if pts.ndim != 2 or pts.shape[0] < N_MESH or pts.shape[1] != 3:
            raise ValueError(f"source_points must be (468, 3), got {pts.shape}")
        pts = pts[:N_MESH]
        if not np.all(np.isfinite(pts)):
            raise ValueError("source_points contain non-finite values")
        s = self.settings
        h, w = image.shape[:2]
        tris = self._triangles
        xy = pts[:, :2]

        # --- split the mesh: eye strips, mouth strip, the rest
        eye_sets = [set(u) | set(lo) | set(c) for u, lo, c in _EYES]
        mouth_set = set(kp.LIP_INNER_UPPER) | set(kp.LIP_INNER_LOWER)
        in_eye = [np.all(np.isin(tris, list(es)), 1) for es in eye_sets]
        in_mouth = np.all(np.isin(tris, list(mouth_set)), 1)
        face_tris = tris[~(in_eye[0] | in_eye[1] | in_mouth)]
        areas = signed_areas(xy, face_tris)
        orientation = 1.0 if areas.sum() >= 0 else -1.0

        n_vert = N_MESH
        extra_src: list[np.ndarray] = []
        interior: list[np.ndarray] = []

        # --- eyes: the strip between the lids gets its own copies of the lid
        # vertices, so that its source positions can differ from the lids'
        eye_dups = []
        for (upper, lower, _corners), mask in zip(_EYES, in_eye):
            lids = list(upper) + list(lower)
            dup = {v: n_vert + i for i, v in enumerate(lids)}
            n_vert += len(lids)
            extra_src.append(xy[lids])
            strip = tris[mask].copy()
            strip = np.vectorize(lambda v: dup.get(int(v), int(v)))(strip)
            interior.append(strip)
            eye_dups.append((np.array([dup[v] for v in upper]),
                             np.array([dup[v] for v in lower])))

        # --- mouth: upper band, cavity, lower band
        mu = np.empty(11, np.int64)
        ml = np.empty(11, np.int64)
        mu[0] = ml[0] = _LIP_UP[0]
        mu[-1] = ml[-1] = _LIP_UP[-1]
        mu[1:-1] = n_vert + np.arange(9)
        ml[1:-1] = n_vert + 9 + np.arange(9)
        n_vert += 18
        sp = min(max(s.mouth_split, 0.0), 1.0)
        mid = (1.0 - sp) * xy[_LIP_UP[1:-1]] + sp * xy[_LIP_LO[1:-1]]
        extra_src.append(mid)
        extra_src.append(mid)
        mouth_tris = []
        for a, b in ((_LIP_UP, mu), (mu, ml), (ml, _LIP_LO)):
            for j in range(10):
                quad = (a[j], a[j + 1], b[j + 1], b[j])
                for t in ((quad[0], quad[1], quad[2]), (quad[0], quad[2], quad[3])):
                    if len(set(int(v) for v in t)) == 3:
                        mouth_tris.append(t)
        mouth_tris = np.array(mouth_tris, np.int64)
        # winding: lay the strip out open (upper row above lower) and match the face
        layout = np.zeros((n_vert, 2))
        for j in range(11):
            for idx, y in ((_LIP_UP[j], 0.0), (mu[j], 1.0), (ml[j], 2.0), (_LIP_LO[j], 3.0)):
                corner = j in (0, 10)
                layout[idx] = (j, 1.5 if corner else y)
        flip = signed_areas(layout, mouth_tris) * orientation < 0
        mouth_tris[flip] = mouth_tris[flip][:, [0, 2, 1]]
        interior.append(mouth_tris)

        # --- background rings
        boundary = self._boundary
        b_xy = xy[boundary]
        centre = b_xy.mean(0)
        rel = b_xy - centre
        radius = np.linalg.norm(rel, axis=1)
        face_r = float(radius.mean())
        d = rel / np.maximum(radius, 1e-9)[:, None]
        t_exit, cos = _ray_exit(centre, d, w, h)
        scale = min(max(s.background_scale, 4.0 / min(h, w)), 1.0)
        # motion ends this far (px) inside the border, so the coarse grid keeps it still
        margin = 2.5 / scale
        room = np.maximum(t_exit - radius - margin / np.maximum(cos, 0.25), 0.0)
        up = xy[10] - xy[152]
        up = up / max(np.linalg.norm(up), 1e-9)
        crown = _cone(d, up, s.crown_angle)
        chin = _cone(d, -up, s.chin_angle)
        falloff = s.falloff + crown * (s.crown_falloff - s.falloff) \
            + chin * (s.chin_falloff - s.falloff)
        reach = np.maximum(np.minimum(room, falloff * face_r), 1e-3)
        fr = np.asarray(s.ring_fractions, np.float64)
        ring_src = [b_xy + f * reach[:, None] * d for f in fr]
        pl = np.clip(s.plateau + crown * (s.crown_plateau - s.plateau)
                     + chin * (s.chin_plateau - s.plateau), 0.0, 0.95)
        weights = [1.0 - _smoothstep_array((f - pl) / (1.0 - pl)) for f in fr]
        # the crop border itself: fixed
        ring_src.append(centre + np.maximum(t_exit, radius)[:, None] * d)
        weights.append(np.zeros(len(d)))
        ring_src = np.stack(ring_src)
        # the hair on top sits on the skull, which curves back to the ears' depth at its
        # outline, where the plateau ends
        z_b, z_c = pts[boundary, 2], float(pts[list(_EARS), 2].mean())
        back = np.clip(np.r_[fr, 1.0][:, None] / np.maximum(pl, 1e-3)[None], 0.0, 1.0)
        ring_lever = np.concatenate([ring_src - b_xy[None], (back * (z_c - z_b))[..., None]], -1)
        ring_w = np.asarray(weights)
        nb = len(boundary)
        ring_idx = [boundary]
        for k in range(len(ring_src)):
            ring_idx.append(n_vert + k * nb + np.arange(nb))
            extra_src.append(ring_src[k])
        n_vert += len(ring_src) * nb
        ring_tris = []
        for k in range(len(ring_idx) - 1):
            a, b = ring_idx[k], ring_idx[k + 1]
            for i in range(nb):
                i1 = (i + 1) % nb
                ring_tris.append((a[i], a[i1], b[i1]))
                ring_tris.append((a[i], b[i1], b[i]))
        ring_tris = np.array(ring_tris, np.int64)
        src_xy = np.concatenate([xy] + extra_src, 0)
        flip = signed_areas(src_xy, ring_tris) * orientation < 0
        ring_tris[flip] = ring_tris[flip][:, [0, 2, 1]]

        # --- cavity colours from the source's lips and cheeks (teeth: after the eyes)
        outer = np.concatenate([xy[list(kp.LIP_OUTER_UPPER)], xy[list(kp.LIP_OUTER_LOWER)][::-1]])
        inner = np.concatenate([xy[_LIP_UP], xy[_LIP_LO][::-1]])
        lip = mouth_fill.region_colour(image, outer, inner)
        skin = mouth_fill.region_colour(image, xy[boundary])

        # synthetic teeth where the source's lips are closed or barely parted (a narrow gap
        # is dark whatever is behind it), or where it shows its own teeth (they continue
        # them); not in a wide open mouth that shows none
        src_gap = (xy[_LIP_UP[1:-1]] - xy[_LIP_LO[1:-1]]) @ _up_normal(xy, _LIP_CORNERS)
        width = max(float(np.linalg.norm(xy[_LIP_CORNERS[1]] - xy[_LIP_CORNERS[0]])), 1e-6)
        narrow = float(np.clip(2.0 - src_gap.max() / (0.1 * width), 0.0, 1.0))
        own_teeth = mouth_fill.teeth_showing(image, inner, skin)
        teeth_share = max(narrow, own_teeth)

        # --- gaze: the iris as a patch over an iris-free eye
        rings = [_eye_ring(xy, k) for k in range(2)]
        found = []
        for k, (ring, (_u, _l, corners)) in enumerate(zip(rings, _EYES)):
            eye_w = float(np.linalg.norm(xy[corners[1]] - xy[corners[0]]))
            if iris is not None and np.all(np.isfinite(iris[k])):
                c = np.asarray(iris[k][0], np.float64)
                found.append((c, float(np.linalg.norm(iris[k][1:] - c, axis=1).mean())))
            else:
                found.append(iris_fill.find_iris(image, ring, eye_w))
        whites = [iris_fill.sclera_tone(image, ring, c, r) for ring, (c, r) in zip(rings, found)]
        clean, irises = iris_fill.prepare_irises(image, rings, found, s.sclera, whites)
        seen = [t for t in whites if t is not None]
        colours = mouth_fill.cavity_colours(lip, skin, s.mouth_edge_gain, s.mouth_core_gain,
                                            s.teeth_gain, s.mouth_color,
                                            np.mean(seen, 0) if seen else None)
        lashes = [iris_fill.darkest_tone(image, ring) for ring in rings]
        return PreparedSource(
            image=image, points=pts, src_xy=src_xy, face_tris=face_tris,
            interior_tris=np.concatenate(interior, 0), ring_tris=ring_tris,
            boundary=boundary, ring_weights=ring_w, ring_src=ring_src, ring_lever=ring_lever,
            crown=crown, upper_face=np.flatnonzero((xy - xy[1]) @ up > 0),
            orientation=orientation, eye_dups=eye_dups, mouth_mu=mu, mouth_ml=ml,
            colours=colours, teeth_share=teeth_share, own_teeth=own_teeth,
            scale_px=max(h, w) / 512.0,
            clean=clean, irises=irises, lashes=lashes, evaluator=FieldEvaluator((h, w), scale))

    def _move_irises(self, p: PreparedSource, img: np.ndarray, tgt: np.ndarray,
                     gaze: np.ndarray, open_share: list, maps: tuple) -> None:
        """Lay each iris over its iris-free opening, moved by the lids' motion and the gaze."""
        s = self.settings
        src_mesh = p.points[:, :2]

        def clean(window: tuple[slice, slice]) -> np.ndarray:
            return cv2.remap(p.clean, np.ascontiguousarray(maps[0][window]),
                             np.ascontiguousarray(maps[1][window]), cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)

        for e, (_u, _l, corners) in enumerate(_EYES):
            ring_s, ring_t = _eye_ring(src_mesh, e), _eye_ring(tgt, e)
            affine = np.linalg.lstsq(np.c_[ring_s, np.ones(len(ring_s))], ring_t,
                                     rcond=None)[0].T
            a0, a1 = src_mesh[corners[0]], src_mesh[corners[1]]
            width = float(np.linalg.norm(a1 - a0))
            if width < 1e-6:
                continue
            axis = (a1 - a0) / width
            # a shutting eye shows its lash line whatever the gaze: looking down with nearly
            # closed lids must not bring the white above the iris into the slit
            lids = float(_smoothstep_array(np.mean(open_share[e]) / s.eye_shut)) \
                if open_share else 1.0
            shift = s.gaze_shift * width * (gaze[e, 0] * axis + lids * s.gaze_vertical
                                            * gaze[e, 1] * _up_normal(src_mesh, corners))
            iris_fill.place_iris(img, clean, p.irises[e], ring_t, affine,
                                 affine[:, :2] @ shift, 0.6 * p.scale_px)

    def _shade_slits(self, img: np.ndarray, tgt: np.ndarray, open_share: list,
                     lashes: list) -> None:
        """Darken the opening of a lowering lid: in a narrowing eye the slit fills with the
        lashes and the lid's shadow (a photo's bright lower white would read as an open eye);
        a nearly shut eye's lashes also hang over the lower lid."""
        s = self.settings
        for e in range(len(_EYES)):
            share = float(np.mean(open_share[e]))
            closing = 1.0 - float(_smoothstep_array(share / s.lash_open))
            if closing > 0.0 and s.lash_shade > 0.0:
                iris_fill.darken_opening(img, _eye_ring(tgt, e), lashes[e],
                                         s.lash_shade * closing)
            shut = 1.0 - float(_smoothstep_array(share / s.fringe_open))
            if shut > 0.0 and s.lash_fringe > 0.0:
                corners = _EYES[e][2]
                width = float(np.linalg.norm(tgt[corners[1]] - tgt[corners[0]]))
                iris_fill.lash_fringe(img, tgt[list(_LOWER_LIDS[e])], -_up_normal(tgt, corners),
                                      s.fringe_depth * width, lashes[e], s.lash_fringe * shut)

    # ------------------------------------------------------------------- render

    def render(self, prepared: PreparedSource, target_points: np.ndarray,
               gaze: np.ndarray | None = None) -> np.ndarray:
        """Warp the source to each driven mesh: (N, 468, 3) -> (N, H, W, 3) uint8.

        ``gaze`` (N, 2, 2), optional: per frame and eye (image-left eye
        first) the change of gaze from the source's, (towards the subject's
        left, up) in [-1, 1]; it moves the iris inside the lids.
        """
        tp = np.asarray(target_points, np.float64)
        if tp.ndim == 2:
            tp = tp[None]
        if tp.ndim != 3 or tp.shape[1] < N_MESH or tp.shape[2] != 3:
            raise ValueError(f"target_points must be (N, 468, 3), got {tp.shape}")
        if gaze is not None:
            gaze = np.broadcast_to(np.asarray(gaze, np.float64), (len(tp), 2, 2))
        h, w = prepared.image.shape[:2]
        out = np.empty((len(tp), h, w, 3), np.uint8)
        for i, frame in enumerate(tp):
            out[i] = self.render_frame(prepared, frame[:N_MESH],
                                       None if gaze is None else gaze[i])
        return out

    def render_frame(self, p: PreparedSource, target: np.ndarray,
                     gaze: np.ndarray | None = None) -> np.ndarray:
        """One driven mesh (468, 3) -> (H, W, 3) uint8; ``gaze`` (2, 2), see ``render``."""
        if not np.all(np.isfinite(target)):
            return p.image.copy()
        s = self.settings
        h, w = p.image.shape[:2]
        tgt = _carry_lid_bands(_clamp_contacts(target[:, :2].copy(), p.points[:, :2]),
                               p.points[:, :2])
        src = p.src_xy.copy()
        src_mesh = p.points[:, :2]
        n_rings = len(p.ring_src)
        nb = len(p.boundary)
        dst = np.empty_like(src)
        dst[:N_MESH] = tgt

        # eyes: the strip's copies of the lid vertices follow the lids; their
        # source positions cover the eye instead of squashing it
        open_share = []  # per eye, (n, 1): the driven lid gap over the source's
        for (upper, lower, corners), (dup_u, dup_l) in zip(_EYES, p.eye_dups):
            up_i, lo_i = list(upper), list(lower)
            dst[dup_u] = tgt[up_i]
            dst[dup_l] = tgt[lo_i]
            if s.eye_mode != "squash":
                k = _ratio(tgt, src_mesh, corners)
                gap_t = (tgt[up_i] - tgt[lo_i]) @ _up_normal(tgt, corners)
                sv = src_mesh[up_i] - src_mesh[lo_i]
                gap_s = k * (sv @ _up_normal(src_mesh, corners))
                r = np.where(gap_s > 1e-3, np.clip(gap_t / np.maximum(gap_s, 1e-3), 0.0, 1.0),
                             1.0)[:, None]
                open_share.append(r)
                if s.eye_mode == "cover":
                    src[dup_u] = src_mesh[lo_i] + r * sv
                else:
                    # the kept band slides down to the lower lid as the eye shuts, so a
                    # closing eye ends on the lash line, not on a slit of iris
                    c = s.eye_centre * _smoothstep_array(r / s.eye_shut)
                    src[dup_u] = src_mesh[lo_i] + (c + (1.0 - c) * r) * sv
                    src[dup_l] = src_mesh[lo_i] + (c - c * r) * sv
        # mouth: bands and cavity
        u_i, l_i = _LIP_UP[1:-1], _LIP_LO[1:-1]
        n_t = _up_normal(tgt, _LIP_CORNERS)
        n_s = _up_normal(src_mesh, _LIP_CORNERS)
        k = _ratio(tgt, src_mesh, _LIP_CORNERS)
        gap_t = np.maximum((tgt[u_i] - tgt[l_i]) @ n_t, 0.0)
        gap_s = np.maximum((src_mesh[u_i] - src_mesh[l_i]) @ n_s, 0.0)
        keep = np.minimum(k * gap_s, gap_t)
        excess = gap_t - keep
        # the bands take `keep` of the driven opening, the cavity the rest
        frac = np.where(gap_t > 1e-6, keep / np.maximum(gap_t, 1e-6), 1.0)[:, None]
        span = tgt[l_i] - tgt[u_i]
        sp = min(max(s.mouth_split, 0.0), 1.0)
        dst[p.mouth_mu[1:-1]] = tgt[u_i] + sp * frac * span
        dst[p.mouth_ml[1:-1]] = tgt[l_i] - (1.0 - sp) * frac * span

        # background rings: contour displacement (on top, with the skull's) times the falloff
        disp_b = (tgt[p.boundary] - src_mesh[p.boundary])[None] \
            + p.crown[None, :, None] * _skull_lever(p, target)
        base = N_MESH + sum(len(u) + len(lo) for u, lo in p.eye_dups) + 18
        ring_dst = p.ring_src + p.ring_weights[:, :, None] * disp_b
        dst[base:base + n_rings * nb] = ring_dst.reshape(-1, 2)

        # draw list: rings, interior strips, face far -> near
        ev = p.evaluator
        min_area = 2.0 * s.min_area
        face = p.face_tris
        a_face = signed_areas(dst, face) * p.orientation
        face = face[a_face > min_area] if s.cull_backfaces else face[np.abs(a_face) > min_area]
        depth = target[face, 2].sum(1)
        face = face[np.argsort(-depth, kind="stable")]
        inner = p.interior_tris
        inner = inner[signed_areas(dst, inner) * p.orientation > min_area]
        rings = p.ring_tris
        rings = rings[np.abs(signed_areas(dst, rings)) > min_area]
        tris = np.concatenate([rings, inner, face], 0)
        t_tri = dst[tris]
        coef = affine_displacements(t_tri, src[tris])
        # background: only the rings, coarse; the face box: everything, full resolution
        coarse = ev.coarse(t_tri[:len(rings)], coef[:len(rings)])
        margin = s.face_margin * p.scale_px + 2.0 / min(ev.sx, ev.sy) + 2.0
        lo = np.floor(tgt.min(0) - margin).astype(int)
        hi = np.ceil(tgt.max(0) + margin).astype(int) + 1
        x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        x1, y1 = min(int(hi[0]), w), min(int(hi[1]), h)
        if x1 > x0 and y1 > y0:
            roi = (x0, y0, x1, y1)
            dx, dy, ids = ev.fine(t_tri, coef, roi)
            fine = (dx, dy)
        else:
            roi, fine = None, None
        map_x, map_y = ev.maps(coarse, fine, roi)
        m1, m2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        img = cv2.remap(p.image, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if fine is not None and s.edge_smoothing:
            _soften_folds(img, dx, dy, ids, roi)
        if gaze is not None and np.all(np.isfinite(gaze)) and np.any(gaze != 0) \
                and s.gaze_shift > 0 and p.irises:
            self._move_irises(p, img, tgt, gaze, open_share, (m1, m2))

        if (s.lash_shade > 0 or s.lash_fringe > 0) and open_share and p.lashes:
            self._shade_slits(img, tgt, open_share, p.lashes)
        if s.mouth_fill:
            m_open = s.mouth_min_opening * p.scale_px
            strength = float(np.clip((excess.max() - 0.5 * m_open) / max(m_open, 1e-6), 0, 1))
            if strength > 0.0:
                # the upper band already carries this much of the source's own teeth
                shown = sp * float(keep.max()) * p.own_teeth
                # rounded, pushed-out lips (an "o") stand away from the teeth: they hide in the
                # dark; a mouth as wide as at rest or wider (speech, a grin) shows them
                face = _ratio(tgt, src_mesh, (_EYES[0][2][0], _EYES[1][2][1]))
                narrowed = k / max(face, 1e-6)
                teeth = s.teeth * p.teeth_share * _smoothstep_array((narrowed - 0.75) / 0.2)
                spread = _smoothstep_array((narrowed - 0.95) / 0.15)
                mouth_fill.fill_cavity(img, dst[p.mouth_mu], dst[p.mouth_ml], strength,
                                       p.colours, s.mouth_feather * p.scale_px,
                                       float(teeth), shown, float(spread))
        return img


# ---------------------------------------------------------------------- helpers

@lru_cache(maxsize=1)
def _mesh_topology() -> tuple[np.ndarray, np.ndarray]:
    """The canonical mesh's triangles (F, 3) and its outer boundary loop (B,)."""
    model = FaceModel.canonical()
    if model.triangles is None:
        raise RuntimeError("the canonical face mesh has no triangles")
    tris = np.asarray(model.triangles, np.int64)
    tris.setflags(write=False)
    loop = _boundary_loop(tris)
    loop.setflags(write=False)
    return tris, loop


def _cone(d: np.ndarray, axis: np.ndarray, degrees: float) -> np.ndarray:
    """Per unit ray (n, 2): 1 along `axis`, easing to 0 at `degrees` from it."""
    c = np.cos(np.radians(degrees))
    return _smoothstep_array(np.clip((d @ axis - c) / max(1.0 - c, 1e-6), 0.0, 1.0))


def _smoothstep_array(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _boundary_loop(tris: np.ndarray) -> np.ndarray:
    """The longest closed loop of edges used by one triangle only, in order."""
    edges: dict[tuple[int, int], int] = {}
    for t in tris:
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            key = (int(min(a, b)), int(max(a, b)))
            edges[key] = edges.get(key, 0) + 1
    adj: dict[int, list[int]] = {}
    for (a, b), n in edges.items():
        if n == 1:
            adj.setdefault(a, []).append(b)
            adj.setdefault(b, []).append(a)
    best: list[int] = []
    seen: set[int] = set()
    for start in adj:
        if start in seen:
            continue
        loop, prev, cur = [start], -1, start
        seen.add(start)
        while True:
            nxt = [v for v in adj[cur] if v != prev and v not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            loop.append(cur)
            seen.add(cur)
        if len(loop) > len(best):
            best = loop
    return np.array(best, np.int64)


def _ray_exit(origin: np.ndarray, d: np.ndarray, w: int, h: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Distance along unit rays ``d`` (n, 2) from ``origin`` to the crop border, and the
    cosine between each ray and the normal of the side it leaves through."""
    lo = np.array([-0.5, -0.5])
    hi = np.array([w - 0.5, h - 0.5])
    with np.errstate(divide="ignore", invalid="ignore"):
        t_hi = np.where(d > 1e-12, (hi - origin) / d, np.inf)
        t_lo = np.where(d < -1e-12, (lo - origin) / d, np.inf)
    t_axis = np.minimum(t_hi, t_lo)
    side = np.argmin(t_axis, axis=1)
    t = np.maximum(t_axis[np.arange(len(d)), side], 0.0)
    return t, np.abs(d[np.arange(len(d)), side])


def _soften_folds(img: np.ndarray, dx: np.ndarray, dy: np.ndarray, ids: np.ndarray,
                  roi: tuple[int, int, int, int], jump: float = 1.0) -> None:
    """Anti-alias occlusion edges in place: blur the pixels where the backward map jumps.

    The piecewise-affine field is continuous except where a nearer surface
    covers another (silhouettes, lids, lips); there the index map's pixel
    staircase would show.  Only pixel pairs that lie in different triangles
    are candidates; those whose source positions differ by more than
    ``jump`` px get a 3x3 Gaussian blur on both sides of the edge.
    """
    x0, y0, x1, y1 = roi
    h, w = ids.shape
    if h < 3 or w < 3:
        return
    pts_y, pts_x = [], []
    for axis in (1, 0):
        a = ids[:, :-1] if axis == 1 else ids[:-1, :]
        b = ids[:, 1:] if axis == 1 else ids[1:, :]
        ys, xs = np.nonzero(a != b)
        if not len(ys):
            continue
        ys2, xs2 = (ys, xs + 1) if axis == 1 else (ys + 1, xs)
        d = np.abs(dx[ys, xs] - dx[ys2, xs2]) + np.abs(dy[ys, xs] - dy[ys2, xs2])
        hit = d > jump
        pts_y += [ys[hit], ys2[hit]]
        pts_x += [xs[hit], xs2[hit]]
    ys = np.concatenate(pts_y) if pts_y else np.empty(0, np.int64)
    xs = np.concatenate(pts_x) if pts_x else np.empty(0, np.int64)
    if not len(ys):
        return
    # blur the box around the hits once (3x3 binomial), then copy only the hits
    by0, by1 = max(int(ys.min()) + y0 - 1, 0), min(int(ys.max()) + y0 + 2, img.shape[0])
    bx0, bx1 = max(int(xs.min()) + x0 - 1, 0), min(int(xs.max()) + x0 + 2, img.shape[1])
    box = img[by0:by1, bx0:bx1]
    soft = cv2.GaussianBlur(box, (3, 3), 0, borderType=cv2.BORDER_REPLICATE)
    ys = ys + (y0 - by0)
    xs = xs + (x0 - bx0)
    box[ys, xs] = soft[ys, xs]


def _skull_lever(p: PreparedSource, target: np.ndarray) -> np.ndarray:
    """(K, B, 2): how much further than its contour vertex each ring vertex moves when it
    rides rigidly on the head (the similarity that maps the source's upper face onto the
    driven one, applied in 3D to the ring vertex's offset from its contour vertex)."""
    rot, scale, _t = similarity_procrustes(
        p.points[p.upper_face], np.asarray(target, np.float64)[None, p.upper_face, :3],
        np.ones(len(p.upper_face)))
    lin = scale[0] * rot[0]
    return (p.ring_lever @ lin.T)[..., :2] - p.ring_lever[..., :2]


def _eye_ring(pts: np.ndarray, eye: int) -> np.ndarray:
    """The lid polygon (n, 2) of eye `eye` (image-left first): upper lid, then lower back."""
    upper, lower = ((kp.UPPER_LID_R, kp.LOWER_LID_R), (kp.UPPER_LID_L, kp.LOWER_LID_L))[eye]
    return np.asarray(pts, np.float64)[list(upper) + list(lower[-2:0:-1]), :2]


def _up_normal(pts: np.ndarray, corners: tuple[int, int]) -> np.ndarray:
    """Unit normal pointing 'up' (towards the brow) for a left -> right corner pair."""
    a = pts[corners[1]] - pts[corners[0]]
    n = np.array([a[1], -a[0]])
    return n / max(np.linalg.norm(n), 1e-9)


def _ratio(tgt: np.ndarray, src: np.ndarray, corners: tuple[int, int]) -> float:
    wt = np.linalg.norm(tgt[corners[1]] - tgt[corners[0]])
    ws = np.linalg.norm(src[corners[1]] - src[corners[0]])
    return float(wt / max(ws, 1e-9))


def _carry_lid_bands(xy: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Lower the ring above each upper lid with the lid, so the band between them (lashes,
    the lid's dark edge) keeps the source's height as the lid drops.

    A closing lid slides down and unfolds pale skin from under the crease; stretching the
    dark lash band over that height instead reads as an open eye, to a viewer and to a
    landmarker alike. Rings that the driver lowers further are left alone.
    """
    for (upper, _lower, corners), band in zip(_EYES, (kp.LID_BAND_R, kp.LID_BAND_L)):
        u, b = list(upper), list(band)
        a_s, a_t = src[corners[1]] - src[corners[0]], xy[corners[1]] - xy[corners[0]]
        z = complex(*a_t) / complex(*a_s) if np.any(a_s) else 1.0
        v = z * ((src[b, 0] - src[u, 0]) + 1j * (src[b, 1] - src[u, 1]))  # turned, scaled
        rigid = xy[u] + np.stack([v.real, v.imag], 1)
        n = _up_normal(xy, corners)
        above = np.maximum((xy[b] - rigid) @ n, 0.0)
        xy[b] -= above[:, None] * n
    return xy


def _clamp_contacts(xy: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Keep upper lids and the upper inner lip from crossing below their partners.

    A pair may overlap as far as it does in the source (a tightly closed
    mouth often does), scaled to the driven size; anything beyond is clamped.
    """
    for upper, lower, corners in _EYES:
        u, lo = list(upper), list(lower)
        n = _up_normal(xy, corners)
        floor = np.minimum((src[u] - src[lo]) @ _up_normal(src, corners), 0.0)
        gap = (xy[u] - xy[lo]) @ n - floor * _ratio(xy, src, corners)
        xy[u] -= np.minimum(gap, 0.0)[:, None] * n
    u, lo = _LIP_UP[1:-1], _LIP_LO[1:-1]
    n = _up_normal(xy, _LIP_CORNERS)
    floor = np.minimum((src[u] - src[lo]) @ _up_normal(src, _LIP_CORNERS), 0.0)
    gap = (xy[u] - xy[lo]) @ n - floor * _ratio(xy, src, _LIP_CORNERS)
    neg = 0.5 * np.minimum(gap, 0.0)
    xy[u] -= neg[:, None] * n
    xy[lo] += neg[:, None] * n
    return xy
