"""The source photo: find and fit its face once, crop it, and cache the result on disk."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from .. import __version__
from ..errors import InputError
from ..io.atomic import atomic_output
from ..io.digest import file_sha256
from ..io.image import read_image
from ..tracking import keypoints as kp
from ..tracking.channels import N_BLENDSHAPES, N_EXPRESSION
from ..tracking.detector import FaceDetection, FaceDetector
from ..tracking.face_model import N_IDENTITY, FaceModel, transform_points
from ..tracking.fitting import fit_image
from ..tracking.landmarks import BlendshapeModel, FaceLandmarker, FaceLandmarks
from ..tracking.track import Track, load_track
from ..tracking.tracker import (FaceSelection, choose_confirmed, confirmed_faces, detect_faces,
                                landmark_box)
from ..tracking.video_track import model_hashes
from .crop import CropBox, face_crop_box

CACHE_FORMAT = 2  # 2: landmarks settled on their own ROI
_ARRAYS = ("landmarks", "scores", "identity", "identity_detail", "pose", "expression")


@dataclass
class SourceFace:
    """The source face: where it is, its crop, and its face-model fit (image pixels)."""

    image: np.ndarray
    box: CropBox
    landmarks: np.ndarray
    scores: np.ndarray
    identity: np.ndarray
    identity_detail: np.ndarray
    pose: np.ndarray
    expression: np.ndarray
    faces_seen: int = 1

    def crop(self) -> np.ndarray:
        return self.box.cut(self.image)

    def mesh(self, model: FaceModel, pose: np.ndarray, expression: np.ndarray,
             offset: np.ndarray | None = None) -> np.ndarray:
        """This identity with `expression` (and vertex `offset`, see `motion.DrivenMotion`) at
        `pose`: (..., 468, 3) image x, y and depth."""
        vertices = model.vertices(self.identity, expression, self.identity_detail,
                                  offset=offset)
        return transform_points(vertices, pose, model.pivot)


@dataclass(frozen=True)
class SourceOptions:
    """What determines a source analysis (and so its cache key)."""

    crop_scale: float = 2.0
    res: int = 512
    selection: FaceSelection = FaceSelection()
    threads: int | None = None

    def key_fields(self) -> dict[str, object]:
        return {"crop_scale": self.crop_scale, "res": self.res,
                "face_index": self.selection.index, "face_box": self.selection.box}


def _box_text(box: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in box)


def analyse_source(image: np.ndarray, options: SourceOptions, model: FaceModel,
                   name: str = "source") -> SourceFace:
    """Detect, landmark and fit the chosen face of a still image."""
    confirmed = _confirmed(image, options, name)
    box = options.selection.box
    landmarks = choose_confirmed(confirmed, options.selection)
    if landmarks is None and box is not None:
        raise InputError(f"{name}: no face in the box {_box_text(box)} (`face_box` X,Y,W,H is "
                         f"drawn around the face; {len(confirmed)} found elsewhere)")
    if landmarks is None:
        raise InputError(f"{name}: no face found (found {len(confirmed)}, asked for index "
                         f"{options.selection.index})")
    return _fitted(image, landmarks, options, model, len(confirmed))


def analyse_faces(image: np.ndarray, options: SourceOptions, model: FaceModel,
                  name: str = "source") -> list[SourceFace]:
    """Every face of a still image, fitted one by one, in their numbers' order
    (`find_faces`)."""
    found = find_faces(image, options, name)
    return [_fitted(image, landmarks, options, model, len(found)) for landmarks in found]


def find_faces(image: np.ndarray, options: SourceOptions, name: str = "source"
               ) -> list[FaceLandmarks]:
    """The landmarks of every face of a still image, numbered left to right (by their
    centres), as `faces` and `face_map` count them."""
    # a group photo's faces are small: the finer cover finds faces down to about a tenth of
    # the photo's long side (a 2x2 and 3x3 cover missed one at 0.08 beside a larger one)
    confirmed = _confirmed(image, replace(options, selection=FaceSelection()), name,
                           grids=(2, 3, 4))
    return sorted((landmarks for _, landmarks in confirmed),
                  key=lambda landmarks: float(landmarks.points[:, 0].mean()))


def _confirmed(image: np.ndarray, options: SourceOptions, name: str,
               grids: tuple[int, ...] = (2, 3)) -> list[tuple[FaceDetection, FaceLandmarks]]:
    """The faces of a still image whose landmarks were found (see `confirmed_faces`), found
    on the whole image and on tiles (`detector.detect_tiled`)."""
    faces = detect_faces(FaceDetector(threads=options.threads), image, options.selection,
                         grids=grids)
    box = options.selection.box
    if box is not None and not faces:
        raise InputError(f"{name}: no face in the box {_box_text(box)} (`face_box` X,Y,W,H is "
                         "drawn around the face)")
    if not faces:
        raise InputError(f"{name}: no face found; a face under about 1/10 of the photo's size "
                         "needs `face_box` X,Y,W,H around it")
    confirmed = confirmed_faces(faces, image, FaceLandmarker(threads=options.threads))
    if not confirmed:
        raise InputError(f"{name}: a face was detected but its landmarks could not be found")
    return confirmed


def _fitted(image: np.ndarray, landmarks: FaceLandmarks, options: SourceOptions,
            model: FaceModel, faces_seen: int) -> SourceFace:
    scores = BlendshapeModel(threads=options.threads)(landmarks.points)
    fit = fit_image(model, landmarks.points, scores)
    return SourceFace(
        image=image,
        box=face_crop_box(landmarks.points, options.crop_scale, options.res),
        landmarks=landmarks.points.astype(np.float32),
        scores=np.asarray(scores, np.float32),
        identity=fit.identity.s.astype(np.float32),
        identity_detail=fit.identity.detail.astype(np.float32),
        pose=fit.hp[0].astype(np.float32),
        expression=fit.expression[0].astype(np.float32),
        faces_seen=faces_seen,
    )


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    source: str
    size: int

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "source": self.source, "bytes": self.size}


class SourceCache:
    """Source analyses on disk, keyed by content hash, options, models and f2f version.

    Entries are safetensors files (no pickle). An entry that fails to load or validate is
    deleted and rebuilt, never trusted.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "sources"

    def key(self, content_sha256: str, options: SourceOptions, extra: dict | None = None) -> str:
        fields = {"content": content_sha256, "options": options.key_fields(),
                  "models": model_hashes(), "f2f": __version__, "format": CACHE_FORMAT,
                  **(extra or {})}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]

    def path(self, key: str, kind: str = "fit") -> Path:
        return self.directory / f"{key}.{kind}.safetensors"

    def load_arrays(self, key: str, kind: str = "fit") -> tuple[dict[str, np.ndarray], dict] | None:
        path = self.path(key, kind)
        if not path.is_file():
            return None
        try:
            return load_file(str(path)), _read_meta(path)
        except Exception:  # noqa: BLE001 - any damage means: rebuild
            path.unlink(missing_ok=True)
            return None

    def store_arrays(self, key: str, arrays: dict[str, np.ndarray], meta: dict,
                     kind: str = "fit") -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_output(self.path(key, kind), overwrite=True) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp),
                      metadata={"f2f": json.dumps(meta)})

    def track_path(self, key: str) -> Path:
        """Where a source video's track is kept (`video_source`)."""
        return self.directory / f"{key}.track.npz"

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted([*self.directory.glob("*.safetensors"), *self.directory.glob("*.track.npz")])

    def entries(self) -> list[CacheEntry]:
        found = []
        for path in self._files():
            try:
                source = (_read_meta(path).get("source", "?") if path.suffix == ".safetensors"
                          else load_track(path).meta.get("source_video", "?"))
            except Exception:  # noqa: BLE001 - list damaged entries too, so they can be cleared
                source = "(damaged)"
            found.append(CacheEntry(path, source, path.stat().st_size))
        return found

    def clear(self) -> int:
        entries = self._files()
        for path in entries:
            path.unlink(missing_ok=True)
        return len(entries)


