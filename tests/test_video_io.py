"""Encode/decode round trips, streaming memory, rotation, odd sizes, codecs, audio."""

from __future__ import annotations

import gc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil
import pytest
from conftest import audio_packets, leftover_temp_files, psnr

from f2fcli.errors import InputError, OutputError
from f2fcli.io.testclip import make_clip, pattern_frame
from f2fcli.io.video import VideoReader
from f2fcli.io.writer import EncoderSettings, write_video


def _stream_durations(path: Path) -> dict[str, float]:
    with av.open(str(path)) as container:
        return {s.type: float(s.duration * s.time_base) for s in container.streams}


def _copy(src: Path, dst: Path, **kwargs) -> VideoReader:
    reader = VideoReader(src)
    with write_video(dst, reader.info.fps, time_base=reader.info.time_base, **kwargs) as writer:
        for chunk in reader.chunks(7):
            for image, pts in zip(chunk.images, chunk.pts):
                writer.write(image, int(pts))
    return reader


def test_round_trip_keeps_frames_rate_and_audio(ntsc_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    source = _copy(ntsc_clip, out, audio_from=ntsc_clip)
    original = source.read_all()
    result_reader = VideoReader(out)
    result = result_reader.read_all()

    assert result_reader.info.fps == Fraction(30000, 1001)
    assert (result_reader.info.width, result_reader.info.height) == (64, 48)
    assert len(result) == len(original) == 60
    np.testing.assert_array_equal(result.pts, original.pts)
    assert psnr(result.images, original.images) > 35.0
    assert audio_packets(out) == audio_packets(ntsc_clip)
    durations = _stream_durations(out)
    assert abs(durations["audio"] - durations["video"]) <= 1001 / 30000
    assert leftover_temp_files(tmp_path) == []


def test_generated_frames_decode_to_what_was_encoded(ntsc_clip: Path) -> None:
    chunk = VideoReader(ntsc_clip).read_all()
    expected = np.stack([pattern_frame(i, 64, 48) for i in range(60)])
    assert psnr(chunk.images, expected) > 35.0


def test_colours_survive_encoding(tmp_path: Path) -> None:
    """Flat colours come back within two grey levels: the RGB->YUV matrix and range of the
    writer match what decoders assume (BT.601, limited range)."""
    colours = [(200, 120, 80), (30, 60, 200), (128, 128, 128), (16, 235, 16)]
    frames = np.stack([np.full((32, 48, 3), c, np.uint8) for c in colours])
    out = tmp_path / "flat.mp4"
    with write_video(out, Fraction(25)) as writer:
        for frame in frames:
            writer.write(frame)
    back = VideoReader(out).read_all().images
    assert np.abs(back.astype(int) - frames).max() <= 2


def test_long_clip_streams_with_bounded_memory(tmp_path: Path) -> None:
    frames, size = 4000, 96
    path = make_clip(tmp_path / "long.mp4", frames, size, size, 50, audio_rate=None,
                     frame_source=lambda i: np.full((size, size, 3), i % 256, np.uint8))
    process = psutil.Process()
    reader = VideoReader(path)
    gc.collect()
    baseline = process.memory_info().rss
    peak, count = baseline, 0
    for chunk in reader.chunks(16):
        count += len(chunk)
        peak = max(peak, process.memory_info().rss)
    decoded_mb = frames * size * size * 3 / 2**20
    growth_mb = (peak - baseline) / 2**20
    assert count == frames
    assert decoded_mb > 100
    assert growth_mb < 30, f"RSS grew {growth_mb:.1f} MiB while streaming {decoded_mb:.0f} MiB"


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "phone.mp4", 5, 64, 48, 25, audio_rate=None, rotation=90)
    reader = VideoReader(path)
    assert (reader.info.width, reader.info.height, reader.info.rotation) == (48, 64, 90)
    frames = reader.read_all().images
    assert frames.shape == (5, 64, 48, 3)
    assert psnr(frames[2], np.rot90(pattern_frame(2, 64, 48), 1)) > 35.0


def test_odd_sized_video_reads_and_writes(tmp_path: Path) -> None:
    odd = make_clip(tmp_path / "odd.mov", 4, 63, 47, 25, audio_rate=None, codec="png")
    reader = VideoReader(odd)
    assert (reader.info.width, reader.info.height) == (63, 47)
    original = reader.read_all().images
    np.testing.assert_array_equal(original[1], pattern_frame(1, 63, 47))

    out = tmp_path / "odd_out.mp4"
    _copy(odd, out)
    written = VideoReader(out).read_all().images
    assert written.shape == (4, 48, 64, 3)  # padded to even, edge repeated
    assert psnr(written[:, :47, :63], original) > 35.0


def test_variable_frame_rate_keeps_timestamps(tmp_path: Path) -> None:
    out = tmp_path / "vfr.mp4"
    pts = [0, 10, 15, 40, 41, 90]
    with write_video(out, Fraction(25), time_base=Fraction(1, 250)) as writer:
        for i, p in enumerate(pts):
            writer.write(pattern_frame(i, 32, 32), p)
    chunk = VideoReader(out).read_all()
    times = chunk.times_s
    np.testing.assert_allclose(times, np.array(pts) / 250, atol=1e-6)


