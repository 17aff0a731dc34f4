"""The training-free warp renderer on a real face: scikit-image's astronaut (public domain).

The source mesh comes from the project's own tracker and face-model fit, moved into a
256x256 face crop; driven meshes are made by editing it directly.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import psnr
from skimage import data

from f2fcli.renderers.warp import PreparedSource, WarpRenderer, WarpSettings
from f2fcli.renderers.warp.layout import mesh_topology
from f2fcli.tracking import keypoints as kp
from f2fcli.tracking.channels import EXPR_INDEX
from f2fcli.tracking.face_model import FaceModel, transform_points, warp_pose
from f2fcli.tracking.fitting import fit_image
from f2fcli.tracking.tracker import VideoFaceTracker

R = 256


def luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def polygon_mask(points: np.ndarray, erode: int = 0) -> np.ndarray:
    mask = np.zeros((R, R), np.uint8)
    cv2.fillPoly(mask, [np.rint(points * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    if erode:
        mask = cv2.erode(mask, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return mask > 0


@pytest.fixture(scope="module")
def fitted():
    """The astronaut, her face-model fit, and a function expression -> mesh in crop pixels."""
    cv2.setNumThreads(1)
    image = data.astronaut()
    obs = VideoFaceTracker(threads=1)(image)
    assert obs.found
    model = FaceModel.canonical()
    fit = fit_image(model, obs.landmarks, obs.blendshapes)
    verts = model.vertices(fit.identity.s, fit.expression[0], fit.identity.detail)
    pts = transform_points(verts, fit.hp[0], model.pivot)
    lo, hi = pts[:, :2].min(0), pts[:, :2].max(0)
    size = float((hi - lo).max()) * 1.8
    origin = (lo + hi) / 2 - size / 2
    s = R / size
    m = np.array([[s, 0, -origin[0] * s], [0, s, -origin[1] * s]])
    crop = cv2.warpAffine(image, m, (R, R), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    hp = warp_pose(fit.hp[0], s, -origin * s)

    def mesh(expression: np.ndarray) -> np.ndarray:
        v = model.vertices(fit.identity.s, expression, fit.identity.detail)
        return transform_points(v, hp, model.pivot)

    return crop, fit.expression[0].copy(), mesh


@pytest.fixture(scope="module")
def face(fitted) -> tuple[np.ndarray, np.ndarray]:
    """(crop (R, R, 3) uint8, source mesh (468, 3) in crop pixels)."""
    crop, expression, mesh = fitted
    return crop, mesh(expression)


@pytest.fixture(scope="module")
def renderer() -> WarpRenderer:
    return WarpRenderer()


@pytest.fixture(scope="module")
def prepared(face, renderer) -> PreparedSource:
    crop, pts = face
    return renderer.prepare(crop, pts)


def face_outline(pts: np.ndarray, renderer: WarpRenderer) -> np.ndarray:
    return pts[mesh_topology()[1], :2]


def face_radius(outline: np.ndarray) -> float:
    return float(np.linalg.norm(outline - outline.mean(0), axis=1).mean())


def similarity(pts: np.ndarray, angle_deg: float, scale: float, shift) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """Rotate/scale all points about the face centre and shift; returns (points, 2x3 matrix)."""
    c = pts[:, :2].mean(0)
    m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), angle_deg, scale)
    m[:, 2] += shift
    out = pts.copy()
    out[:, :2] = pts[:, :2] @ m[:, :2].T + m[:, 2]
    out[:, 2] = pts[:, 2] * scale
    return out, m


def test_identity_returns_the_source(face, renderer, prepared):
    crop, pts = face
    out = renderer.render(prepared, pts[None])
    assert out.shape == (1, R, R, 3) and out.dtype == np.uint8
    assert psnr(out[0], crop) > 40.0


def test_batch_shape_and_dtype(face, renderer, prepared):
    crop, pts = face
    moved, _ = similarity(pts, 3.0, 1.02, (2.0, -1.0))
    batch = np.stack([pts, moved, pts])
    out = renderer.render(prepared, batch)
    assert out.shape == (3, R, R, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], out[2])
    assert not np.array_equal(out[0], out[1])
    # one mesh without the batch axis is one frame
    assert renderer.render(prepared, moved).shape == (1, R, R, 3)


def test_similarity_of_the_mesh_is_a_similarity_of_the_face(face, renderer, prepared):
    crop, pts = face
    target, m = similarity(pts, 8.0, 1.06, (4.0, -3.0))
    out = renderer.render(prepared, target[None])[0]
    expected = cv2.warpAffine(crop, m, (R, R), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    inside = polygon_mask(face_outline(target, renderer), erode=3)
    assert inside.sum() > 0.15 * R * R
    assert psnr(out, expected, inside) >= 28.0
    # and it really moved: the unwarped source does not match
    assert psnr(crop, expected, inside) < psnr(out, expected, inside) - 6.0


def test_crop_border_stays_still(face, renderer, prepared):
    crop, pts = face
    target, _ = similarity(pts, -10.0, 1.1, (12.0, 8.0))
    out = renderer.render(prepared, target[None])[0].astype(int)
    src = crop.astype(int)
    border = np.ones((R, R), bool)
    border[3:-3, 3:-3] = False
    diff = np.abs(out - src)[border]
    assert diff.mean() < 1.0
    assert diff.max() <= 24
    # the outermost pixel ring does not move at all
    ring = np.ones((R, R), bool)
    ring[1:-1, 1:-1] = False
    assert np.abs(out - src)[ring].max() <= 2


def test_background_motion_is_smooth_outside_the_face(face, renderer, prepared):
    crop, pts = face
    target, _ = similarity(pts, 0.0, 1.0, (10.0, 0.0))
    out = renderer.render(prepared, target[None])[0]
    outline = face_outline(pts, renderer)
    radius = face_radius(outline)
    cy = int(np.rint(outline[:, 1].mean()))
    x_right = int(np.ceil(outline[:, 0].max()))
    rows = slice(cy - 2, cy + 3)
    # right next to the face the background follows the head (a 10 px shift) ...
    near_src = luma(crop[rows, x_right:x_right + 3]).mean(0)
    near_out = luma(out[rows, x_right + 10:x_right + 13]).mean(0)
    assert np.abs(near_src - near_out).mean() < 12.0
    # ... and half a face radius out it is still
    far = slice(x_right + 10 + int(0.5 * radius), x_right + 22 + int(0.5 * radius))
    assert np.abs(luma(out[rows, far]) - luma(crop[rows, far])).mean() < 1.0


def open_mouth(pts: np.ndarray, amount: float) -> np.ndarray:
    """Drop the lower lip and the jaw by `amount` px, fading out towards the mouth corners."""
    out = pts.copy()
    corners = (pts[kp.MOUTH_CORNER_R, :2] + pts[kp.MOUTH_CORNER_L, :2]) / 2
    chin = pts[kp.CHIN, :2]
    t = np.clip((pts[:, 1] - corners[1]) / max(chin[1] - corners[1], 1e-6), 0.0, 1.0)
    w = np.sqrt(t)
    lower = list(kp.LIP_INNER_LOWER[1:-1]) + list(kp.LIP_OUTER_LOWER[1:-1])
    w[lower] = 1.0
    w[list(kp.LIP_INNER_UPPER) + list(kp.LIP_OUTER_UPPER)] = 0.0
    out[:, 1] += w * amount
    return out


def test_opening_the_mouth_paints_a_dark_interior(face, renderer, prepared):
    crop, pts = face
    target = open_mouth(pts, 0.08 * R)
    out = renderer.render(prepared, target[None])[0]
    # the middle of the driven opening is new: it must be dark, not stretched lips or teeth
    mid = (target[13, :2] + target[14, :2]) / 2
    x, y = np.rint(mid).astype(int)
    patch = luma(out[y - 2:y + 3, x - 4:x + 5])
    skin = luma(crop)[polygon_mask(face_outline(pts, renderer), erode=8)]
    assert patch.mean() < 0.45 * np.median(skin)
    # the cavity is a colour, not grey noise: channels ordered like the lips (reddish)
    rgb = out[y - 2:y + 3, x - 4:x + 5].reshape(-1, 3).mean(0)
    assert rgb[0] >= rgb[2]
    # without the fill the same spot shows whatever the warp stretched there
    plain = WarpRenderer(WarpSettings(mouth_fill=False))
    raw = plain.render(plain.prepare(crop, pts), target[None])[0]
    assert luma(raw[y - 2:y + 3, x - 4:x + 5]).mean() > patch.mean() + 20


def test_opening_the_jaw_through_the_face_model(fitted, face, renderer, prepared):
    crop, expression, mesh = fitted
    jaw = expression.copy()
    jaw[EXPR_INDEX["jawOpen"]] = 0.8
    target = mesh(jaw)
    out = renderer.render(prepared, target[None])[0]
    mid = (target[13, :2] + target[14, :2]) / 2
    x, y = np.rint(mid).astype(int)
    assert luma(out[y - 1:y + 2, x - 3:x + 4]).mean() < 70


def test_a_dropped_jaw_leaves_the_collar_still(fitted, face, renderer, prepared):
    """Only a narrow band next to the face follows its contour: in real footage the neck and
    collar stay where they are when the jaw drops."""
    crop, expression, mesh = fitted
    jaw = expression.copy()
    jaw[EXPR_INDEX["jawOpen"]] = 1.0
    target = mesh(jaw)
    out = renderer.render(prepared, target[None])[0].astype(int)
    outline = face_outline(face[1], renderer)
    radius = face_radius(outline)
    chin = face[1][kp.CHIN, :2]
    drop = target[kp.CHIN, 1] - chin[1]
    assert drop > 0.05 * radius  # the chin moves ...
    x, y = np.rint(chin).astype(int)
    near = slice(y + 2, y + int(0.1 * radius)), slice(x - 8, x + 9)
    far = slice(y + int(0.5 * radius), y + int(0.7 * radius)), slice(x - 8, x + 9)
    assert np.abs(out[near] - crop[near]).mean() > 2.0  # ... the skin under it with it ...
    assert np.abs(out[far] - crop[far]).mean() < 1.0  # ... and half a face radius down, nothing


def test_closing_the_mouth_again_restores_the_source(face, renderer, prepared):
    crop, pts = face
    out = renderer.render(prepared, np.stack([open_mouth(pts, 0.06 * R), pts]))
    assert psnr(out[1], crop) > 40.0


def close_eyes(pts: np.ndarray) -> np.ndarray:
    out = pts.copy()
    for upper, lower in ((kp.UPPER_LID_R, kp.LOWER_LID_R), (kp.UPPER_LID_L, kp.LOWER_LID_L)):
        out[list(upper[1:-1])] = pts[list(lower[1:-1])]
    return out


def eye_boxes(pts: np.ndarray):
    for upper, lower in ((kp.UPPER_LID_R, kp.LOWER_LID_R), (kp.UPPER_LID_L, kp.LOWER_LID_L)):
        loop = np.concatenate([pts[list(upper), :2], pts[list(lower[::-1]), :2]])
        lo = np.floor(loop.min(0)).astype(int) - 3
        hi = np.ceil(loop.max(0)).astype(int) + 4
        yield polygon_mask(loop), (slice(lo[1], hi[1]), slice(lo[0], hi[0]))


def test_closing_the_eyes_changes_them_without_holes(face, renderer, prepared):
    crop, pts = face
    out = renderer.render(prepared, close_eyes(pts)[None])[0]
    for _eye, box in eye_boxes(pts):
        before, after = luma(crop)[box], luma(out)[box]
        assert np.abs(before - after).mean() > 4.0
        # no holes: nothing black or darker than the source's darkest pixel appeared
        assert after.min() >= min(before.min(), luma(crop).min()) - 1
        assert (out[box].max(axis=2) > 8).all()
    # the rest of the face is untouched
    far = ~polygon_mask(face_outline(pts, renderer), erode=0)
    assert psnr(out, crop, far) > 40.0


def test_a_blink_covers_the_eye_with_the_lid(fitted, face):
    crop, expression, mesh = fitted
    _, pts = face
    blink = expression.copy()
    blink[EXPR_INDEX["eyeBlinkLeft"]] = blink[EXPR_INDEX["eyeBlinkRight"]] = 1.0
    # without the lash fringe (its own test): here only the lid over the iris counts
    renderer = WarpRenderer(WarpSettings(lash_fringe=0.0))
    out = renderer.render(renderer.prepare(*face), mesh(blink)[None])[0]
    for eye, box in eye_boxes(pts):
        before, after = luma(crop)[box], luma(out)[box]
        # the dark iris and pupil mostly vanished under the lid
        dark = np.percentile(luma(crop)[eye], 20)
        assert (after < dark).sum() < 0.5 * (before < dark).sum()
        assert (out[box].max(axis=2) > 8).all()


def _blinking(fitted, amount: float) -> np.ndarray:
    """The fitted face's mesh with both eyes `amount` shut."""
    _crop, expression, mesh = fitted
    e = expression.copy()
    e[EXPR_INDEX["eyeBlinkLeft"]] = e[EXPR_INDEX["eyeBlinkRight"]] = amount
    return mesh(e)


