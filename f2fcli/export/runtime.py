"""The onnxruntime backend: `OnnxGenerator`, the exported graphs behind the same
`encode_source`/`drive` calls as `Generator`, on numpy arrays.

Thread settings: `threads` sets onnxruntime's intra-op pool (inter-op 1, sequential
execution). The default 1 leaves the other cores to decoding, tracking and the encoder
thread of `f2f reenact`, and never oversubscribes a small machine; use more for a
benchmark of one process alone on the machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import BACKENDS, check_choice
from ..errors import F2FError, InputError
from ..extras import has_torch
from ..model.inputs import POSE_DIMS, check_drive_batch, padded_coordinates
from ..model.landmark_images import draw_landmark_images
from .layout import (DRIVE_FILE, DRIVING_LANDMARKS, ENCODE_FILE, FEATURES, FORMAT, FORMAT_VERSION,
                     MANIFEST, SOURCE_IMAGES, SOURCE_LANDMARKS, onnx_export_available)


def cuda_provider_available() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def providers_for(device: str) -> list[str]:
    """onnxruntime execution providers for `device` ("cpu" or "cuda")."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if not cuda_provider_available():
            raise F2FError("`backend` onnxruntime `device` cuda: this onnxruntime has no "
                           "CUDAExecutionProvider (install onnxruntime-gpu)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise F2FError(f"`backend` onnxruntime supports `device` cpu or cuda, not {device}")


def session_options(threads: int | None = 1) -> Any:
    """Sequential execution, all graph optimisations, `threads` intra-op threads
    (None: onnxruntime's default, one per core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = max(1, int(threads))
    options.log_severity_level = 3  # errors only
    return options


def resolve_backend(backend: str, device: str, precision: str = "fp32") -> str:
    """`auto` -> the faster backend measured for the device: onnxruntime for FP32 on CPU
    (about 1.3x faster than torch per frame on 1-2 cores) when models can be exported
    (`onnx` installed), and without torch; else torch."""
    check_choice("backend", backend, BACKENDS)
    if backend != "auto":
        return backend
    if not has_torch() and precision == "fp32":
        return "onnxruntime"  # the graphs must then be exported already (`export.cache`)
    if device == "cpu" and precision == "fp32" and onnx_export_available():
        return "onnxruntime"
    return "torch"


def load_manifest(model_dir: str | Path) -> dict[str, Any]:

    path = Path(model_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{model_dir}: no {MANIFEST}; create it with `f2f export`") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable manifest: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not an f2f ONNX manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(f"{path}: manifest version {manifest.get('format_version')} is newer "
                         f"than this f2f reads ({FORMAT_VERSION}); update f2f")
    return manifest


@dataclass
class OnnxSourceEncoding:
    """Source-only arrays, computed once (`OnnxGenerator.encode_source`)."""

    size: int
    padded: int
    features: tuple[np.ndarray, ...]  # skip4, skip8, skip16, bottleneck
    images: tuple[np.ndarray, ...]  # source image at 1/16, 1/8, 1/4
    landmark_images: tuple[np.ndarray, ...]  # source landmark images, coarsest first

    @property
    def batch(self) -> int:
        return self.features[0].shape[0]


def _float32(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    return np.ascontiguousarray(a, dtype=np.float32)


def images_to_array(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB frames (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    return np.ascontiguousarray(frames.transpose(0, 3, 1, 2), np.float32) * np.float32(
        2.0 / 255.0) - np.float32(1.0)


def array_to_images(images: np.ndarray) -> np.ndarray:
    """float32 (N, 3, H, W) in [-1, 1] -> uint8 RGB frames (N, H, W, 3)."""
    scaled = np.rint((np.clip(images, -1.0, 1.0) + 1.0) * 127.5)
    return np.ascontiguousarray(scaled.transpose(0, 2, 3, 1)).astype(np.uint8)


class OnnxGenerator:
    """Exported Face2Face^rho graphs on onnxruntime; inputs and outputs are numpy arrays
    (torch CPU tensors are accepted too). Same conventions as `Generator`."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", threads: int | None = 1,
                 providers: list[str] | None = None) -> None:
        import onnxruntime


        self.model_dir = Path(model_dir)
        self.manifest = load_manifest(self.model_dir)
        self.size = int(self.manifest["resolution"])
        self.padded = int(self.manifest["padded"])
        self.official_eye = bool(self.manifest.get("official_eye", False))
        self.device = device
        self.threads = threads
        self.providers = providers or providers_for(device)
        options = session_options(threads)
        files = self.manifest.get("graphs", {})
        sessions = []
        for key, default in (("encode", ENCODE_FILE), ("drive", DRIVE_FILE)):
            path = self.model_dir / files.get(key, {}).get("file", default)
            if not path.is_file():
                raise InputError(f"{path}: missing; export the model again with `f2f export`")
            try:
                sessions.append(onnxruntime.InferenceSession(str(path), options,
                                                             providers=self.providers))
            except Exception as exc:  # onnxruntime raises its own exception types
                raise InputError(f"{path}: onnxruntime cannot load it: {exc}") from exc
        self._encode, self._drive = sessions

    @property
    def random_weights(self) -> bool:
        return bool(self.manifest.get("random_weights"))

    def _pose(self, pose: Any) -> np.ndarray:
        pose = _float32(pose)
        if pose.ndim != 2 or pose.shape[1] != POSE_DIMS:
            raise ValueError(f"head poses must be (N, {POSE_DIMS}), got {tuple(pose.shape)}")
        return pose

    def landmark_images(self, landmarks: Any) -> tuple[np.ndarray, ...]:
        """Keypoints (N, 72, 2) -> the three float32 landmark images, coarsest first."""
        if hasattr(landmarks, "detach"):
            landmarks = landmarks.detach().cpu().numpy()
        canvases = draw_landmark_images(
            padded_coordinates(landmarks, self.size, self.padded), self.padded,
            self.official_eye)
        return tuple(np.ascontiguousarray(c.transpose(0, 3, 1, 2), np.float32)
                     * np.float32(2.0 / 255.0) - np.float32(1.0) for c in canvases)

    def encode_source(self, image: Any, source_pose: Any,
                      source_landmarks: Any) -> OnnxSourceEncoding:
        """Source image (B, 3, S, S) RGB in [-1, 1], poses (B, 6), keypoints (B, 72, 2)."""
        image = _float32(image)
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[2] != image.shape[3]:
            raise ValueError(f"source image must be (B, 3, S, S), got {tuple(image.shape)}")
        if image.shape[-1] != self.size:
            raise ValueError(f"this ONNX model was exported for {self.size}x{self.size}, "
                             f"got {image.shape[-1]}; export one with `res` {image.shape[-1]}")
        pose = self._pose(source_pose)
        landmark_images = self.landmark_images(source_landmarks)
        if not image.shape[0] == pose.shape[0] == landmark_images[0].shape[0]:
            raise ValueError("source image, pose and landmarks need the same batch size")
        outputs = self._encode.run(None, {"image": image, "pose": pose})
        return OnnxSourceEncoding(self.size, self.padded, tuple(outputs[:4]),
                                  tuple(outputs[4:7]), landmark_images)

    def drive_drawn(self, encoding: OnnxSourceEncoding, driving_pose: Any,
                    driving_images: tuple[np.ndarray, ...]) -> np.ndarray:
        """`drive` with the driving landmark images already drawn (`landmark_images`)."""
        pose = self._pose(driving_pose)
        n = pose.shape[0]
        check_drive_batch(n, driving_images[0].shape[0], encoding.batch)
        if encoding.size != self.size:
            raise ValueError(f"encoding of size {encoding.size} for a {self.size} model")
        feed = dict(zip(FEATURES, encoding.features))
        feed.update(zip(SOURCE_IMAGES, encoding.images))
        feed.update(zip(SOURCE_LANDMARKS, encoding.landmark_images))
        feed.update(zip(DRIVING_LANDMARKS, driving_images))
        feed["pose"] = pose
        return self._drive.run(None, feed)[0]

    def drive(self, encoding: OnnxSourceEncoding, driving_pose: Any,
              driving_landmarks: Any) -> np.ndarray:
        """Reenact N frames: poses (N, 6), keypoints (N, 72, 2) -> float32 (N, 3, S, S) in
        [-1, 1]. The source batch must be 1 (one source for all frames) or N."""
        return self.drive_drawn(encoding, driving_pose, self.landmark_images(driving_landmarks))
