"""Per-frame face observation in a video: detect once, then follow with landmark ROIs.

Detection runs on the first frame, after a scene cut, and whenever the landmark model's
presence score says the face was lost; otherwise the next crop comes from the previous
landmarks, as MediaPipe does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .detector import FaceDetection, FaceDetector, detect_tiled, window_around
from .landmarks import BlendshapeModel, FaceLandmarker, FaceLandmarks, roi_from_detection

# Mean absolute difference (0..1) of 32x32 grey thumbnails above which a frame is a new shot;
# talking-head motion stays far below it, a hard cut between shots lands well above.
SCENE_CUT_THRESHOLD = 0.12


@dataclass(frozen=True)
class FaceSelection:
    """Which face to follow when several are visible: by size rank, or nearest a box."""

    index: int = 0
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class FrameObservation:
    """What the models saw in one frame. Arrays are None when no face was found."""

    landmarks: np.ndarray | None
    blendshapes: np.ndarray | None
    confidence: float
    detected: bool

    @property
    def found(self) -> bool:
        return self.landmarks is not None

    @property
    def box(self) -> np.ndarray:
        """x, y, w, h around the landmarks (zeros when no face)."""
        if self.landmarks is None:
            return np.zeros(4, np.float32)
        return landmark_box(self.landmarks)


def _inside(face: np.ndarray, box: np.ndarray) -> float:
    """The share of `face`'s area (x, y, w, h) that lies inside `box`."""
    x0, y0 = np.maximum(face[:2], box[:2])
    x1, y1 = np.minimum(face[:2] + face[2:], box[:2] + box[2:])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / max(1e-9, float(face[2] * face[3]))


def select_face(faces: list[FaceDetection], selection: FaceSelection,
                near: np.ndarray | None = None) -> FaceDetection | None:
    """The face to follow: nearest `near` (the last known centre) when re-acquiring,
    else the face `selection.box` is drawn around (the most of its own area inside the box;
    None if no face is at least half inside), else the `selection.index`-th largest."""
    if not faces:
        return None
    if near is not None:
        return min(faces, key=lambda f: float(np.linalg.norm(f.center - near)))
    if selection.box is not None:
        box = np.asarray(selection.box, np.float32)
        centre = box[:2] + box[2:] / 2
        inside = [f for f in faces if _inside(f.box, box) >= 0.5]
        if not inside:
            return None
        return max(inside, key=lambda f: (_inside(f.box, box),
                                          -float(np.linalg.norm(f.center - centre))))
    if selection.index >= len(faces):
        return None
    return faces[selection.index]


def detect_faces(detector: FaceDetector, image: np.ndarray, selection: FaceSelection,
                 grids: tuple[int, ...] = ()) -> list[FaceDetection]:
    """Detections in `image`, also in `grids` of tiles (see `detect_tiled`); with
    `selection.box`, the area around the box is searched closely too: the face may be too
    small for the detector in the whole frame."""
    # the box's surroundings (a tight box) and the box itself (one drawn loosely round a face)
    windows = () if selection.box is None else (
        window_around(selection.box, *image.shape[:2]),
        window_around(selection.box, *image.shape[:2], scale=1.0))
    if not grids and not windows:
        return detector(image)
    return detect_tiled(detector, image, grids, windows)


def confirmed_faces(faces: list[FaceDetection], image: np.ndarray, landmarker: FaceLandmarker
                    ) -> list[tuple[FaceDetection, FaceLandmarks]]:
    """The detections whose settled landmarks the landmark model accepts, with them, in the
    given order: the detector's weak false positives (a textured patch in a recompressed
    photo) are dropped before a face is chosen by size or place, and so is a second
    detection whose landmarks settle on a face already confirmed."""
    confirmed: list[tuple[FaceDetection, FaceLandmarks]] = []
    for face in faces:
        landmarks = landmarker.settled(image, roi_from_detection(face))
        box = landmark_box(landmarks.points)
        if landmarks.present and all(_inside(box, landmark_box(other.points)) <= 0.5
                                     for _, other in confirmed):
            confirmed.append((face, landmarks))
    return confirmed


def choose_confirmed(confirmed: list[tuple[FaceDetection, FaceLandmarks]],
                     selection: FaceSelection, near: np.ndarray | None = None
                     ) -> FaceLandmarks | None:
    """`select_face` among confirmed faces; their landmarks, or None."""
    face = select_face([f for f, _ in confirmed], selection, near)
    return None if face is None else next(lm for f, lm in confirmed if f is face)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


