"""Crop, paste-back, source cache and motion options, without rendering."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import psnr
from safetensors.numpy import save_file
from skimage import data

from f2fcli.io.image import write_image
from f2fcli.pipeline.crop import CropBox, face_crop_box
from f2fcli.pipeline.head import HeadRegion
from f2fcli.pipeline.motion import MotionOptions, drive
from f2fcli.pipeline.paste import PasteBack, feather_line
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


STILL = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _head_of(box: CropBox) -> HeadRegion:
    return HeadRegion((box.x0 + box.size / 2, box.y0 + box.size / 2),
                      (box.size / 5, box.size / 4), 0.0)


def test_paste_back_of_the_untouched_crop_is_the_source() -> None:
    image = data.astronaut()
    box = CropBox(100, 40, 300, 300)
    paste = PasteBack(image, box, _head_of(box))
    error = np.abs(paste(box.cut(image), STILL).astype(int) - image)
    # the crop's feathered rim samples its edge pixel a grid step beyond it
    assert error.max() <= 8 and error.mean() < 0.01
    line = feather_line(np.arange(100, dtype=np.float64), 100, 0.08)
    assert line[50] == 1.0 and line[0] == 0.0 and line[99] == 0.0


def test_paste_back_changes_only_inside_the_crop() -> None:
    image = data.astronaut()
    box = CropBox(-50, 300, 300, 256)  # hangs over the left and bottom edges
    out = PasteBack(image, box, _head_of(box))(np.zeros((256, 256, 3), np.uint8), STILL)
    assert out.shape == image.shape
    np.testing.assert_array_equal(out[:290], image[:290])
    np.testing.assert_array_equal(out[:, 260:], image[:, 260:])
    assert out[450, 100].sum() < 30  # the middle of the crop is the pasted (black) image


def test_paste_back_carries_the_head_and_keeps_the_far_background() -> None:
    image = data.astronaut()
    box = CropBox(130, 0, 240, 256)
    region = HeadRegion((250.0, 110.0), (60.0, 75.0), 0.0)
    paste = PasteBack(image, box, region)
    # 50 px right, 30 px down, 10 % larger, 8 degrees roll, about the head's centre
    a = 1.1 * np.exp(1j * np.radians(8.0))
    c = 250.0 + 110.0j
    b = c * (1 - a) + 50 + 30j
    head = np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])
    out = paste(box.cut(image), head).astype(np.float64)
    # inside the carried head: the source moved by the similarity
    expected = cv2.warpAffine(image, head, image.shape[1::-1], flags=cv2.INTER_LINEAR)
    ys, xs = np.mgrid[0:512, 0:512]
    q = (xs - 300.0) ** 2 / 60.0**2 + (ys - 140.0) ** 2 / 75.0**2
    inside = q < 0.8
    assert psnr(out[inside], expected[inside]) > 35.0
    # far from the head nothing moves; the map between folds nowhere
    (y0, y1, x0, x1), map_x, map_y, _ = paste.field(head)
    far = np.hypot(xs - 300.0, ys - 140.0) > 75.0 * 1.1 + 2.0 * 65.0 + 80.0
    np.testing.assert_array_equal(out[far], image[far])
    xs, ys = xs[y0:y1, x0:x1], ys[y0:y1, x0:x1]
    far = far[y0:y1, x0:x1]
    np.testing.assert_allclose(map_x[far], xs[far], atol=0.5)
    np.testing.assert_allclose(map_y[far], ys[far], atol=0.5)
    jacobian = (np.gradient(map_x, axis=1) * np.gradient(map_y, axis=0)
                - np.gradient(map_x, axis=0) * np.gradient(map_y, axis=1))
    assert jacobian.min() > 0.05
    # no hard edge: neighbouring output pixels never sample source points far apart
    step = np.maximum(np.hypot(np.diff(map_x, axis=1), np.diff(map_y, axis=1))[:-1],
                      np.hypot(np.diff(map_x, axis=0), np.diff(map_y, axis=0))[:, :-1])
    assert step.max() < 2.5


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

    # valid arrays, wrong metadata: rebuilt, not trusted
    load_source(astronaut_file, SourceOptions(), model, cache)
    (entry,) = cache.entries()
    arrays, meta = cache.load_arrays(entry.path.name.split(".")[0])
    meta["box"]["size"] = "wide"
    save_file(arrays, str(entry.path), metadata={"f2f": json.dumps(meta)})
    again, hit4 = load_source(astronaut_file, SourceOptions(), model, cache)
    assert hit4 is False and again.box == first.box
    assert load_source(astronaut_file, SourceOptions(), model, cache)[1] is True

    # a cache that cannot be used: a file where its folder should be; the run goes on
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    warnings: list[str] = []
    _, hit5 = load_source(astronaut_file, SourceOptions(), model, SourceCache(blocked),
                          warn=warnings.append)
    assert hit5 is False and len(warnings) == 1 and "unusable" in warnings[0]


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
    model = FaceModel.canonical()
    source, _ = load_source(astronaut_file, SourceOptions(), model, None)
    n = 4
    pose = np.tile([0.0, 0.0, 0.0, 200.0, 200.0, 10.0], (n, 1))
    pose[:, 2] = [0.0, 0.1, 0.2, 0.3]  # the driver rolls its head
    expression = np.zeros((n, 51))
    expression[:, 24] = [0.0, 0.3, 0.6, 0.9]  # and opens its jaw (jawOpen)
    track = _track(n, pose, expression)

    def drive_(**kw) -> object:  # the rig transfer alone; retargeting is tested below
        return drive(source, track, model, MotionOptions(retarget=False, pose_sigma=0.0, **kw))

    full = drive_(ref_frame=0)
    assert np.allclose(full.pose[0], source.pose, atol=1e-6)
    assert not np.allclose(full.pose[3], source.pose)
    # a contact channel: the driver's way from its reference to 1 is the source's way to 1
    e_jaw = source.expression[24]
    assert full.expression[3, 24] == pytest.approx(e_jaw + 0.9 * (1.0 - e_jaw))

    still = drive_(ref_frame=0, region="expression")
    assert np.allclose(still.pose, source.pose)
    eyes = drive_(ref_frame=0, region="eyes")
    assert np.allclose(eyes.expression[:, 24], source.expression[24])
    damped = drive_(ref_frame=0, expression_scale=0.5)
    assert damped.expression[3, 24] < full.expression[3, 24]
    with pytest.raises(ValueError, match="outside"):
        drive_(ref_frame=9)
    with pytest.raises(ValueError, match="blendshape model"):
        drive(source, track, model, MotionOptions(ref_frame=0))
    with pytest.raises(ValueError, match="unknown region"):
        MotionOptions(region="nose")


def _retarget_setup(astronaut_file: Path):
    from f2fcli.pipeline.retarget import RetargetOptions, SourceLandmarkModel
    from f2fcli.tracking.landmarks import BlendshapeModel

    model = FaceModel.canonical()
    source, _ = load_source(astronaut_file, SourceOptions(), model, None)
    landmarks = SourceLandmarkModel(model, source.identity, source.identity_detail, source.pose,
                                    source.expression, source.landmarks, RetargetOptions())
    return model, source, landmarks, BlendshapeModel(threads=1)


def test_source_landmarks_move_the_iris_with_gaze(astronaut_file: Path) -> None:
    _, source, landmarks, _ = _retarget_setup(astronaut_file)
    e, pose = source.expression[None], source.pose[None]
    still = landmarks.landmarks(e, np.zeros((1, 4)), pose)[0]
    # at the source's own expression and gaze, the irises sit where the photo has them
    assert np.abs(still[468:] - source.landmarks[468:, :2]).max() < 1.5
    right = landmarks.landmarks(e, np.array([[1.0, 0.0, 1.0, 0.0]]), pose)[0]
    assert np.allclose(right[:468], still[:468])
    shift = right[468:] - still[468:]
    eye_width = np.linalg.norm(still[133] - still[33])
    # towards the subject's left is image right for a frontal face; 0.2 eye widths at gaze 1
    assert np.all(shift[:, 0] > 0.15 * eye_width) and np.all(np.abs(shift[:, 1]) < shift[:, 0])


def test_retarget_reproduces_a_reachable_expression(astronaut_file: Path) -> None:
    """The driver is the source itself with a known expression change: retargeting from
    the unmoved source must find scores close to the driver's."""
    from f2fcli.pipeline.retarget import Driven, retarget
    from f2fcli.tracking.channels import EXPR_INDEX

    model, source, landmarks, blendshapes = _retarget_setup(astronaut_file)
    n = 12
    wanted = np.repeat(source.expression[None], n, 0)
    ramp = np.linspace(0.0, 1.0, n)
    for name, end in (("jawOpen", 0.6), ("browInnerUp", 0.7), ("eyeBlinkLeft", 0.5),
                      ("eyeBlinkRight", 0.5)):
        k = EXPR_INDEX[name]
        wanted[:, k] += ramp * (end - wanted[0, k])
    gaze = np.zeros((n, 4))
    gaze[:, 0] = gaze[:, 2] = ramp
    pose = np.repeat(source.pose[None], n, 0)
    points = landmarks.landmarks(wanted, gaze, pose)
    track = _track(n, pose, np.zeros((n, 51)))
    track.landmarks[:] = np.concatenate([points, np.zeros((n, 478, 1))], 2)
    still = np.repeat(source.expression[None], n, 0)
    # the gaze is given (geometry's, `gaze.py`); the rig must make the rest
    driven = Driven(pose=pose, expression=still, gaze=gaze.reshape(n, 2, 2), ref=0,
                    mode="relative", scale=1.0, free=np.ones(51, bool), weights=np.ones(51))
    res = retarget(model, source, track, driven, blendshapes)
    target = blendshapes(points)[:, 1:]
    got = blendshapes(landmarks.landmarks(res.expression, gaze, pose))[:, 1:]
    before = blendshapes(landmarks.landmarks(still, gaze, pose))[:, 1:]
    assert np.abs(got - target).mean() < 0.35 * np.abs(before - target).mean()
    assert res.error_after < res.error_before
    jaw = EXPR_INDEX["jawOpen"]
    assert np.corrcoef(res.expression[:, jaw], ramp)[0, 1] > 0.9


