"""The track file: per-frame face-model fit of one video, saved without pickle.

Format (NumPy .npz, loaded with allow_pickle=False), version 1:

- `meta`: a JSON string: format "f2f-track", version, f2f version, fps and time base as
  "num/den" strings, width, height, source video name, model file hashes, the face model's
  fingerprint (identity/expression coefficients only compare under the same one), smoothing.
- per frame (N = number of frames, in presentation order):
  `pts` (N,) int64 timestamps in the time base; `pose` (N, 6) float32 head pose
  (axis-angle rx, ry, rz, tx, ty, scale; see `face_model`); `expression` (N, 51) float32;
  `keypoints` (N, 72, 2) float32 model keypoints in image pixels; `landmarks` (N, 478, 3)
  float32 observed mesh points in image pixels; `confidence` (N,) float32 face score;
  `box` (N, 4) float32 face box x, y, w, h; `found` (N,) bool face detected in this frame;
  `filled` (N,) bool values interpolated/held because no face was found.
  Frames without a face hold NaN in `landmarks`; their pose/expression/keypoints are filled.
- per video: `identity` (50,) float32 shape coefficients shared by all frames, and
  `identity_detail` (468, 3) float32, the per-vertex residual (cm) the 50-D basis cannot express.
- several faces of one video (`save_tracks`): the first face as above; face i's arrays as
  "face{i}/NAME"; `meta` adds `faces` (the count) and `face_meta` (the others' metadata).
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import InputError, require_format
from ..io.atomic import atomic_output
from . import keypoints as kp
from .channels import N_EXPRESSION
from .face_model import N_IDENTITY

FORMAT = "f2f-track"
VERSION = 1

_FRAME_ARRAYS = {
    "pts": ((), np.int64),
    "pose": ((6,), np.float32),
    "expression": ((N_EXPRESSION,), np.float32),
    "keypoints": ((kp.N_KEYPOINTS, 2), np.float32),
    "landmarks": ((kp.N_LANDMARKS, 3), np.float32),
    "confidence": ((), np.float32),
    "box": ((4,), np.float32),
    "found": ((), np.bool_),
    "filled": ((), np.bool_),
}


@dataclass
class Track:
    """A fitted, smoothed face track of one video."""

    pts: np.ndarray
    pose: np.ndarray
    expression: np.ndarray
    keypoints: np.ndarray
    landmarks: np.ndarray
    confidence: np.ndarray
    box: np.ndarray
    found: np.ndarray
    filled: np.ndarray
    identity: np.ndarray
    identity_detail: np.ndarray
    fps: Fraction
    time_base: Fraction
    width: int
    height: int
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pts)

    def summary(self) -> dict[str, Any]:
        return {
            "frames": len(self),
            "faces_found": int(self.found.sum()),
            "filled": int(self.filled.sum()),
            "fps": _frac_str(self.fps),
            "width": self.width,
            "height": self.height,
        }


def _frac_str(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def save_track(track: Track, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write `track` atomically as a version-1 .npz track file."""
    return save_tracks([track], path, overwrite)


