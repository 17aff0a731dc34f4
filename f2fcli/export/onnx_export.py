"""`f2f export`: the generator as two ONNX graphs (source encoder, per-frame drive) and a
JSON manifest, for onnxruntime (CPU or CUDA) or any runtime with standard ONNX operators.

Needs the optional `onnx` package (`pip install 'f2fcli[export]'`), which torch's exporter
uses to write the files; running exported graphs needs only onnxruntime.
"""

from __future__ import annotations

import json
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .. import __version__
from ..errors import F2FError, OutputError
from ..io.atomic import atomic_output
from ..io.digest import file_sha256
from ..model.generator import Generator
from ..model.inputs import MIN_SIZE, padded_size
from ..model.landmark_images import SCALES, landmark_image_sizes
from . import graphs, layout
from .layout import (DEFAULT_OPSET, DRIVE_FILE, ENCODE_FILE, EXPORT_EXTRA_MESSAGE, FORMAT,
                     FORMAT_VERSION, MANIFEST, MIN_OPSET, onnx_export_available)
from .weights import RANDOM_WEIGHTS, build_generator, example_inputs

PARITY_TOLERANCE = {"drive_max_abs": 2e-2, "drive_mean_abs": 1e-3, "encode_max_rel": 1e-3}
"""Accepted |onnxruntime - torch| (FP32, CPU): on the [-1, 1] output frames (max and mean)
and on the encoder maps (max, relative to their largest value). Both sides round
differently (convolution algorithms), and deep networks amplify that: FP32 torch itself
differs from float64 by up to ~4e-3 (mean ~3e-4) at 256-512 with calibrated random
weights, a few pixels most. See tests/test_export.py."""


def require_onnx() -> None:
    if not onnx_export_available():
        raise F2FError(EXPORT_EXTRA_MESSAGE)


