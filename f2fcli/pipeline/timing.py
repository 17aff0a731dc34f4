"""Two clips on one clock: which frame of a driver shows at each frame of the output."""

from __future__ import annotations

import numpy as np

from ..choices import DriverEnd
from ..tracking.track import Track


def driver_frames(source_times: np.ndarray, driver_times: np.ndarray,
                  end: DriverEnd) -> np.ndarray:
    """For each source frame time (seconds from the source's start), the driver frame shown
    then (`driver_times` from the driver's start, increasing); -1 where `end` is "stop" and
    the driver has ended."""
    duration = driver_times[-1] + (driver_times[-1] - driver_times[-2]
                                   if len(driver_times) > 1 else 1.0)
    t = np.asarray(source_times, np.float64)
    if end == "loop":
        t = np.mod(t, duration)
    index = np.searchsorted(driver_times, t + 1e-9, side="right") - 1
    index = np.clip(index, 0, len(driver_times) - 1)
    if end == "stop":
        index = np.where(t < duration, index, -1)
    return index


def seconds_from_start(track: Track) -> np.ndarray:
    """Each frame's time (seconds) from the track's first frame."""
    pts = np.asarray(track.pts, np.float64)
    return (pts - pts[0]) * float(track.time_base)


def follower_end(end: DriverEnd) -> DriverEnd:
    """How a driver other than the one that sets the output's length ends: `stop` ends the
    output with the main driver, so the others are held."""
    return "hold" if end == "stop" else end
