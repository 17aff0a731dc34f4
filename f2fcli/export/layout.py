"""What an ONNX export directory holds, and whether this install can write one. Light: no
torch, no onnx."""

from __future__ import annotations

import importlib.util

FORMAT = "f2f-onnx"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ENCODE_FILE = "encode_source.onnx"
DRIVE_FILE = "drive.onnx"
DEFAULT_OPSET = 17
MIN_OPSET = 16
"""GridSample (2-D) is a standard operator from opset 16 on."""
EXPORT_EXTRA_MESSAGE = ("ONNX export needs the `onnx` package: pip install 'f2fcli[export]' "
                        "(or pip install onnx); running exported models needs only "
                        "onnxruntime")


def onnx_export_available() -> bool:
    return importlib.util.find_spec("onnx") is not None