def save_tracks(tracks: list[Track], path: str | os.PathLike[str],
                overwrite: bool = False) -> Path:
    """Several faces' tracks of one video in one file: the first as `save_track` writes it
    (so `load_track` reads it), the others' arrays under "face{i}/" and their metadata in
    `meta["face_meta"]`."""
    path = Path(path)
    first = tracks[0]
    meta = dict(first.meta)
    meta.update(format=FORMAT, version=VERSION, f2f=__version__, fps=_frac_str(first.fps),
                time_base=_frac_str(first.time_base), width=first.width, height=first.height)
    if len(tracks) > 1:
        meta.update(faces=len(tracks), face_meta=[dict(t.meta) for t in tracks[1:]])
    arrays = {}
    for i, track in enumerate(tracks):
        prefix = f"face{i}/" if i else ""
        arrays.update({prefix + name: np.asarray(getattr(track, name), dtype)
                       for name, (_, dtype) in _FRAME_ARRAYS.items()})
        arrays[prefix + "identity"] = np.asarray(track.identity, np.float32)
        arrays[prefix + "identity_detail"] = np.asarray(track.identity_detail, np.float32)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as handle:  # a file object stops numpy appending ".npz"
            np.savez_compressed(handle, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_track(path: str | os.PathLike[str]) -> Track:
    """Read and validate a track file (never unpickles); of a file with several faces, the
    first."""
    return load_tracks(path)[0]


def load_tracks(path: str | os.PathLike[str]) -> list[Track]:
    """Every face's track of a track file (`save_tracks`)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such track file") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"{path}: not a readable track file (truncated or damaged: "
                         f"{exc})") from exc
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: track file has no valid metadata") from exc
    if not isinstance(meta, dict):
        raise InputError(f"{path}: track file has no valid metadata")
    require_format(meta, FORMAT, VERSION, path, "track file")
    others = meta.pop("face_meta", [])
    count = meta.pop("faces", 1)
    if not isinstance(others, list) or not isinstance(count, int) or count != len(others) + 1:
        raise InputError(f"{path}: track metadata's faces do not add up")
    timing = {key: meta[key] for key in ("fps", "time_base", "width", "height") if key in meta}
    tracks = []
    for i, face_meta in enumerate([meta, *others]):
        prefix = f"face{i}/" if i else ""
        if not isinstance(face_meta, dict):
            raise InputError(f"{path}: track metadata of face {i} is not a record")
        mine = {name[len(prefix):]: array for name, array in arrays.items()
                if name.startswith(prefix) and "/" not in name[len(prefix):]}
        tracks.append(_track_of(path, mine, {**face_meta, **timing}))
    return tracks


def _track_of(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> Track:
    _validate(path, arrays)
    return Track(
        **{name: arrays[name] for name in _FRAME_ARRAYS},
        identity=arrays["identity"],
        identity_detail=arrays["identity_detail"],
        fps=_positive(meta, "fps", Fraction, path),
        time_base=_positive(meta, "time_base", Fraction, path),
        width=_positive(meta, "width", int, path),
        height=_positive(meta, "height", int, path),
        meta=meta,
    )


def _positive(meta: dict, key: str, kind: type, path: Path) -> Any:
    """`meta[key]` as a positive `kind` (Fraction or int), else a one-line error."""
    try:
        value = kind(meta[key])
    except KeyError:
        raise InputError(f"{path}: track metadata lacks {key}") from None
    except (TypeError, ValueError, ZeroDivisionError):
        raise InputError(f"{path}: track metadata {key} {meta[key]!r} is not a number") from None
    if value <= 0:
        raise InputError(f"{path}: track metadata {key} is {value}, not positive")
    return value


def _validate(path: Path, arrays: dict[str, np.ndarray]) -> None:
    missing = [n for n in (*_FRAME_ARRAYS, "identity", "identity_detail") if n not in arrays]
    if missing:
        raise InputError(f"{path}: track file lacks {', '.join(missing)}")
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise InputError(f"{path}: track array {name} holds {array.dtype} values, not numbers")
    n = len(arrays["pts"]) if arrays["pts"].ndim else 0
    if n == 0:
        raise InputError(f"{path}: track file has no frames")
    for name, (shape, _) in _FRAME_ARRAYS.items():
        if arrays[name].shape != (n, *shape):
            raise InputError(f"{path}: track array {name} has shape {arrays[name].shape}, "
                             f"expected {(n, *shape)}")
    for name, shape in (("identity", (N_IDENTITY,)), ("identity_detail", (kp.N_MESH, 3))):
        if arrays[name].shape != shape:
            raise InputError(f"{path}: {name} has shape {arrays[name].shape}, expected {shape}")
    for name in ("pose", "expression", "keypoints"):
        if not np.isfinite(arrays[name]).all():
            raise InputError(f"{path}: track array {name} holds non-finite values")
