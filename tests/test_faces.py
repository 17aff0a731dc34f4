"""Several faces in one source: numbering, a driver per face, blending their paste-backs."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import f2f, jaw_curve, psnr, talking_astronaut
from skimage import data

from f2fcli.io.image import read_image, write_image
from f2fcli.io.testclip import similarity_matrix
from f2fcli.io.video import VideoReader
from f2fcli.io.writer import write_video

FRAMES = 20
SPLIT = 500  # the two astronauts meet here; their crops and head regions overlap


def _pair(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    canvas = np.empty((512, 1000, 3), np.uint8)
    canvas[:, :SPLIT] = left[:, :SPLIT]
    canvas[:, SPLIT:] = right[:, 12:]
    return canvas


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two astronauts side by side (a photo, and a clip where each moves her own way and the
    left one is out of view for 4 frames), and two drivers: the jaw opening once and
    twice."""
    root = tmp_path_factory.mktemp("faces")
    image = data.astronaut()
    write_image(root / "two.png", _pair(image, image))
    with write_video(root / "two.mp4", Fraction(25), time_base=Fraction(1, 25)) as writer:
        for t in range(FRAMES):
            moves = [similarity_matrix(4 * np.sin(t / 4), 1.0, (5 * np.sin(t / 3), 0),
                                       (256, 200)),
                     similarity_matrix(-4 * np.sin(t / 5), 1.0, (0, 5 * np.sin(t / 4)),
                                       (256, 200))]
            left, right = (cv2.warpAffine(image, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
                           for m in moves)
            if 8 <= t < 11:
                left = np.full_like(left, 200)
            writer.write(_pair(left, right), t)
    return {"photo": root / "two.png", "clip": root / "two.mp4",
            "once": talking_astronaut(root / "once.mp4", FRAMES, 1),
            "twice": talking_astronaut(root / "twice.mp4", FRAMES, 2), "root": root}


def _mouth_gaps(video: Path) -> np.ndarray:
    """(frames, 2): each astronaut's inner-lip gap (px), NaN where she is not found."""
    from f2fcli.tracking.tracker import VideoFaceTracker

    halves = (slice(0, SPLIT), slice(SPLIT, None))
    trackers = [VideoFaceTracker(threads=1) for _ in halves]
    gaps = []
    for frame in VideoReader(video).read_all().images:
        row = []
        for tracker, half in zip(trackers, halves):
            lm = tracker(np.ascontiguousarray(frame[:, half])).landmarks
            row.append(np.nan if lm is None else lm[14, 1] - lm[13, 1])
        gaps.append(row)
    return np.array(gaps)


def _follows(gaps: np.ndarray, jaw: np.ndarray) -> float:
    seen = np.isfinite(gaps)
    return float(np.corrcoef(gaps[seen], jaw[seen])[0, 1])


def test_each_face_of_a_photo_follows_its_own_driver(media: dict[str, Path],
                                                     tmp_path: Path) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    out = tmp_path / "map.mp4"
    result = f2f("reenact", "-s", str(media["photo"]), "--face-map",
                 f"0={media['once']},1={media['twice']}", "-o", str(out), "--json", *cache)
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)["faces"]
    assert [f["face"] for f in faces] == [0, 1] and faces[0]["box"][0] < faces[1]["box"][0]
    gaps = _mouth_gaps(out)
    once, twice = jaw_curve(FRAMES, 1), jaw_curve(FRAMES, 2)
    assert _follows(gaps[:, 0], once) > 0.8 and _follows(gaps[:, 1], twice) > 0.8
    assert _follows(gaps[:, 0], twice) < 0.5 and _follows(gaps[:, 1], once) < 0.5

    # one face moved: the other and the background stay as they were
    right = tmp_path / "right.mp4"
    result = f2f("reenact", "-s", str(media["photo"]), "--face-map", f"1={media['twice']}",
                 "-o", str(right), *cache)
    assert result.returncode == 0, result.stderr
    photo, frames = read_image(media["photo"]), VideoReader(right).read_all().images
    assert min(psnr(f[:, :400], photo[:, :400]) for f in frames) > 35
    gaps = _mouth_gaps(right)
    assert np.ptp(gaps[:, 0]) < 2.0 and _follows(gaps[:, 1], twice) > 0.8

    both = tmp_path / "all.mp4"
    result = f2f("reenact", "-s", str(media["photo"]), "-d", str(media["twice"]), "--faces",
                 "all", "-o", str(both), *cache)
    assert result.returncode == 0, result.stderr
    gaps = _mouth_gaps(both)
    assert _follows(gaps[:, 0], twice) > 0.8 and _follows(gaps[:, 1], twice) > 0.8

    missing = f2f("reenact", "-s", str(media["photo"]), "--face-map", f"2={media['once']}",
                  "-o", str(tmp_path / "none.mp4"), *cache)
    assert missing.returncode == 1 and "no face 2: 2 found" in missing.stderr
    assert not (tmp_path / "none.mp4").exists()


