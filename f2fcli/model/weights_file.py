"""Generator weights files without torch: their header, and which file to use.

The file format is `checkpoints`'s; reading the header (safetensors metadata) needs no torch,
so that an install without it can still find weights whose ONNX export is cached.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from ..dirs import NO_WEIGHTS_MESSAGE, user_weights_dir
from ..errors import InputError

FORMAT = "f2f-generator"
FORMAT_VERSION = 1
HEADER_KEY = "f2f"


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of one of our weights files (format and version checked, and a
    resolution present); InputError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a safetensors file: {exc}") from exc
    if HEADER_KEY not in metadata:
        raise InputError(f"{path} has no f2f header: not an f2f generator weights file")
    try:
        header = json.loads(metadata[HEADER_KEY])
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"format {header.get('format')!r}" if isinstance(header, dict)
                             else "not a record")
        if header.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {header.get('format_version')!r}, "
                             f"this f2f reads {FORMAT_VERSION}")
        int(header["resolution"])
        return header
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: bad f2f header: {exc}") from exc


def resolve_generator_weights(path: str | Path | None = None) -> Path:
    """The weights file to use: `path`, else the only/first *.safetensors generator in the user
    weights directory. Raises InputError explaining that none ship with f2f."""
    if path is not None:
        return Path(path)
    directory = user_weights_dir()
    candidates = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
    for candidate in candidates:
        try:
            read_header(candidate)
        except InputError:
            continue
        return candidate
    raise InputError(NO_WEIGHTS_MESSAGE.format(dir=directory))
