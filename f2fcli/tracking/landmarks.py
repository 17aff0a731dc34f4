"""478-point face landmarks (MediaPipe FaceMesh v2) and 52 ARKit blendshapes.

Pixel convention as in :mod:`.detector`: continuous coordinates, (0, 0) is the
top-left corner of the image. Landmark z uses the same pixel scale as x and y
(relative depth, about zero-mean over the head, smaller = closer to camera).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from . import keypoints as kp
from .channels import BLENDSHAPE_NAMES
from .detector import FaceDetection, as_rgb_uint8
from .onnx_runtime import get_session

MODEL_FILE = "face_landmarks_detector.onnx"
BLENDSHAPES_FILE = "face_blendshapes.onnx"
INPUT_SIZE = 256
ROI_SCALE = 1.5  # MediaPipe RectTransformation scale for both ROI paths
MIN_PRESENCE = 0.5  # MediaPipe default min tracking / presence confidence
EYE_OUTER_CORNERS = (33, 263)  # subject's right, left: defines ROI rotation
# Shrinking more than this in one warpAffine would alias; pre-shrink instead.
_MAX_DIRECT_SHRINK = 2.0

# Landmarks fed to the blendshape model, in order. Published fact: MediaPipe
# face_blendshapes_graph.cc, kLandmarksSubsetIdxs (google-ai-edge/mediapipe,
# Apache-2.0). Includes the 10 iris points 468..477.
BLENDSHAPE_SUBSET: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39,
    40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133,
    136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160,
    161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246,
    249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295,
    296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334,
    336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382,
    384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454,
    466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
)


@dataclass(frozen=True)
class FaceRoi:
    """Rotated square region: centre and side in pixels, rotation in radians
    (angle of the ROI x-axis in the y-down image, i.e. clockwise on screen)."""

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        return np.array([c, s]), np.array([-s, c])

    def crop_to_image(self, out_size: int = INPUT_SIZE) -> np.ndarray:
        """2x3 affine: continuous crop coordinates (0..out_size) -> image pixels."""
        u, v = self.axes()
        a = np.stack([u, v], axis=1) * (self.size / out_size)
        t = np.array([self.cx, self.cy]) - a @ np.array([out_size / 2, out_size / 2])
        return np.concatenate([a, t[:, None]], axis=1)

    def corners(self) -> np.ndarray:
        """(4, 2) image pixels of the crop corners (TL, TR, BR, BL)."""
        m = self.crop_to_image(1)
        q = np.array([[0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=np.float64)
        return q @ m.T


def _roi(center: np.ndarray, width: float, height: float, start: np.ndarray, end: np.ndarray,
         scale: float) -> FaceRoi:
    d = end - start
    return FaceRoi(float(center[0]), float(center[1]), float(scale * max(width, height)),
                   float(math.atan2(d[1], d[0])))


def roi_from_detection(det: FaceDetection, scale: float = ROI_SCALE) -> FaceRoi:
    """Landmark ROI for a fresh detection: box centre, rotation from the eye
    keypoints, side = scale x the longer box side (MediaPipe does the same
    except that it keeps w/h separate; square keeps x/y/z isotropic)."""
    return _roi(det.center, det.box[2], det.box[3], det.keypoints[0], det.keypoints[1], scale)


def roi_from_landmarks(points: np.ndarray, scale: float = ROI_SCALE) -> FaceRoi:
    """Next-frame tracking ROI from landmarks (MediaPipe: bounding box of all
    points, rotation from the outer eye corners 33 -> 263, x1.5, square)."""
    xy = np.asarray(points)[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    a, b = EYE_OUTER_CORNERS
    return _roi((lo + hi) / 2, hi[0] - lo[0], hi[1] - lo[1], xy[a], xy[b], scale)


def crop_roi(image: np.ndarray, roi: FaceRoi, out_size: int = INPUT_SIZE) -> np.ndarray:
    """Rotated square crop (out_size x out_size x 3 uint8, zero outside the image)."""
    img = as_rgb_uint8(image)
    m = roi.crop_to_image(out_size)
    shrink = roi.size / out_size
    if shrink > _MAX_DIRECT_SHRINK:
        # area-downscale just the ROI's bounding box first, then warp
        h, w = img.shape[:2]
        c = roi.corners()
        x0, y0 = np.clip(np.floor(c.min(0)).astype(int), 0, [w, h])
        x1, y1 = np.clip(np.ceil(c.max(0)).astype(int), 0, [w, h])
        if x1 <= x0 or y1 <= y0:
            return np.zeros((out_size, out_size, 3), np.uint8)
        sub = img[y0:y1, x0:x1]
        nw, nh = max(1, round((x1 - x0) / shrink)), max(1, round((y1 - y0) / shrink))
        img = cv2.resize(sub, (nw, nh), interpolation=cv2.INTER_AREA)
        k = np.diag([nw / (x1 - x0), nh / (y1 - y0)])
        m = np.concatenate([k @ m[:, :2], (k @ (m[:, 2] - [x0, y0]))[:, None]], axis=1)
    # The corner-based map is applied to OpenCV pixel indices unchanged, which
    # is what MediaPipe's ImageToTensor does (a half-pixel shift of the crop).
    # Matching it keeps landmarks unbiased w.r.t. MediaPipe: mean 0.09 px vs
    # 0.25 px with the "exact" pixel-centre mapping on the astronaut.
    return cv2.warpAffine(img, m, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


@dataclass(frozen=True)
class FaceLandmarks:
    """Landmarks of one face. ``points`` (478, 3) float32: x, y, z in image
    pixels; 468..477 are the irises. ``presence`` is a probability."""

    points: np.ndarray
    presence: float
    tongue_out: float
    roi: FaceRoi

    @property
    def present(self) -> bool:
        return self.presence >= MIN_PRESENCE

    def next_roi(self, scale: float = ROI_SCALE) -> FaceRoi:
        return roi_from_landmarks(self.points, scale)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


class FaceLandmarker:
    """Runs the 478-point model on ROIs; crops of one call are batched."""

    def __init__(self, threads: int | None = None, use_cuda: bool = False):
        self.session = get_session(MODEL_FILE, threads, use_cuda)

    def __call__(self, image: np.ndarray, roi: FaceRoi) -> FaceLandmarks:
        return self.detect_batch([image], [roi])[0]

    def settled(self, image: np.ndarray, roi: FaceRoi, passes: int = 2) -> FaceLandmarks:
        """Landmarks from `roi`, then again from the ROI of their own result.

        The model's answer moves by about a pixel with the framing; a detector box frames
        the face differently from the tracking ROI, so without this the first frame of a
        track (often the reference, or the source photo) is off from the frames after it.
        """
        result = self(image, roi)
        for _ in range(passes):
            if not result.present:
                break
            again = self(image, result.next_roi())
            if not again.present:
                break
            result = again
        return result

    def detect_batch(self, images: Sequence[np.ndarray] | np.ndarray, rois: Sequence[FaceRoi]
                     ) -> list[FaceLandmarks]:
        """One result per ROI. ``images`` is one image shared by all ROIs, or
        one image per ROI (e.g. consecutive video frames)."""
        if len(rois) == 0:
            return []
        if isinstance(images, np.ndarray):
            images = [images] * len(rois)
        if len(images) != len(rois):
            raise ValueError("need one image per ROI (or a single image)")
        crops = np.stack([crop_roi(im, r) for im, r in zip(images, rois)])
        x = crops.astype(np.float32) * np.float32(1.0 / 255.0)
        lm, logit, tongue = _run_batched(self.session, ["landmarks", "presence_logit", "tongue_out"], x)
        lm = lm.reshape(len(rois), kp.N_LANDMARKS, 3)
        presence = _sigmoid(logit.reshape(-1).astype(np.float64))
        return [FaceLandmarks(project_to_image(lm[i], r), float(presence[i]), float(tongue.reshape(-1)[i]), r)
                for i, r in enumerate(rois)]


def _run_batched(session, names: list[str], x: np.ndarray) -> list[np.ndarray]:
    """One call for the whole batch on GPU; per item on CPU, where a batch of 4
    was measured ~30 % slower per image than single calls (1 thread)."""
    if len(x) == 1 or "CUDAExecutionProvider" in session.get_providers():
        return session.run(names, {"input": x})
    outs = [session.run(names, {"input": x[i:i + 1]}) for i in range(len(x))]
    return [np.concatenate(parts) for parts in zip(*outs)]


def project_to_image(crop_points: np.ndarray, roi: FaceRoi, crop_size: int = INPUT_SIZE) -> np.ndarray:
    """(K, 3) model output in crop pixels -> image pixels (z scaled like x, y)."""
    m = roi.crop_to_image(crop_size)
    out = np.empty_like(crop_points, dtype=np.float32)
    out[:, :2] = crop_points[:, :2] @ m[:, :2].T + m[:, 2]
    out[:, 2] = crop_points[:, 2] * (roi.size / crop_size)
    return out


class BlendshapeModel:
    """52 blendshape scores in [0, 1] from 478 landmarks in image pixels."""

    def __init__(self, threads: int | None = None, use_cuda: bool = False, workers: int = 1):
        """`workers` > 1 scores many faces in that many threads (the runtime releases the GIL;
        a one-face graph gains nothing from intra-op threads)."""
        self.session = get_session(BLENDSHAPES_FILE, threads, use_cuda)
        self._subset = np.asarray(BLENDSHAPE_SUBSET)
        self._pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self._workers = workers

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """(478, 2|3) -> (52,), or (N, 478, 2|3) -> (N, 52)."""
        pts = np.asarray(points, dtype=np.float32)
        single = pts.ndim == 2
        pts = pts[None] if single else pts
        if pts.shape[1] != kp.N_LANDMARKS:
            raise ValueError(f"expected {kp.N_LANDMARKS} landmarks, got {pts.shape[1]}")
        sub = np.ascontiguousarray(pts[:, self._subset, :2])
        # the exported graph has a fixed batch of 1 (a constant token is
        # concatenated inside); a call is ~1 ms, so loop
        if self._pool is None or len(sub) < 2 * self._workers:
            out = self._run(sub)
        else:
            out = np.concatenate(list(self._pool.map(self._run, np.array_split(sub,
                                                                               self._workers))))
        return out[0] if single else out

    def _run(self, sub: np.ndarray) -> np.ndarray:
        return np.stack([self.session.run(["blendshapes"], {"points": s[None]})[0] for s in sub])


def blendshape_dict(scores: np.ndarray) -> dict[str, float]:
    """Name -> score for one face."""
    return dict(zip(BLENDSHAPE_NAMES, (float(s) for s in scores)))