def test_faces_of_a_clip_keep_their_numbers_and_their_drivers(media: dict[str, Path],
                                                              tmp_path: Path) -> None:
    listed = f2f("track", "--list-faces", str(media["clip"]), "--json")
    assert listed.returncode == 0, listed.stderr
    faces = json.loads(listed.stdout)["faces"]
    # the left face is out of view for 3 frames and comes back as face 0
    assert [(f["face"], f["frames"]) for f in faces] == [(0, FRAMES - 3), (1, FRAMES)]
    assert faces[0]["box"][0] < SPLIT < faces[1]["box"][0]

    out = tmp_path / "map.mp4"
    result = f2f("reenact", "-s", str(media["clip"]), "--face-map",
                 f"0={media['once']},1={media['twice']}", "-o", str(out), "--json",
                 "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert [f["source_frames_with_face"] for f in json.loads(result.stdout)["faces"]] == \
        [FRAMES - 3, FRAMES]
    made, src = VideoReader(out).read_all(), VideoReader(media["clip"]).read_all()
    assert np.array_equal(made.pts, src.pts)
    assert psnr(made.images[9], src.images[9], ) > 30  # the left face away: still frame
    # each face's change of mouth against the source clip follows its own driver
    change = _mouth_gaps(out) - _mouth_gaps(media["clip"])
    once, twice = jaw_curve(FRAMES, 1), jaw_curve(FRAMES, 2)
    assert _follows(change[:, 0], once) > 0.8 and _follows(change[:, 1], twice) > 0.8


def test_overlapping_paste_backs_keep_each_face_its_own() -> None:
    from f2fcli.pipeline.crop import CropBox
    from f2fcli.pipeline.head import HeadRegion
    from f2fcli.pipeline.paste import PasteBack, paste_faces

    image = np.full((240, 400, 3), 100, np.uint8)
    boxes = [CropBox(x0=40, y0=20, size=200, res=200), CropBox(x0=160, y0=20, size=200, res=200)]
    regions = [HeadRegion((140.0, 120.0), (45.0, 55.0), 0.0),
               HeadRegion((260.0, 120.0), (45.0, 55.0), 0.0)]
    pastes = [PasteBack(image, box, region) for box, region in zip(boxes, regions)]
    still = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    crops = [np.full((200, 200, 3), 200, np.uint8), boxes[1].cut(image)]  # face 0 changed
    one = pastes[0](crops[0], still)
    both = paste_faces(pastes, crops, [still, still])
    # face 0's head is face 0's, though face 1's crop (showing it unchanged) covers it
    head0 = np.zeros(image.shape[:2], bool)
    head0[80:160, 110:170] = True
    assert np.abs(both[head0].astype(int) - one[head0]).max() <= 2
    # where only face 0 changes anything, exactly its own output; no step anywhere
    np.testing.assert_array_equal(both[:, :150], one[:, :150])
    assert np.abs(np.diff(both.astype(int), axis=1)).max() <= np.abs(
        np.diff(one.astype(int), axis=1)).max() + 2


def test_batch_rows_name_faces_and_report_each(media: dict[str, Path], tmp_path: Path) -> None:
    root = media["root"]
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("source,driving,out,faces,face_map\n"
                        f"{root / 'two.png'},,{tmp_path / 'a.mp4'},,1=twice.mp4\n"
                        f"{root / 'two.png'},{root / 'once.mp4'},{tmp_path / 'b.mp4'},all,\n"
                        f"{root / 'two.png'},,{tmp_path / 'c.mp4'},,\n")
    # the row's face map names a driver beside the manifest, like its other relative paths
    (tmp_path / "twice.mp4").write_bytes(media["twice"].read_bytes())
    result = f2f("batch", str(manifest), "--json", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 1  # the third row has no driver
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    jobs = {line["job"]: line for line in lines if "job" in line}
    assert [f["face"] for f in jobs[0]["result"]["faces"]] == [1]
    assert jobs[0]["result"]["faces"][0]["driving"] == str(tmp_path / "twice.mp4")
    assert [f["face"] for f in jobs[1]["result"]["faces"]] == [0, 1]
    assert jobs[2]["status"] == "failed" and "empty source, driving or out" in jobs[2]["error"]
    summary = lines[-1]["summary"]
    assert (summary["jobs"], summary["ok"], summary["failed"]) == (3, 2, 1)
    assert summary["drivers_tracked"] == 2
