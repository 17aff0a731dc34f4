"""Multiply-accumulate counts with PyTorch's own FlopCounterMode (MACs = FLOPs / 2).

FlopCounterMode counts convolutions (transposed ones as input elements x C_out x k^2) and
matrix products; batch norm, activations, interpolation and `grid_sample` count as zero,
as in the usual MAC tables. The networks run on the meta device, so counting 2048x2048
allocates nothing and takes well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..tracking.keypoints import N_KEYPOINTS
from .generator import Generator, GeneratorConfig, parameter_count
from .inputs import padded_size

PAPER_PER_FRAME_GMACS: dict[int, float] = {
    256: 1.9, 512: 9.2, 1024: 37.0, 1440: 71.8, 1536: 82.8, 2048: 146.2}
"""Face2Face^rho MACs (x1e9) in the paper's Table 1."""


def measure_macs(fn: Callable[[], object]) -> dict[str, int]:
    """Run `fn` under FlopCounterMode; MACs per module path (outermost module name first,
    'Global' = total)."""
    with FlopCounterMode(display=False, depth=None) as counter:
        fn()
    return {name: sum(ops.values()) // 2 for name, ops in counter.get_flop_counts().items()}


@dataclass(frozen=True)
class MacsReport:
    """MACs of `encode_source` (once per source) and `drive` (per frame) at one size."""

    resolution: int
    padded: int
    encode: dict[str, int]  # module path in the Generator -> MACs; "" = total
    drive: dict[str, int]
    render_params: int
    motion_params: int

    @property
    def encode_total(self) -> int:
        return self.encode[""]

    @property
    def drive_total(self) -> int:
        return self.drive[""]

    def by_module(self, which: str, depth: int = 2) -> dict[str, int]:
        """MACs of `which` ('encode' or 'drive') per module path with `depth` components."""
        table = self.encode if which == "encode" else self.drive
        return {k: v for k, v in table.items() if k and k.count(".") == depth - 1}


def _by_path(macs: dict[str, int], roots: dict[str, str]) -> dict[str, int]:
    """Re-key FlopCounterMode's names (rooted at the class of each module called directly)
    by module path in the Generator; adds the totals "" (all) and "render"."""
    out = {"": macs.get("Global", 0)}
    for name, value in macs.items():
        root, _, rest = name.partition(".")
        if root in roots:
            out[roots[root] + (f".{rest}" if rest else "")] = value
    out["render"] = sum(v for k, v in out.items() if k.count(".") == 1 and k.startswith("render."))
    return out


def count_macs(resolution: int, config: GeneratorConfig = GeneratorConfig()) -> MacsReport:
    """Per-module MACs of one source encoding and one driven frame (batch 1)."""
    with torch.device("meta"):
        gen = Generator(config).eval()
        image = torch.zeros(1, 3, resolution, resolution)
    pose = np.zeros((1, 6))
    landmarks = np.zeros((1, N_KEYPOINTS, 2))
    encoding: list = []
    with torch.no_grad():
        encode = measure_macs(lambda: encoding.append(gen.encode_source(image, pose, landmarks)))
        drive = measure_macs(lambda: gen.drive(encoding[0], pose, landmarks))
    render = gen.render
    encode_roots = {type(render.src_pose).__name__: "render.src_pose",
                    type(render.encoder).__name__: "render.encoder"}
    drive_roots = {type(gen.motion).__name__: "motion",
                   type(render.drv_pose).__name__: "render.drv_pose",
                   type(render.decoder).__name__: "render.decoder"}
    return MacsReport(resolution, padded_size(resolution), _by_path(encode, encode_roots),
                      _by_path(drive, drive_roots), parameter_count(gen.render),
                      parameter_count(gen.motion))


def format_macs_table(reports: list[MacsReport]) -> str:
    """Plain-text table: per-frame MACs (source cached) against the paper's Table 1."""
    lines = [f"{'size':>6} {'padded':>6} {'motion':>8} {'render':>8} {'per frame':>10} "
             f"{'paper':>7} {'diff':>7} {'source':>8}   (GMACs)"]
    for r in reports:
        drive = r.drive_total / 1e9
        paper = PAPER_PER_FRAME_GMACS.get(r.resolution)
        ref = f"{paper:7.1f} {100 * (drive / paper - 1):+6.1f}%" if paper else f"{'-':>7} {'-':>7}"
        lines.append(f"{r.resolution:>6} {r.padded:>6} {r.drive.get('motion', 0) / 1e9:8.3f} "
                     f"{r.drive.get('render', 0) / 1e9:8.3f} {drive:10.3f} {ref} "
                     f"{r.encode_total / 1e9:8.3f}")
    if reports:
        r = reports[0]
        lines.append(f"parameters: rendering {r.render_params:,}, motion {r.motion_params:,}")
    return "\n".join(lines)
