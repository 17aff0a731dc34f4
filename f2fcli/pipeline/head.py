"""The head as one rigid body: the similarity that carries it, and the region it carries.

The driven motion is split in two. The *head's* part is a 2-D similarity per frame (shift,
scale, in-plane roll) of the skull: it carries the face, hair, ears and the top of the neck
as one body (`paste.PasteBack`). The *face's* part is everything else, the turn and the
expression, which the renderer draws in a crop that rides with the head (`stabilise_pose`
takes the head's similarity out of a pose).

The skull is modelled as an ellipsoid around a centre behind the face mesh, so that a turn
of the head (the nose swinging round) does not move the skull, as in real footage where the
hair beside a turning face stays put. Sizes are in the face model's centimetres and come from
adult head anatomy (head breadth about 15 cm, vertex to chin about 23 cm), not from any clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import matrix_to_rotvec, rotvec_to_matrix, smoothstep
from ..tracking import keypoints as kp
from ..tracking.face_model import FaceModel, transform_points

# The skull's centre in model space: level with the mesh's outermost points beside the eyes
# (`keypoints.SIDE_POINTS`, in front of the ears), 2 cm further back than them and 1 cm higher.
_CENTRE_BACK_CM = 2.0
_CENTRE_UP_CM = 1.0
# Half-width and half-height of the head with its hair, seen from the front (cm): the
# ellipse reaches past the ears and over the crown; its lower end is the top of the neck.
HEAD_HALF_WIDTH_CM = 10.0
HEAD_HALF_HEIGHT_CM = 12.5
# How far (share of the head's half-height) the skull moves before it starts to carry the
# outline, and from where it carries it fully. Talking heads that stay in place move the
# estimated skull by 4-8% (p50-p90 on three clips of the visible set), heads that travel by
# 16-66%; carrying the sway cost 2-3 dB of self-reenactment PSNR in the ring round the face on
# the first kind, not carrying the travel up to 3 dB on the second (`suite.py`, 17 clips).
SWAY = (0.05, 0.15)


def skull_centre(model: FaceModel) -> np.ndarray:
    """(3,) model-space centre of the skull."""
    ears = model.mean[list(kp.SIDE_POINTS)]
    centre = ears.mean(0)
    return centre + np.array([0.0, _CENTRE_UP_CM, -_CENTRE_BACK_CM])


def _skull_points(model: FaceModel) -> np.ndarray:
    """(14, 3) points on a sphere round the skull's centre (the six axes and eight
    diagonals): their projections pin down the skull's shift, scale and roll."""
    axes = np.concatenate([np.eye(3), -np.eye(3)])
    diag = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) / np.sqrt(3)
    return skull_centre(model) + HEAD_HALF_WIDTH_CM * np.concatenate([axes, diag])


def head_similarity(model: FaceModel, source_pose: np.ndarray, pose: np.ndarray,
                    sway: tuple[float, float] | None = SWAY) -> np.ndarray:
    """(N, 2, 3) affine similarities, source-image pixels -> output pixels, that carry the
    source's skull to where each driven `pose` (N, 6) puts it (least squares over the
    projections of points round the skull), less its `sway` (see `settle`)."""
    pts = _skull_points(model)
    src = transform_points(pts, np.asarray(source_pose, np.float64), model.pivot)[:, :2]
    dst = transform_points(pts, np.atleast_2d(np.asarray(pose, np.float64)), model.pivot)[..., :2]
    zs = src[:, 0] + 1j * src[:, 1]
    zd = dst[..., 0] + 1j * dst[..., 1]
    ms, md = zs.mean(), zd.mean(-1, keepdims=True)
    a = np.sum((zd - md) * np.conj(zs - ms), -1)
    # the roll from the points, the scale from the poses: a turned sphere's outline keeps its
    # size, though the points on it crowd together
    ratio = np.atleast_2d(np.asarray(pose, np.float64))[:, 5] / float(source_pose[5])
    a = ratio * a / np.maximum(np.abs(a), 1e-12)
    b = md[:, 0] - a * ms
    head = np.stack([np.stack([a.real, -a.imag, b.real], -1),
                     np.stack([a.imag, a.real, b.imag], -1)], -2)
    return head if sway is None else settle(head, HeadRegion.of(model, source_pose), sway)


