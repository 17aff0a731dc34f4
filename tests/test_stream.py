"""The streaming API: frames in, frames out, like the file-to-file run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import f2f, psnr, talking_astronaut
from skimage import data

from f2fcli import MotionOptions, ReenactOptions, Reenactor, StreamSettings
from f2fcli.io.image import write_image
from f2fcli.io.video import VideoReader

FRAMES = 24


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return talking_astronaut(tmp_path_factory.mktemp("stream") / "talk.mp4", FRAMES)


def _mouth(frames: list[np.ndarray]) -> np.ndarray:
    from f2fcli.tracking.tracker import VideoFaceTracker

    tracker = VideoFaceTracker(threads=1)
    return np.array([np.subtract(*tracker(f).landmarks[[14, 13], 1]) for f in frames])


def test_the_stream_matches_the_file_run(driver: Path, tmp_path: Path) -> None:
    image = data.astronaut()
    write_image(tmp_path / "face.png", image)
    options = ReenactOptions(motion=MotionOptions(ref_frame=0), cache_dir=tmp_path / "cache")
    frames = VideoReader(driver).read_all()
    stamps = [float(t) / 25 for t in frames.pts]
    streamed = list(Reenactor(image, options).stream(zip(stamps, frames.images), fps=25))
    assert [t for t, _ in streamed] == stamps  # timestamps in, the same out, in order
    out = tmp_path / "file.mp4"
    done = f2f("reenact", "-s", str(tmp_path / "face.png"), "-d", str(driver), "-o", str(out),
               "--ref-frame", "0", "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    filed = VideoReader(out).read_all().images
    assert len(filed) == len(streamed) == FRAMES
    # the same picture, to within the file's H.264 coding and the stream's identity (from
    # its first 16 frames); measured 33.5-35.7 dB
    assert min(psnr(a, b) for (_, a), b in zip(streamed, filed)) > 31
    mouth_stream, mouth_file = _mouth([f for _, f in streamed]), _mouth(filed)
    assert np.corrcoef(mouth_stream, mouth_file)[0, 1] > 0.95
    assert abs(mouth_stream.max() - mouth_file.max()) < 3.0


def test_latency_is_bounded_and_a_block_of_one_is_a_frame_per_frame(driver: Path) -> None:
    frames = list(VideoReader(driver).read_all().images)
    for settings in (StreamSettings(warmup=4, block=4, context=2, lookahead=2),
                     StreamSettings(warmup=8, block=1, context=2, lookahead=2)):
        consumed = []

        def feed():
            for i, frame in enumerate(frames):
                consumed.append(i)
                yield frame

        reenactor = Reenactor(data.astronaut(), ReenactOptions(use_cache=False), settings)
        seen = []
        for k, _ in enumerate(reenactor.stream(feed(), fps=25)):
            seen.append(len(consumed))
            # output k comes at most block + lookahead frames after its own frame arrived
            assert len(consumed) <= max(k + 1 + settings.block + settings.lookahead,
                                        settings.warmup)
        assert len(seen) == len(frames)
        if settings.block == 1:  # after the warm-up, one out for each frame in
            steady = seen[settings.warmup:len(frames) - settings.lookahead]
            assert np.all(np.diff(steady) == 1)
