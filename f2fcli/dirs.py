"""Where f2f keeps files: the shipped `f2fcli.weights` package, the user weights directory and
the cache directory."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

MODEL_SUFFIXES = (".onnx", ".npz", ".safetensors")
# Here, not beside the checkpoint code: choosing the warp renderer must not import torch.
NO_WEIGHTS_MESSAGE = (
    "no trained Face2Face^rho generator weights found: f2f ships none yet; convert the "
    "official release with `f2f weights import-official RENDER.pth MOTION.pth -o "
    "NAME.safetensors` and put the file in {dir} or pass its path")


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: Path
    size: int
    shipped: bool

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "bytes": self.size,
                "shipped": self.shipped}


def shipped_weights_dir() -> Path | None:
    """The installed copy of the repository's `weights/` folder (None if not installed)."""
    try:
        return Path(str(resources.files("f2fcli.weights")))
    except ModuleNotFoundError:
        return None


def user_weights_dir() -> Path:
    """User-provided weights (e.g. trained generators): $F2F_WEIGHTS_DIR or ~/.local/share/f2f."""
    env = os.environ.get("F2F_WEIGHTS_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "f2f" / "weights"


def list_model_files() -> list[ModelFile]:
    """Model files found in the shipped and user weight directories."""
    found = []
    for directory, shipped in ((shipped_weights_dir(), True), (user_weights_dir(), False)):
        if directory is None or not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in MODEL_SUFFIXES and path.is_file():
                found.append(ModelFile(path.name, path, path.stat().st_size, shipped))
    return found


def default_cache_dir() -> Path:
    """$F2F_CACHE_DIR, else the platform's user cache directory."""
    env = os.environ.get("F2F_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "f2f"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "f2f" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "f2f"
