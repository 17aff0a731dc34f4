"""Frame ranges for work done a block at a time, so memory does not grow with a video."""

from __future__ import annotations

from collections.abc import Iterator


def frame_blocks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most `size` of n frames: loops whose memory must not grow with
    the video's length."""
    for start in range(0, n, max(size, 1)):
        yield slice(start, min(n, start + size))
