"""Image reading: formats, orientation, modes, size cap."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from f2fcli.errors import InputError
from f2fcli.io.image import read_image


@pytest.fixture()
def rgb() -> np.ndarray:
    y, x = np.mgrid[0:40, 0:60]
    return np.stack([x * 4, y * 6, (x + y) * 2], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".webp", ".jpg"])
def test_formats_read_as_rgb8(tmp_path: Path, rgb: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"img{suffix}"
    Image.fromarray(rgb).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    image = read_image(path)
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    tolerance = 12 if suffix == ".jpg" else 0
    assert np.abs(image.astype(int) - rgb).mean() <= tolerance


def test_exif_orientation_is_applied(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    image = read_image(path)
    assert image.shape == (60, 40, 3)
    assert np.abs(image.astype(int) - np.rot90(rgb, -1)).mean() < 6


def test_modes_are_converted(tmp_path: Path, rgb: np.ndarray) -> None:
    grey = tmp_path / "grey.png"
    Image.fromarray(rgb[..., 0]).save(grey)
    np.testing.assert_array_equal(read_image(grey)[..., 2], rgb[..., 0])

    deep = tmp_path / "deep.png"
    Image.fromarray((rgb[..., 1].astype(np.uint16) * 257)).save(deep)
    np.testing.assert_array_equal(read_image(deep)[..., 0], rgb[..., 1])

    rgba = np.dstack([rgb, np.zeros((40, 60), np.uint8)])
    rgba[:, 30:, 3] = 255
    transparent = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(transparent)
    image = read_image(transparent)
    assert (image[:, :30] == 255).all()  # transparent part shows the white background
    np.testing.assert_array_equal(image[:, 30:], rgb[:, 30:])

    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(cmyk, quality=95)
    assert np.abs(read_image(cmyk).astype(int) - rgb).mean() < 12


def _png_header_only(path: Path, width: int, height: int) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 100_000, 100_000)
    with pytest.raises(InputError, match="pixel limit|too large"):
        read_image(bomb)


def test_pixel_cap_is_configurable(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "small.png"
    Image.fromarray(rgb).save(path)
    with pytest.raises(InputError, match="2,000-pixel limit"):
        read_image(path, max_pixels=2000)


@pytest.mark.parametrize("content", [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\ntrunc"])
def test_unreadable_images(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a readable image"):
        read_image(path)
    with pytest.raises(InputError, match="no such image"):
        read_image(tmp_path / "missing.jpg")
