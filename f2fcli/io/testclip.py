"""Synthetic clips (moving pattern + tone) for tests, benchmarks and smoke runs."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def pattern_frame(index: int, width: int, height: int) -> np.ndarray:
    """A smooth moving colour pattern; frames differ, so encoders cannot cheat."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = index * 0.15
    r = 128 + 100 * np.sin(x / 23.0 + t)
    g = 128 + 100 * np.sin(y / 31.0 - t * 0.7)
    b = 128 + 100 * np.sin((x + y) / 41.0 + t * 0.3)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def make_clip(
    path: str | os.PathLike[str],
    frames: int,
    width: int = 64,
    height: int = 64,
    fps: Fraction | int = 25,
    audio_rate: int | None = 44100,
    rotation: int = 0,
    codec: str = "libx264",
    frame_source: object = None,
) -> Path:
    """Encode `frames` pattern frames (or `frame_source(i)` images) with an optional AAC tone.

    `rotation` stores a display rotation (counter-clockwise degrees) like phone videos do.
    """
    path = Path(path)
    fps = Fraction(fps)
    source = frame_source or (lambda i: pattern_frame(i, width, height))
    with av.open(str(path), mode="w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p" if codec != "png" else "rgb24"
        if codec == "libx264":
            video.options = {"crf": "12", "preset": "ultrafast"}
        if rotation:
            video.set_display_rotation(rotation)
        audio = out.add_stream("aac", rate=audio_rate, layout="mono") if audio_rate else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(source(i), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / fps
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            _write_tone(out, audio, frames / fps, audio_rate)
    return path


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: Fraction,
                rate: int) -> None:
    total = int(seconds * rate)
    t = np.arange(total, dtype=np.float32) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    block = 1024
    for start in range(0, total, block):
        chunk = samples[start:start + block][None, :]
        frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def similarity_matrix(angle_deg: float, scale: float, shift: tuple[float, float],
                      centre: tuple[float, float]) -> np.ndarray:
    """2x3 matrix rotating (counter-clockwise on screen) and scaling about `centre`, then shifting."""
    matrix = cv2.getRotationMatrix2D(centre, angle_deg, scale)
    matrix[:, 2] += shift
    return matrix


def make_motion_clip(
    path: str | os.PathLike[str],
    image: np.ndarray,
    matrices: list[np.ndarray],
    fps: Fraction | int = 25,
    audio_rate: int | None = 44100,
    blank: frozenset[int] = frozenset(),
) -> Path:
    """A clip of `image` moved by one 2x3 affine matrix per frame (edges replicated).

    Frames listed in `blank` are uniform grey, e.g. to test frames without a face.
    """
    height, width = image.shape[:2]

    def frame(i: int) -> np.ndarray:
        if i in blank:
            return np.full_like(image, 128)
        return cv2.warpAffine(image, matrices[i], (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    return make_clip(path, len(matrices), width, height, fps, audio_rate, frame_source=frame)