class VideoFaceTracker:
    """Follows one face through consecutive frames of a video."""

    def __init__(self, selection: FaceSelection = FaceSelection(), threads: int | None = None,
                 use_cuda: bool = False, scene_cut: float = SCENE_CUT_THRESHOLD) -> None:
        self.selection = selection
        self.scene_cut = scene_cut
        self.detector = FaceDetector(threads=threads, use_cuda=use_cuda)
        self.landmarker = FaceLandmarker(threads=threads, use_cuda=use_cuda)
        self.blendshapes = BlendshapeModel(threads=threads, use_cuda=use_cuda)
        self.detections = 0
        self.scene_cuts = 0
        self._tracked: FaceLandmarks | None = None
        self._last_centre: np.ndarray | None = None
        self._thumb: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> FrameObservation:
        if self._is_scene_cut(image):
            self.scene_cuts += 1
            self._tracked, self._last_centre = None, None
        result, detected = None, False
        if self._tracked is not None:
            candidate = self.landmarker(image, self._tracked.next_roi())
            result = candidate if candidate.present else None
        if result is None:
            result, detected = self._detect(image), True
        self._tracked = result
        if result is None:
            return FrameObservation(None, None, 0.0, detected)
        self._last_centre = result.points[:, :2].mean(0)
        return FrameObservation(result.points, self.blendshapes(result.points),
                                result.presence, detected)

    def _detect(self, image: np.ndarray) -> FaceLandmarks | None:
        self.detections += 1
        faces = detect_faces(self.detector, image, self.selection)
        confirmed = confirmed_faces(faces, image, self.landmarker)
        return choose_confirmed(confirmed, self.selection, self._last_centre)

    def _is_scene_cut(self, image: np.ndarray) -> bool:
        thumb = _thumbnail(image)
        previous, self._thumb = self._thumb, thumb
        return previous is not None and float(np.abs(thumb - previous).mean()) > self.scene_cut


# A face found within this many face sizes (the long side of its landmarks' box) of where a
# lost face was last seen takes that face's number back; further away it is a new face.
REMATCH_DISTANCE = 1.5
# Frames between searches for faces that came into view while every known face is followed:
# a third of a second at 30 fps is soon enough for a face walking in, for one detector pass.
SEARCH_EVERY = 10


@dataclass
class _Followed:
    landmarks: FaceLandmarks | None  # None: lost in this shot
    centre: np.ndarray  # where it was last seen
    size: float


class MultiFaceTracker:
    """Follows every face through consecutive frames under a number it keeps: the faces of
    the first frame with faces are numbered left to right, later ones in order of arrival;
    a face that leaves and comes back near where it left takes its number back."""

    def __init__(self, threads: int | None = None, use_cuda: bool = False,
                 scene_cut: float = SCENE_CUT_THRESHOLD, search_every: int = SEARCH_EVERY
                 ) -> None:
        self.scene_cut = scene_cut
        self.search_every = max(int(search_every), 1)
        self.detector = FaceDetector(threads=threads, use_cuda=use_cuda)
        self.landmarker = FaceLandmarker(threads=threads, use_cuda=use_cuda)
        self.blendshapes = BlendshapeModel(threads=threads, use_cuda=use_cuda)
        self.detections = 0
        self.scene_cuts = 0
        self._faces: list[_Followed] = []
        self._frame = 0
        self._thumb: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> list[FrameObservation]:
        """One observation per face numbered so far (empty where a face is not seen)."""
        cut = self._is_scene_cut(image)
        if cut:
            self.scene_cuts += 1
        for face in self._faces:
            if face.landmarks is not None and not cut:
                found = self.landmarker(image, face.landmarks.next_roi())
                face.landmarks = found if found.present else None
            else:
                face.landmarks = None
        self._drop_doubles()
        detected = (cut or self._frame % self.search_every == 0
                    or any(face.landmarks is None for face in self._faces))
        if detected:
            self._search(image)
        self._frame += 1
        observations = []
        for face in self._faces:
            lm = face.landmarks
            if lm is None:
                observations.append(FrameObservation(None, None, 0.0, detected))
                continue
            face.centre = lm.points[:, :2].mean(0)
            face.size = float(np.ptp(lm.points[:, :2], axis=0).max())
            observations.append(FrameObservation(lm.points, self.blendshapes(lm.points),
                                                 lm.presence, detected))
        return observations

    def _drop_doubles(self) -> None:
        """Two followed faces that slid onto one face: the later number lets go."""
        for i, face in enumerate(self._faces):
            if face.landmarks is None:
                continue
            for other in self._faces[:i]:
                if other.landmarks is not None and _inside(
                        landmark_box(face.landmarks.points), landmark_box(other.landmarks.points)) > 0.5:
                    face.landmarks = None
                    break

    def _search(self, image: np.ndarray) -> None:
        """Detect faces; those not already followed get a lost face's number back (the
        nearest, if near enough) or a new one, left to right."""
        self.detections += 1
        followed = [landmark_box(f.landmarks.points) for f in self._faces if f.landmarks is not None]
        fresh = [face for face in detect_faces(self.detector, image, FaceSelection(),
                                               grids=(2,))
                 if all(_inside(face.box, box) < 0.5 for box in followed)]
        confirmed = sorted(confirmed_faces(fresh, image, self.landmarker),
                           key=lambda found: float(found[1].points[:, 0].mean()))
        for _, landmarks in confirmed:
            centre = landmarks.points[:, :2].mean(0)
            lost = [face for face in self._faces if face.landmarks is None and np.linalg.norm(
                face.centre - centre) < REMATCH_DISTANCE * face.size]
            if lost:
                nearest = min(lost, key=lambda f: float(np.linalg.norm(f.centre - centre)))
                nearest.landmarks = landmarks
            else:
                self._faces.append(_Followed(landmarks, centre, float(
                    np.ptp(landmarks.points[:, :2], axis=0).max())))

    def _is_scene_cut(self, image: np.ndarray) -> bool:
        thumb = _thumbnail(image)
        previous, self._thumb = self._thumb, thumb
        return previous is not None and float(np.abs(thumb - previous).mean()) > self.scene_cut


def landmark_box(points: np.ndarray) -> np.ndarray:
    """(4,) float32 x, y, w, h round landmarks (..., >=2) in pixels."""
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    return np.concatenate([lo, hi - lo]).astype(np.float32)
