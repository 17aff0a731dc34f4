"""Head-pose injection: a pose encoder (6-D pose -> spatial map) and SPADE normalisation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


def nearest_indices(size_in: int, size_out: int) -> torch.Tensor:
    """Source index of every output position of `F.interpolate(mode="nearest")` (1-D)."""
    ramp = torch.arange(size_in, dtype=torch.float32, device="cpu").reshape(1, 1, size_in, 1)
    return F.interpolate(ramp, size=(size_out, 1), mode="nearest").reshape(-1).long()


_RADIUS = 2
"""Receptive-field radius of SPADE's two stacked 3x3 convolutions."""


def compressed_axis(size_in: int,
                    size_out: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Exact compression of one axis of a nearest-upsampled condition map for SPADE.

    Nearest upsampling repeats each condition row in a run. The two 3x3 convolutions see
    5 rows around each output row, so inside a run every row more than 2 from its ends
    gives the same result as the run's third row. Returns (`rows`: condition row of each
    row kept, i.e. the first three and last two of every run; `expand`: for every output
    row, its row among those kept, or None when nothing is dropped).
    """
    src = nearest_indices(size_in, size_out).tolist()
    keep: list[int] = []
    expand: list[int] = []
    start = 0
    while start < size_out:
        end = start
        while end + 1 < size_out and src[end + 1] == src[start]:
            end += 1
        length = end - start + 1
        first = len(keep)
        kept = [o for o in range(length) if o <= _RADIUS or o >= length - _RADIUS]
        position = {o: first + i for i, o in enumerate(kept)}
        keep.extend(src[start] for _ in kept)
        expand.extend(position.get(o, first + _RADIUS) for o in range(length))
        start = end + 1
    rows = None if keep == list(range(size_in)) else torch.tensor(keep, dtype=torch.long)
    if len(keep) == size_out:
        return rows, None
    return rows, torch.tensor(expand, dtype=torch.long)


@contextmanager
def _not_traced() -> Iterator[None]:
    """Pause the TorchScript tracer (ONNX export) around plain index arithmetic."""
    get_state = getattr(torch._C, "_get_tracing_state", None)
    state = get_state() if get_state is not None else None
    if state is None:
        yield
        return
    torch._C._set_tracing_state(None)
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)


def _index(x: torch.Tensor, dim: int, index: torch.Tensor | None) -> torch.Tensor:
    """x.index_select(dim, index) for a spatial dim (2 or 3), keeping a channels-last
    layout (index_select on the spatial dims of an NCHW view of one is very slow on CPU)."""
    if index is None:
        return x
    if x.is_contiguous() or torch.jit.is_tracing():
        return x.index_select(dim, index)
    nhwc = x.permute(0, 2, 3, 1)  # channels-last memory: a contiguous NHWC view
    return nhwc.index_select(dim - 1, index).permute(0, 3, 1, 2)


class FusedSPADE(nn.Module):
    """Inference form of an eval-mode `SPADE`, same output up to rounding.

    - The parameter-free batch norm is folded into the gamma/beta convolutions, which
      become one convolution with 2C outputs: out = x * scale + shift.
    - The scale/shift maps depend only on the (small) pose map. They are computed on an
      exactly compressed nearest-upsampled map (see `compressed_axis`) and then expanded
      by indexing: at 512 the last decoder SPADE computes 80x80 instead of 128x128
      pixels, at 2048 80x80 instead of 512x512. Up to 256 nothing is dropped.
    - Nearest resizing is an index gather, so ONNX graphs match PyTorch for every size.
    """

    def __init__(self, spade: SPADE) -> None:
        super().__init__()
        norm = spade.norm
        if norm.training or norm.running_var is None:
            raise ValueError("fuse SPADE only in eval mode with running statistics")
        channels = spade.gamma.out_channels
        with torch.no_grad():
            inv = torch.rsqrt(norm.running_var.double() + norm.eps)
            mean = norm.running_mean.double()
            wg, bg = spade.gamma.weight.double(), spade.gamma.bias.double()
            wb, bb = spade.beta.weight.double(), spade.beta.bias.double()
            w_scale = wg * inv.reshape(-1, 1, 1, 1)
            b_scale = (1.0 + bg) * inv
            w_shift = wb - w_scale * mean.reshape(-1, 1, 1, 1)
            b_shift = bb - b_scale * mean
            self.shared = spade.shared
            dtype, device = spade.gamma.weight.dtype, spade.gamma.weight.device
            self.affine = nn.Conv2d(spade.gamma.in_channels, 2 * channels, 3, padding=1,
                                    device=device, dtype=dtype)
            self.affine.weight.copy_(torch.cat((w_scale, w_shift)).to(dtype))
            self.affine.bias.copy_(torch.cat((b_scale, b_shift)).to(dtype))
        self.channels = channels
        self._axes: dict[tuple[int, int, str], tuple[torch.Tensor | None,
                                                     torch.Tensor | None]] = {}

    def _axis(self, size_in: int, size_out: int,
              device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        key = (size_in, size_out, str(device))
        if key not in self._axes:
            with _not_traced():  # shapes are static: the indices are constants of a trace
                pair = compressed_axis(size_in, size_out)
            self._axes[key] = tuple(t.to(device) if t is not None else None for t in pair)
        return self._axes[key]

    def scale_shift(self, condition: torch.Tensor,
                    size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The (N, C, H, W) scale and shift maps for features of `size`."""
        # int(): while tracing (ONNX export) shapes are tensors; sizes are fixed there.
        h_in, w_in = int(condition.shape[-2]), int(condition.shape[-1])
        rows, expand_rows = self._axis(h_in, int(size[0]), condition.device)
        cols, expand_cols = self._axis(w_in, int(size[1]), condition.device)
        condition = _index(_index(condition, 2, rows), 3, cols)
        maps = self.affine(F.relu(self.shared(condition)))
        maps = _index(_index(maps, 2, expand_rows), 3, expand_cols)
        return maps[:, :self.channels], maps[:, self.channels:]

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_shift(condition, x.shape[-2:])
        return torch.addcmul(shift, x, scale)


def fuse_spade(module: nn.Module) -> nn.Module:
    """Replace every eval-mode `SPADE` below `module` by its `FusedSPADE`; returns `module`."""
    if module.training:
        raise ValueError("fuse SPADE only in eval mode")
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SPADE):
                setattr(parent, name, FusedSPADE(child))
    return module