def _with_and_without(face, prepared, target: np.ndarray, **settings) -> tuple:
    """Frames of `target` and of the source mesh, by the default renderer and by one with
    `settings` changed."""
    meshes = np.stack([target, face[1]])
    other = WarpRenderer(WarpSettings(**settings))
    return (WarpRenderer().render(prepared, meshes),
            other.render(other.prepare(*face), meshes))


def test_a_narrowing_eye_darkens_towards_its_own_darkest_tone(fitted, face, prepared):
    """Lashes and the lid's shadow fill the slit of a lowering lid; the shading never goes
    darker than the eye's own darkest tone, and a wide-open eye is not shaded."""
    target = _blinking(fitted, 0.6)
    shaded, unshaded = _with_and_without(face, prepared, target, lash_shade=0.0)
    for e, (_eye, box) in enumerate(eye_boxes(target)):
        a, b = luma(shaded[0])[box], luma(unshaded[0])[box]
        assert a.mean() < b.mean() - 1.0
        assert a.min() >= min(b.min(), float(prepared.lashes[e].mean())) - 1
    assert np.array_equal(shaded[1], unshaded[1])


def test_a_shut_eye_hangs_its_lashes_over_the_lower_lid(fitted, face, prepared):
    """Below the lower lid of a shut eye a band darkens towards the eye's darkest tone (a
    slit with a bright rim read as an open eye); an open eye keeps its lower lid."""
    target = _blinking(fitted, 1.0)
    fringed, plain = _with_and_without(face, prepared, target, lash_fringe=0.0)
    for e, lower in enumerate((kp.LOWER_LID_R, kp.LOWER_LID_L)):
        middle = target[list(lower[3:6]), :2].mean(0)
        width = np.linalg.norm(target[lower[0], :2] - target[lower[-1], :2])
        x, y = np.rint(middle + [0.0, 0.03 * width]).astype(int)
        a, b = luma(fringed[0])[y - 1:y + 2, x - 2:x + 3], luma(plain[0])[y - 1:y + 2, x - 2:x + 3]
        assert a.mean() < b.mean() - 10.0
        assert a.min() >= min(b.min(), float(prepared.lashes[e].mean())) - 1
    assert np.array_equal(fringed[1], plain[1])
    # the fringe does not depend on the slit's own shading being on
    unshaded = WarpRenderer(WarpSettings(lash_shade=0.0))
    bare = WarpRenderer(WarpSettings(lash_shade=0.0, lash_fringe=0.0))
    assert luma(unshaded.render(unshaded.prepare(*face), target[None])[0]).sum() \
        < luma(bare.render(bare.prepare(*face), target[None])[0]).sum()


