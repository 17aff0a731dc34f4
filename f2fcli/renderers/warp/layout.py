"""Layout of the moving parts: the render mesh built once per source.

The render mesh is the face mesh's own triangles plus parts with vertices of their own:

* **Face**: the mesh's triangles minus those spanning the eye openings and the mouth opening.
* **Eyes**: the strip between the lids, with its own copies of the lid vertices (so that
  their source positions can differ from the lids', see `field.py`); drawn behind the face.
* **Mouth**: the strip between the inner-lip loops split into an upper band, a middle band
  (the cavity) and a lower band, with two rows of vertices of their own.
* **Background rings**: rings of vertices on rays from the face centre through each outline
  vertex, out to the crop border; the outermost sits on the border and never moves.

Vertex numbers: the mesh's, then the eye copies, then the mouth rows, then the rings
(`RenderMesh.ring_base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...geometry import smoothstep
from ...tracking import keypoints as kp
from ...tracking.face_model import FaceModel
from .parts import EARS, EYES, LIP_LO, LIP_UP, MOUTH_EDGE, N_MESH, cone
from .raster import signed_areas
from .settings import WarpSettings


@dataclass(frozen=True, repr=False)
class RenderMesh:
    """The render mesh of one source (crop pixels)."""

    src_xy: np.ndarray  # (V, 2) source position of every render vertex (frame-independent part)
    face_tris: np.ndarray  # (F, 3) face triangles (depth-sorted per frame)
    interior_tris: np.ndarray  # (E, 3) eye and mouth strips, drawn behind the face
    ring_tris: np.ndarray  # (G, 3) background triangles, drawn first
    boundary: np.ndarray  # (B,) face-outline vertex indices, in loop order
    ring_base: int  # render index of the first ring vertex
    ring_weights: np.ndarray  # (K, B) falloff of each ring vertex beyond the outline
    ring_src: np.ndarray  # (K, B, 2) source positions of the ring vertices
    ring_lever: np.ndarray  # (K, B, 3) ring vertex minus its outline vertex, skull depth in z
    crown: np.ndarray  # (B,) 1 where an outline vertex's ray leaves the face through the hair
    upper_face: np.ndarray  # mesh indices above the nose tip: the head's rigid part
    orientation: float  # +1 / -1: winding sign of front-facing triangles
    eye_dups: tuple  # per eye: render indices of the duplicated (upper, lower) lid vertices
    mouth_mu: np.ndarray  # (11,) render indices of the upper cavity edge (corners included)
    mouth_ml: np.ndarray  # (11,) render indices of the lower cavity edge
    background_scale: float  # resolution of the background field against the crop's


@lru_cache(maxsize=1)
def mesh_topology() -> tuple[np.ndarray, np.ndarray]:
    """The canonical mesh's triangles (F, 3) and its outer boundary loop (B,)."""
    model = FaceModel.canonical()
    if model.triangles is None:
        raise RuntimeError("the canonical face mesh has no triangles")
    tris = np.asarray(model.triangles, np.int64)
    tris.setflags(write=False)
    loop = boundary_loop(tris)
    loop.setflags(write=False)
    return tris, loop


def build_render_mesh(points: np.ndarray, shape: tuple[int, int],
                      settings: WarpSettings) -> RenderMesh:
    """The render mesh over a source mesh `points` (468, 3) in a crop of `shape` (h, w)."""
    tris, boundary = mesh_topology()
    xy = points[:, :2]
    eye_sets = [set(u) | set(lo) | set(c) for u, lo, c in EYES]
    mouth_set = set(kp.LIP_INNER_UPPER) | set(kp.LIP_INNER_LOWER)
    in_eye = [np.all(np.isin(tris, list(es)), 1) for es in eye_sets]
    in_mouth = np.all(np.isin(tris, list(mouth_set)), 1)
    face_tris = tris[~(in_eye[0] | in_eye[1] | in_mouth)]
    orientation = 1.0 if signed_areas(xy, face_tris).sum() >= 0 else -1.0

    extra_src: list[np.ndarray] = []
    eye_strips, eye_dups, n_vert = _eye_strips(xy, tris, in_eye, N_MESH, extra_src)
    mouth_tris, mu, ml, n_vert = _mouth_strip(xy, orientation, n_vert, settings, extra_src)
    ring_base = n_vert
    rings = _background_rings(points, boundary, shape, settings)
    ring_src, ring_w, ring_lever, crown, scale = rings
    nb = len(boundary)
    ring_idx = [boundary]
    for k in range(len(ring_src)):
        ring_idx.append(n_vert + k * nb + np.arange(nb))
        extra_src.append(ring_src[k])
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
    up = xy[kp.FOREHEAD_TOP] - xy[kp.CHIN]
    return RenderMesh(
        src_xy=src_xy, face_tris=face_tris,
        interior_tris=np.concatenate(eye_strips + [mouth_tris], 0), ring_tris=ring_tris,
        boundary=boundary, ring_base=ring_base, ring_weights=ring_w, ring_src=ring_src,
        ring_lever=ring_lever, crown=crown,
        upper_face=np.flatnonzero((xy - xy[1]) @ up > 0), orientation=orientation,
        eye_dups=tuple(eye_dups), mouth_mu=mu, mouth_ml=ml, background_scale=scale)


