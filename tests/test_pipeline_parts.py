"""Crop, paste-back, source cache and motion options, without rendering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data

from f2fcli.io.image import write_image
from f2fcli.pipeline.crop import CropBox, face_crop_box
from f2fcli.pipeline.motion import MotionOptions, drive
from f2fcli.pipeline.paste import PasteBack, feather_mask
from f2fcli.pipeline.source import SourceCache, SourceOptions, load_source
from f2fcli.tracking.face_model import FaceModel
from f2fcli.tracking.track import Track


def test_crop_maps_points_and_pads_outside_the_image() -> None:
    image = np.zeros((100, 120, 3), np.uint8)
    image[:, :, 0] = np.arange(120, dtype=np.uint8)[None, :]
    box = CropBox(x0=-20, y0=10, size=80, res=160)
    crop = box.cut(image)
    assert crop.shape == (160, 160, 3)
    assert (crop[:, :40, 0] == 0).all()  # left of the image: the edge column repeated
    np.testing.assert_allclose(box.to_crop(np.array([[0.0, 10.0, 4.0]])), [[40.0, 0.0, 8.0]])


def test_face_crop_box_is_square_around_the_face() -> None:
    landmarks = np.array([[100.0, 100.0, 0], [200.0, 260.0, 0]])
    box = face_crop_box(landmarks, 2.0, 512)
    assert box.size == 320 and box.res == 512
    assert box.x0 < 100 and box.x0 + box.size > 200 and box.y0 < 100
    with pytest.raises(ValueError):
        face_crop_box(landmarks, 2.0, 4096)


def test_paste_back_of_the_untouched_crop_is_the_source() -> None:
    image = data.astronaut()
    box = CropBox(100, 40, 300, 300)
    paste = PasteBack(image, box)
    assert np.abs(paste(box.cut(image)).astype(int) - image).max() <= 1
    mask = feather_mask(100)
    assert mask[50, 50] == 1.0 and mask[0, 50] == 0.0 and mask[50, 0] == 0.0


def test_paste_back_changes_only_inside_the_crop() -> None:
    image = data.astronaut()
    box = CropBox(-50, 300, 300, 256)  # hangs over the left and bottom edges
    out = PasteBack(image, box)(np.zeros((256, 256, 3), np.uint8))
    assert out.shape == image.shape
    np.testing.assert_array_equal(out[:290], image[:290])
    np.testing.assert_array_equal(out[:, 260:], image[:, 260:])
    assert out[450, 100].sum() < 30  # the middle of the crop is the pasted (black) image


@pytest.fixture(scope="module")
def astronaut_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "astronaut.png"
    write_image(path, data.astronaut())
    return path


def test_source_cache_hit_and_corrupt_entry_rebuilt(astronaut_file: Path, tmp_path: Path) -> None:
    model = FaceModel.canonical()
    cache = SourceCache(tmp_path)
    first, hit1 = load_source(astronaut_file, SourceOptions(), model, cache)
    second, hit2 = load_source(astronaut_file, SourceOptions(), model, cache)
    assert (hit1, hit2) == (False, True)
    np.testing.assert_array_equal(first.identity, second.identity)
    assert first.box == second.box
    _, other = load_source(astronaut_file, SourceOptions(res=256), model, cache)
    assert other is False  # a different resolution is a different entry
    assert len(cache.entries()) == 2

    for entry in cache.entries():
        entry.path.write_bytes(b"garbage")
    rebuilt, hit3 = load_source(astronaut_file, SourceOptions(), model, cache)
    assert hit3 is False and np.allclose(rebuilt.identity, first.identity)
    assert cache.clear() == 2 and cache.entries() == []


def _track(n: int, pose: np.ndarray, expression: np.ndarray) -> Track:
    from fractions import Fraction

    return Track(pts=np.arange(n), pose=pose, expression=expression,
                 keypoints=np.zeros((n, 72, 2), np.float32),
                 landmarks=np.zeros((n, 478, 3), np.float32), confidence=np.ones(n, np.float32),
                 box=np.zeros((n, 4), np.float32), found=np.ones(n, bool),
                 filled=np.zeros(n, bool), identity=np.zeros(50, np.float32),
                 identity_detail=np.zeros((468, 3), np.float32), fps=Fraction(25),
                 time_base=Fraction(1, 25), width=512, height=512)


def test_motion_options(astronaut_file: Path) -> None:
    source, _ = load_source(astronaut_file, SourceOptions(), FaceModel.canonical(), None)
    n = 4
    pose = np.tile([0.0, 0.0, 0.0, 200.0, 200.0, 10.0], (n, 1))
    pose[:, 2] = [0.0, 0.1, 0.2, 0.3]  # the driver rolls its head
    expression = np.zeros((n, 51))
    expression[:, 24] = [0.0, 0.3, 0.6, 0.9]  # and opens its jaw (jawOpen)
    track = _track(n, pose, expression)

    full = drive(source, track, MotionOptions(ref_frame=0))
    assert np.allclose(full.pose[0], source.pose, atol=1e-6)
    assert not np.allclose(full.pose[3], source.pose)
    assert full.expression[3, 24] == pytest.approx(0.9)

    still = drive(source, track, MotionOptions(ref_frame=0, region="expression"))
    assert np.allclose(still.pose, source.pose)
    eyes = drive(source, track, MotionOptions(ref_frame=0, region="eyes"))
    assert np.allclose(eyes.expression[:, 24], source.expression[24])
    damped = drive(source, track, MotionOptions(ref_frame=0, expression_scale=0.5))
    assert damped.expression[3, 24] < full.expression[3, 24]
    with pytest.raises(ValueError, match="outside"):
        drive(source, track, MotionOptions(ref_frame=9))
    with pytest.raises(ValueError, match="unknown region"):
        MotionOptions(region="nose")
