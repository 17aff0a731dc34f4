"""Streaming video reading on PyAV: bounded memory, exact rates and timestamps, rotation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import InputError

# 8K UHD is 33 MP; anything declaring more than this is refused before decoding.
DEFAULT_MAX_FRAME_PIXELS = 40_000_000


@dataclass(frozen=True)
class VideoInfo:
    """What a video file declares. Sizes are as displayed (after rotation)."""

    path: str
    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frame_count: int | None
    duration_s: float | None
    start_pts: int
    rotation: int
    codec: str
    pix_fmt: str | None
    audio_codec: str | None
    audio_sample_rate: int | None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "fps_float": float(self.fps),
            "time_base": f"{self.time_base.numerator}/{self.time_base.denominator}",
            "frame_count": self.frame_count,
            "duration_s": self.duration_s,
            "rotation": self.rotation,
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "audio_codec": self.audio_codec,
            "audio_sample_rate": self.audio_sample_rate,
        }


@dataclass
class FrameChunk:
    """Consecutive decoded frames: images (N, H, W, 3) uint8 RGB and their timestamps."""

    images: np.ndarray
    pts: np.ndarray
    start_index: int
    time_base: Fraction

    def __len__(self) -> int:
        return len(self.images)

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.start_index, self.start_index + len(self.images))

    @property
    def times_s(self) -> np.ndarray:
        return self.pts.astype(np.float64) * float(self.time_base)


def _open_container(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable video ({_ffmpeg_reason(exc)})") from exc


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def _rotation_of(stream: av.video.stream.VideoStream, container: av.container.InputContainer) -> int:
    """Display rotation (counter-clockwise degrees, multiple of 90) from the first frame."""
    try:
        for frame in container.decode(stream):
            return int(round(frame.rotation / 90.0)) * 90 % 360
    except av.error.FFmpegError:
        return 0
    return 0


def _frame_rate(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise InputError("video stream declares no frame rate")
    return Fraction(rate.numerator, rate.denominator)


def _flush(stream: av.video.stream.VideoStream) -> list[av.VideoFrame]:
    """The frames a decoder still holds, after an error; none if it cannot give them."""
    try:
        return list(stream.codec_context.decode(None))
    except av.error.FFmpegError:
        return []


class VideoReader:
    """Decode a video as RGB frames in chunks, one chunk in memory at a time.

    Rotation metadata (phone videos) is applied, so frames come out as displayed. Frame
    timestamps are the stream's own (variable frame rate keeps its timing). A file truncated
    mid-stream yields the frames that decode and sets `truncated`.
    """

    def __init__(
        self, path: str | os.PathLike[str], max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    ) -> None:
        self.path = Path(path)
        self.truncated = False
        self.truncation_reason: str | None = None
        container = _open_container(self.path)
        try:
            self.info = self._probe(container, max_frame_pixels)
        finally:
            container.close()

    def _probe(self, container: av.container.InputContainer, max_pixels: int) -> VideoInfo:
        if not container.streams.video:
            what = "audio only" if container.streams.audio else "no streams"
            raise InputError(f"{self.path}: has no video stream ({what})")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise InputError(f"{self.path}: video stream has no frame size")
        if width * height > max_pixels:
            raise InputError(
                f"{self.path}: {width}x{height} frames exceed the {max_pixels:,}-pixel limit"
            )
        rotation = _rotation_of(stream, container)
        if rotation in (90, 270):
            width, height = height, width
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        if duration is None and container.duration:
            duration = container.duration / av.time_base
        return VideoInfo(
            path=str(self.path),
            width=width,
            height=height,
            fps=_frame_rate(stream),
            time_base=Fraction(stream.time_base.numerator, stream.time_base.denominator),
            frame_count=stream.frames or None,
            duration_s=duration,
            start_pts=stream.start_time or 0,
            rotation=rotation,
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
            audio_codec=audio.codec_context.name if audio else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio else None,
        )

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (pts, RGB frame) in presentation order."""
        container = _open_container(self.path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            k = self.info.rotation // 90
            for frame in self._decode(container, stream):
                rgb = frame.to_ndarray(format="rgb24")
                if k:
                    rgb = np.ascontiguousarray(np.rot90(rgb, k))
                yield (frame.pts if frame.pts is not None else -1), rgb
        finally:
            container.close()

    def _decode(
        self, container: av.container.InputContainer, stream: av.video.stream.VideoStream
    ) -> Iterator[av.VideoFrame]:
        packets = container.demux(stream)
        count = 0
        while True:
            try:
                packet = next(packets)
                decoded = packet.decode()
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                # Damaged data mid-file: keep what decoded, and the frames the decoder still
                # holds (threaded decoders lag several packets), report it, invent nothing.
                self.truncated = True
                self.truncation_reason = _ffmpeg_reason(exc)
                for frame in _flush(stream):
                    count += 1
                    yield frame
                return
            count += len(decoded)
            yield from decoded
        declared = self.info.frame_count
        if declared and count < declared:
            # An index at the front ("faststart") survives a cut: the demuxer just stops early.
            self.truncated = True
            self.truncation_reason = (f"the file ends after {count} of the {declared} frames "
                                      "its index declares")

    def chunks(self, size: int) -> Iterator[FrameChunk]:
        """Yield FrameChunks of up to `size` frames."""
        if size < 1:
            raise ValueError("chunk size must be at least 1")
        images: list[np.ndarray] = []
        pts: list[int] = []
        start = 0
        for p, rgb in self.frames():
            images.append(rgb)
            pts.append(p)
            if len(images) == size:
                yield self._chunk(images, pts, start)
                start += size
                images, pts = [], []
        if images:
            yield self._chunk(images, pts, start)

    def _chunk(self, images: list[np.ndarray], pts: list[int], start: int) -> FrameChunk:
        return FrameChunk(np.stack(images), np.asarray(pts, np.int64), start, self.info.time_base)

    def read_all(self) -> FrameChunk:
        """All frames at once; only for short clips (memory grows with length)."""
        chunks = list(self.chunks(1 << 30))
        if not chunks:
            raise InputError(f"{self.path}: no decodable video frames")
        return chunks[0]