def _eye_strips(xy: np.ndarray, tris: np.ndarray, in_eye: list[np.ndarray], n_vert: int,
                extra_src: list[np.ndarray]) -> tuple[list, list, int]:
    """Per eye the strip between the lids on its own copies of the lid vertices (appended
    to `extra_src`): the strips, per eye the copies' (upper, lower) render indices, and the
    vertex count after them."""
    strips, dups = [], []
    for (upper, lower, _corners), mask in zip(EYES, in_eye):
        lids = list(upper) + list(lower)
        dup = {v: n_vert + i for i, v in enumerate(lids)}
        n_vert += len(lids)
        extra_src.append(xy[lids])
        strip = np.vectorize(lambda v: dup.get(int(v), int(v)))(tris[mask].copy())
        strips.append(strip)
        dups.append((np.array([dup[v] for v in upper]), np.array([dup[v] for v in lower])))
    return strips, dups, n_vert


def _mouth_strip(xy: np.ndarray, orientation: float, n_vert: int, settings: WarpSettings,
                 extra_src: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The mouth's upper band, cavity and lower band on two new rows of vertices (appended
    to `extra_src`, both at the split line of the source's opening): triangles, the rows'
    render indices (corners included) and the vertex count after them."""
    inner = MOUTH_EDGE - 2
    mu = np.empty(MOUTH_EDGE, np.int64)
    ml = np.empty(MOUTH_EDGE, np.int64)
    mu[0] = ml[0] = LIP_UP[0]
    mu[-1] = ml[-1] = LIP_UP[-1]
    mu[1:-1] = n_vert + np.arange(inner)
    ml[1:-1] = n_vert + inner + np.arange(inner)
    n_vert += 2 * inner
    sp = min(max(settings.mouth_split, 0.0), 1.0)
    mid = (1.0 - sp) * xy[LIP_UP[1:-1]] + sp * xy[LIP_LO[1:-1]]
    extra_src.append(mid)
    extra_src.append(mid)
    tris = []
    for a, b in ((LIP_UP, mu), (mu, ml), (ml, LIP_LO)):
        for j in range(MOUTH_EDGE - 1):
            quad = (a[j], a[j + 1], b[j + 1], b[j])
            for t in ((quad[0], quad[1], quad[2]), (quad[0], quad[2], quad[3])):
                if len(set(int(v) for v in t)) == 3:
                    tris.append(t)
    tris = np.array(tris, np.int64)
    # winding: lay the strip out open (upper row above lower) and match the face
    layout = np.zeros((n_vert, 2))
    for j in range(MOUTH_EDGE):
        for idx, y in ((LIP_UP[j], 0.0), (mu[j], 1.0), (ml[j], 2.0), (LIP_LO[j], 3.0)):
            corner = j in (0, MOUTH_EDGE - 1)
            layout[idx] = (j, 1.5 if corner else y)
    flip = signed_areas(layout, tris) * orientation < 0
    tris[flip] = tris[flip][:, [0, 2, 1]]
    return tris, mu, ml, n_vert


def _background_rings(points: np.ndarray, boundary: np.ndarray, shape: tuple[int, int],
                      s: WarpSettings) -> tuple[np.ndarray, ...]:
    """Ring vertices on rays from the face centre through each outline vertex: their
    source positions (K, B, 2), falloff weights (K, B), levers onto the skull (K, B, 3),
    the crown share of each ray (B,) and the background field's scale.

    A ring vertex moves by its outline vertex's displacement times a smooth falloff (1 up to
    `plateau` of the way, 0 at `falloff` face radii or a few pixels inside the border,
    whichever is nearer); the last ring sits on the crop border and never moves. Above the
    forehead the reach is wider (`crown_*`), below the chin `chin_*`.
    """
    h, w = shape
    xy = points[:, :2]
    b_xy = xy[boundary]
    centre = b_xy.mean(0)
    rel = b_xy - centre
    radius = np.linalg.norm(rel, axis=1)
    face_r = float(radius.mean())
    d = rel / np.maximum(radius, 1e-9)[:, None]
    t_exit, cos = ray_exit(centre, d, w, h)
    scale = min(max(s.background_scale, 4.0 / min(h, w)), 1.0)
    # motion ends this far (px) inside the border, so the coarse grid keeps it still
    margin = 2.5 / scale
    room = np.maximum(t_exit - radius - margin / np.maximum(cos, 0.25), 0.0)
    up = xy[kp.FOREHEAD_TOP] - xy[kp.CHIN]
    up = up / max(np.linalg.norm(up), 1e-9)
    crown = cone(d, up, s.crown_angle)
    chin = cone(d, -up, s.chin_angle)
    falloff = s.falloff + crown * (s.crown_falloff - s.falloff) \
        + chin * (s.chin_falloff - s.falloff)
    reach = np.maximum(np.minimum(room, falloff * face_r), 1e-3)
    fr = np.asarray(s.ring_fractions, np.float64)
    ring_src = [b_xy + f * reach[:, None] * d for f in fr]
    pl = np.clip(s.plateau + crown * (s.crown_plateau - s.plateau)
                 + chin * (s.chin_plateau - s.plateau), 0.0, 0.95)
    weights = [1.0 - smoothstep((f - pl) / (1.0 - pl)) for f in fr]
    # the crop border itself: fixed
    ring_src.append(centre + np.maximum(t_exit, radius)[:, None] * d)
    weights.append(np.zeros(len(d)))
    ring_src = np.stack(ring_src)
    # the hair on top sits on the skull, which curves back to the ears' depth at its
    # outline, where the plateau ends
    z_b, z_c = points[boundary, 2], float(points[list(EARS), 2].mean())
    back = np.clip(np.r_[fr, 1.0][:, None] / np.maximum(pl, 1e-3)[None], 0.0, 1.0)
    lever = np.concatenate([ring_src - b_xy[None], (back * (z_c - z_b))[..., None]], -1)
    return ring_src, np.asarray(weights), lever, crown, scale


def boundary_loop(tris: np.ndarray) -> np.ndarray:
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


def ray_exit(origin: np.ndarray, d: np.ndarray, w: int, h: int
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