def settle(head: np.ndarray, region: HeadRegion, sway: tuple[float, float]) -> np.ndarray:
    """The head's similarities (N, 2, 3) with its sway taken out: where they move the
    region's outline by d (as a share of its half-height), they are shrunk towards the
    identity by smoothstep((d - sway[0]) / (sway[1] - sway[0])). A talking head sways and
    nods within an outline (hair, ears) that stays nearly still; travel carries it."""
    head = np.asarray(head, np.float64)
    d = region.displacement(head) / region.half_axes[1]
    keep = smoothstep((d - sway[0]) / max(sway[1] - sway[0], 1e-9))[:, None, None]
    eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return eye + keep * (head - eye)


def invert_similarity(affine: np.ndarray) -> np.ndarray:
    """Inverse of (..., 2, 3) affine maps."""
    lin = affine[..., :2]
    inv = np.linalg.inv(lin)
    return np.concatenate([inv, -(inv @ affine[..., 2:])], -1)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Affine maps (..., 2, 3) applied to points (..., V, 2)."""
    return points @ np.swapaxes(affine[..., :2], -1, -2) + affine[..., None, :, 2]


def stabilise_pose(pose: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Poses (N, 6) with the head's similarities (N, 2, 3) taken out: the face drawn at the
    result, then carried by the similarity, is the face at `pose`."""
    pose = np.array(np.atleast_2d(pose), np.float64)
    inv = invert_similarity(np.asarray(head, np.float64))
    lin = inv[:, :, :2]
    scale = np.sqrt(np.abs(np.linalg.det(lin)))
    # an image rotation by theta (y down) is a rotation by -theta about the camera's z axis
    # in the face model's y-up frame
    theta = np.arctan2(lin[:, 1, 0], lin[:, 0, 0])
    c, s = np.cos(-theta), np.sin(-theta)
    zero, one = np.zeros_like(c), np.ones_like(c)
    rz = np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1),
                   np.stack([zero, zero, one], -1)], -2)
    out = pose.copy()
    out[:, :3] = matrix_to_rotvec(rz @ rotvec_to_matrix(pose[:, :3]))
    out[:, 3:5] = apply_affine(inv, pose[:, None, 3:5])[:, 0]
    out[:, 5] = pose[:, 5] * scale
    return out


@dataclass(frozen=True)
class HeadRegion:
    """The source's head (with hair, ears and the top of the neck) as an ellipse in
    source-image pixels: centre (2,), half axes (2,) along the head's own right and down
    directions, and the head's roll (radians, image y down)."""

    centre: tuple[float, float]
    half_axes: tuple[float, float]
    roll: float

    @classmethod
    def of(cls, model: FaceModel, pose: np.ndarray) -> "HeadRegion":
        pose = np.asarray(pose, np.float64)
        c = transform_points(skull_centre(model)[None], pose, model.pivot)[0, :2]
        # the head's right direction in the image: the projected model x axis
        right = transform_points(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), pose,
                                 np.zeros(3))[:, :2]
        d = right[1] - right[0]
        scale = float(pose[5])
        return cls((float(c[0]), float(c[1])),
                   (HEAD_HALF_WIDTH_CM * scale, HEAD_HALF_HEIGHT_CM * scale),
                   float(np.arctan2(d[1], d[0])))

    def radius(self, xy: np.ndarray) -> np.ndarray:
        """Elliptical radius of points (..., 2): 1 on the outline, 0 at the centre."""
        c, s = np.cos(self.roll), np.sin(self.roll)
        rel = xy - np.asarray(self.centre)
        u = (rel[..., 0] * c + rel[..., 1] * s) / self.half_axes[0]
        v = (-rel[..., 0] * s + rel[..., 1] * c) / self.half_axes[1]
        return np.sqrt(u * u + v * v)

    def displacement(self, head: np.ndarray) -> np.ndarray:
        """How far (px) similarities (..., 2, 3) move the outline at most, shape (...)."""
        outline = self.outline()
        moved = apply_affine(np.asarray(head, np.float64), outline)
        return np.linalg.norm(moved - outline, axis=-1).max(-1)

    def outline(self, n: int = 24) -> np.ndarray:
        """(n, 2) points on the outline."""
        t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        c, s = np.cos(self.roll), np.sin(self.roll)
        u, v = self.half_axes[0] * np.cos(t), self.half_axes[1] * np.sin(t)
        return np.asarray(self.centre) + np.stack([u * c - v * s, u * s + v * c], -1)
