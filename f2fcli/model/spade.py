"""Head-pose injection: a pose encoder (6-D pose -> spatial map) and SPADE normalisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PoseEncoder(nn.Module):
    """6-D head pose -> `4*ngf` x 16 x 16 map, by two transposed convolutions."""

    def __init__(self, pose_dims: int = 6, ngf: int = 8) -> None:
        super().__init__()
        self.up1 = nn.ConvTranspose2d(pose_dims, 8 * ngf, 4, 1, 0, bias=False)  # 1 -> 4
        self.bn = nn.BatchNorm2d(8 * ngf)
        self.up2 = nn.ConvTranspose2d(8 * ngf, 4 * ngf, 4, 4, 0, bias=False)  # 4 -> 16

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.up1(pose[:, :, None, None])))
        return self.up2(x)


class SPADE(nn.Module):
    """Parameter-free batch norm, then a per-pixel scale and shift predicted from a map.

    The conditioning map is nearest-resized to the feature size here, so one 16x16 pose
    map serves every level.
    """

    def __init__(self, channels: int, label_channels: int = 32) -> None:
        super().__init__()
        hidden = 2 * label_channels
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.shared = nn.Conv2d(label_channels, hidden, 3, padding=1)
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        condition = F.interpolate(condition, size=x.shape[-2:], mode="nearest")
        hidden = F.relu(self.shared(condition))
        return torch.addcmul(self.beta(hidden), self.norm(x), 1 + self.gamma(hidden))
