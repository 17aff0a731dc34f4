"""MP-3DMM: a linear 3D face model on the 468-vertex MediaPipe FaceMesh topology.

Shape
-----
``X(s, e) = mean + sum_i s_i U_i + sum_k e_k B_k (+ detail)``, in the canonical
model frame, centimetres.

* ``mean`` (468, 3): MediaPipe's canonical face mesh.
* ``U`` (50, 468, 3): identity basis.  Data-free: the top-50 eigenfunctions of
  a squared-exponential Gaussian-process kernel (length scale 4 cm, amplitude
  0.5 cm per coordinate) on the mean-shape vertices, with the 7 similarity
  modes (translation, rotation, scale) projected out because head pose absorbs
  them.  Each mode is scaled by the square root of its eigenvalue, so the prior
  on ``s`` is N(0, I).  ``detail`` is an optional free-form per-subject residual
  (468, 3) that the fitter keeps because FaceMesh measures dense 3D directly
  and 50 smooth modes miss fine identity structure.
* ``B`` (51, 468, 3): the hand-defined expression rig for the 51 ARKit channels of the
  MediaPipe blendshape network (`channels.py`), built by `rig.build_expression_rig`.

Frames and head pose
--------------------
Model frame: x towards the subject's left (image right in a frontal view),
y up, z towards the camera; right-handed.  Image: pixels, x right, y down.

``hp = (r0, r1, r2, tx, ty, scale)``:

* ``r`` is an axis-angle (Rodrigues) vector in radians giving the rotation
  matrix ``R = exp([r]x)`` that acts on model points about the pivot ``c``
  (the canonical nose tip, vertex 4 of ``mean``).  No Euler order is involved;
  rotations compose by matrix product.  ``r = 0`` is an upright frontal face.
* weak-perspective projection of a model point ``X``::

      P = R (X - c)
      u = scale * P_x + tx
      v = -scale * P_y + ty      # minus: image y points down

  so ``scale`` is image pixels per model centimetre and ``(tx, ty)`` is the
  pixel position of the pivot.  Anchoring at the nose tip keeps ``(tx, ty)``
  nearly unchanged when the head only rotates, which relative pose transfer
  relies on.
* Relative depth (tracker convention, smaller = closer) is
  ``w = -scale * P_z + tz``; ``tz`` is not part of ``hp``.

Equivalently, in the right-handed y-up camera frame ``Q = (u, -v, -w)``:
``Q = scale * R (X - c) + (tx, -ty, -tz)``; the fitter works in that frame.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.linalg

from ..geometry import rotvec_to_matrix
from . import keypoints as kp
from .rig import ExpressionRig, build_expression_rig

N_IDENTITY = 50
# Bump when the model's construction changes (bases, rig, signs): caches and track files made
# with another build are then not reused. 2: identity modes' signs from a fixed probe.
MODEL_BUILD = "mp3dmm-2"



# --------------------------------------------------------------------------
# projection
# --------------------------------------------------------------------------

def transform_points(points: np.ndarray, hp: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Model points (..., N, 3) -> image (u, v, w) with w the relative depth (tz = 0)."""
    hp = np.asarray(hp, dtype=np.float64)
    rot = rotvec_to_matrix(hp[..., :3])
    p = np.einsum("...ij,...nj->...ni", rot, np.asarray(points, np.float64) - pivot)
    sc = hp[..., 5, None]
    u = sc * p[..., 0] + hp[..., 3, None]
    v = -sc * p[..., 1] + hp[..., 4, None]
    w = -sc * p[..., 2]
    return np.stack([u, v, w], -1)


