"""Convolution building blocks shared by the motion and rendering modules."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvNorm(nn.Module):
    """[nearest x2] -> Conv2d -> [BatchNorm2d] -> [ReLU].

    The batch norm can be folded into the convolution for inference (`fold`).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0,
                 groups: int = 1, bias: bool = False, norm: bool = True, relu: bool = True,
                 upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(cout) if norm else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.relu else x

    @torch.no_grad()
    def fold(self) -> None:
        """Merge the eval-mode batch norm into the convolution's weight and bias."""
        if self.bn is None:
            return
        bn, conv = self.bn, self.conv
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
        self.bn = None


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand] -> 3x3 depthwise -> 1x1 linear projection (+ input).

    With expansion 1 the expand conv is absent and the depthwise conv runs on the input.
    Residual blocks always end on a batch norm; `final_norm` only affects the others.
    """

    def __init__(self, cin: int, cout: int, stride: int, expansion: int,
                 final_norm: bool = True) -> None:
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.expand = ConvNorm(cin, hidden, 1) if expansion != 1 else None
        self.depthwise = ConvNorm(hidden, hidden, 3, stride, 1, groups=hidden)
        self.project = ConvNorm(hidden, cout, 1, norm=final_norm or self.residual, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class Stage(nn.Module):
    """`n` inverted residuals (the first one may change width and stride), then an optional
    nearest-neighbour x2 upsample."""

    def __init__(self, cin: int, cout: int, n: int, expansion: int, stride: int = 1,
                 upsample: bool = False, final_norm: bool = True) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(
            InvertedResidual(cin if i == 0 else cout, cout, stride if i == 0 else 1, expansion,
                             final_norm)
            for i in range(n)))
        self.upsample = upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x)
        return F.interpolate(x, scale_factor=2.0, mode="nearest") if self.upsample else x


class ResBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3, plus the input (one norm, nothing after the add)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvNorm(channels, channels, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every ConvNorm's batch norm into its conv (inference only); returns `module`."""
    if module.training:
        raise ValueError("fold batch norm only in eval mode")
    for sub in module.modules():
        if isinstance(sub, ConvNorm):
            sub.fold()
    return module
