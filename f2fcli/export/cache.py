"""Exported ONNX generators kept in the user cache: exported on first use, loaded after."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .. import __version__
from ..dirs import default_cache_dir
from ..errors import F2FError
from ..io.digest import file_sha256
from ..model.checkpoints import resolve_generator_weights
from ..model.generator import MIN_SIZE
from .layout import DEFAULT_OPSET, MANIFEST
from .runtime import OnnxGenerator


def onnx_cache_dir() -> Path:
    """Where `load_onnx_generator` keeps exported models: <f2f cache>/onnx."""
    return default_cache_dir() / "onnx"


def load_onnx_generator(weights: Path | None, res: int, device: str = "cpu",
                        threads: int | None = 1, cache_dir: Path | None = None, *,
                        random_weights: bool = False, progress: Any = None) -> OnnxGenerator:
    """An `OnnxGenerator` for a weights file at size `res`, exported on first use into
    `cache_dir` (default `onnx_cache_dir()`), keyed by the weights' SHA-256, the size and
    the f2f and torch versions; later runs load the cached graphs."""
    import torch

    from .onnx_export import export_onnx

    if res < MIN_SIZE:
        raise F2FError(f"size {res} is below the minimum of {MIN_SIZE}")
    if weights is None and not random_weights:
        weights = resolve_generator_weights(None)
    if weights is not None:
        tag = file_sha256(Path(weights))
    else:
        tag = "random"
    key = hashlib.sha256(f"{tag}|{res}|{DEFAULT_OPSET}|{__version__}|{torch.__version__}"
                         .encode()).hexdigest()[:16]
    directory = (cache_dir or onnx_cache_dir()) / f"{res}-{key}"
    if not (directory / MANIFEST).is_file():
        if progress is not None:
            progress.info(f"exporting the generator at {res}x{res} to ONNX (once) in {directory}")
        try:
            export_onnx(directory, res, weights, DEFAULT_OPSET, random_weights=random_weights,
                        overwrite=True, verify=True)
        except BaseException:
            (directory / MANIFEST).unlink(missing_ok=True)  # never reuse a failed export
            raise
    return OnnxGenerator(directory, device, threads)
