"""Video and image I/O on PyAV and Pillow."""

from .atomic import atomic_output
from .image import read_image, write_image
from .video import FrameChunk, VideoInfo, VideoReader
from .writer import EncoderSettings, VideoWriter, write_video

__all__ = [
    "EncoderSettings",
    "FrameChunk",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "atomic_output",
    "read_image",
    "write_image",
    "write_video",
]
