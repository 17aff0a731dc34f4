"""Exported ONNX generators kept in the user cache: exported on first use, loaded after."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .. import __version__
from ..dirs import default_cache_dir
from ..errors import F2FError
from ..extras import require_torch
from ..io.digest import file_sha256
from ..model.inputs import MIN_SIZE
from ..model.weights_file import resolve_generator_weights
from .layout import DEFAULT_OPSET, MANIFEST
from .runtime import OnnxGenerator


def onnx_cache_dir() -> Path:
    """Where `load_onnx_generator` keeps exported models: <f2f cache>/onnx."""
    return default_cache_dir() / "onnx"


def load_onnx_generator(weights: Path | None, res: int, device: str = "cpu",
                        threads: int | None = 1, cache_dir: Path | None = None, *,
                        random_weights: bool = False, progress: Any = None) -> OnnxGenerator:
    """An `OnnxGenerator` for a weights file at size `res`, exported on first use into
    `cache_dir` (default `onnx_cache_dir()`), keyed by the weights' SHA-256, the size, the
    opset and the f2f version; later runs load the cached graphs, with or without torch
    (exporting needs it)."""
    if res < MIN_SIZE:
        raise F2FError(f"size {res} is below the minimum of {MIN_SIZE}")
    if weights is None and not random_weights:
        weights = resolve_generator_weights(None)
    tag = file_sha256(Path(weights)) if weights is not None else "random"
    key = hashlib.sha256(f"{tag}|{res}|{DEFAULT_OPSET}|{__version__}".encode()).hexdigest()[:16]
    directory = (cache_dir or onnx_cache_dir()) / f"{res}-{key}"
    if not (directory / MANIFEST).is_file():
        require_torch(f"exporting the generator to ONNX at {res} px (once per weights file "
                      "and size; later runs need only onnxruntime)")
        from .onnx_export import export_onnx

        if progress is not None:
            progress.info(f"exporting the generator at {res}x{res} to ONNX (once) in {directory}")
        try:
            export_onnx(directory, res, weights, DEFAULT_OPSET, random_weights=random_weights,
                        overwrite=True, verify=True)
        except BaseException:
            (directory / MANIFEST).unlink(missing_ok=True)  # never reuse a failed export
            raise
    return OnnxGenerator(directory, device, threads)
