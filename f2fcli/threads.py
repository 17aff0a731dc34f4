"""Thread counts of OpenCV and torch for the length of one library call.

Both are process-wide settings. On a small CPU they decide the speed (oversubscribed torch or
OpenCV beside our decoder and encoder threads runs many times slower), so a call sets what it
needs and gives the caller's settings back when it returns, also on errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def _scoped(get: Callable[[], int], put: Callable[[int], None], count: int) -> Iterator[None]:
    previous = get()
    put(count)
    try:
        yield
    finally:
        put(previous)


@contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's thread count set to `count` inside the block."""
    import cv2

    with _scoped(cv2.getNumThreads, cv2.setNumThreads, count):
        yield


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `count` inside the block (None: unchanged)."""
    if count is None:
        yield
        return
    import torch

    with _scoped(torch.get_num_threads, torch.set_num_threads, count):
        yield