def test_gaze_follows_the_drivers_iris_in_eye_widths(astronaut_file: Path) -> None:
    """A driver (the source's face, smaller and moved) whose irises slide 0.1 of an eye width
    towards image right: the source's irises slide 0.1 of its own eye width, in either mode;
    a change within the landmarker's scatter moves nothing."""
    from f2fcli.pipeline.gaze import nominal_response, transfer_gaze

    _, source, landmarks, _ = _retarget_setup(astronaut_file)
    n = 20
    track = _track(n, np.zeros((n, 6)), np.zeros((n, 51)))
    face = source.landmarks * 0.7 + np.array([40.0, 25.0, 0.0])
    eye_width = np.linalg.norm(face[133, :2] - face[33, :2])
    ramp = np.where(np.arange(n) < n // 2, 0.0, 0.1)  # a saccade; the ends are checked
    for i in range(n):
        track.landmarks[i] = face
        track.landmarks[i, 468:, 0] += ramp[i] * eye_width
    response = nominal_response(source.landmarks)
    e, pose = np.repeat(source.expression[None], n, 0), np.repeat(source.pose[None], n, 0)
    still = landmarks.landmarks(e, np.zeros((n, 4)), pose)
    for mode in ("relative", "absolute"):
        gaze = transfer_gaze(track, 0, source.landmarks, mode, response)
        moved = landmarks.landmarks(e, gaze.reshape(n, 4), pose)[:, 468:] - still[:, 468:]
        source_width = np.linalg.norm(source.landmarks[133, :2] - source.landmarks[33, :2])
        ends = np.r_[0:5, n - 5:n]
        assert np.allclose(moved[ends, :, 0] / source_width, ramp[ends, None], atol=0.01)
        assert np.abs(moved[..., 1]).max() < 0.03 * source_width  # eyes slant a little
    # a hundredth of an eye width is the landmarker's scatter, not a look: the eyes stay
    for i in range(n):
        track.landmarks[i, 468:, 0] = face[468:, 0] + ramp[i] * 0.1 * eye_width
    assert not np.any(transfer_gaze(track, 0, source.landmarks, "relative", response))


def test_gaze_read_back_short_of_the_look_is_made_up(astronaut_file: Path) -> None:
    """A renderer whose irises read back at 60% of the commanded travel (lids covering
    them): one correction from the read-back brings the seen look much closer to the
    driver's, and an eye that does not turn is left alone."""
    from f2fcli.pipeline.gaze import (correct_gaze, gaze_targets, iris_offsets, nominal_response,
                                      transfer_gaze)

    _, source, landmarks, _ = _retarget_setup(astronaut_file)
    n = 20
    track = _track(n, np.zeros((n, 6)), np.zeros((n, 51)))
    eye_width = np.linalg.norm(source.landmarks[133, :2] - source.landmarks[33, :2])
    ramp = np.where(np.arange(n) < n // 2, 0.0, 0.1)
    for i in range(n):
        track.landmarks[i] = source.landmarks
        track.landmarks[i, 468:, 0] += ramp[i] * eye_width
    response = nominal_response(source.landmarks)
    e, pose = np.repeat(source.expression[None], n, 0), np.repeat(source.pose[None], n, 0)

    def seen(gaze: np.ndarray) -> np.ndarray:
        return iris_offsets(landmarks.landmarks(e, 0.6 * gaze.reshape(n, 4), pose))

    targets = gaze_targets(track, 0, source.landmarks, "relative")
    gaze = transfer_gaze(track, 0, source.landmarks, "relative", response)
    frames = np.arange(0, n, 2)
    fixed = correct_gaze(gaze, targets, frames, seen(gaze)[frames], source.landmarks, response)
    late = slice(n - 5, n)
    before = np.abs(seen(gaze)[late, :, 0] - targets[late, :, 0]).mean()
    after = np.abs(seen(fixed)[late, :, 0] - targets[late, :, 0]).mean()
    assert before > 0.03 and after < 0.5 * before
    assert np.abs(fixed[:5]).max() < 0.01
    # frames the landmarker did not find are skipped, not taken as a look
    lost = seen(gaze)[frames]
    lost[-2:] = np.nan
    assert np.all(np.isfinite(correct_gaze(gaze, targets, frames, lost, source.landmarks,
                                           response)))


def test_driven_pose_loses_frame_to_frame_noise(astronaut_file: Path) -> None:
    model = FaceModel.canonical()
    source, _ = load_source(astronaut_file, SourceOptions(), model, None)
    n = 40
    rng = np.random.default_rng(1)
    pose = np.tile([0.0, 0.0, 0.0, 200.0, 200.0, 10.0], (n, 1))
    pose[:, 1] = np.linspace(0.0, 0.4, n) + rng.normal(0, 0.01, n)  # a turn, with noise
    pose[:, 3] += rng.normal(0, 0.5, n)
    track = _track(n, pose, np.zeros((n, 51)))

    def driven(sigma: float) -> np.ndarray:
        return drive(source, track, model, MotionOptions(retarget=False, residual=False,
                                                         ref_frame=0, pose_sigma=sigma)).pose

    raw, smooth = driven(0.0), driven(2.0)
    rough = [np.abs(np.diff(p[:, [1, 3]], 2, axis=0)).mean(0) for p in (raw, smooth)]
    assert np.all(rough[1] < 0.5 * rough[0])
    assert abs(smooth[-5, 1] - raw[-5, 1]) < 0.03  # the turn itself is kept


def test_residual_motion_carries_what_the_rig_misses(astronaut_file: Path) -> None:
    from f2fcli.tracking.keypoints import LIP_OUTER_LOWER

    model = FaceModel.canonical()
    source, _ = load_source(astronaut_file, SourceOptions(), model, None)
    n = 10
    pose = np.repeat(source.pose[None].astype(np.float64), n, 0)
    pose[:, 2] += np.linspace(0.0, 0.2, n)  # the driver rolls its head
    pose[:, 3] += np.linspace(0.0, 12.0, n)
    expression = np.repeat(source.expression[None], n, 0)
    track = _track(n, pose, expression)
    track.identity, track.identity_detail = source.identity, source.identity_detail
    observed = source.mesh(model, pose, expression)[..., :2]
    lip = list(LIP_OUTER_LOWER)
    observed[5:, lip, 1] += 6.0  # from frame 5 on, a lower lip the rig cannot pull down
    track.landmarks[:, :468, :2] = observed

    def driven(**kw) -> np.ndarray:
        motion = drive(source, track, model, MotionOptions(retarget=False, ref_frame=0, **kw))
        return source.mesh(model, motion.pose, motion.expression, motion.offset)[..., :2]

    with_residual = driven()
    assert np.abs(with_residual[-1] - observed[-1]).max() < 0.5  # the rigid part is the pose
    assert np.abs(with_residual[0] - observed[0]).max() < 0.2
    assert np.abs(driven(residual=False)[-1, lip, 1] - observed[-1, lip, 1]).mean() > 5.0
    eyes_only = driven(region="eyes")  # no head motion, and the lips keep still
    assert np.abs(eyes_only[-1, lip] - eyes_only[0, lip]).max() < 0.2


def test_self_reenactment_uses_the_sources_own_frame(astronaut_file: Path) -> None:
    from f2fcli.pipeline.motion import Reference, reference_frame, source_frame

    model = FaceModel.canonical()
    source, _ = load_source(astronaut_file, SourceOptions(), model, None)
    n = 6
    track = _track(n, np.zeros((n, 6)), np.zeros((n, 51)))
    rng = np.random.default_rng(0)
    for i in range(n):  # other faces: the source's landmarks with a few px of change
        track.landmarks[i] = source.landmarks + rng.normal(0, 4.0, (478, 3))
    assert source_frame(track, source.landmarks) is None
    # frame 4 is the photo itself, only moved and scaled in the video
    track.landmarks[4] = source.landmarks * 0.8 + np.array([30.0, -12.0, 0.0])
    assert source_frame(track, source.landmarks) == 4
    assert reference_frame(track, None, source.landmarks) == Reference(4, exact=True)
    # the user's choice wins
    assert reference_frame(track, 2, source.landmarks) == Reference(2, exact=True)
    track.landmarks[4] = track.landmarks[3]
    chosen = reference_frame(track, None, source.landmarks)  # another face: not exact
    assert not chosen.exact and 0 <= chosen.frame < n


def test_iris_response_is_measured_on_rendered_frames(astronaut_file: Path) -> None:
    from f2fcli.pipeline.renderer import WarpFaceRenderer, crop_motion, iris_response, observer
    from f2fcli.tracking.landmarks import FaceLandmarker

    model = FaceModel.canonical()
    source, _ = load_source(astronaut_file, SourceOptions(), model, None)
    renderer = WarpFaceRenderer()
    prepared = renderer.prepare(source.crop(), crop_motion(model, source, source.box,
                                                           source.pose[None],
                                                           source.expression[None]))
    observe = observer(renderer, prepared, model, source, source.box, FaceLandmarker(threads=1))
    response = iris_response(observe, source)
    assert response.shape == (2, 2, 2)
    eye_width = np.linalg.norm(source.landmarks[133, :2] - source.landmarks[33, :2])
    right, up = response[:, 0], response[:, 1]
    # both irises follow the requested look: right moves them right, up moves them up
    assert np.all(right[:, 0] > 0.05 * eye_width) and np.all(np.abs(right[:, 1]) < right[:, 0])
    assert np.all(up[:, 1] < 0)


def test_read_back_corrects_a_renderer_that_shows_less(astronaut_file: Path) -> None:
    """A 'renderer' that shows only 60 % of each expression change: reading its frames back
    must make retargeting ask for more, and bring what is read closer to the driver."""
    from f2fcli.pipeline.retarget import Driven, retarget
    from f2fcli.tracking.channels import EXPR_INDEX, GAZE_CHANNELS

    model, source, landmarks, blendshapes = _retarget_setup(astronaut_file)
    n = 16
    wanted = np.repeat(source.expression[None], n, 0)
    ramp = np.sin(np.linspace(0.0, np.pi, n))
    jaw = EXPR_INDEX["jawOpen"]
    wanted[:, jaw] += 0.6 * ramp
    pose = np.repeat(source.pose[None], n, 0)
    driver = landmarks.landmarks(wanted, np.zeros((n, 4)), pose)
    track = _track(n, pose, np.zeros((n, 51)))
    track.landmarks[:] = np.concatenate([driver, np.zeros((n, 478, 1))], 2)

    def weak(p: np.ndarray, e: np.ndarray, g: np.ndarray, offset=None) -> np.ndarray:
        shown = source.expression + 0.6 * (e - source.expression)
        return landmarks.landmarks(shown, g.reshape(len(g), 4), p, offset)

    still = np.repeat(source.expression[None], n, 0)
    # as `motion.drive` does: the gaze is held, so the eyeLook scores do not count
    weights = np.ones(51)
    weights[list(GAZE_CHANNELS)] = 0.0
    driven = Driven(pose=pose, expression=still, gaze=np.zeros((n, 2, 2)), ref=0,
                    mode="relative", scale=1.0, free=np.ones(51, bool), weights=weights)
    args = (model, source, track, driven, blendshapes)
    plain = retarget(*args)
    fed = retarget(*args, observe=weak)
    target = blendshapes(driver)[:, 1:]

    def read_error(res) -> np.ndarray:
        read = blendshapes(weak(pose, res.expression, np.zeros((n, 2, 2))))[:, 1:]
        return (np.abs(read - target) * weights).mean(0)

    assert fed.expression[n // 2, jaw] > plain.expression[n // 2, jaw] + 0.1
    fed_error, plain_error = read_error(fed), read_error(plain)
    assert fed_error[jaw] < 0.8 * plain_error[jaw]  # the channel the renderer weakens (0.71)
    assert fed_error.mean() < 0.95 * plain_error.mean()  # (0.89)


def test_solver_anchors_start_from_the_source_and_blend_smoothly() -> None:
    from f2fcli.pipeline.retarget import _anchors

    rng = np.random.default_rng(3)
    source = np.zeros(51)
    free = np.arange(10, 30)
    # two groups of driven expressions: near rest and a strong shape
    driven = np.zeros((40, 51))
    driven[20:, free[:5]] = 0.8
    driven[:, free] += rng.normal(0.0, 0.02, (40, len(free)))
    anchors, weights = _anchors(source, driven, free, 4)
    assert np.allclose(anchors[0], source) and len(anchors) <= 4
    assert np.allclose(weights.sum(1), 1.0)
    # rest frames lean on the source's slopes, the strong shape's on an anchor near it
    assert weights[:20, 0].mean() > 0.5
    strong = np.argmax(weights[20:].mean(0))
    assert strong > 0 and np.allclose(anchors[strong, free[:5]], 0.8, atol=0.1)
    # the weights change little between neighbouring expressions (no jumps between frames)
    near = driven[25:26].copy()
    near[0, free] += 0.01
    _, w2 = _anchors(source, np.concatenate([driven, near]), free, 4)
    assert np.abs(w2[-1] - w2[25]).max() < 0.1


def test_head_similarity_follows_travel_and_lets_sway_and_turns_be() -> None:
    from f2fcli.pipeline.head import SWAY, head_similarity, skull_centre, stabilise_pose
    from f2fcli.tracking.face_model import transform_points

    model = FaceModel.canonical()
    source = np.array([0.0, 0.0, 0.0, 250.0, 240.0, 12.0])
    poses = np.repeat(source[None], 4, 0)
    poses[1, 3:5] += (120.0, -40.0)  # travel of about two face widths
    poses[2, 5] *= 1.6  # towards the camera
    poses[3, 4] += 0.5 * SWAY[0] * 12.5 * 12.0  # a sway: half of what starts to carry
    head = head_similarity(model, source, poses)
    np.testing.assert_allclose(head[0], [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    np.testing.assert_allclose(head[1][:, 2], (120.0, -40.0), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(head[2][:, :2]), 1.6**2, rtol=1e-6)
    np.testing.assert_allclose(head[3], [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    # a head turning about its skull's centre: the nose swings round, the skull stays
    centre = skull_centre(model)[None]
    turned = source.copy()
    turned[:3] = (0.0, np.radians(30.0), 0.0)
    turned[3:5] += (transform_points(centre, source, model.pivot)
                    - transform_points(centre, turned, model.pivot))[0, :2]
    assert np.linalg.norm(turned[3:5] - source[3:5]) > 30.0  # the nose tip's travel
    carried = head_similarity(model, source, turned[None], sway=None)[0]
    np.testing.assert_allclose(carried[:, :2], np.eye(2), atol=0.02)
    assert np.abs(carried[:, 2]).max() < 0.01
    # the face drawn at the stabilised pose and carried by the similarity is the face
    vertices = model.mean
    for pose, h in zip(poses[:3], head[:3]):
        drawn = transform_points(vertices, stabilise_pose(pose[None], h[None])[0], model.pivot)
        carried = drawn[:, :2] @ h[:, :2].T + h[:, 2]
        np.testing.assert_allclose(carried, transform_points(vertices, pose, model.pivot)[:, :2],
                                   atol=1e-6)
