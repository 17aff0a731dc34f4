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

import cv2
import numpy as np

from ...tracking import keypoints as kp
from . import eyes, mouth
from .field import DrivenMesh, drive_mesh
from .layout import RenderMesh, build_render_mesh
from .parts import EYES, LIP_CORNERS, LIP_LO, LIP_UP, N_MESH, eye_ring, up_normal
from .raster import FieldEvaluator, affine_displacements, signed_areas, soften_folds
from .settings import WarpSettings


@dataclass(repr=False)
class PreparedSource:
    """Everything about the source that the frames share (built by ``WarpRenderer.prepare``)."""

    image: np.ndarray  # (H, W, 3) uint8
    points: np.ndarray  # (468, 3) source mesh, crop pixels
    mesh: RenderMesh
    colours: tuple  # cavity colours (edge, core, teeth)
    teeth_share: float  # 1 for a closed mouth or one showing teeth, 0 for a dark open one
    own_teeth: float  # 1 where the source's own teeth show between its lips
    scale_px: float  # crop size / 512
    evaluator: FieldEvaluator
    clean: np.ndarray | None = None  # the source with its irises painted out (for gaze)
    irises: list | None = None  # per eye an `eyes.IrisPatch`
    lashes: list | None = None  # per eye (3,) float: its darkest tone (lashes, iris)

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        return f"PreparedSource({w}x{h}, {len(self.mesh.src_xy)} render vertices)"


class WarpRenderer:
    """Training-free renderer: warps the source crop along the driven face mesh."""

    def __init__(self, settings: WarpSettings = WarpSettings()) -> None:
        self.settings = settings

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
            raise ValueError(f"source_points must be ({N_MESH}, 3), got {pts.shape}")
        pts = pts[:N_MESH]
        if not np.all(np.isfinite(pts)):
            raise ValueError("source_points contain non-finite values")
        s = self.settings
        h, w = image.shape[:2]
        mesh = build_render_mesh(pts, (h, w), s)
        xy = pts[:, :2]

        # cavity colours from the source's lips and cheeks (teeth: after the eyes)
        outer = np.concatenate([xy[list(kp.LIP_OUTER_UPPER)], xy[list(kp.LIP_OUTER_LOWER)][::-1]])
        inner = np.concatenate([xy[LIP_UP], xy[LIP_LO][::-1]])
        lip = mouth.region_colour(image, outer, inner)
        skin = mouth.region_colour(image, xy[mesh.boundary])

        # synthetic teeth where the source's lips are closed or barely parted (a narrow gap
        # is dark whatever is behind it), or where it shows its own teeth (they continue
        # them); not in a wide open mouth that shows none
        src_gap = (xy[LIP_UP[1:-1]] - xy[LIP_LO[1:-1]]) @ up_normal(xy, LIP_CORNERS)
        width = max(float(np.linalg.norm(xy[LIP_CORNERS[1]] - xy[LIP_CORNERS[0]])), 1e-6)
        narrow = float(np.clip(2.0 - src_gap.max() / (0.1 * width), 0.0, 1.0))
        own_teeth = mouth.teeth_showing(image, inner, skin)
        teeth_share = max(narrow, own_teeth)

        # gaze: the iris as a patch over an iris-free eye
        rings = [eye_ring(xy, k) for k in range(2)]
        found = []
        for k, (ring, (_u, _l, corners)) in enumerate(zip(rings, EYES)):
            eye_w = float(np.linalg.norm(xy[corners[1]] - xy[corners[0]]))
            if iris is not None and np.all(np.isfinite(iris[k])):
                c = np.asarray(iris[k][0], np.float64)
                found.append((c, float(np.linalg.norm(iris[k][1:] - c, axis=1).mean())))
            else:
                found.append(eyes.find_iris(image, ring, eye_w))
        whites = [eyes.sclera_tone(image, ring, c, r) for ring, (c, r) in zip(rings, found)]
        clean, irises = eyes.prepare_irises(image, rings, found, s.sclera, whites)
        seen = [t for t in whites if t is not None]
        colours = mouth.cavity_colours(lip, skin, s.mouth_edge_gain, s.mouth_core_gain,
                                       s.teeth_gain, s.mouth_color,
                                       np.mean(seen, 0) if seen else None)
        lashes = [eyes.darkest_tone(image, ring) for ring in rings]
        return PreparedSource(
            image=image, points=pts, mesh=mesh, colours=colours, teeth_share=teeth_share,
            own_teeth=own_teeth, scale_px=max(h, w) / 512.0,
            evaluator=FieldEvaluator((h, w), mesh.background_scale),
            clean=clean, irises=irises, lashes=lashes)

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
            raise ValueError(f"target_points must be (N, {N_MESH}, 3), got {tp.shape}")
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
        driven = drive_mesh(p.mesh, p.points, target, s)
        img, maps = self._rasterise(p, driven, target)
        tgt = driven.face
        if gaze is not None and np.all(np.isfinite(gaze)) and np.any(gaze != 0) \
                and s.gaze_shift > 0 and p.irises:
            eyes.move_irises(img, p.clean, p.irises, maps, p.points[:, :2], tgt, gaze,
                             driven.open_share, p.scale_px, s)
        if (s.lash_shade > 0 or s.lash_fringe > 0) and driven.open_share and p.lashes:
            eyes.shade_slits(img, tgt, driven.open_share, p.lashes, s)
        if s.mouth_fill:
            mouth.paint_mouth(img, driven.dst, p.mesh.mouth_mu, p.mesh.mouth_ml, driven.mouth,
                              mouth.face_widening(tgt, p.points[:, :2]), p.colours,
                              p.teeth_share, p.own_teeth, p.scale_px, s)
        return img

    def _rasterise(self, p: PreparedSource, driven: DrivenMesh, target: np.ndarray
                   ) -> tuple[np.ndarray, tuple]:
        """The warped image and its (fixed-point) maps: background rings first, coarse; the
        eye and mouth strips behind the face; the face far to near; full resolution in the
        box round the driven face."""
        s = self.settings
        h, w = p.image.shape[:2]
        mesh, dst, tgt = p.mesh, driven.dst, driven.face
        min_area = 2.0 * s.min_area
        face = mesh.face_tris
        a_face = signed_areas(dst, face) * mesh.orientation
        face = face[a_face > min_area] if s.cull_backfaces else face[np.abs(a_face) > min_area]
        depth = target[face, 2].sum(1)
        face = face[np.argsort(-depth, kind="stable")]
        inner = mesh.interior_tris
        inner = inner[signed_areas(dst, inner) * mesh.orientation > min_area]
        rings = mesh.ring_tris
        rings = rings[np.abs(signed_areas(dst, rings)) > min_area]
        tris = np.concatenate([rings, inner, face], 0)
        t_tri = dst[tris]
        coef = affine_displacements(t_tri, driven.src[tris])
        ev = p.evaluator
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
            soften_folds(img, dx, dy, ids, roi)
        return img, (m1, m2)