def _read_meta(path: Path) -> dict:
    with safe_open(str(path), framework="numpy") as handle:
        return json.loads(handle.metadata()["f2f"])


def load_source(path: Path, options: SourceOptions, model: FaceModel, cache: SourceCache | None,
                log: Callable[[str], None] = lambda m: None,
                warn: Callable[[str], None] = lambda m: None) -> tuple[SourceFace, bool]:
    """The analysed source, from the cache when possible. Returns (source, cache_hit).

    A damaged cache entry is rebuilt; a cache that cannot be read or written (a file in the
    way, no permission, a full disk) is passed by with a `warn`ing: the run goes on without."""
    faces, hit = _load(path, options, model, cache, log, warn, every=False)
    return faces[0], hit


def load_faces(path: Path, options: SourceOptions, model: FaceModel, cache: SourceCache | None,
               log: Callable[[str], None] = lambda m: None,
               warn: Callable[[str], None] = lambda m: None) -> tuple[list[SourceFace], bool]:
    """Every face of the source photo (`analyse_faces`), cached like `load_source`."""
    return _load(path, options, model, cache, log, warn, every=True)


def _load(path: Path, options: SourceOptions, model: FaceModel, cache: SourceCache | None,
          log: Callable[[str], None], warn: Callable[[str], None], every: bool
          ) -> tuple[list[SourceFace], bool]:
    image = read_image(path)
    kind = "faces" if every else "fit"
    key = (cache.key(file_sha256(path), options, {"face_model": model.fingerprint(),
                                                   **({"faces": "all"} if every else {})})
           if cache is not None else None)
    if cache is not None:
        try:
            hit = _from_cache(cache, key, kind, image)
        except OSError as exc:
            warn(f"source cache {cache.directory} unusable ({exc}); going on without it")
            hit, cache = None, None
        if hit is not None:
            log(f"source cache hit: {cache.path(key, kind)}")
            return hit, True
    faces = (analyse_faces(image, options, model, name=str(path)) if every
             else [analyse_source(image, options, model, name=str(path))])
    if cache is not None:
        if every:
            arrays = {name: np.stack([getattr(f, name) for f in faces]) for name in _ARRAYS}
            meta = {"source": str(path), "boxes": [f.box.to_dict() for f in faces]}
        else:
            arrays = {name: getattr(faces[0], name) for name in _ARRAYS}
            meta = {"source": str(path), "box": faces[0].box.to_dict(),
                    "faces_seen": faces[0].faces_seen}
        try:
            cache.store_arrays(key, arrays, meta, kind)
            log(f"source cache stored: {cache.path(key, kind)}")
        except OSError as exc:
            warn(f"source cache {cache.directory} unusable ({exc}); the analysis is not kept")
    return faces, False