def test_the_nearer_surface_wins_when_the_head_turns(face, renderer, prepared):
    crop, pts = face
    # a 3D turn about the vertical axis through the face centre
    c = pts.mean(0)
    a = np.radians(25.0)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    target = (pts - c) @ rot.T + c
    out = renderer.render(prepared, target[None])[0]
    # the nose tip stays the nose tip (not covered by a cheek drawn later)
    tip_src = crop[tuple(np.rint(pts[kp.NOSE_TIP, 1::-1]).astype(int))].astype(int)
    tx, ty = np.rint(target[kp.NOSE_TIP, :2]).astype(int)
    tip_out = out[ty - 1:ty + 2, tx - 1:tx + 2].reshape(-1, 3).astype(int)
    assert np.abs(tip_out - tip_src).sum(1).min() < 30


def test_rejects_bad_input(face, renderer, prepared):
    crop, pts = face
    with pytest.raises(ValueError):
        renderer.prepare(crop[..., 0], pts)
    with pytest.raises(ValueError):
        renderer.prepare(crop, pts[:100])
    with pytest.raises(ValueError):
        renderer.render(prepared, np.zeros((2, 468, 2)))


def test_non_finite_meshes_give_the_source(face, renderer, prepared):
    crop, pts = face
    bad = pts.copy()
    bad[5, 0] = np.nan
    out = renderer.render(prepared, bad[None])
    np.testing.assert_array_equal(out[0], crop)


