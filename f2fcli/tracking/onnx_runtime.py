"""onnxruntime sessions for the bundled models in the ``f2fcli.weights`` package."""
from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import onnxruntime as ort

if TYPE_CHECKING:  # location differs between Python 3.10 and 3.11+
    from importlib.abc import Traversable

WEIGHTS_PACKAGE = "f2fcli.weights"
# Thread count override for every session created here (default 1: the target
# machines are small and shared; more intra-op threads were measured slower).
THREADS_ENV = "F2F_ORT_THREADS"


def _weights_dir() -> Traversable:
    try:
        return resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError:
        # Source checkout first on sys.path (e.g. `python -m pytest` in the
        # repo): `weights/` becomes `f2fcli.weights` only when installed.
        return Path(__file__).resolve().parents[2] / "weights"


def weights_file(name: str) -> Traversable:
    """A file shipped in the installed ``f2fcli.weights`` package."""
    f = _weights_dir() / name
    if not f.is_file():
        raise FileNotFoundError(f"{name} not found in package {WEIGHTS_PACKAGE}")
    return f


def default_threads() -> int:
    """Intra-op threads: ``$F2F_ORT_THREADS`` if set, else 1."""
    value = os.environ.get(THREADS_ENV, "").strip()
    return max(1, int(value)) if value else 1


def providers(use_cuda: bool = False) -> list[str]:
    """CUDA first when asked for and available; CPU always as the fallback."""
    if use_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def create_session(name: str, threads: int | None = None, use_cuda: bool = False) -> ort.InferenceSession:
    """New session for the bundled model ``name`` (e.g. ``"face_detector.onnx"``)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads if threads else default_threads()
    # one op at a time: these graphs are sequential, and parallel ops would
    # oversubscribe a 2-core machine
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if so.intra_op_num_threads > 1:
        # spinning worker threads burn a shared CPU between calls
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # bytes rather than a path: works for zipped/egg installs as well
    return ort.InferenceSession(weights_file(name).read_bytes(), so, providers=providers(use_cuda))


@lru_cache(maxsize=None)
def _cached(name: str, threads: int, use_cuda: bool) -> ort.InferenceSession:
    return create_session(name, threads, use_cuda)


def get_session(name: str, threads: int | None = None, use_cuda: bool = False) -> ort.InferenceSession:
    """Process-wide shared session (sessions are thread-safe for ``run``)."""
    return _cached(name, threads if threads else default_threads(), bool(use_cuda))