def _from_cache(cache: SourceCache, key: str, kind: str, image: np.ndarray
                ) -> list[SourceFace] | None:
    """The cached analysis of `key`, or None; an entry whose arrays or metadata do not make
    source faces is removed, to be rebuilt. A "faces" entry holds every face, stacked."""
    cached = cache.load_arrays(key, kind)
    if cached is None:
        return None
    arrays, meta = cached
    try:
        if kind == "faces":
            boxes = list(meta["boxes"])
            each = [{name: arrays[name][i] for name in _ARRAYS} for i in range(len(boxes))]
            seen = [len(boxes)] * len(boxes)
        else:
            boxes, each, seen = [meta["box"]], [arrays], [int(meta["faces_seen"])]
        faces = []
        for box_fields, face_arrays, faces_seen in zip(boxes, each, seen):
            if not _valid(face_arrays):
                raise ValueError("arrays")
            box = CropBox(**{name: int(value) for name, value in box_fields.items()})
            if box.size < 1 or box.res < 1 or faces_seen < 1:
                raise ValueError("metadata")
            faces.append(SourceFace(image=image, box=box, faces_seen=faces_seen,
                                    **{name: face_arrays[name] for name in _ARRAYS}))
        if not faces:
            raise ValueError("no faces")
        return faces
    except (KeyError, IndexError, TypeError, ValueError):
        cache.path(key, kind).unlink(missing_ok=True)
        return None


def _valid(arrays: dict[str, np.ndarray]) -> bool:
    shapes = {"landmarks": (kp.N_LANDMARKS, 3), "scores": (N_BLENDSHAPES,),
              "identity": (N_IDENTITY,), "identity_detail": (kp.N_MESH, 3), "pose": (6,),
              "expression": (N_EXPRESSION,)}
    return all(name in arrays and arrays[name].shape == shape and np.isfinite(arrays[name]).all()
               for name, shape in shapes.items())


# Frame rate of a video made from a still driver (`--frames N`): a common video rate.
STILL_FPS = 25


def still_track(path: Path, options: SourceOptions, model: FaceModel, frames: int = 1) -> Track:
    """An image as a driver: its face analysed like a source photo and held for `frames`
    frames at `STILL_FPS`. Marked `still` in its metadata: its expression is taken from a
    neutral face (one frame shows no rest level), see `motion.drive`."""
    face = analyse_source(read_image(path), options, model, name=str(path))
    n = max(int(frames), 1)
    pose = np.repeat(face.pose[None].astype(np.float32), n, 0)
    expression = np.repeat(face.expression[None].astype(np.float32), n, 0)
    keypoints = model.keypoints72(face.identity, expression, pose, face.identity_detail)
    height, width = face.image.shape[:2]
    return Track(pts=np.arange(n), pose=pose, expression=expression,
                 keypoints=keypoints.astype(np.float32),
                 landmarks=np.repeat(face.landmarks[None], n, 0),
                 confidence=np.ones(n, np.float32),
                 box=np.repeat(landmark_box(face.landmarks)[None], n, 0),
                 found=np.ones(n, bool), filled=np.zeros(n, bool), identity=face.identity,
                 identity_detail=face.identity_detail, fps=Fraction(STILL_FPS),
                 time_base=Fraction(1, STILL_FPS), width=width, height=height,
                 meta={"still": True, "source_image": path.name, "reference_frame": 0,
                       "face_model": model.fingerprint()})
