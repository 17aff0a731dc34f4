"""The neural renderer: the paper's networks with a cached source encoding.

Network inputs, in the crop of side S: keypoints normalised so that -1/+1 are the centres of
the first/last pixel; head pose (rx, ry, rz, tx, ty, scale) with the axis-angle rotation of
`tracking.face_model` and tx, ty, scale in units of half the crop side (tx = ty = 0 is the
crop centre). Weights trained with `f2f train` use exactly this convention.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import Backend, Device
from ..devices import resolve_device
from ..errors import F2FError
from ..extras import require_torch
from ..threads import torch_threads
from ..tracking.face_model import warp_pose
from .renderer import CropMotion


def network_keypoints(keypoints: np.ndarray, size: int) -> np.ndarray:
    """Crop pixels (continuous, origin at the top-left corner) -> the networks' [-1, 1]."""
    return (np.asarray(keypoints, np.float64) - 0.5) / (size - 1) * 2.0 - 1.0


def network_pose(pose: np.ndarray, size: int) -> np.ndarray:
    """Pose in crop pixels -> translation and scale in half-crop units, centred."""
    return warp_pose(pose, 2.0 / size, np.array([-1.0, -1.0]))


def torch_device(device: str, fp16: bool) -> tuple[Any, Any]:
    """The torch device and dtype for a concrete `device` ("cpu", "cuda", "mps")."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise F2FError("`device` cuda: no CUDA device is available to torch")
    if device == "mps" and not (getattr(torch.backends, "mps", None)
                                and torch.backends.mps.is_available()):
        raise F2FError("`device` mps: MPS is not available")
    return torch.device(device), torch.float16 if fp16 else torch.float32


class NeuralFaceRenderer:
    """Face2Face^rho generator behind the pipeline's renderer interface.

    `weights`: one of our weights files, or an `f2f export` directory (onnxruntime only).
    `device`: "auto" takes CUDA, MPS, then the CPU (`devices.resolve_device`). `backend`:
    torch, onnxruntime (graphs exported once per weights file and size, then cached), or
    auto (onnxruntime for FP32 on CPU, where it was measured faster, and always without
    torch).
    """

    name = "neural"
    # a read-back frame costs a full generator pass: every 4th keyframe (8th frame) keeps
    # retargeting's correction at about an eighth of the rendering time
    readback_stride = 4

    def __init__(self, weights: Path, device: Device = "auto", fp16: bool = False,
                 backend: Backend = "auto") -> None:
        from ..export.runtime import resolve_backend

        self.weights = weights
        self.device = resolve_device(device)
        if fp16 and self.device == "cpu":
            raise F2FError("`fp16` needs a GPU (`device` cuda or mps); half precision on CPU "
                           "is slower than FP32")
        self.backend = resolve_backend(backend, self.device, "fp16" if fp16 else "fp32")
        if weights.is_dir() and self.backend != "onnxruntime":
            raise F2FError(f"{weights}: an exported model directory runs on `backend` "
                           "onnxruntime")
        # Leave a core to the decoder/encoder threads: oversubscribed torch is many times slower.
        self.threads = max(1, (os.cpu_count() or 2) - 1) if self.device == "cpu" else None
        self._onnx: dict[int, object] = {}
        self.generator = None
        if self.backend == "torch":
            require_torch("the neural renderer on `backend` torch")
            from ..model.checkpoints import load_generator

            self._torch_device, self.dtype = torch_device(self.device, fp16)
            self.generator = load_generator(weights, self._torch_device, self.dtype).model

    def _onnx_generator(self, size: int) -> object:
        from ..export.cache import load_onnx_generator
        from ..export.runtime import OnnxGenerator

        if size not in self._onnx:
            threads = max(1, (os.cpu_count() or 2) - 1)
            if self.weights.is_dir():
                generator = OnnxGenerator(self.weights, self.device, threads)
                if generator.size != size:
                    raise F2FError(f"{self.weights}: exported at {generator.size} px; "
                                   f"`res` {size} needs an export at that size")
                self._onnx[size] = generator
            else:
                self._onnx[size] = load_onnx_generator(self.weights, size, self.device,
                                                       threads=threads)
        return self._onnx[size]

    def prepare(self, crop: np.ndarray, source: CropMotion) -> object:
        size = crop.shape[0]
        pose, keypoints = network_pose(source.pose, size), network_keypoints(source.keypoints, size)
        if self.backend == "onnxruntime":
            from ..export.runtime import images_to_array

            return size, self._onnx_generator(size).encode_source(images_to_array(crop[None]),
                                                                 pose, keypoints)
        import torch

        from ..model.generator import images_to_tensor

        with torch.inference_mode(), torch_threads(self.threads):
            return size, self.generator.encode_source(
                images_to_tensor(crop[None], self._torch_device, self.dtype), pose, keypoints)

    def render(self, prepared: object, target: CropMotion) -> np.ndarray:
        size, encoding = prepared
        pose = network_pose(target.pose, size)
        keypoints = network_keypoints(target.keypoints, size)
        if self.backend == "onnxruntime":
            from ..export.runtime import array_to_images

            return array_to_images(self._onnx_generator(size).drive(encoding, pose, keypoints))
        import torch

        from ..model.generator import tensor_to_images

        with torch.inference_mode(), torch_threads(self.threads):
            return tensor_to_images(self.generator.drive(encoding, pose, keypoints))
