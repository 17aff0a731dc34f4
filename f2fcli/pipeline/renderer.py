"""One interface over the renderers: `warp` (training-free) and `neural` (the paper's networks)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..choices import RENDERERS, RendererName, check_choice
from ..dirs import NO_WEIGHTS_MESSAGE, user_weights_dir
from ..errors import F2FError, InputError
from ..tracking import keypoints as kp
from ..tracking.face_model import FaceModel, warp_pose
from ..tracking.landmarks import FaceLandmarker, roi_from_landmarks
from .crop import CropBox
from .gaze import GAZE_TRAVEL
from .head import head_similarity, stabilise_pose
from .retarget import Observe
from .source import SourceFace


@dataclass(frozen=True)
class CropMotion:
    """Face geometry of N frames in crop pixels: mesh (N, 468, 3), keypoints (N, 72, 2),
    head pose (N, 6) in crop pixels, expression (N, 51), change of gaze from the source's
    (N, 2, 2); and the source photo's iris landmarks (2, 5, 2; centre first), if known."""

    points: np.ndarray
    keypoints: np.ndarray
    pose: np.ndarray
    expression: np.ndarray
    gaze: np.ndarray
    iris: np.ndarray | None = None


def crop_motion(model: FaceModel, source: SourceFace, box: CropBox, pose: np.ndarray,
                expression: np.ndarray, gaze: np.ndarray | None = None,
                offset: np.ndarray | None = None, head: np.ndarray | None = None
                ) -> CropMotion:
    """The source face at `pose`/`expression` (source-image pixels), moved into the crop;
    `gaze` defaults to the source's own; `offset`: see `motion.DrivenMotion`; `head`
    (N, 2, 3): the head's similarities, taken out of the pose so that the crop rides with
    the head (`head.stabilise_pose`; the paste-back puts them back)."""
    pose = np.atleast_2d(pose)
    if head is not None:
        pose = stabilise_pose(pose, head)
    expression = np.atleast_2d(expression)
    gaze = np.zeros((len(pose), 2, 2)) if gaze is None else np.asarray(gaze, np.float64)
    points = box.to_crop(source.mesh(model, pose, expression, offset))
    keypoints = box.to_crop(model.keypoints72(source.identity, expression, pose,
                                              source.identity_detail, offset=offset))
    shift = -np.array([box.x0, box.y0], np.float64) * box.scale
    iris = None
    if source.landmarks is not None and len(source.landmarks) >= kp.N_LANDMARKS:
        irises = np.asarray(source.landmarks, np.float64)[kp.IRIS_POINTS, :2]
        iris = box.to_crop(irises).reshape(2, 5, 2)
    return CropMotion(points, keypoints, warp_pose(pose, box.scale, shift), expression, gaze,
                      iris)


class FaceRenderer(Protocol):
    name: str
    device: str  # where it runs: "cpu", "cuda" or "mps"
    # Retargeting reads back every this many keyframes (`retarget.RetargetOptions`): a
    # renderer whose frames cost as much there as in the output reads back fewer.
    readback_stride: int

    def prepare(self, crop: np.ndarray, source: CropMotion) -> object:
        """Everything that depends on the source only (cached per run)."""

    def render(self, prepared: object, target: CropMotion) -> np.ndarray:
        """(N, R, R, 3) uint8 RGB crops of the source face moved to `target`."""


class WarpFaceRenderer:
    """Training-free: warps the source crop along the face mesh."""

    name = "warp"
    device = "cpu"
    readback_stride = 1  # read back at a small size (`runner._probe_view`): cheap

    def __init__(self) -> None:
        from ..renderers.warp import WarpRenderer, WarpSettings

        along, up = GAZE_TRAVEL
        self._warp = WarpRenderer(WarpSettings(gaze_shift=along, gaze_vertical=up / along))

    def prepare(self, crop: np.ndarray, source: CropMotion) -> object:
        return self._warp.prepare(crop, source.points[0], source.iris)

    def render(self, prepared: object, target: CropMotion) -> np.ndarray:
        return self._warp.render(prepared, target.points, target.gaze)


def observer(renderer: FaceRenderer, prepared: object, model: FaceModel, source: SourceFace,
             box: CropBox, landmarker: FaceLandmarker) -> Observe:
    """The landmarks a landmarker finds on frames this renderer draws (see
    `retarget.Observe`), in source-image pixels."""

    def read(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
        found = landmarker(frame, roi_from_landmarks(points))
        if not found.present:
            return np.full((kp.N_LANDMARKS, 2), np.nan)
        return found.points[:, :2] / box.scale + np.array([box.x0, box.y0])

    def observe(pose: np.ndarray, expression: np.ndarray, gaze: np.ndarray,
                offset: np.ndarray | None = None) -> np.ndarray:
        target = crop_motion(model, source, box, pose, expression, gaze, offset,
                             head_similarity(model, source.pose, pose))
        # render the next frame while the landmarker reads the last one
        with ThreadPoolExecutor(1) as reader:
            pending = [reader.submit(read, renderer.render(prepared, target_i)[0], points)
                       for target_i, points in zip(_frames(target), target.points)]
            return np.stack([p.result() for p in pending])

    return observe


def _frames(motion: CropMotion):
    """One-frame CropMotions of each frame of `motion`."""
    for i in range(len(motion.points)):
        yield CropMotion(*(np.asarray(f)[i:i + 1] for f in (motion.points, motion.keypoints,
                                                              motion.pose, motion.expression,
                                                              motion.gaze)))


def iris_response(observe: Observe, source: SourceFace) -> np.ndarray | None:
    """How far the renderer really moves each iris per unit of gaze, (2, 2, 2): per eye
    (image-left first) the displacement in source pixels for gaze right and up, read back
    (`observer`) from five frames of the source; None if one shows no face.

    The lids cover part of a shifted iris, so it reads as moved less than it was drawn;
    retargeting uses this to ask for the gaze it needs.
    """
    probes = np.zeros((5, 2, 2))
    probes[1, :, 0], probes[2, :, 0], probes[3, :, 1], probes[4, :, 1] = 1, -1, 1, -1
    n = len(probes)
    points = observe(np.repeat(source.pose[None], n, 0),
                     np.repeat(source.expression[None], n, 0), probes)
    if not np.all(np.isfinite(points)):
        return None
    c = points[:, list(kp.IRIS_CENTRES)]  # (5, 2 eyes, 2)
    return np.stack([(c[1] - c[2]) / 2.0, (c[3] - c[4]) / 2.0], 1)


def find_generator_weights(explicit: Path | None) -> Path | None:
    """`--weights`, else a generator file in the user weights directory, else None."""
    if explicit is not None:
        if not explicit.is_file():
            raise F2FError(f"{explicit}: no such weights file")
        return explicit
    directory = user_weights_dir()
    if not (directory.is_dir() and any(directory.glob("*.safetensors"))):
        return None  # nothing to look at: don't pay for importing torch
    from ..model.weights_file import resolve_generator_weights

    try:
        return resolve_generator_weights(None)
    except InputError:
        return None


def choose_renderer(name: RendererName, weights: Path | None) -> tuple[str, Path | None]:
    """Resolve `auto`: neural when weights are available, else warp."""
    check_choice("renderer", name, RENDERERS)
    found = find_generator_weights(weights)
    if name == "neural" and found is None:
        raise F2FError(NO_WEIGHTS_MESSAGE.format(dir=user_weights_dir())
                       + "; `renderer` warp needs no weights")
    if name == "auto":
        return ("neural", found) if found is not None else ("warp", None)
    return name, found
