"""Generators for export and benchmarking: from a weights file, or random for timing only."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..model.generator import Generator, GeneratorConfig, prepare_for_inference
from ..tracking.keypoints import N_KEYPOINTS

RANDOM_WEIGHTS = "random, for timing only"
"""How manifests and reports name untrained weights."""
_FLOW_STD = (0.5, 0.1, 0.05)
"""Target spread of the random flow heads' outputs: F1's absolute grid, F2/F3 refinements."""


def example_inputs(size: int, sources: int = 1, frames: int = 2, seed: int = 0,
                   ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Plausible network inputs: a smooth random source image (sources, 3, S, S) in
    [-1, 1], source poses (sources, 6) and keypoints (sources, N_KEYPOINTS, 2), driving poses and
    keypoints (frames, ...) near the source ones."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(-1, 1, (sources, 3, 8, 8)).astype(np.float32))
    image = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                            align_corners=False)
    image = (image + torch.from_numpy(
        rng.normal(0, 0.05, (sources, 3, size, size)).astype(np.float32))).clamp(-1, 1)
    base = rng.uniform(-0.5, 0.5, (1, N_KEYPOINTS, 2))
    src_landmarks = np.clip(base + rng.normal(0, 0.02, (sources, N_KEYPOINTS, 2)), -0.9, 0.9)
    drv_landmarks = np.clip(base + rng.normal(0, 0.05, (frames, N_KEYPOINTS, 2)), -0.9, 0.9)
    return (image, rng.normal(0, 0.2, (sources, 6)), src_landmarks,
            rng.normal(0, 0.2, (frames, 6)), drv_landmarks)


def random_generator(seed: int = 0, config: GeneratorConfig = GeneratorConfig(),
                     calibration_size: int = 64, flow_size: int = 256) -> Generator:
    """See `_random_generator`; a new copy each call (built once per process)."""
    return copy.deepcopy(_random_generator(seed, config, calibration_size, flow_size))


@functools.lru_cache(maxsize=2)
def _random_generator(seed: int, config: GeneratorConfig, calibration_size: int,
                      flow_size: int) -> Generator:
    """A generator with random weights, calibrated to behave numerically like a trained
    one: batch-norm statistics from two training-mode passes on plausible inputs (unit-
    scale activations, no tiny or denormal values that would make timings or output
    comparisons meaningless), and flow heads rescaled so that the sampling grids stay
    near the image (random heads put them thousands of widths outside, where any rounding
    moves samples by pixels). Eval mode, not yet prepared for inference."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = Generator(config)
    for m in gen.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration passes
    calls = iter(range(1000, 2000))

    def run(size: int, batch: int) -> None:
        image, src_pose, src_lm, drv_pose, drv_lm = example_inputs(
            size, batch, batch, seed + next(calls))
        gen(image, src_pose, src_lm, drv_pose, drv_lm)

    gen.train()
    with torch.no_grad():
        run(calibration_size, 4)
        run(calibration_size, 4)
    gen.eval()
    stats: list[tuple[float, float]] = []
    hooks = [head.register_forward_hook(
        lambda m, i, out: stats.append((out.mean().item(), out.std().item())))
        for head in gen.motion.heads()]
    with torch.no_grad():
        run(flow_size, 1)  # eval mode: cheap at a realistic size
        for hook in hooks:
            hook.remove()
        for head, (mean, std), target in zip(gen.motion.heads(), stats, _FLOW_STD):
            k = target / max(std, 1e-12)
            head.weight.mul_(k)
            head.bias.sub_(mean).mul_(k)
    return gen


def build_generator(weights: Path | None, *, random_weights: bool = False, seed: int = 0,
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                    channels_last: bool = True) -> tuple[Generator, dict[str, Any]]:
    """An inference-ready generator and a description of its weights.

    `weights` None: random weights if `random_weights`, else the user's generator file
    (`resolve_generator_weights`, which raises InputError when there is none).
    """
    if weights is None and random_weights:
        gen = prepare_for_inference(random_generator(seed), device, dtype,
                                    channels_last=channels_last)
        return gen, {"kind": RANDOM_WEIGHTS, "seed": seed}
    from ..io.digest import file_sha256
    from ..model.checkpoints import load_generator
    from ..model.weights_file import resolve_generator_weights

    path = resolve_generator_weights(weights)
    loaded = load_generator(path, device, dtype, channels_last=channels_last)
    info = loaded.info
    return loaded.model, {"kind": "file", "path": str(path), "sha256": file_sha256(path),
                          "source": info.source, "training_data": info.training_data,
                          "training_resolution": info.resolution,
                          "f2f_version": info.f2f_version}
