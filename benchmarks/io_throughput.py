"""Video I/O throughput: decode, and decode + encode, frames per second.

Run:  python benchmarks/io_throughput.py [--frames 150] [--preset medium]
Clips are generated with f2fcli.io.testclip (moving pattern + AAC tone) in a temp dir.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from f2fcli.io.testclip import make_clip
from f2fcli.io.video import VideoReader
from f2fcli.io.writer import EncoderSettings, write_video


def decode_fps(path: Path, chunk: int) -> float:
    start = time.perf_counter()
    n = sum(len(c) for c in VideoReader(path).chunks(chunk))
    return n / (time.perf_counter() - start)


def transcode_fps(path: Path, out: Path, settings: EncoderSettings, chunk: int) -> float:
    reader = VideoReader(path)
    start = time.perf_counter()
    n = 0
    with write_video(out, reader.info.fps, settings, reader.info.time_base, audio_from=path,
                     overwrite=True) as writer:
        for c in reader.chunks(chunk):
            for image, pts in zip(c.images, c.pts):
                writer.write(image, int(pts))
            n += len(c)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--crf", type=int, default=18)
    args = parser.parse_args()
    settings = EncoderSettings("libx264", args.crf, args.preset)
    print("command: python " + " ".join(sys.argv))
    print(f"{'size':>10} {'decode fps':>11} {'decode+encode fps':>18}  (libx264 {args.preset} "
          f"crf {args.crf}, AAC copied)")
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in ((512, 512), (1920, 1080)):
            clip = make_clip(Path(tmp) / f"in_{width}.mp4", args.frames, width, height,
                             Fraction(30000, 1001))
            dec = decode_fps(clip, args.chunk)
            enc = transcode_fps(clip, Path(tmp) / f"out_{width}.mp4", settings, args.chunk)
            print(f"{width}x{height:<5} {dec:11.1f} {enc:18.1f}")


if __name__ == "__main__":
    main()
