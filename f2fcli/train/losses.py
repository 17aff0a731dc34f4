"""Generator and discriminator losses (paper eq. 1-5, weights as in the paper/official code).

L_G = 15 perceptual(face-weighted) + 500 warp + 1 LSGAN + 1 feature matching (+ the
official init-field term early in training). The face weight map is 4 inside the face mask
and 1 outside (official `emphasize_face_area`), used by the perceptual and
feature-matching terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .perceptual import weighted_l1

WARP_SIZE = 128
"""Warp-loss resolution (official: fixed 128, or the image size if smaller)."""


@dataclass(frozen=True)
class LossWeights:
    reconstruction: float = 15.0
    warp: float = 500.0
    adversarial: float = 1.0
    feature_matching: float = 1.0
    init_field: float = 1000.0
    face: float = 4.0
    """Weight of face pixels (mask) in the perceptual and feature-matching terms; 1 elsewhere."""


def face_weight(mask: torch.Tensor, face: float) -> torch.Tensor:
    """(B, 1, H, W) mask in {0, 1} -> weights: `face` on the face, 1 elsewhere."""
    return 1.0 + (face - 1.0) * mask


def _resize_grid(grid: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a sampling grid (B, h, w, 2) to `size`: its displacement from the identity is
    resized bilinearly, so an identity grid stays exactly the identity (resizing absolute
    positions would clamp them at the borders)."""
    if grid.shape[1] == size:
        return grid
    offset = (grid.float() - identity_grid(grid.shape[1], grid.device)).permute(0, 3, 1, 2)
    offset = F.interpolate(offset, size=(size, size), mode="bilinear", align_corners=False)
    return identity_grid(size, grid.device) + offset.permute(0, 2, 3, 1)


def warp_loss(source: torch.Tensor, driving: torch.Tensor, flows: list[torch.Tensor],
              size: int = WARP_SIZE) -> torch.Tensor:
    """Mean over the motion fields of L1(driving at `size`, source warped by the field at
    `size`), eq. 3. The source is sampled at full resolution; each field is resized to
    `size` (bilinearly, as a displacement), the driving frame with anti-aliasing."""
    size = min(size, driving.shape[-1])
    target = F.interpolate(driving.float(), size=(size, size), mode="bilinear",
                           align_corners=False, antialias=True)
    total = target.new_zeros(())
    for grid in flows:
        warped = F.grid_sample(source.float(), _resize_grid(grid, size).float(),
                               mode="bilinear", padding_mode="zeros", align_corners=False)
        total = total + (warped - target).abs().mean()
    return total / len(flows)


def identity_grid(size: int, device: torch.device) -> torch.Tensor:
    """(1, size, size, 2) sampling grid that reproduces the input (pixel centres,
    align_corners=False)."""
    t = (torch.arange(size, device=device, dtype=torch.float32) * 2 + 1) / size - 1
    y, x = torch.meshgrid(t, t, indexing="ij")
    return torch.stack((x, y), -1)[None]


def init_field_loss(flows: list[torch.Tensor]) -> torch.Tensor:
    """Mean over the fields of L1(field, identity grid): keeps the untrained motion module
    near "no motion" at the start (official `init_field_epochs`)."""
    total = flows[0].new_zeros((), dtype=torch.float32)
    for grid in flows:
        total = total + (grid.float() - identity_grid(grid.shape[1], grid.device)).abs().mean()
    return total / len(flows)


def init_field_factor(step: int, steps: int) -> float:
    """Linear decay of the init-field weight from 1 at step 0 to 0 at `steps`."""
    return max(0.0, 1.0 - step / steps) if steps > 0 else 0.0


def gan_generator_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    return ((1.0 - fake_pred.float()) ** 2).mean()


def gan_discriminator_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    return ((1.0 - real_pred.float()) ** 2).mean() + (fake_pred.float() ** 2).mean()


def feature_matching_loss(real: list[torch.Tensor], fake: list[torch.Tensor],
                          weight: torch.Tensor | None) -> torch.Tensor:
    total = fake[0].new_zeros((), dtype=torch.float32)
    for r, f in zip(real, fake):
        total = total + weighted_l1(f, r.detach(), weight)
    return total
