"""BlazeFace short-range face detector (MediaPipe ``face_detector.tflite`` as ONNX).

Coordinates are continuous image pixels: (0, 0) is the top-left corner of the
top-left pixel, so pixel (i, j) has its centre at (i + 0.5, j + 0.5). This is
MediaPipe's normalised coordinate times the image size.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .onnx_runtime import get_session

MODEL_FILE = "face_detector.onnx"
INPUT_SIZE = 128
NUM_ANCHORS = 896
# Keypoint order of the model; "right"/"left" are the subject's own sides, so
# in an unmirrored photo the right eye has the smaller x.
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")
# MediaPipe face_detector_graph defaults
MIN_SCORE = 0.5
NMS_IOU = 0.3
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class FaceDetection:
    """One face. ``box`` = (x, y, w, h) in pixels; ``keypoints`` (6, 2) pixels."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])

    @property
    def center(self) -> np.ndarray:
        return self.box[:2] + self.box[2:] / 2


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """HxW, HxWx1, HxWx3 or HxWx4 image -> contiguous HxWx3 uint8 RGB."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating) and img.size and img.max() <= 1.0:
            img = img * 255.0  # float images in [0, 1]
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an HxW or HxWxC (C=1,3,4) image, got shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img)


@lru_cache(maxsize=1)
def ssd_anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1] (x, y).

    MediaPipe SsdAnchors config for this model: 4 layers, strides 8,16,16,16,
    one aspect ratio plus one interpolated scale -> 2 anchors per layer and
    cell; consecutive layers with equal stride share a grid; fixed anchor size
    (w = h = 1, so only centres matter).
    """
    strides = [8, 16, 16, 16]
    centres = []
    layer = 0
    while layer < len(strides):
        n_per_cell = 0
        stride = strides[layer]
        while layer < len(strides) and strides[layer] == stride:
            n_per_cell += 2
            layer += 1
        grid = int(np.ceil(INPUT_SIZE / stride))
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        c = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(c, n_per_cell, axis=1).reshape(-1, 2))
    anchors = np.concatenate(centres).astype(np.float32)
    assert anchors.shape == (NUM_ANCHORS, 2)
    return anchors


@dataclass(frozen=True)
class _Letterbox:
    """Maps 128x128 tensor pixels back to image pixels."""

    pad_x: float
    pad_y: float
    sx: float  # image pixels per tensor pixel, x
    sy: float

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        return (pts - (self.pad_x, self.pad_y)) * (self.sx, self.sy)


def _letterbox(image: np.ndarray, antialias: bool = False) -> tuple[np.ndarray, _Letterbox]:
    """Fit the image into 128x128 keeping aspect ratio, black borders.

    Default: MediaPipe's own preprocessing (one bilinear warpAffine whose
    corner-based map is applied to pixel indices); with it, boxes, scores and
    keypoints equal MediaPipe's. ``antialias`` area-averages instead, which is
    kinder to very large frames but shifts keypoints by a few pixels.
    """
    h, w = image.shape[:2]
    k = INPUT_SIZE / max(h, w)
    if not antialias:
        px, py = (INPUT_SIZE - w * k) / 2, (INPUT_SIZE - h * k) / 2
        m = np.array([[k, 0.0, px], [0.0, k, py]])
        canvas = cv2.warpAffine(image, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return canvas, _Letterbox(px, py, 1 / k, 1 / k)
    nw, nh = max(1, round(w * k)), max(1, round(h * k))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=interp) if (nw, nh) != (w, h) else image
    ipx, ipy = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    canvas[ipy:ipy + nh, ipx:ipx + nw] = small
    return canvas, _Letterbox(ipx, ipy, w / nw, h / nh)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box against many."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(corners: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou_threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe-style weighted NMS: each cluster (IoU > threshold with its
    best box) is replaced by the score-weighted mean of its boxes and
    keypoints, keeping the best score. Stabler than hard NMS frame to frame."""
    order = np.argsort(-scores, kind="stable")
    corners, keypoints, scores = corners[order], keypoints[order], scores[order]
    out = []
    remaining = np.arange(len(scores))
    while remaining.size:
        ious = _iou(corners[remaining[0]], corners[remaining])
        members = remaining[ious > iou_threshold]
        if members.size == 0:  # degenerate (zero-area) box: keep as is
            members = remaining[:1]
        wts = scores[members][:, None]
        box = (corners[members] * wts).sum(0) / wts.sum()
        kps = (keypoints[members] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((box, kps, float(scores[remaining[0]])))
        remaining = remaining[~np.isin(remaining, members)]
    return out


def decode(regressors: np.ndarray, logits: np.ndarray, min_score: float = MIN_SCORE
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs of one image -> (corners (K,4), keypoints (K,6,2), scores (K,))
    in 128-px tensor pixels, for anchors scoring >= min_score."""
    clipped = np.clip(logits.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-clipped))
    keep = np.flatnonzero(scores >= min_score)
    reg = regressors.reshape(NUM_ANCHORS, 16)[keep].astype(np.float64)
    anchors = ssd_anchors()[keep].astype(np.float64) * INPUT_SIZE
    # box is (dx, dy, w, h) relative to the anchor centre, in tensor pixels
    centre = reg[:, 0:2] + anchors
    half = reg[:, 2:4] / 2
    corners = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    return corners, keypoints, scores[keep]


