"""Which device runs the networks. `auto` takes CUDA, then Apple's MPS, then the CPU: through
torch when it is installed, else through onnxruntime's execution providers (`onnxruntime-gpu`
brings CUDA's)."""

from __future__ import annotations

from .choices import DEVICES, Device, check_choice
from .extras import has_torch


def resolve_device(requested: Device) -> str:
    """`requested` as a concrete device: "cpu", "cuda" or "mps"."""
    check_choice("device", requested, DEVICES)
    if requested != "auto":
        return requested
    if has_torch():
        import torch

        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    return "cuda" if onnxruntime_has_cuda() else "cpu"


def onnxruntime_has_cuda() -> bool:
    """Whether onnxruntime can run on CUDA here (the `onnxruntime-gpu` build and a GPU)."""
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