def test_a_pressed_mouth_source_is_reproduced_and_opens(face, renderer):
    crop, pts = face
    up, lo = list(kp.LIP_INNER_UPPER[1:-1]), list(kp.LIP_INNER_LOWER[1:-1])
    pressed = pts.copy()
    mid = (pts[up] + pts[lo]) / 2
    pressed[up] = mid + [0.0, 0.8, 0.0]  # the upper inner lip slightly below the lower one
    pressed[lo] = mid - [0.0, 0.8, 0.0]
    target = open_mouth(pressed, 0.08 * R)
    x, y = np.rint((target[13, :2] + target[14, :2]) / 2).astype(int)
    skin = luma(crop)[polygon_mask(face_outline(pts, renderer), erode=8)]
    no_teeth = WarpRenderer(WarpSettings(teeth=0.0))
    out = no_teeth.render(no_teeth.prepare(crop, pressed), np.stack([pressed, target]))
    assert psnr(out[0], crop) > 40.0
    # the opening is a dark cavity, not stretched lip texture
    dark = luma(out[1][y - 1:y + 2, x - 4:x + 5]).mean()
    assert dark < 0.45 * np.median(skin)
    # by default the upper teeth show under the upper lip: light, and less red than the lips;
    # the relaxed lips of this tall opening cover the lower row, so its middle stays dark
    teeth = renderer.render(renderer.prepare(crop, pressed), target[None])[0]
    yt = int(round(target[13, 1] + 0.2 * (target[14, 1] - target[13, 1])))
    patch = teeth[yt - 1:yt + 2, x - 4:x + 5].astype(np.float64).mean((0, 1))
    assert luma(patch[None, None]).mean() > dark + 40.0
    lip = np.concatenate([pts[list(kp.LIP_OUTER_UPPER), :2], pts[list(kp.LIP_INNER_UPPER), :2][::-1]])
    lips = crop[polygon_mask(lip)].astype(np.float64).mean(0)
    assert (patch[0] - patch[2]) / patch.mean() < 0.8 * (lips[0] - lips[2]) / lips.mean()
    gap = target[14, 1] - target[13, 1]
    y0, y1 = (int(round(target[13, 1] + f * gap)) for f in (0.75, 0.95))
    assert luma(teeth[y0:y1, x - 4:x + 5]).mean() < 0.5 * luma(patch[None, None]).mean()


