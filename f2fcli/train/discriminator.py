"""PatchGAN discriminator conditioned on the driving landmark image (paper eq. 4-5).

As in the official code: one scale; the input is the image and the finest (1/4-scale)
driving landmark image bilinearly upsampled to the image size (6 channels). Four blocks of
4x4 convolution (stride 1, no padding) -> instance norm (affine; not on the first block)
-> LeakyReLU 0.2 -> 2x2 average pool (not on the last block), 64/128/256/512 channels,
then a 1x1 convolution to one channel (no sigmoid: least-squares GAN). The four block
outputs are returned for the feature-matching loss. 2,761,921 parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DiscriminatorConfig:
    channels: tuple[int, ...] = (64, 128, 256, 512)
    in_channels: int = 6

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, norm: bool, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 1, 0)
        self.norm = nn.InstanceNorm2d(cout, affine=True) if norm else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        x = F.leaky_relu(x, 0.2)
        return F.avg_pool2d(x, 2) if self.pool else x


class PatchDiscriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config
        widths = (config.in_channels, *config.channels)
        last = len(config.channels) - 1
        self.blocks = nn.ModuleList(
            _Block(widths[i], widths[i + 1], norm=i > 0, pool=i < last)
            for i in range(len(config.channels)))
        self.head = nn.Conv2d(widths[-1], 1, 1)

    def forward(self, image: torch.Tensor, landmark_image: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Image (B, 3, H, W) and landmark image (B, 3, h, w), both in [-1, 1] ->
        (patch predictions (B, 1, h', w'), the four block outputs)."""
        if landmark_image.shape[-2:] != image.shape[-2:]:
            landmark_image = F.interpolate(landmark_image, size=image.shape[-2:],
                                           mode="bilinear", align_corners=False)
        x = torch.cat((image, landmark_image.to(image.dtype)), 1)
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.head(x), features
