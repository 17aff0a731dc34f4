"""Streaming video writing on PyAV: exact timestamps, audio copied from an input, atomic.

Odd frame sizes: yuv420p stores chroma at half resolution, so H.264/H.265/VP9 need even
sizes. Odd frames are padded by one row/column that repeats the edge pixels (nothing is
cropped away); the output is then at most one pixel wider/taller than the input.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np
from PIL import Image

from ..choices import CODECS, PRESETS, Codec, Preset, check_choice
from ..errors import InputError, OutputError
from .atomic import atomic_output

# Which containers each video codec may go in, the codec's default quality and the highest
# CRF it takes (x264/x265 clamp anything above 51 without a word; VP9 goes to 63).
CODEC_CONTAINERS: dict[str, tuple[frozenset[str], int, int]] = {
    "libx264": (frozenset({".mp4", ".mov", ".mkv", ".m4v"}), 18, 51),
    "libx265": (frozenset({".mp4", ".mov", ".mkv"}), 22, 51),
    "libvpx-vp9": (frozenset({".webm", ".mkv", ".mp4"}), 32, 63),
    "png": (frozenset({""}), 0, 0),
}


# `--codec auto`: what a file name asks for (anything else: H.264).
AUTO_CODECS = {".webm": "libvpx-vp9", "": "png"}


@dataclass(frozen=True)
class EncoderSettings:
    """How video is encoded. `codec="auto"` follows the output's suffix (`AUTO_CODECS`);
    `crf=None` takes the codec's default."""

    codec: Codec = "auto"
    crf: int | None = None
    preset: Preset = "medium"

    def resolved(self, target: Path) -> "EncoderSettings":
        """These settings with `auto` replaced by the codec for `target`."""
        if self.codec != "auto":
            return self
        codec = AUTO_CODECS.get(Path(target).suffix.lower(), "libx264")
        return EncoderSettings(codec, self.crf, self.preset)

    def validate_for(self, target: Path) -> None:
        if self.codec == "auto":
            self.resolved(target).validate_for(target)
            return
        check_choice("codec", self.codec, CODECS)
        containers = CODEC_CONTAINERS[self.codec][0]
        suffix = target.suffix.lower()
        if suffix not in containers:
            if self.codec == "png":
                raise OutputError(f"png-sequence output must be a directory name, not {target}")
            raise OutputError(
                f"{self.codec} cannot be written to a {suffix or 'suffix-less'} file; "
                f"use one of {', '.join(sorted(containers))}"
            )
        check_choice("preset", self.preset, PRESETS)
        top = CODEC_CONTAINERS[self.codec][2]
        if self.crf is not None and self.codec != "png" and not 0 <= self.crf <= top:
            raise OutputError(f"`crf` {self.crf} is outside {self.codec}'s range 0-{top}")

    def options(self) -> dict[str, str]:
        crf = CODEC_CONTAINERS[self.codec][1] if self.crf is None else self.crf
        if self.codec == "libvpx-vp9":
            # VP9 has no presets; constant quality needs b=0 with crf.
            return {"crf": str(crf), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
        return {"crf": str(crf), "preset": self.preset}


def _pad_even(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _supported_rate(codec: str, rate: int) -> int:
    """`rate` if the encoder takes it, else the nearest rate it does (Opus: 48 kHz)."""
    rates = av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    return min(rates, key=lambda r: (abs(r - rate), -r))


class _AudioCopy:
    """Moves the audio of `source` into `out`, interleaved with the video as it is written.

    Packets are copied unchanged when the container can hold the codec; otherwise they are
    decoded and re-encoded to the container's default audio codec (AAC for MP4).
    """

    def __init__(self, out: av.container.OutputContainer, source: Path) -> None:
        try:
            self._input = av.open(str(source))
        except av.error.FFmpegError as exc:
            raise InputError(f"{source}: cannot read audio ({exc})") from exc
        if not self._input.streams.audio:
            self._input.close()
            raise InputError(f"{source}: has no audio stream")
        self._in_stream = self._input.streams.audio[0]
        name = self._in_stream.codec_context.name
        self.copied = name in out.supported_codecs
        if self.copied:
            self._out_stream = out.add_stream_from_template(self._in_stream)
        else:
            ctx = self._in_stream.codec_context
            codec = out.default_audio_codec
            self._out_stream = out.add_stream(
                codec, rate=_supported_rate(codec, ctx.sample_rate), layout=ctx.layout.name
            )
        self.codec = self._out_stream.codec_context.name
        self._out = out
        self._packets = self._input.demux(self._in_stream)
        self._pending: av.Packet | None = None
        self._done = False

    def mux_until(self, t_end: float | None) -> None:
        """Mux the audio packets that start before `t_end` seconds (all if None)."""
        while not self._done:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._done = True
                break
            if packet.dts is None or packet.pts is None:
                continue
            if t_end is not None and float(packet.pts * packet.time_base) >= t_end:
                self._pending = packet
                break
            self._mux(packet)

    def finish(self, t_end: float | None) -> None:
        """Mux what is left up to `t_end` and flush a re-encoder."""
        self.mux_until(t_end)
        if not self.copied:
            self._out.mux(self._out_stream.encode(None))

    def _mux(self, packet: av.Packet) -> None:
        if self.copied:
            packet.stream = self._out_stream
            self._out.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None
            self._out.mux(self._out_stream.encode(frame))

    def close(self) -> None:
        self._input.close()


class VideoWriter:
    """Encode RGB frames at given timestamps into `path` (written directly; see `write_video`)."""

    def __init__(
        self,
        path: Path,
        fps: Fraction,
        settings: EncoderSettings = EncoderSettings(),
        time_base: Fraction | None = None,
        audio_from: Path | None = None,
        audio_end_s: float | None = None,
    ) -> None:
        self.path = path
        self.fps = Fraction(fps)
        self.time_base = time_base or 1 / self.fps
        self.settings = settings.resolved(path)
        self.frames_written = 0
        self.audio_codec: str | None = None
        self.audio_copied = False
        self._audio_from = audio_from
        self._audio_end_s = audio_end_s
        self._last_pts: int | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._audio: _AudioCopy | None = None
        self._timestamps: object = None
        if self.settings.codec == "png":
            path.mkdir()
            self._timestamps = open(path / "timestamps.txt", "w", encoding="utf-8")
            self._timestamps.write(f"# fps {self.fps} time_base {self.time_base}\n# index pts seconds\n")

    def _open(self, width: int, height: int) -> None:
        try:
            self._container = av.open(str(self.path), mode="w")
            stream = self._container.add_stream(self.settings.codec, rate=self.fps)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = self.time_base
            stream.time_base = self.time_base
            stream.options = self.settings.options()
            if self.settings.codec == "libx265":
                stream.codec_context.codec_tag = "hvc1"  # so Apple players accept the MP4
            self._stream = stream
            if self._audio_from is not None:
                self._audio = _AudioCopy(self._container, self._audio_from)
                self.audio_codec, self.audio_copied = self._audio.codec, self._audio.copied
        except av.error.FFmpegError as exc:
            raise OutputError(f"cannot start encoding {self.path}: {exc}") from exc

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Append one (H, W, 3) uint8 RGB frame shown at `pts` (in `time_base` units)."""
        pts = self._next_pts(pts)
        if self.settings.codec == "png":
            self._write_png(rgb, pts)
            return
        rgb = _pad_even(np.ascontiguousarray(rgb, dtype=np.uint8))
        if self._container is None:
            self._open(rgb.shape[1], rgb.shape[0])
        elif (rgb.shape[1], rgb.shape[0]) != (self._stream.width, self._stream.height):
            raise OutputError("all frames of a video must have the same size")
        # OpenCV's BT.601 conversion is FFmpeg's (to a grey level) at a tenth of its time,
        # which at 2048 px is most of what the encoder's thread spends besides encoding
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420),
                                           format="yuv420p")
        frame.pts, frame.time_base = pts, self.time_base
        try:
            self._mux(self._stream.encode(frame))
        except av.error.FFmpegError as exc:
            raise OutputError(f"encoding {self.path.name} failed: {exc}") from exc
        self.frames_written += 1

    def _next_pts(self, pts: int | None) -> int:
        # Missing or non-increasing stamps would make the muxer fail; step one nominal frame.
        if pts is None or pts < 0 or (self._last_pts is not None and pts <= self._last_pts):
            step = max(1, round(1 / (self.fps * self.time_base)))
            pts = 0 if self._last_pts is None else self._last_pts + step
        self._last_pts = pts
        return pts

    def _write_png(self, rgb: np.ndarray, pts: int) -> None:
        Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(
            self.path / f"{self.frames_written:06d}.png", compress_level=1
        )
        self._timestamps.write(f"{self.frames_written} {pts} {float(pts * self.time_base):.6f}\n")
        self.frames_written += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self._container.mux(packet)
            if self._audio is not None and packet.pts is not None:
                self._audio.mux_until(float(packet.pts * packet.time_base))

    def close(self) -> None:
        """Flush the encoder, add the remaining audio and finish the file."""
        if self._timestamps is not None:
            self._timestamps.close()
            return
        if self._container is None:
            raise OutputError(f"no frames were written to {self.path}")
        try:
            self._finish()
        except av.error.FFmpegError as exc:
            raise OutputError(f"finishing {self.path.name} failed: {exc}") from exc
        self._release()

    def _finish(self) -> None:
        self._mux(self._stream.encode(None))
        if self._audio is not None:
            # Audio past the last video frame is dropped so both streams end together.
            end = self._audio_end_s
            if end is None:
                end = float(self._last_pts * self.time_base + 1 / self.fps)
            self._audio.finish(end)

    def abort(self) -> None:
        if self._timestamps is not None:
            self._timestamps.close()
        self._release()

    def _release(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._container is not None:
            self._container.close()
            self._container = None


@contextmanager
def write_video(
    target: str | os.PathLike[str],
    fps: Fraction,
    settings: EncoderSettings = EncoderSettings(),
    time_base: Fraction | None = None,
    audio_from: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Iterator[VideoWriter]:
    """Open a VideoWriter on a temporary file that replaces `target` only when complete."""
    target = Path(target)
    settings = settings.resolved(target)  # by the target's name: the temporary one differs
    settings.validate_for(target)
    audio = Path(audio_from) if audio_from is not None else None
    with atomic_output(target, overwrite=overwrite) as tmp:
        writer = VideoWriter(tmp, fps, settings, time_base, audio)
        try:
            yield writer
            writer.close()
        except BaseException:
            writer.abort()
            raise
