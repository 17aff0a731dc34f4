"""What an ONNX export directory holds, and whether this install can write one. Light: no
torch, no onnx."""

from __future__ import annotations

import importlib.util

from ..model.landmark_images import SCALES

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


# The graphs' inputs and outputs, by name (see `graphs`).
FEATURES = ("skip4", "skip8", "skip16", "bottleneck")
"""Encoder maps at 1/4, 1/8, 1/16 and 1/16 of the padded size."""
SOURCE_IMAGES = tuple(f"source_image_{s}" for s in SCALES)
SOURCE_LANDMARKS = tuple(f"source_landmarks_{s}" for s in SCALES)
DRIVING_LANDMARKS = tuple(f"driving_landmarks_{s}" for s in SCALES)

ENCODE_INPUTS = ("image", "pose")
ENCODE_OUTPUTS = FEATURES + SOURCE_IMAGES
DRIVE_INPUTS = FEATURES + SOURCE_IMAGES + SOURCE_LANDMARKS + DRIVING_LANDMARKS + ("pose",)
DRIVE_OUTPUTS = ("image",)
SOURCE_BATCH = "sources"
FRAME_BATCH = "frames"
