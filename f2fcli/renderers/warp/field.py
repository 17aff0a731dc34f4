"""The motion field: where every render vertex goes in a frame, and where it samples from.

Given the source mesh and one driven mesh (crop pixels), this places the render mesh's own
vertices (`layout.py`):

* the lids and the upper inner lip never cross below their partners, and the band above
  each upper lid keeps its height as the lid drops (`clamp_contacts`, `carry_lid_bands`);
* the eye strip's copies of the lid vertices follow the lids; where the driven lid gap is
  smaller than the source's they get virtual source positions (`WarpSettings.eye_mode`), so
  that the lids cover the eye instead of squashing the iris;
* the mouth's bands take the source's own opening and the middle band (the cavity, painted by
  `mouth.py`) the rest of the driven opening;
* each background ring vertex moves by its outline vertex's displacement times its falloff
  weight, plus, above the forehead, how far it rides on the skull (`skull_lever`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...geometry import similarity_procrustes, smoothstep
from .layout import RenderMesh
from .parts import EYES, LID_BANDS, LIP_CORNERS, LIP_LO, LIP_UP, N_MESH, ratio, up_normal
from .settings import WarpSettings


@dataclass(frozen=True)
class MouthOpening:
    """The driven mouth against the source's: per inner-lip column the part of the driven
    opening the source's own lips fill (`keep`) and the rest (`excess`), in crop pixels;
    the mouth's width against the source's (`widening`); the share of the kept opening that
    stays with the upper lip (`split`)."""

    keep: np.ndarray
    excess: np.ndarray
    widening: float
    split: float


@dataclass(frozen=True)
class DrivenMesh:
    """One frame's render mesh: source (V, 2) and target (V, 2) positions of every render
    vertex, the driven mesh's lids and lips after contact clamping (468, 2), per eye the
    driven lid gap against the source's ((n, 1) each) and the mouth's opening."""

    src: np.ndarray
    dst: np.ndarray
    face: np.ndarray
    open_share: list
    mouth: MouthOpening


def drive_mesh(mesh: RenderMesh, points: np.ndarray, target: np.ndarray,
               settings: WarpSettings) -> DrivenMesh:
    """Place the render mesh for the driven face mesh `target` (468, 3); `points`: the
    source's (468, 3)."""
    src_mesh = points[:, :2]
    tgt = carry_lid_bands(clamp_contacts(target[:, :2].copy(), src_mesh), src_mesh)
    src = mesh.src_xy.copy()
    dst = np.empty_like(src)
    dst[:N_MESH] = tgt
    open_share = _eye_strips(mesh, src, dst, tgt, src_mesh, settings)
    mouth = _mouth_bands(mesh, dst, tgt, src_mesh, settings)
    nb, n_rings = len(mesh.boundary), len(mesh.ring_src)
    disp_b = (tgt[mesh.boundary] - src_mesh[mesh.boundary])[None] \
        + mesh.crown[None, :, None] * skull_lever(mesh, points, target)
    ring_dst = mesh.ring_src + mesh.ring_weights[:, :, None] * disp_b
    dst[mesh.ring_base:mesh.ring_base + n_rings * nb] = ring_dst.reshape(-1, 2)
    return DrivenMesh(src, dst, tgt, open_share, mouth)


def _eye_strips(mesh: RenderMesh, src: np.ndarray, dst: np.ndarray, tgt: np.ndarray,
                src_mesh: np.ndarray, s: WarpSettings) -> list:
    """The strips' copies of the lid vertices follow the lids; their source positions cover
    the eye instead of squashing it. Returns per eye the driven lid gap over the source's."""
    open_share = []
    for (upper, lower, corners), (dup_u, dup_l) in zip(EYES, mesh.eye_dups):
        up_i, lo_i = list(upper), list(lower)
        dst[dup_u] = tgt[up_i]
        dst[dup_l] = tgt[lo_i]
        if s.eye_mode == "squash":
            continue
        k = ratio(tgt, src_mesh, corners)
        gap_t = (tgt[up_i] - tgt[lo_i]) @ up_normal(tgt, corners)
        sv = src_mesh[up_i] - src_mesh[lo_i]
        gap_s = k * (sv @ up_normal(src_mesh, corners))
        r = np.where(gap_s > 1e-3, np.clip(gap_t / np.maximum(gap_s, 1e-3), 0.0, 1.0),
                     1.0)[:, None]
        open_share.append(r)
        if s.eye_mode == "cover":
            src[dup_u] = src_mesh[lo_i] + r * sv
        else:
            # the kept band slides down to the lower lid as the eye shuts, so a
            # closing eye ends on the lash line, not on a slit of iris
            c = s.eye_centre * smoothstep(r / s.eye_shut)
            src[dup_u] = src_mesh[lo_i] + (c + (1.0 - c) * r) * sv
            src[dup_l] = src_mesh[lo_i] + (c - c * r) * sv
    return open_share