def project_points(points: np.ndarray, hp: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Weak-perspective projection of model points (..., N, 3) to image xy (..., N, 2)."""
    return transform_points(points, hp, pivot)[..., :2]


def warp_pose(hp: np.ndarray, scale: float | np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Pose after an image similarity ``p' = scale * p + offset`` (no in-plane rotation).

    Use it to move a pose from full-frame pixels into a crop (e.g. scale =
    2 / crop_size, offset = -1 - 2 * crop_origin / crop_size for [-1, 1]
    crop coordinates).
    """
    hp = np.array(hp, dtype=np.float64, copy=True)
    scale = np.asarray(scale, dtype=np.float64)
    hp[..., 3:5] = scale[..., None] * hp[..., 3:5] + np.asarray(offset, np.float64)
    hp[..., 5] = scale * hp[..., 5]
    return hp


# --------------------------------------------------------------------------
# identity basis
# --------------------------------------------------------------------------

def similarity_modes(points: np.ndarray) -> np.ndarray:
    """Orthonormal basis (7, N*3) of infinitesimal similarity motions of ``points``."""
    c = points - points.mean(0)
    n = len(points)
    modes = []
    for ax in range(3):
        t = np.zeros((n, 3))
        t[:, ax] = 1.0
        modes.append(t)
    for ax in range(3):
        w = np.zeros(3)
        w[ax] = 1.0
        modes.append(np.cross(w, c))
    modes.append(c)
    q, _ = np.linalg.qr(np.stack([m.ravel() for m in modes], 1))
    return q.T


def _sign_probe(size: int) -> np.ndarray:
    """A fixed generic direction: each identity mode's sign makes its projection on it positive.
    Not "largest component positive": on the symmetric mesh a mode's largest components come in
    mirror pairs of equal size, and which one wins was decided by rounding noise, so the signs
    (and with them every stored identity coefficient) changed with the BLAS threads."""
    return np.random.default_rng(20221023).standard_normal(size)


def gp_identity_basis(mean: np.ndarray, n_modes: int = N_IDENTITY,
                      length_scale: float = 4.0,
                      amplitude: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Data-free identity basis: eigenfunctions of a Gaussian-process kernel.

    Returns ``(basis (n_modes, N, 3), eigenvalues (n_modes,))`` with basis
    vectors scaled by sqrt(eigenvalue) so coefficients have a unit prior.
    """
    n = len(mean)
    d2 = np.sum((mean[:, None, :] - mean[None, :, :]) ** 2, -1)
    k_scalar = amplitude ** 2 * np.exp(-0.5 * d2 / length_scale ** 2)
    k = np.kron(k_scalar, np.eye(3))  # vertex-major (v, axis) ordering
    q = similarity_modes(mean)  # (7, 3N)
    # Project out similarity motions: pose fitting already explains them.
    kq = k @ q.T
    k = k - q.T @ kq.T - kq @ q + q.T @ (q @ kq) @ q
    k = 0.5 * (k + k.T)
    # Only the leading modes are needed: a subset solve is several times faster than a full one.
    size = k.shape[0]
    val, vec = scipy.linalg.eigh(k, subset_by_index=[size - n_modes, size - 1], driver="evr")
    val, vec = np.maximum(val[::-1], 0.0), vec[:, ::-1]
    vec = vec * np.sign(_sign_probe(size) @ vec)[None]
    basis = (vec * np.sqrt(val)).T.reshape(n_modes, n, 3)
    return basis, val


def mirror_map(mean: np.ndarray) -> np.ndarray:
    """Index of each vertex's mirror partner (x -> -x) by nearest neighbour."""
    mirrored = mean * np.array([-1.0, 1.0, 1.0])
    d2 = np.sum((mean[:, None, :] - mirrored[None, :, :]) ** 2, -1)
    return np.argmin(d2, axis=1)


# --------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------

CANONICAL_MESH_FILE = "canonical_face_mesh.npz"


def _canonical_mesh_file():
    """Context manager giving a filesystem path to the canonical mesh.

    The installed wheel has it in ``f2fcli.weights``; a source checkout that
    shadows the installed package (``python -m pytest`` from the repo root)
    has it in the top-level ``weights/`` folder instead.
    """
    try:
        return resources.as_file(resources.files("f2fcli.weights") / CANONICAL_MESH_FILE)
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parents[2] / "weights" / CANONICAL_MESH_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{CANONICAL_MESH_FILE} not found (no f2fcli.weights)")
        return nullcontext(path)

@dataclass(frozen=True, eq=False)
class FaceModel:
    """Linear face model: mean + identity basis + expression rig (see module doc).

    All methods broadcast over leading (batch/frame) dimensions.
    """

    mean: np.ndarray  # (N, 3) cm
    id_basis: np.ndarray  # (50, N, 3) cm per unit coefficient (prior N(0, I))
    id_eigenvalues: np.ndarray  # (50,) GP kernel eigenvalues, cm^2
    rig: ExpressionRig
    pose_weights: np.ndarray  # (N,) Procrustes weights (rigid, stable vertices), sum 1
    mirror: np.ndarray  # (N,) mirror partner of each vertex
    triangles: np.ndarray | None = None  # (F, 3) int
    uv: np.ndarray | None = None  # (N, 2)
    recipe: str = ""  # what the model was built from (see `fingerprint`)

    @property
    def pivot(self) -> np.ndarray:
        """Rotation pivot and translation anchor: the canonical nose tip."""
        return self.mean[kp.NOSE_TIP]

    def fingerprint(self) -> str:
        """SHA-256 of what the model was built from (the mean mesh, the build's settings and
        version, a replaced rig): coefficients are only comparable between models with the
        same fingerprint (caches, track files). Not of the computed bases: eigensolvers round
        differently with other BLAS threads or CPUs, and the bases agree only to rounding."""
        return hashlib.sha256(self.recipe.encode()).hexdigest()

    @property
    def expr_basis(self) -> np.ndarray:
        """The rig on the mean shape, (51, N, 3)."""
        return self.rig.basis(self.mean)

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, triangles: np.ndarray | None = None,
                  uv: np.ndarray | None = None, pose_weights: np.ndarray | None = None,
                  n_identity: int = N_IDENTITY, length_scale: float = 4.0) -> "FaceModel":
        """Build the model on a mean mesh (>= 468 vertices in MediaPipe order)."""
        mean = np.asarray(vertices, np.float64)[:kp.N_MESH]
        basis, ev = gp_identity_basis(mean, n_identity, length_scale)
        w = np.ones(len(mean)) if pose_weights is None else np.asarray(pose_weights, np.float64)
        recipe = hashlib.sha256(np.ascontiguousarray(mean).tobytes()
                                + np.ascontiguousarray(w).tobytes()).hexdigest()
        return cls(mean=mean, id_basis=basis, id_eigenvalues=ev,
                   rig=build_expression_rig(mean), pose_weights=w / w.sum(),
                   mirror=mirror_map(mean),
                   triangles=None if triangles is None else np.asarray(triangles),
                   uv=None if uv is None else np.asarray(uv),
                   recipe=f"{MODEL_BUILD}|{recipe}|{n_identity}|{length_scale}")

    @classmethod
    def canonical(cls) -> "FaceModel":
        """Model on the packaged MediaPipe canonical mesh (``f2fcli.weights``).

        Built once per process (the identity basis costs an eigensolve); treat it as read-only.
        """
        return _canonical_model(cls)

    @classmethod
    def _build_canonical(cls) -> "FaceModel":
        with _canonical_mesh_file() as p, np.load(p) as z:
            verts = z["vertices"]
            w = np.zeros(len(verts))
            w[z["procrustes_indices"]] = z["procrustes_weights"]
            tris = z["triangles"] if "triangles" in z else None
            uv = z["uv"] if "uv" in z else None
        # Vertices 136/365 are on the jaw: with them, mouth opening leaks into
        # pitch (design notes §4.1), so they get no pose weight.
        w[[136, 365]] = 0.0
        return cls.from_mesh(verts, tris, uv, w)

    def with_expression_basis(self, basis: np.ndarray) -> "FaceModel":
        """Copy with a fixed (e.g. per-video refined) rig; lid adaptation is dropped."""
        basis = np.asarray(basis, np.float64)
        rig = hashlib.sha256(np.ascontiguousarray(basis).tobytes()).hexdigest()
        return replace(self, rig=ExpressionRig(basis, self.rig.support),
                       recipe=f"{self.recipe}|rig {rig}")

    # --- geometry ------------------------------------------------------------

    def neutral(self, s: np.ndarray | None, detail: np.ndarray | None = None) -> np.ndarray:
        """Expression-free shape (..., N, 3) of identity ``s`` (..., 50) (+ detail)."""
        out = self.mean
        if s is not None:
            out = out + np.einsum("...i,ivc->...vc", np.asarray(s, np.float64), self.id_basis)
        if detail is not None:
            out = out + np.asarray(detail, np.float64)
        return out

    def expression_basis(self, neutral: np.ndarray | None = None, idx=None) -> np.ndarray:
        """Rig adapted to a neutral shape (default: the mean), rows ``idx`` only."""
        return self.rig.basis(self.mean if neutral is None else neutral, idx)

    def vertices(self, s: np.ndarray | None, e: np.ndarray | None,
                 detail: np.ndarray | None = None, idx=None,
                 offset: np.ndarray | None = None) -> np.ndarray:
        """Vertices (..., N, 3) for identity ``s`` (..., 50), expression ``e`` (..., 51).

        ``idx`` restricts the output to those vertices (the lid adaptation
        still sees the whole neutral). ``offset`` (..., 468, 3) is added after
        the expression (a per-frame fit residual; it does not adapt the rig).
        """
        n = self.neutral(s, detail)
        sl = slice(None) if idx is None else np.asarray(idx)
        out = n[..., sl, :]
        if e is not None:
            b = self.rig.basis(n, idx)
            out = out + np.einsum("...k,...kvc->...vc", np.asarray(e, np.float64), b)
        if offset is not None:
            out = out + np.asarray(offset, np.float64)[..., sl, :]
        return out

    def project(self, vertices: np.ndarray, hp: np.ndarray) -> np.ndarray:
        """Image xy (..., N, 2) of model-frame vertices under head pose ``hp`` (..., 6)."""
        return project_points(vertices, hp, self.pivot)

    def keypoints72(self, s: np.ndarray | None, e: np.ndarray | None, hp: np.ndarray,
                    detail: np.ndarray | None = None, clamp_contacts: bool = True,
                    offset: np.ndarray | None = None) -> np.ndarray:
        """The 72 Face2Face^rho keypoints in image pixels, (..., 72, 2).

        With ``clamp_contacts`` an upper lid / upper inner lip point that the
        expression pushed below its lower partner (model y) meets it at
        their midpoint instead of crossing over.
        """
        pts = self.vertices(s, e, detail, kp.K72, offset)
        if clamp_contacts and e is not None:
            up, lo = (list(c) for c in zip(*kp.CONTACT_PAIRS))
            yu, yl = pts[..., up, 1], pts[..., lo, 1]
            mid = 0.5 * (yu + yl)
            crossed = yu < yl
            pts = pts.copy()
            pts[..., up, 1] = np.where(crossed, mid, yu)
            pts[..., lo, 1] = np.where(crossed, mid, yl)
        return self.project(pts, hp)

    def keypoints8(self, s, e, hp, detail=None) -> np.ndarray:
        """Coarse 8-point subset (..., 8, 2)."""
        return self.keypoints72(s, e, hp, detail)[..., list(kp.K8), :]


@lru_cache(maxsize=1)
def _canonical_model(cls: type) -> "FaceModel":
    return cls._build_canonical()