@contextmanager
def _quiet_export() -> Iterator[None]:
    """The tracer warns about every static shape check; sizes are fixed per export."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        yield


def _export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], path: Path,
            inputs: tuple[str, ...], outputs: tuple[str, ...],
            axes: dict[str, dict[int, str]], opset: int) -> None:
    with _quiet_export(), torch.no_grad():
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=axes, do_constant_folding=True)


def _graph_args(gen: Generator, size: int, image: torch.Tensor, src_pose: np.ndarray,
                src_landmarks: np.ndarray, drv_pose: np.ndarray,
                drv_landmarks: np.ndarray) -> tuple[tuple[torch.Tensor, ...],
                                                    tuple[torch.Tensor, ...]]:
    with torch.no_grad():
        encoding = gen.encode_source(image, src_pose, src_landmarks)
        drawn = gen.driving_landmark_images(encoding, drv_landmarks)
    pose = torch.from_numpy(np.asarray(drv_pose, np.float32))
    encode_args = (image, torch.from_numpy(np.asarray(src_pose, np.float32)))
    drive_args = (*encoding.features.as_tuple(), *encoding.images,
                  *encoding.landmark_images, *drawn, pose)
    return encode_args, drive_args


def _io_spec(names: tuple[str, ...], tensors: tuple[torch.Tensor, ...],
             axes: dict[str, dict[int, str]]) -> list[dict[str, Any]]:
    return [{"name": name, "dtype": "float32",
             "shape": [axes.get(name, {}).get(i, d) for i, d in enumerate(t.shape)]}
            for name, t in zip(names, tensors)]


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(1e-6, float(np.abs(b).max())))


def verify_export(out_dir: Path, gen: Generator, size: int, seed: int = 1) -> dict[str, Any]:
    """Run both graphs on onnxruntime (CPU) with new inputs (source batch 1, 3 frames) and
    compare with torch: max relative error of the encoder maps, max abs error of frames."""
    from .runtime import OnnxGenerator

    image, src_pose, src_landmarks, drv_pose, drv_landmarks = example_inputs(
        size, 1, 3, seed)
    with torch.no_grad():
        encoding = gen.encode_source(image, src_pose, src_landmarks)
        ref = gen.drive(encoding, drv_pose, drv_landmarks).float().numpy()
    runtime = OnnxGenerator(out_dir, device="cpu", threads=1)
    ort_encoding = runtime.encode_source(image.numpy(), src_pose, src_landmarks)
    out = runtime.drive(ort_encoding, drv_pose, drv_landmarks)
    diff = np.abs(out - ref)
    errors = {"encode_max_rel": max(_max_rel(a, b.float().numpy()) for a, b in
                                    zip(ort_encoding.features, encoding.features.as_tuple())),
              "drive_max_abs": float(diff.max()), "drive_mean_abs": float(diff.mean())}
    return {"frames": 3, "errors": errors, "tolerance": dict(PARITY_TOLERANCE),
            "passed": all(errors[k] <= PARITY_TOLERANCE[k] for k in errors)}


def export_onnx(out_dir: str | Path, res: int, weights: Path | None = None,
                opset: int = DEFAULT_OPSET, *, random_weights: bool = False, seed: int = 0,
                overwrite: bool = False, verify: bool = True,
                generator: Generator | None = None,
                weights_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `encode_source.onnx`, `drive.onnx` and `manifest.json` for output size `res`
    into `out_dir` (created if needed); returns the manifest.

    Weights: `weights`, else the user's generator file; random weights only with
    `random_weights=True`, flagged in the manifest as "random, for timing only".
    `generator` (FP32, CPU, prepared with channels_last=False) replaces loading, for
    callers that already hold one; give `weights_info` with it. `verify` runs both graphs
    on onnxruntime and raises F2FError if they differ from torch by more than
    `PARITY_TOLERANCE`.
    """
    require_onnx()
    if opset < MIN_OPSET:
        raise F2FError(f"`opset` {opset}: grid_sample needs ONNX opset {MIN_OPSET} or later")
    if res < MIN_SIZE:
        raise F2FError(f"`res` {res} is below the minimum of {MIN_SIZE}")
    out_dir = Path(out_dir)
    targets = [out_dir / name for name in (ENCODE_FILE, DRIVE_FILE, MANIFEST)]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise OutputError(f"{', '.join(existing)} exist; pass `overwrite` to replace them")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    if generator is None:
        generator, weights_info = build_generator(weights, random_weights=random_weights,
                                                  seed=seed, channels_last=False)
    gen = generator.eval()
    encode_args, drive_args = _graph_args(gen, res, *example_inputs(res, 1, 2, seed))
    specs = {}
    for name, file, module, args, inputs, outputs, axes in (
            ("encode", ENCODE_FILE, graphs.EncodeGraph(gen, res), encode_args,
             layout.ENCODE_INPUTS, layout.ENCODE_OUTPUTS, graphs.encode_dynamic_axes()),
            ("drive", DRIVE_FILE, graphs.DriveGraph(gen, res), drive_args,
             layout.DRIVE_INPUTS, layout.DRIVE_OUTPUTS, graphs.drive_dynamic_axes())):
        target = out_dir / file
        with torch.no_grad():
            results = module(*args)
        results = results if isinstance(results, tuple) else (results,)
        with atomic_output(target, overwrite=True) as tmp:
            _export(module, args, tmp, inputs, outputs, axes, opset)
        specs[name] = {"file": file, "bytes": target.stat().st_size,
                       "sha256": file_sha256(target),
                       "inputs": _io_spec(inputs, args, axes),
                       "outputs": _io_spec(outputs, results, axes)}

    padded = padded_size(res)
    manifest: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "resolution": res, "padded": padded, "opset": opset, "precision": "fp32",
        "official_eye": gen.config.official_eye, "config": gen.config.to_dict(),
        "weights": weights_info or {"kind": "unknown"},
        "random_weights": (weights_info or {}).get("kind") == RANDOM_WEIGHTS,
        "graphs": specs,
        "landmark_images": {
            "scales": list(SCALES), "sizes": list(landmark_image_sizes(padded)),
            "drawn_by": "f2fcli.model.landmark_images.draw_landmark_images on keypoints "
                        "mapped by f2fcli.model.generator.padded_coordinates",
            "values": "uint8 canvas * 2/255 - 1, RGB, (N, 3, s, s) float32"},
        "conventions": {
            "image": "RGB (B, 3, S, S) float32 in [-1, 1]",
            "pose": "(N, 6) float32: rx, ry, rz (axis-angle), tx, ty, scale",
            "keypoints": "(N, 72, 2) normalised, -1/+1 = centres of the first/last pixel",
            "batch": "a source batch of 1 drives any number of frames; N drives N"},
        "f2f_version": __version__, "torch_version": torch.__version__,
    }
    with atomic_output(out_dir / MANIFEST, overwrite=True) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    if verify:
        import onnxruntime

        check = verify_export(out_dir, gen, res)
        check["onnxruntime_version"] = onnxruntime.__version__
        manifest["verification"] = check
        with atomic_output(out_dir / MANIFEST, overwrite=True) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        if not check["passed"]:
            errors = ", ".join(f"{k} {v:.2e} (limit {PARITY_TOLERANCE[k]:g})"
                               for k, v in check["errors"].items())
            raise F2FError(f"exported graphs differ from torch: {errors}; the files are in "
                           f"{out_dir}")
    manifest["export_seconds"] = round(time.perf_counter() - started, 2)
    return manifest