def test_settings_are_checked():
    with pytest.raises(ValueError):
        WarpSettings(eye_mode="wink")
    with pytest.raises(ValueError):
        WarpSettings(ring_fractions=(0.5, 0.2))
    with pytest.raises(ValueError):
        WarpSettings(lash_open=0.0)
    with pytest.raises(ValueError):
        WarpSettings(lash_shade=1.5)
    with pytest.raises(ValueError):
        WarpSettings(crown_plateau=1.0)
    with pytest.raises(ValueError):
        WarpSettings(lash_fringe=-0.1)


def test_gaze_slides_the_eye_interior(face, renderer, prepared):
    crop, pts = face
    plain = renderer.render(prepared, pts[None])[0]
    still = renderer.render(prepared, pts[None], gaze=np.zeros((1, 2, 2)))[0]
    assert np.array_equal(plain, still)
    # both eyes look towards the subject's left, i.e. image right in an upright face
    out = renderer.render(prepared, pts[None], gaze=np.array([[[1.0, 0.0], [1.0, 0.0]]]))[0]
    for eye, box in eye_boxes(pts):
        before, after = luma(crop)[box], luma(out)[box]
        assert np.abs(before - after).mean() > 2.0
        # the dark iris moves right: darkness-weighted column centroid
        cols = np.arange(before.shape[1])[None, :]
        m = eye[box]

        def centroid(img):
            w = np.clip(255.0 - img, 0.0, None) ** 2 * m
            return float((w * cols).sum() / w.sum())

        assert centroid(after) > centroid(before) + 0.5
    far = ~polygon_mask(face_outline(pts, renderer), erode=0)
    assert psnr(out, crop, far) > 40.0


