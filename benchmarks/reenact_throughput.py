"""End-to-end `f2f reenact` frames per second (decode, tracking, render, paste-back, encode).

Run:  python benchmarks/reenact_throughput.py [--frames 150] [--neural] [--source-size 2048]
                                             [--preset veryfast] [--video-source] [--stream]
Each line also gives the process's peak resident memory so far: run with a larger --frames
(e.g. 1800, one minute at 30 fps) to see how memory grows with the video's length.
The driving clip is skimage's astronaut moved by a similarity transform, 512x512 (needs
scikit-image); the source is examples/source.jpg. `--neural` also times the neural renderer at
256 with randomly initialised weights (timing only: random weights make no face).
`--source-size` enlarges the source photo first: the output video has the photo's size, so
this times paste-back and encoding of large frames (`--preset`: the x264 preset).
`--stream` also times `Reenactor.stream` on the same frames (decoded beforehand; no encoding),
with its default window and with a block of one frame.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from f2fcli.io.writer import EncoderSettings
from f2fcli.pipeline.runner import ReenactOptions, reenact
from f2fcli.pipeline.source import SourceOptions

SOURCE = Path(__file__).resolve().parents[1] / "examples" / "source.jpg"


def driving_clip(directory: Path, frames: int) -> Path:
    from skimage import data

    from f2fcli.io.testclip import make_motion_clip, similarity_matrix

    phases = 2 * np.pi * np.arange(frames) / 50
    matrices = [similarity_matrix(8 * np.sin(p), 1 + 0.05 * np.sin(p),
                                  (10 * np.sin(p), 6 * np.cos(p)), (220.0, 180.0))
                for p in phases]
    return make_motion_clip(directory / "drive.mp4", data.astronaut(), matrices,
                            Fraction(30000, 1001))


def random_weights(directory: Path) -> Path:
    import torch

    from f2fcli import __version__
    from f2fcli.model.checkpoints import CheckpointInfo, save_generator
    from f2fcli.model.generator import Generator, GeneratorConfig

    torch.manual_seed(0)
    path = directory / "random.safetensors"
    save_generator(Generator(GeneratorConfig()), path,
                   CheckpointInfo(GeneratorConfig(), 256, "random init, timing only",
                                  __version__, "benchmark"))
    return path


def enlarged_source(directory: Path, size: int) -> Path:
    import cv2

    image = cv2.imread(str(SOURCE))
    scale = size / max(image.shape[:2])
    path = directory / f"source_{size}.png"
    cv2.imwrite(str(path), cv2.resize(image, None, fx=scale, fy=scale,
                                      interpolation=cv2.INTER_CUBIC))
    return path


def run(label: str, source: Path, drive: Path, out: Path, options: ReenactOptions) -> None:
    start = time.perf_counter()
    result = reenact(source, drive, out, options)
    wall = time.perf_counter() - start
    steps = ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
    print(f"{label:<28} {result.frames / wall:6.1f} frames/s end to end ({wall:.1f} s; {steps}); "
          f"peak RSS {peak_rss_mb():.0f} MB")


def run_stream(label: str, source: Path, drive: Path, options: ReenactOptions,
               settings: object) -> None:
    from f2fcli.io.image import read_image
    from f2fcli.io.video import VideoReader
    from f2fcli.pipeline.stream import Reenactor

    frames = list(VideoReader(drive).read_all().images)
    start = time.perf_counter()
    reenactor = Reenactor(read_image(source), options, settings)
    ready = time.perf_counter()
    count = sum(1 for _ in reenactor.stream(frames, fps=Fraction(30000, 1001)))
    wall = time.perf_counter() - start
    print(f"{label:<28} {count / wall:6.1f} frames/s ({wall:.1f} s, of which source "
          f"{ready - start:.2f} s); peak RSS {peak_rss_mb():.0f} MB")


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes there, KiB here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--neural", action="store_true")
    parser.add_argument("--source-size", type=int, default=None,
                        help="enlarge the source photo to this many pixels (longer side)")
    parser.add_argument("--preset", default="medium", help="x264 preset of the output")
    parser.add_argument("--video-source", action="store_true",
                        help="also time a video as the source (the driving clip itself)")
    parser.add_argument("--stream", action="store_true",
                        help="also time the streaming API (Reenactor.stream)")
    args = parser.parse_args()
    print("command: python " + " ".join(sys.argv))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        drive = driving_clip(tmp, args.frames)
        source = SOURCE if args.source_size is None else enlarged_source(tmp, args.source_size)
        label = "" if args.source_size is None else f", {args.source_size}-px output"
        cache = tmp / "cache"
        encoder = EncoderSettings(preset=args.preset)
        warp = ReenactOptions(source=SourceOptions(res=512), cache_dir=cache, overwrite=True,
                              encoder=encoder)
        run(f"warp 512 (cold cache{label})", source, drive, tmp / "w.mp4", warp)
        run(f"warp 512 (source cached{label})", source, drive, tmp / "w.mp4", warp)
        if args.video_source:
            run("warp 512 (video source)", drive, drive, tmp / "v.mp4", warp)
        if args.stream:
            from f2fcli.pipeline.stream import StreamSettings

            run_stream("warp 512 (stream, block 16)", source, drive, warp, StreamSettings())
            run_stream("warp 512 (stream, block 1)", source, drive, warp,
                       StreamSettings(block=1))
        if args.neural:
            neural = ReenactOptions(source=SourceOptions(res=256), renderer="neural",
                                    weights=random_weights(tmp), cache_dir=cache,
                                    overwrite=True, encoder=encoder)
            run(f"neural 256 (random weights{label})", source, drive, tmp / "n.mp4", neural)


if __name__ == "__main__":
    main()
