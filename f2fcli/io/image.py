"""Still images: reading any common format to RGB8 (orientation applied, size capped), and
one-frame outputs written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError, OutputError
from .atomic import atomic_output, check_output_path

# 64 MP covers 8K photos; a decompression bomb declares far more and is refused before decoding.
DEFAULT_MAX_PIXELS = 64_000_000
# Still-image files by name: a driver or an output with one of these is an image, not a video.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read JPEG/PNG/WebP/BMP/TIFF into an (H, W, 3) uint8 RGB array.

    EXIF orientation is applied; greyscale, palette, RGBA (composited on white), 16-bit and
    CMYK images are converted. Images above `max_pixels` raise InputError without decoding.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise InputError(
                    f"{path}: {width}x{height} image exceeds the {max_pixels:,}-pixel limit"
                )
            img = ImageOps.exif_transpose(img)
            return _to_rgb8(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from exc
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: image too large ({exc})") from exc


def _to_rgb8(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale by the format's range, not the image's, so levels keep meaning.
        data = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or data.max() > 255 else 255.0
        grey = np.clip(data / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0) * 255.0 + 0.5
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def write_image(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an RGB8 array; the format follows the suffix."""
    Image.fromarray(np.ascontiguousarray(rgb)).save(path)


class ImageOutput:
    """A one-frame output as a still image, written like a video (`write`, then complete):
    the frame lands in a temporary file renamed onto the target only when it is whole."""

    def __init__(self, target: Path, overwrite: bool) -> None:
        self.target, self.overwrite = target, overwrite
        self.frames_written = 0

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        if self.frames_written:
            raise OutputError(f"{self.target}: an image output holds one frame")
        with atomic_output(self.target, self.overwrite) as tmp:
            Image.fromarray(np.ascontiguousarray(rgb)).save(
                tmp, format=Image.registered_extensions()[self.target.suffix.lower()])
        self.frames_written = 1

    def __enter__(self) -> "ImageOutput":
        check_output_path(self.target, self.overwrite)
        return self

    def __exit__(self, exc_type: type | None, *_: object) -> None:
        if exc_type is None and not self.frames_written:
            raise OutputError(f"nothing was written for {self.target}")