def test_the_iris_moves_whole_towards_the_corner(face, renderer, prepared):
    crop, pts = face
    gaze = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    out = renderer.render(prepared, pts[None], gaze=gaze)[0]
    for eye, box in eye_boxes(pts):
        before, after = luma(crop)[box], luma(out)[box]
        m = eye[box]
        dark = np.percentile(before[m], 25)
        cols = np.arange(before.shape[1])[None, :]

        def iris(img):
            w = (img < dark) & m
            return int(w.sum()), float((w * cols).sum() / max(w.sum(), 1))

        (n0, c0), (n1, c1) = iris(before), iris(after)
        width = m.any(0).sum()
        # moved by a good part of the eye's width, and not smeared thin or wide
        assert c1 - c0 > 0.12 * width, (c0, c1, width)
        assert 0.6 * n0 < n1 < 1.4 * n0, (n0, n1)


def test_a_lowering_lid_carries_its_lash_band_down(fitted, face, renderer, prepared):
    """The band above the lid margin (lashes, the lid's dark edge) moves down with a closing
    lid instead of stretching: what the lid uncovers above it is skin, brighter than the band."""
    crop, expression, mesh = fitted
    _, pts = face
    shut = expression.copy()
    shut[EXPR_INDEX["eyeBlinkLeft"]] = shut[EXPR_INDEX["eyeBlinkRight"]] = 0.8
    target = mesh(shut)
    out = renderer.render(prepared, target[None])[0]
    for upper, band in ((kp.UPPER_LID_R[1:-1], kp.LID_BAND_R),
                        (kp.UPPER_LID_L[1:-1], kp.LID_BAND_L)):
        def between(p: np.ndarray) -> np.ndarray:
            return polygon_mask(np.concatenate([p[list(upper), :2], p[list(band[::-1]), :2]]))
        lash_band = luma(crop)[between(pts)].mean()
        uncovered = luma(out)[between(target)].mean()
        assert uncovered > lash_band + 5.0  # stretched, the band stays as dark (-3)


def crown_patch(pts: np.ndarray, renderer: WarpRenderer, out: float, half: int = 4
                ) -> tuple[slice, slice]:
    """A small window `out` face radii straight above the top of the face outline."""
    outline = face_outline(pts, renderer)
    top = outline[np.argmin(outline[:, 1])]
    y = int(np.rint(top[1] - out * face_radius(outline)))
    x = int(np.rint(top[0]))
    return slice(y - half, y + half + 1), slice(x - 3 * half, x + 3 * half + 1)


def test_the_hair_on_top_moves_with_the_head(face, renderer, prepared):
    crop, pts = face
    target, _ = similarity(pts, 0.0, 1.0, (0.0, -8.0))
    out = renderer.render(prepared, target[None])[0]
    rows, cols = crown_patch(pts, renderer, 0.25)
    above = (slice(rows.start - 8, rows.stop - 8), cols)
    # a quarter radius above the forehead the picture rides up with the head ...
    assert np.abs(luma(out[above]) - luma(crop[rows, cols])).mean() < 6.0
    assert np.abs(luma(out[above]) - luma(crop[above])).mean() > \
        np.abs(luma(out[above]) - luma(crop[rows, cols])).mean() + 3.0
    # ... while beside the face, as far out, it has already nearly stopped
    test_background_motion_is_smooth_outside_the_face(face, renderer, prepared)


