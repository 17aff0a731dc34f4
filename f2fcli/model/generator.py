"""The Face2Face^rho generator: motion module + rendering module, split into a per-source
part (`encode_source`, run once) and a per-frame part (`drive`, batched over frames).

Any square size works: inside, the frame is padded (edge pixels repeated, centred) to the
next multiple of 64, which the three down/up levels of the motion module need; the output
is cropped back. Sizes that already are multiples of 64 run unpadded, exactly like the
official networks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .blocks import fold_batchnorm
from .inputs import MIN_SIZE, POSE_DIMS, check_drive_batch, padded_coordinates, padded_size
from .landmark_images import draw_landmark_images, landmark_image_sizes
from .motion import MotionConfig, MotionNet
from .rendering import EncoderFeatures, RenderConfig, RenderingNet
from .spade import fuse_spade as _fuse_spade


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of both networks, plus how the landmark images are drawn."""

    render: RenderConfig = field(default_factory=RenderConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    official_eye: bool = False
    """Draw the right eye like the official code (point 49 left out); set for imported
    official weights, which were trained on such images."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        """Inverse of `to_dict`; raises TypeError/ValueError on unknown or bad fields."""
        render = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in data.get("render", {}).items()}
        return cls(RenderConfig(**render), MotionConfig(**data.get("motion", {})),
                   bool(data.get("official_eye", False)))


@dataclass
class SourceEncoding:
    """Everything that depends on the source only; reused for every driving frame."""

    size: int  # output size
    padded: int  # internal size (multiple of 64)
    features: EncoderFeatures  # pose-conditioned encoder maps (H/4, H/8, H/16, H/16)
    landmark_images: list[torch.Tensor]  # source landmark images, coarsest first
    images: list[torch.Tensor]  # source image at the motion module's three scales
    pose_map: torch.Tensor  # source pose embedding (B, 32, 16, 16)

    @property
    def batch(self) -> int:
        return self.features.bottleneck.shape[0]


@dataclass
class GeneratorOutput:
    image: torch.Tensor  # (N, 3, size, size) in [-1, 1]
    flows: list[torch.Tensor]  # sampling grids (N, h, w, 2) at 1/16, 1/8, 1/4 of the padded size


def _expand(t: torch.Tensor, n: int) -> torch.Tensor:
    return t.expand(n, *t.shape[1:]) if t.shape[0] != n else t


class Generator(nn.Module):
    """Face2Face^rho: motion module F1-F3 and the u-shaped rendering module."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        self.config = config
        self.motion = MotionNet(config.motion)
        self.render = RenderingNet(config.render)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.render.encoder.stem.conv.weight.dtype  # flow heads may differ (FP32)

    def _pose(self, pose: Any) -> torch.Tensor:
        if not isinstance(pose, torch.Tensor):
            pose = torch.from_numpy(np.array(pose, dtype=np.float64))  # copies any layout
        pose = pose.to(self.device, self.dtype)
        if pose.ndim != 2 or pose.shape[1] != POSE_DIMS:
            raise ValueError(f"head poses must be (N, {POSE_DIMS}), got {tuple(pose.shape)}")
        return pose

    def _landmark_images(self, landmarks: Any, size: int, padded: int) -> list[torch.Tensor]:
        if isinstance(landmarks, torch.Tensor):
            landmarks = landmarks.detach().cpu().numpy()
        return landmark_tensors(padded_coordinates(landmarks, size, padded), padded,
                                self.device, self.dtype, self.config.official_eye)

    def encode_source(self, image: torch.Tensor, source_pose: Any,
                      source_landmarks: Any) -> SourceEncoding:
        """Source image (B, 3, S, S) RGB in [-1, 1], poses (B, 6), keypoints (B, 72, 2)."""
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[2] != image.shape[3]:
            raise ValueError(f"source image must be (B, 3, S, S), got {tuple(image.shape)}")
        size = image.shape[-1]
        if size < MIN_SIZE:
            raise ValueError(f"size {size} is below the minimum of {MIN_SIZE}")
        padded = padded_size(size)
        image = image.to(self.device, self.dtype)
        if padded != size:
            lo = (padded - size) // 2
            hi = padded - size - lo
            image = F.pad(image, (lo, hi, lo, hi), mode="replicate")
        pose_map = self.render.src_pose(self._pose(source_pose))
        landmark_images = self._landmark_images(source_landmarks, size, padded)
        if landmark_images[0].shape[0] != image.shape[0] or pose_map.shape[0] != image.shape[0]:
            raise ValueError("source image, pose and landmarks need the same batch size")
        # The official code samples the motion module's source image nearest, no anti-aliasing.
        images = [F.interpolate(image, size=(s, s), mode="nearest")
                  for s in landmark_image_sizes(padded)]
        features = self.render.encoder(image, pose_map)
        return SourceEncoding(size, padded, features, landmark_images, images, pose_map)

    def driving_landmark_images(self, encoding: SourceEncoding,
                                driving_landmarks: Any) -> list[torch.Tensor]:
        """The driving keypoints (N, 72, 2) drawn for `encoding`'s size, coarsest first."""
        return self._landmark_images(driving_landmarks, encoding.size, encoding.padded)

    def drive_drawn(self, encoding: SourceEncoding, driving_pose: Any,
                    driving_images: list[torch.Tensor]) -> GeneratorOutput:
        """The networks' part of `drive`, with the driving landmark images already drawn
        (`driving_landmark_images`): motion, pose encoding, warping and decoding."""
        pose = self._pose(driving_pose)
        n = pose.shape[0]
        check_drive_batch(n, driving_images[0].shape[0], encoding.batch)
        inputs = [torch.cat((_expand(src, n), drv, _expand(img, n)), 1)
                  for src, drv, img in zip(encoding.landmark_images, driving_images,
                                           encoding.images)]
        flows = self.motion(inputs)
        features = EncoderFeatures(*(_expand(f, n) for f in encoding.features.as_tuple()))
        image = self.render.decoder(features, flows[-1], self.render.drv_pose(pose))
        if encoding.padded != encoding.size:
            lo = (encoding.padded - encoding.size) // 2
            image = image[:, :, lo:lo + encoding.size, lo:lo + encoding.size]
        return GeneratorOutput(image, flows)

    def _drive(self, encoding: SourceEncoding, driving_pose: Any,
               driving_landmarks: Any) -> GeneratorOutput:
        pose = self._pose(driving_pose)
        return self.drive_drawn(encoding, pose,
                                self.driving_landmark_images(encoding, driving_landmarks))

    def drive(self, encoding: SourceEncoding, driving_pose: Any,
              driving_landmarks: Any) -> torch.Tensor:
        """Reenact N frames: poses (N, 6), keypoints (N, 72, 2) -> (N, 3, S, S) in [-1, 1].

        The source batch must be 1 (one source for all frames) or N (one per frame).
        """
        return self._drive(encoding, driving_pose, driving_landmarks).image

    def forward(self, image: torch.Tensor, source_pose: Any, source_landmarks: Any,
                driving_pose: Any, driving_landmarks: Any) -> GeneratorOutput:
        """Full pass (training): the image and all three motion fields."""
        encoding = self.encode_source(image, source_pose, source_landmarks)
        return self._drive(encoding, driving_pose, driving_landmarks)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def prepare_for_inference(gen: Generator, device: torch.device | str = "cpu",
                          dtype: torch.dtype = torch.float32, fold_bn: bool = True,
                          channels_last: bool = True, use_compile: bool = False,
                          fuse_spade: bool | None = None) -> Generator:
    """Eval mode, batch norms folded (in FP32, before any cast), moved to `device`/`dtype`;
    in half precision the motion module's flow heads, flows and feature warping stay FP32.

    `fuse_spade` (default: like `fold_bn`) replaces every SPADE by its `FusedSPADE`: norm
    folded into one scale/shift convolution, computed on an exactly compressed pose map
    (same output up to rounding; 512 and up get cheaper, see `spade.FusedSPADE`).

    Channels-last weights make every activation channels-last, which is faster for the
    depthwise and 1x1 convolutions (about 1.3x per frame on CPU at 512). `use_compile`
    `torch.compile`s the per-frame networks in place (state_dict names unchanged); landmark
    drawing stays eager (OpenCV) and the once-per-source encoder is not worth compiling.
    """
    gen.eval()
    if fold_bn:
        fold_batchnorm(gen)
    if fold_bn if fuse_spade is None else fuse_spade:
        _fuse_spade(gen)
    gen.to(device=device, dtype=dtype)
    if torch.finfo(dtype).bits < 32:
        for head in gen.motion.heads():
            head.float()  # FP32 motion fields: half precision would cost pixels at 2048
    if channels_last:
        gen.to(memory_format=torch.channels_last)
    if use_compile:
        gen.motion.compile(dynamic=False)
        gen.render.decoder.compile(dynamic=False)
    return gen


def images_to_tensor(frames: np.ndarray, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 RGB frames (N, H, W, 3) -> (N, 3, H, W) in [-1, 1]."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    t = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2)
    return (t.float() * (2.0 / 255.0) - 1.0).to(dtype)


def tensor_to_images(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> uint8 RGB frames (N, H, W, 3)."""
    t = ((images.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return t.permute(0, 2, 3, 1).cpu().numpy()


def landmark_tensors(landmarks: np.ndarray, size: int, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32,
                     official_eye: bool = False) -> list[torch.Tensor]:
    """Landmark images as (N, 3, s, s) tensors in [-1, 1] on `device`, coarsest first."""
    return [
        # Move the uint8 canvas (4x smaller) before converting to float.
        (torch.from_numpy(c).to(device).permute(0, 3, 1, 2).float() * (2.0 / 255.0) - 1.0).to(dtype)
        for c in draw_landmark_images(landmarks, size, official_eye)
    ]