class FaceDetector:
    """BlazeFace short range (good for faces filling > ~1/5 of the frame)."""

    def __init__(self, min_score: float = MIN_SCORE, nms_iou: float = NMS_IOU,
                 threads: int | None = None, use_cuda: bool = False, antialias: bool = False):
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.antialias = antialias
        self.session = get_session(MODEL_FILE, threads, use_cuda)

    def __call__(self, image: np.ndarray, max_faces: int | None = None) -> list[FaceDetection]:
        """Faces in an RGB image (any size; grey/RGBA accepted), largest first."""
        return self.detect_batch([image], max_faces)[0]

    def detect_batch(self, images: Sequence[np.ndarray], max_faces: int | None = None
                     ) -> list[list[FaceDetection]]:
        """Like ``__call__`` for several images in one model call."""
        if len(images) == 0:
            return []
        tensors, boxes = zip(*(_letterbox(as_rgb_uint8(im), self.antialias) for im in images))
        x = np.stack(tensors).astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        if len(x) == 1 or "CUDAExecutionProvider" in self.session.get_providers():
            regressors, logits = self.session.run(["regressors", "classificators"], {"input": x})
        else:  # per image on CPU: batching was measured slower there
            outs = [self.session.run(["regressors", "classificators"], {"input": x[i:i + 1]}) for i in range(len(x))]
            regressors, logits = (np.concatenate(p) for p in zip(*outs))
        return [self._postprocess(r, s, lb, max_faces) for r, s, lb in zip(regressors, logits, boxes)]

    def _postprocess(self, regressors: np.ndarray, logits: np.ndarray, lb: _Letterbox,
                     max_faces: int | None) -> list[FaceDetection]:
        corners, keypoints, scores = decode(regressors, logits, self.min_score)
        faces = []
        for c, kps, score in weighted_nms(corners, keypoints, scores, self.nms_iou):
            p0, p1 = lb.to_image(c[:2]), lb.to_image(c[2:])
            box = np.concatenate([p0, p1 - p0]).astype(np.float32)
            faces.append(FaceDetection(box, score, lb.to_image(kps).astype(np.float32)))
        faces.sort(key=lambda f: -f.area)
        return faces[:max_faces] if max_faces else faces


def _tiles(height: int, width: int, grid: int) -> list[tuple[int, int, int]]:
    """Square windows (x0, y0, side) of a `grid` x `grid` cover with 50 % overlap."""
    side = int(np.ceil(2 * max(height, width) / (grid + 1)))
    xs = np.linspace(0, max(0, width - side), grid).round().astype(int)
    ys = np.linspace(0, max(0, height - side), grid).round().astype(int)
    return [(int(x), int(y), side) for y in ys for x in xs]


def window_around(box: tuple[float, float, float, float], height: int, width: int,
                  scale: float = 3.0) -> tuple[int, int, int]:
    """A square window (x0, y0, side) of `scale` x the long side of `box` (x, y, w, h),
    centred on it and shifted inside the image: there a face of that box is large enough
    for the short-range model, however small it is in the whole photo."""
    x, y, bw, bh = (float(v) for v in box)
    side = int(min(max(scale * max(bw, bh), 32.0), max(height, width)))
    x0 = int(round(min(max(x + bw / 2 - side / 2, 0.0), max(width - side, 0))))
    y0 = int(round(min(max(y + bh / 2 - side / 2, 0.0), max(height - side, 0))))
    return x0, y0, side


def detect_tiled(detector: FaceDetector, image: np.ndarray, grids: tuple[int, ...] = (2, 3),
                 windows: tuple[tuple[int, int, int], ...] = ()) -> list[FaceDetection]:
    """Faces of any size in a still image, largest first.

    The short-range model misses faces under about 1/5 of the frame, so overlapping tiles
    (2x2, then 3x3) and any extra `windows` (x0, y0, side) are searched too and the
    detections merged; for stills such as group photos, where the extra model calls do not
    matter.
    """
    rgb = as_rgb_uint8(image)
    found = list(detector(rgb))
    h, w = rgb.shape[:2]
    tiles = [t for grid in grids for t in _tiles(h, w, grid)] + list(windows)
    for x0, y0, side in tiles:
        offset = np.array([x0, y0], np.float32)
        for face in detector(rgb[y0:y0 + side, x0:x0 + side]):
            box = face.box.copy()
            box[:2] += offset
            found.append(FaceDetection(box, face.score, face.keypoints + offset))
    if not found:
        return []
    corners = np.array([np.concatenate([f.box[:2], f.box[:2] + f.box[2:]]) for f in found])
    merged = weighted_nms(corners, np.stack([f.keypoints for f in found]),
                          np.array([f.score for f in found]), detector.nms_iou)
    faces = sorted((FaceDetection(np.concatenate([c[:2], c[2:] - c[:2]]).astype(np.float32),
                                  score, kps.astype(np.float32)) for c, kps, score in merged),
                   key=lambda f: -f.area)
    # A face cut by a tile edge can survive NMS as a smaller box inside the whole face; the
    # surer detection of the two is kept (the whole image's weak false box round a small face
    # must not hide it).
    kept: list[FaceDetection] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if all(_covered(face.box, other.box) < 0.5 for other in kept):
            kept.append(face)
    return sorted(kept, key=lambda f: -f.area)


def _covered(box: np.ndarray, by: np.ndarray) -> float:
    """Share of `box` (x, y, w, h) that lies inside `by`."""
    x0, y0 = np.maximum(box[:2], by[:2])
    x1, y1 = np.minimum(box[:2] + box[2:], by[:2] + by[2:])
    return float(max(0.0, x1 - x0) * max(0.0, y1 - y0) / max(1e-9, box[2] * box[3]))


def detect_faces(image: np.ndarray, min_score: float = MIN_SCORE) -> list[FaceDetection]:
    """One-shot helper: faces in ``image`` (RGB), largest first."""
    return FaceDetector(min_score=min_score)(image)