def nod(pts: np.ndarray, degrees: float) -> np.ndarray:
    """Tip the head forward about a horizontal axis level with the chin at the ears' depth,
    roughly where the skull sits on the spine (y down, z away from the camera)."""
    a = np.radians(degrees)
    c = np.array([pts[:, 0].mean(), pts[152, 1], pts[[234, 454], 2].mean()])
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return (pts - c) @ rot.T + c


def test_a_nod_turns_the_crown_less_than_the_forehead(face, renderer, prepared):
    crop, pts = face
    target = nod(pts, 12.0)
    top = int(np.argmin(pts[mesh_topology()[1], 1]))
    forehead_drop = float(target[mesh_topology()[1][top], 1] - pts[mesh_topology()[1][top], 1])
    assert forehead_drop > 4.0
    out = renderer.render(prepared, target[None])[0]
    rows, cols = crown_patch(pts, renderer, 0.2, half=8)
    a = luma(crop[rows, cols]).astype(np.float32)
    b = luma(out[rows, cols]).astype(np.float32)
    (_dx, dy), _r = cv2.phaseCorrelate(a, b)
    # the skull above curves back towards the pivot: its outline moves, but less
    assert 0.15 * forehead_drop < dy < 0.6 * forehead_drop


def test_where_the_iris_was_the_white_of_the_eye_shows(face, renderer):
    crop, pts = face
    # heavy lashes along the upper lids: painting the iris out from its surroundings alone
    # then gives a murky disc
    lashed = crop.copy()
    for eye, box in eye_boxes(pts):
        rows = np.nonzero(eye.any(1))[0]
        band = eye & (np.arange(R)[:, None] < rows.min() + 0.4 * (rows.max() - rows.min()))
        lashed[band] = (lashed[band] * 0.25).astype(np.uint8)
    gaze = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    out = luma(renderer.render(renderer.prepare(lashed, pts), pts[None], gaze=gaze)[0])
    plain_renderer = WarpRenderer(WarpSettings(sclera=0.0))
    plain = luma(plain_renderer.render(plain_renderer.prepare(lashed, pts), pts[None],
                                       gaze=gaze)[0])
    for eye, box in eye_boxes(pts):
        before = luma(crop)[box]
        m = eye[box]
        white = np.percentile(before[m], 85)
        # where the iris was and the moved one does not reach: the left part of its dark blob
        cols = np.arange(before.shape[1])[None, :]
        dark = (before < np.percentile(before[m], 25)) & m
        left = dark & (cols < np.percentile(np.nonzero(dark)[1], 30))
        now, murky = out[box][left].mean(), plain[box][left].mean()
        assert now > murky + 10.0, (now, murky)
        assert now > 0.7 * white, (now, white)


def test_teeth_are_recognised_in_an_open_source_mouth():
    from f2fcli.renderers.warp.mouth import teeth_showing

    skin = np.array([200.0, 165.0, 150.0])
    inner = np.array([[20.0, 20.0], [60.0, 20.0], [60.0, 32.0], [20.0, 32.0]])
    for fill, expected in (((150, 148, 140), 1.0), ((35, 20, 20), 0.0), ((190, 80, 80), 0.0)):
        image = np.full((50, 80, 3), skin, np.uint8)
        image[20:33, 20:61] = fill
        assert teeth_showing(image, inner, skin) == pytest.approx(expected, abs=0.05), fill


def test_own_teeth_shorten_the_synthetic_row():
    from f2fcli.renderers.warp import mouth

    colours = (np.array([90.0, 40.0, 40.0]), np.array([20.0, 10.0, 10.0]),
               np.array([230.0, 225.0, 215.0]))
    upper = np.stack([np.linspace(20, 120, 11), np.full(11, 40.0)], 1)
    lower = np.stack([np.linspace(20, 120, 11), 40.0 + 30.0 * np.sin(np.linspace(0, np.pi, 11))], 1)

    def upper_rows(shown: float) -> int:
        img = np.zeros((100, 140, 3), np.uint8)
        mouth.fill_cavity(img, upper, lower, 1.0, colours, 1.0, 1.0, shown)
        return int((luma(img[:54, 65:75]).mean(1) > 120).sum())

    full, rest = upper_rows(0.0), upper_rows(12.0)
    assert full >= 12  # a fifth of the 100 px mouth width, less the soft edges
    assert 0 < rest <= full - 6
    assert upper_rows(40.0) == 0


