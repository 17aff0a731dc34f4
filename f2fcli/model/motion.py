"""Hierarchical coarse-to-fine motion module F1 -> F2 -> F3 (paper §3.3, Fig. 4).

Each sub-network sees [source landmark image, driving landmark image, source image] at
1/16, 1/8 and 1/4 of the (padded) output size and predicts a sampling grid at that size.
F2 and F3 add the previous sub-network's last decoder feature to their first downsampled
feature, and refine the previous (nearest x2 upsampled) flow residually.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvNorm, ResBlock

LEVELS = 3
"""Number of scales (1/16, 1/8, 1/4)."""
INPUT_CHANNELS = 9
"""Per scale: source landmark image, driving landmark image, source image (3 each)."""


@dataclass(frozen=True)
class MotionConfig:
    """Width of the motion module; `ngf` 16 is the official configuration."""

    ngf: int = 16
    res_blocks: int = 3


def _down(cin: int, cout: int) -> ConvNorm:
    return ConvNorm(cin, cout, 4, 2, 1, bias=True)


def _up(cin: int, cout: int) -> ConvNorm:
    return ConvNorm(cin, cout, 3, 1, 1, bias=True, upsample=True)


def _head(cin: int) -> nn.Conv2d:
    return nn.Conv2d(cin, 2, 3, padding=1)


def _flow(head: nn.Conv2d, feature: torch.Tensor) -> torch.Tensor:
    # The head runs in its own dtype: FP32 heads keep half-precision models' flows in FP32.
    return head(feature.to(head.weight.dtype))


class CoarseNet(nn.Module):
    """F1: conv, two downsamplings, two upsamplings, flow head (1/16 scale)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.stem = ConvNorm(INPUT_CHANNELS, width, 3, 1, 1, bias=True)
        self.body = nn.Sequential(_down(width, 2 * width), _down(2 * width, 4 * width),
                                  _up(4 * width, 2 * width), _up(2 * width, width))
        self.head = _head(width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.body(self.stem(x))
        return feature, _flow(self.head, feature)


class RefineNet(nn.Module):
    """F2/F3: downsample, add the coarser feature, hourglass with residual blocks, one more
    upsampling than downsampling after the entry, flow head."""

    def __init__(self, width: int, res_blocks: int) -> None:
        super().__init__()
        self.entry = _down(INPUT_CHANNELS, width)
        self.body = nn.Sequential(
            _down(width, 2 * width), _down(2 * width, 4 * width),
            *(ResBlock(4 * width) for _ in range(res_blocks)),
            _up(4 * width, 2 * width), _up(2 * width, width), _up(width, width // 2))
        self.head = _head(width // 2)

    def forward(self, x: torch.Tensor, coarse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.body(self.entry(x) + coarse)
        return feature, _flow(self.head, feature)


class MotionNet(nn.Module):
    """Predicts three sampling grids (B, h, w, 2) in `grid_sample` coordinates.

    Values are absolute normalised positions (x then y, -1 = left/top), not offsets.
    """

    def __init__(self, config: MotionConfig = MotionConfig()) -> None:
        super().__init__()
        self.config = config
        self.f1 = CoarseNet(4 * config.ngf)
        self.f2 = RefineNet(4 * config.ngf, config.res_blocks)
        self.f3 = RefineNet(2 * config.ngf, config.res_blocks)

    def heads(self) -> tuple[nn.Conv2d, ...]:
        """The three flow heads (kept in FP32 by `prepare_for_inference`)."""
        return (self.f1.head, self.f2.head, self.f3.head)

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """`inputs`: the three 9-channel tensors, coarsest first."""
        feature, flow = self.f1(inputs[0])
        flows = [flow]
        for net, x in zip((self.f2, self.f3), inputs[1:]):
            feature, residual = net(x, feature)
            flow = residual + F.interpolate(flow, scale_factor=2.0, mode="nearest")
            flows.append(flow)
        return [f.permute(0, 2, 3, 1) for f in flows]
