"""SHA-256 of files: provenance of weights and exports, keys of the source cache."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """Hex SHA-256 of the file at `path`, read `block` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()
