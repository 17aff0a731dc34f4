"""Tracking throughput of `f2f track` (decode + face models + fit + smoothing), frames/s.

Run:  python benchmarks/track_throughput.py [VIDEO] [--frames 300]
Without VIDEO, a 512x512 clip of skimage's astronaut moving (rotation, scale, shift) is
generated (needs scikit-image, a test extra).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from f2fcli.tracking.video_track import track_video


def generated_clip(directory: Path, frames: int) -> Path:
    from skimage import data

    from f2fcli.io.testclip import make_motion_clip, similarity_matrix

    phases = 2 * np.pi * np.arange(frames) / 60
    matrices = [similarity_matrix(10 * np.sin(p), 1 + 0.08 * np.sin(p),
                                  (12 * np.sin(p), 8 * np.cos(p)), (220.0, 180.0))
                for p in phases]
    return make_motion_clip(directory / "astronaut_motion.mp4", data.astronaut(), matrices, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("video", nargs="?", type=Path)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    print("command: python " + " ".join(sys.argv))
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or generated_clip(Path(tmp), args.frames)
        start = time.perf_counter()
        track, stats = track_video(video)
        wall = time.perf_counter() - start
    print(f"{video.name}: {stats.frames} frames {track.width}x{track.height}, "
          f"{stats.frames / wall:.1f} frames/s end to end ({wall:.2f} s, model loading included)")
    for step, seconds in stats.seconds.items():
        print(f"  {step:<12} {1000 * seconds / stats.frames:6.2f} ms/frame")
    print(f"  detector runs {stats.detections}, faces found {stats.faces_found}/{stats.frames}")


if __name__ == "__main__":
    main()