def _mouth_bands(mesh: RenderMesh, dst: np.ndarray, tgt: np.ndarray, src_mesh: np.ndarray,
                 s: WarpSettings) -> MouthOpening:
    """The bands take the part of the driven opening the source's lips fill, the cavity
    between them the rest."""
    u_i, l_i = LIP_UP[1:-1], LIP_LO[1:-1]
    n_t = up_normal(tgt, LIP_CORNERS)
    n_s = up_normal(src_mesh, LIP_CORNERS)
    k = ratio(tgt, src_mesh, LIP_CORNERS)
    gap_t = np.maximum((tgt[u_i] - tgt[l_i]) @ n_t, 0.0)
    gap_s = np.maximum((src_mesh[u_i] - src_mesh[l_i]) @ n_s, 0.0)
    keep = np.minimum(k * gap_s, gap_t)
    frac = np.where(gap_t > 1e-6, keep / np.maximum(gap_t, 1e-6), 1.0)[:, None]
    span = tgt[l_i] - tgt[u_i]
    sp = min(max(s.mouth_split, 0.0), 1.0)
    dst[mesh.mouth_mu[1:-1]] = tgt[u_i] + sp * frac * span
    dst[mesh.mouth_ml[1:-1]] = tgt[l_i] - (1.0 - sp) * frac * span
    return MouthOpening(keep, gap_t - keep, k, sp)


def skull_lever(mesh: RenderMesh, points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(K, B, 2): how much further than its outline vertex each ring vertex moves when it
    rides rigidly on the head (the similarity that maps the source's upper face onto the
    driven one, applied in 3D to the ring vertex's offset from its outline vertex)."""
    rot, scale, _t = similarity_procrustes(
        points[mesh.upper_face], np.asarray(target, np.float64)[None, mesh.upper_face, :3],
        np.ones(len(mesh.upper_face)))
    lin = scale[0] * rot[0]
    return (mesh.ring_lever @ lin.T)[..., :2] - mesh.ring_lever[..., :2]


def carry_lid_bands(xy: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Lower the ring above each upper lid with the lid, so the band between them (lashes,
    the lid's dark edge) keeps the source's height as the lid drops.

    A closing lid slides down and unfolds pale skin from under the crease; stretching the
    dark lash band over that height instead reads as an open eye, to a viewer and to a
    landmarker alike. Rings that the driver lowers further are left alone.
    """
    for (upper, _lower, corners), band in zip(EYES, LID_BANDS):
        u, b = list(upper), list(band)
        a_s, a_t = src[corners[1]] - src[corners[0]], xy[corners[1]] - xy[corners[0]]
        z = complex(*a_t) / complex(*a_s) if np.any(a_s) else 1.0
        v = z * ((src[b, 0] - src[u, 0]) + 1j * (src[b, 1] - src[u, 1]))  # turned, scaled
        rigid = xy[u] + np.stack([v.real, v.imag], 1)
        n = up_normal(xy, corners)
        above = np.maximum((xy[b] - rigid) @ n, 0.0)
        xy[b] -= above[:, None] * n
    return xy


def clamp_contacts(xy: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Keep upper lids and the upper inner lip from crossing below their partners.

    A pair may overlap as far as it does in the source (a tightly closed
    mouth often does), scaled to the driven size; anything beyond is clamped.
    """
    for upper, lower, corners in EYES:
        u, lo = list(upper), list(lower)
        n = up_normal(xy, corners)
        floor = np.minimum((src[u] - src[lo]) @ up_normal(src, corners), 0.0)
        gap = (xy[u] - xy[lo]) @ n - floor * ratio(xy, src, corners)
        xy[u] -= np.minimum(gap, 0.0)[:, None] * n
    u, lo = LIP_UP[1:-1], LIP_LO[1:-1]
    n = up_normal(xy, LIP_CORNERS)
    floor = np.minimum((src[u] - src[lo]) @ up_normal(src, LIP_CORNERS), 0.0)
    gap = (xy[u] - xy[lo]) @ n - floor * ratio(xy, src, LIP_CORNERS)
    neg = 0.5 * np.minimum(gap, 0.0)
    xy[u] -= neg[:, None] * n
    xy[lo] += neg[:, None] * n
    return xy