def test_teeth_stay_off_the_sides_of_a_tall_opening():
    from f2fcli.renderers.warp import mouth

    colours = (np.array([90.0, 40.0, 40.0]), np.array([20.0, 10.0, 10.0]),
               np.array([230.0, 225.0, 215.0]))
    arc = np.sin(np.linspace(0, np.pi, 11))
    x = np.linspace(30, 90, 11)
    upper = np.stack([x, 60.0 - 20.0 * arc], 1)  # a round "o", 60 px wide, 45 tall
    lower = np.stack([x, 60.0 + 25.0 * arc], 1)
    img = np.zeros((120, 120, 3), np.uint8)
    mouth.fill_cavity(img, upper, lower, 1.0, colours, 1.0, 1.0)
    light = luma(img) > 120
    assert light[38:50, 52:68].any()  # upper teeth under the middle of the upper lip
    assert not light[:, :38].any() and not light[:, 83:].any()  # none down the sides


def test_teeth_take_the_hue_of_the_eyes_white():
    from f2fcli.renderers.warp import mouth

    lip, skin = np.array([105.0, 50.0, 34.0]), np.array([129.0, 77.0, 47.0])
    warm = mouth.cavity_colours(lip, skin, 0.45, 0.16, 0.9, white=np.array([92.0, 67.0, 53.0]))[2]
    plain = mouth.cavity_colours(lip, skin, 0.45, 0.16, 0.9)[2]
    # under this orange light neutral teeth read blue-grey; the eyes' white says how warm
    assert warm[2] / warm[0] < 0.6 < plain[2] / plain[0]
    assert warm.max() == pytest.approx(plain.max())
    grey = mouth.cavity_colours(lip * 0 + 90, skin * 0 + 150, 0.45, 0.16, 0.9,
                                white=np.array([140.0, 140.0, 140.0]))[2]
    assert np.ptp(grey) < 1.0
    # dark green glasses over the eyes are no guide to the light
    shades = mouth.cavity_colours(lip, skin, 0.45, 0.16, 0.9, white=np.array([40.0, 70.0, 50.0]))
    assert np.allclose(shades[2], plain)


def test_a_dropped_jaw_shows_the_tongue_at_the_bottom_of_the_opening():
    from f2fcli.renderers.warp import mouth

    colours = (np.array([90.0, 40.0, 40.0]), np.array([20.0, 10.0, 10.0]),
               np.array([230.0, 225.0, 215.0]))
    arc = np.sin(np.linspace(0, np.pi, 11))
    x = np.linspace(20, 100, 11)
    upper = np.stack([x, 50.0 - 5.0 * arc], 1)  # 80 px wide, 35 tall
    lower = np.stack([x, 50.0 + 30.0 * arc], 1)
    img = np.full((100, 120, 3), 200, np.uint8)
    mouth.fill_cavity(img, upper, lower, 1.0, colours, 1.0, 0.0)
    middle, floor = luma(img[55:62, 55:65]).mean(), luma(img[70:77, 55:65]).mean()
    assert middle < 20.0  # dark behind the teeth line
    assert floor > middle + 15.0  # the tongue, in the lips' shade
    assert floor < luma(colours[0][None, None]).mean()


def test_the_neck_follows_the_chin_further_than_the_side_follows_the_cheek(face, renderer,
                                                                            prepared):
    _crop, pts = face
    outline = face_outline(pts, renderer)

    def half_reach(b: int) -> float:
        """How far out (face radii) the background still moves half as much as the contour."""
        dist = np.linalg.norm(prepared.mesh.ring_src[:, b] - outline[b], axis=1)
        return float(np.interp(0.5, prepared.mesh.ring_weights[::-1, b], dist[::-1])
                     / face_radius(outline))

    beside = half_reach(int(np.argmax(outline[:, 0])))
    below = half_reach(int(np.argmax(outline[:, 1])))
    # hair and wall beside the face stop soon; the neck follows the chin further
    assert 0.1 < beside < 0.2 and below > 1.3 * beside, (beside, below)
