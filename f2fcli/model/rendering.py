"""U-shaped rendering module with 16x downsampling (paper §3.2, Fig. 3).

The encoder turns the source image into four maps (28 @ H/4, 72 @ H/8, 140 @ H/16 and a
280 @ H/16 bottleneck), each modulated by the source pose through SPADE. Per frame, the
maps are warped by the finest motion field and decoded with skip connections, modulated
by the driving pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvNorm, Stage
from .spade import SPADE, PoseEncoder

# Stride of each of the 7 stages; the grouping into encoder levels is fixed below.
_ENCODER_STRIDES = (1, 2, 2, 2, 1, 2, 1)


@dataclass(frozen=True)
class RenderConfig:
    """Widths of the rendering module (MobileNetV2-style stages); defaults are official."""

    encoder_channels: tuple[int, ...] = (16, 8, 12, 28, 64, 72, 140, 280)
    decoder_channels: tuple[int, ...] = (16, 8, 14, 24, 64, 96, 140, 280)
    blocks: tuple[int, ...] = (1, 2, 2, 2, 2, 2, 1)
    expansion: tuple[int, ...] = (1, 6, 6, 6, 6, 6, 6)
    pose_dims: int = 6
    pose_ngf: int = 8

    def __post_init__(self) -> None:
        if len(self.encoder_channels) != 8 or len(self.decoder_channels) != 8:
            raise ValueError("encoder and decoder need 8 channel widths")
        if len(self.blocks) != 7 or len(self.expansion) != 7:
            raise ValueError("blocks and expansion need 7 entries")
        if self.encoder_channels[7] != self.decoder_channels[7]:
            raise ValueError("the decoder starts from the encoder bottleneck: widths 7 must match")


@dataclass
class EncoderFeatures:
    """The four source maps that the decoder consumes, finest first."""

    skip4: torch.Tensor   # H/4
    skip8: torch.Tensor   # H/8
    skip16: torch.Tensor  # H/16
    bottleneck: torch.Tensor  # H/16

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        return (self.skip4, self.skip8, self.skip16, self.bottleneck)


def warp(feature: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample `feature` at `grid` (B, h, w, 2), first nearest-resized to the feature size.

    Sampling runs in the grid's dtype, so half-precision features are sampled at FP32
    positions (bf16 positions are only good to ~4 output pixels at 2048, FP16 to ~0.5).
    """
    if grid.shape[1:3] != feature.shape[-2:]:
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=feature.shape[-2:], mode="nearest")
        grid = grid.permute(0, 2, 3, 1)
    out = F.grid_sample(feature.to(grid.dtype), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.to(feature.dtype)


class RenderEncoder(nn.Module):
    """E_I: source image -> four maps, each SPADE-modulated by the source pose map."""

    def __init__(self, config: RenderConfig) -> None:
        super().__init__()
        enc, n, t = config.encoder_channels, config.blocks, config.expansion
        label = 4 * config.pose_ngf

        def stage(i: int, final_norm: bool = True) -> Stage:
            return Stage(enc[i], enc[i + 1], n[i], t[i], _ENCODER_STRIDES[i],
                         final_norm=final_norm)

        self.stem = ConvNorm(3, enc[0], 3, padding=1)
        self.enc1 = nn.Sequential(stage(0), stage(1), stage(2))  # -> H/4
        self.enc2 = nn.Sequential(stage(3), stage(4))  # -> H/8
        self.enc3 = nn.Sequential(stage(5))  # -> H/16
        self.enc4 = nn.Sequential(stage(6, final_norm=False))  # bottleneck, H/16
        self.spade1, self.spade2, self.spade3, self.spade4 = (
            SPADE(c, label) for c in (enc[3], enc[5], enc[6], enc[7]))

    def forward(self, image: torch.Tensor, pose_map: torch.Tensor) -> EncoderFeatures:
        """Source image (B, 3, H, W) in [-1, 1] and source pose map -> the four maps."""
        skip4 = F.relu(self.spade1(self.enc1(self.stem(image)), pose_map))
        skip8 = F.relu(self.spade2(self.enc2(skip4), pose_map))
        skip16 = F.relu(self.spade3(self.enc3(skip8), pose_map))
        bottleneck = F.relu(self.spade4(self.enc4(skip16), pose_map))
        return EncoderFeatures(skip4, skip8, skip16, bottleneck)


class RenderDecoder(nn.Module):
    """D_I: warps the source maps, decodes them with skip connections under the driving pose."""

    def __init__(self, config: RenderConfig) -> None:
        super().__init__()
        enc, dec, n, t = (config.encoder_channels, config.decoder_channels, config.blocks,
                          config.expansion)
        label = 4 * config.pose_ngf

        def stage(i: int, cin: int, upsample: bool, final_norm: bool = True) -> Stage:
            return Stage(cin, dec[i], n[i], t[i], upsample=upsample, final_norm=final_norm)

        # Inputs after the first level are [decoder features, warped skip] concatenations.
        self.spade1 = SPADE(dec[7], label)
        self.dec1 = nn.Sequential(stage(6, dec[7], False, final_norm=False))  # H/16
        self.spade2 = SPADE(dec[6] + enc[6], label)
        self.dec2 = nn.Sequential(stage(5, dec[6] + enc[6], True))  # -> H/8
        self.spade3 = SPADE(dec[5] + enc[5], label)
        self.dec3 = nn.Sequential(stage(4, dec[5] + enc[5], False), stage(3, dec[4], True))
        self.spade4 = SPADE(dec[3] + enc[3], label)
        self.dec4 = nn.Sequential(stage(2, dec[3] + enc[3], True), stage(1, dec[2], True),
                                  stage(0, dec[1], False))  # H/4 -> H
        self.head = nn.Conv2d(dec[0], 3, 3, padding=1, bias=False)

    def forward(self, features: EncoderFeatures, grid: torch.Tensor,
                pose_map: torch.Tensor) -> torch.Tensor:
        """Warp the source maps by `grid` (B, h, w, 2) and decode; RGB in [-1, 1]."""
        return self.decode(EncoderFeatures(*(warp(f, grid) for f in features.as_tuple())),
                           pose_map)

    def decode(self, warped: EncoderFeatures, pose_map: torch.Tensor) -> torch.Tensor:
        """Decode already warped source maps under the driving pose map; RGB in [-1, 1]."""
        skip4, skip8, skip16, bottleneck = warped.as_tuple()
        x = self.dec1(F.relu(self.spade1(bottleneck, pose_map)))
        x = self.dec2(F.relu(self.spade2(torch.cat((x, skip16), 1), pose_map)))
        x = self.dec3(F.relu(self.spade3(torch.cat((x, skip8), 1), pose_map)))
        x = self.dec4(F.relu(self.spade4(torch.cat((x, skip4), 1), pose_map)))
        return torch.tanh(self.head(x))


class RenderingNet(nn.Module):
    """Encoder E_I, pose encoders E_ps and E_pd, decoder D_I (called part by part)."""

    def __init__(self, config: RenderConfig = RenderConfig()) -> None:
        super().__init__()
        self.config = config
        self.src_pose = PoseEncoder(config.pose_dims, config.pose_ngf)
        self.drv_pose = PoseEncoder(config.pose_dims, config.pose_ngf)
        self.encoder = RenderEncoder(config)
        self.decoder = RenderDecoder(config)