@pytest.mark.parametrize("codec,suffix", [("libx265", ".mp4"), ("libvpx-vp9", ".webm")])
def test_other_codecs(ntsc_clip: Path, tmp_path: Path, codec: str, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    _copy(ntsc_clip, out, settings=EncoderSettings(codec=codec, preset="ultrafast"),
          audio_from=ntsc_clip)
    reader = VideoReader(out)
    assert reader.info.frame_count in (None, 60)
    assert len(reader.read_all()) == 60
    if suffix == ".webm":
        assert reader.info.audio_codec == "opus"  # WebM cannot hold AAC: re-encoded
    else:
        assert audio_packets(out) == audio_packets(ntsc_clip)


def test_png_sequence(ntsc_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    _copy(ntsc_clip, out, settings=EncoderSettings(codec="png"))
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 60
    lines = (out / "timestamps.txt").read_text().splitlines()
    assert lines[-1].split()[:2] == ["59", str(59 * 1001)]


def test_codec_container_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="libx264 cannot be written"):
        with write_video(tmp_path / "x.webm", Fraction(25), EncoderSettings("libx264")):
            pass
    assert list(tmp_path.iterdir()) == []


def test_auto_codec_follows_the_file_name(tmp_path: Path) -> None:
    for name, codec in (("a.webm", "vp9"), ("a.mkv", "h264"), ("a.mp4", "h264")):
        with write_video(tmp_path / name, Fraction(25)) as writer:
            for i in range(3):
                writer.write(pattern_frame(i, 32, 32))
        assert VideoReader(tmp_path / name).info.codec == codec
    with write_video(tmp_path / "frames", Fraction(25)) as writer:
        writer.write(pattern_frame(0, 32, 32))
    assert (tmp_path / "frames" / "000000.png").is_file()


def test_failure_mid_write_keeps_existing_target(ntsc_clip: Path, tmp_path: Path) -> None:
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"precious")
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with write_video(target, Fraction(25), overwrite=True) as writer:
                writer.write(pattern_frame(0, 32, 32))
                raise error
        assert target.read_bytes() == b"precious"
        assert leftover_temp_files(tmp_path) == []


def test_existing_target_needs_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "exists.mp4"
    target.write_bytes(b"x")
    with pytest.raises(OutputError, match="`overwrite`"):
        with write_video(target, Fraction(25)):
            pass
    assert target.read_bytes() == b"x"


def test_bad_inputs_give_clear_errors(ntsc_clip: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(ntsc_clip.read_bytes()[: ntsc_clip.stat().st_size // 2])
    audio_only = tmp_path / "audio.m4a"
    _write_audio_only(audio_only)

    cases = {empty: "empty file", text: "not a readable video", truncated: "not a readable video",
             audio_only: "no video stream", tmp_path / "missing.mp4": "no such file"}
    for path, message in cases.items():
        with pytest.raises(InputError, match=message):
            VideoReader(path)
    assert leftover_temp_files(tmp_path) == []


def test_truncated_stream_keeps_decodable_frames(tmp_path: Path) -> None:
    # MKV writes its index as it goes, so a cut file still opens: frames up to the cut decode.
    full = make_clip(tmp_path / "full.mkv", 50, 64, 48, 25, audio_rate=None)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    reader = VideoReader(cut)
    frames = sum(1 for _ in reader.frames())
    assert 0 < frames < 50


def test_a_cut_faststart_mp4_gives_its_frames_and_says_it_is_cut(tmp_path: Path) -> None:
    # "faststart" (web tools' MP4): the index is at the front, so a cut file opens and the
    # demuxer just stops early, with no error to notice
    full = tmp_path / "web.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(full), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for _ in range(60):
            image = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    assert VideoReader(full).info.frame_count == 60
    whole = VideoReader(full)
    assert sum(1 for _ in whole.frames()) == 60 and not whole.truncated
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    reader = VideoReader(cut)
    frames = sum(1 for _ in reader.frames())
    assert 10 < frames < 60 and reader.truncated
    assert reader.truncation_reason == f"the file ends after {frames} of the 60 frames its " \
        "index declares"


def _write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=22050, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt",
                                           layout="mono")
        frame.sample_rate = 22050
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_a_full_disk_is_one_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    import errno

    from f2fcli.io.atomic import atomic_output

    target = tmp_path / "out.mp4"
    with pytest.raises(OutputError, match="the disk is full"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half a video")
            # what the encoder raises when a write finds no space: PyAV's errno 28 error,
            # which the writer wraps
            try:
                raise av.error.OSError(errno.ENOSPC, "No space left on device")
            except av.error.FFmpegError as exc:
                raise OutputError(f"encoding {target.name} failed: {exc}") from exc
    assert not target.exists() and leftover_temp_files(tmp_path) == []
