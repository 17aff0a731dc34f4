"""The two exported graphs, as torch modules over plain tensors.

- `EncodeGraph`: source image (B, 3, S, S) in [-1, 1] and head pose (B, 6) -> the four
  pose-modulated encoder maps and the source image at the motion module's three scales.
- `DriveGraph`: those seven maps, the source landmark images, the driving landmark
  images and driving poses (N, 6) -> the (N, 3, S, S) frames in [-1, 1].

Landmark images are drawn outside the graphs (OpenCV), exactly as `Generator` does. The
spatial size S is fixed per export; the batch is dynamic. A source batch of 1 drives any
number of frames (broadcast inside the graph), a source batch of N drives N frames.
Only standard ONNX operators result (Conv, ConvTranspose, GridSample from opset 16,
Resize, Gather, Slice, Pad, Expand, Concat and element-wise ops).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model.generator import Generator, padded_size
from ..model.landmark_images import SCALES
from ..model.rendering import EncoderFeatures
from .layout import (DRIVING_LANDMARKS, ENCODE_INPUTS, ENCODE_OUTPUTS, FEATURES, FRAME_BATCH,
                     SOURCE_BATCH, SOURCE_IMAGES, SOURCE_LANDMARKS)


def encode_dynamic_axes() -> dict[str, dict[int, str]]:
    return {name: {0: SOURCE_BATCH} for name in ENCODE_INPUTS + ENCODE_OUTPUTS}


def drive_dynamic_axes() -> dict[str, dict[int, str]]:
    axes = {name: {0: SOURCE_BATCH} for name in FEATURES + SOURCE_IMAGES + SOURCE_LANDMARKS}
    axes.update({name: {0: FRAME_BATCH} for name in DRIVING_LANDMARKS + ("pose",)})
    axes["image"] = {0: FRAME_BATCH}
    return axes


class _FixedSizeGraph(nn.Module):
    """A generator wrapped for export at one output size."""

    def __init__(self, generator: Generator, size: int) -> None:
        super().__init__()
        self.generator = generator
        self.size = size
        self.padded = padded_size(size)
        # Inference only. An exporter that puts a module in training mode and back would
        # otherwise leave the generator in training mode.
        self.eval()


class EncodeGraph(_FixedSizeGraph):
    """`Generator.encode_source` without the landmark drawing, at a fixed size."""

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.padded != self.size:
            lo = (self.padded - self.size) // 2
            hi = self.padded - self.size - lo
            image = F.pad(image, (lo, hi, lo, hi), mode="replicate")
        render = self.generator.render
        features = render.encoder(image, render.src_pose(pose))
        # Nearest downsampling by an integer factor keeps every s-th pixel from the first.
        images = tuple(image[:, :, ::s, ::s] for s in SCALES)
        return features.as_tuple() + images


class DriveGraph(_FixedSizeGraph):
    """`Generator.drive_drawn` over plain tensors, at a fixed size."""

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        features = tensors[0:4]
        source_images = tensors[4:7]
        source_landmarks = tensors[7:10]
        driving_landmarks = tensors[10:13]
        pose = tensors[13]
        n = pose.shape[0]

        def expand(t: torch.Tensor) -> torch.Tensor:
            return t.expand(n, -1, -1, -1)

        inputs = [torch.cat((expand(src), drv, expand(img)), 1)
                  for src, drv, img in zip(source_landmarks, driving_landmarks, source_images)]
        gen = self.generator
        flows = gen.motion(inputs)
        image = gen.render.decoder(EncoderFeatures(*(expand(f) for f in features)), flows[-1],
                                   gen.render.drv_pose(pose))
        if self.padded != self.size:
            lo = (self.padded - self.size) // 2
            image = image[:, :, lo:lo + self.size, lo:lo + self.size]
        return image
