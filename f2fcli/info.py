"""`f2f info`: versions, devices, encoders and model files of this installation."""

from __future__ import annotations

import os
import platform
from typing import Any

import av

from . import __version__
from .dirs import list_model_files, user_weights_dir

ENCODERS = ("libx264", "libx265", "libvpx-vp9", "png", "aac", "libopus")

NEURAL_WEIGHTS_NOTE = (
    "no trained Face2Face^rho generator weights are shipped with f2f; the neural renderer "
    "needs a weights file you provide (put *.safetensors in the user weights dir)"
)


def _torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError as exc:
        return {"version": None, "error": str(exc)}
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return {
        "version": torch.__version__,
        "cuda": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda else [],
        "mps": mps,
        "threads": torch.get_num_threads(),
    }


def _onnxruntime_info() -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return {"version": None, "error": str(exc)}
    return {"version": ort.__version__, "providers": ort.get_available_providers()}


def system_info() -> dict[str, Any]:
    """Everything `f2f info` reports, as plain data."""
    import cv2
    import numpy

    available = av.codecs_available
    torch_info = _torch_info()
    return {
        "f2f": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch_info,
        "onnxruntime": _onnxruntime_info(),
        "av": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "devices": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch_info.get("threads"),
            "cuda": torch_info.get("cuda_devices", []),
            "mps": torch_info.get("mps", False),
        },
        "encoders": {name: name in available for name in ENCODERS},
        "models": [m.to_dict() for m in list_model_files()],
        "user_weights_dir": str(user_weights_dir()),
        "neural_renderer": _neural_status(),
    }


def _neural_status() -> dict[str, Any]:
    generators = [m for m in list_model_files() if m.path.suffix == ".safetensors"]
    if generators:
        return {"available": True, "weights": [m.name for m in generators]}
    return {"available": False, "note": NEURAL_WEIGHTS_NOTE}


def format_info(info: dict[str, Any]) -> str:
    """Human-readable form of `system_info()`."""
    t, o = info["torch"], info["onnxruntime"]
    devices = info["devices"]
    lines = [
        f"f2f          {info['f2f']}  (Python {info['python']}, {info['platform']})",
        f"torch        {t.get('version')}",
        f"onnxruntime  {o.get('version')}  providers: {', '.join(o.get('providers', []))}",
        f"PyAV         {info['av']}  FFmpeg {info['ffmpeg']}",
        f"numpy        {info['numpy']}  OpenCV {info['opencv']}",
        f"devices      CPU x{devices['cpu_count']} (torch threads {devices['torch_threads']})"
        f"  CUDA: {', '.join(devices['cuda']) or 'none'}  MPS: {'yes' if devices['mps'] else 'no'}",
        "encoders     " + "  ".join(
            f"{name}:{'yes' if ok else 'no'}" for name, ok in info["encoders"].items()),
        "models:",
    ]
    lines += [f"  {m['name']:<36} {m['bytes']:>10,} B  {'shipped' if m['shipped'] else 'user'}"
              for m in info["models"]] or ["  (none found)"]
    neural = info["neural_renderer"]
    lines.append("neural renderer: " + (", ".join(neural["weights"]) if neural["available"]
                                        else neural["note"]))
    lines.append(f"user weights dir: {info['user_weights_dir']}")
    return "\n".join(lines)
