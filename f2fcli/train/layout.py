"""The prepared-dataset layout that `f2f prepare` writes and `f2f train`/`f2f eval` read.

    DATASET_DIR/
      manifest.json              format "f2f-dataset", version 1: res, crop settings, image
                                 format, the finished clips (name, frames, usable frames, split)
                                 and the skipped videos with the reason
      clips/<name>/
        clip.json                per clip: source video, crop box in source pixels, fps,
                                 frame count, split ("train" or "test"), image format
        track.npz                per frame, all in crop pixels at `res` (continuous, origin at
                                 the top-left corner of the crop): keypoints (N, 72, 2), pose
                                 (N, 6) (rx, ry, rz, tx, ty, scale; see tracking.face_model),
                                 landmarks (N, 478, 3) (NaN where no face was found),
                                 expression (N, 51), found (N,) bool; per clip: identity (50,)
        frames/000000.jpg ...    RGB frames, res x res (JPEG quality 95, or PNG)
        masks/000000.png ...     face masks, res x res, 0/255: the convex hull of the face mesh
      skipped/<name>.json        videos without a usable face (kept so a resumed run skips them)

A clip directory is written under a temporary name and renamed when complete, so its
presence means the clip is finished; `prepare` resumes by skipping those. The identity is
shared by all frames of a clip (one fit per clip). Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, require_format
from ..tracking import keypoints as kp
from ..tracking.channels import N_EXPRESSION

FORMAT = "f2f-dataset"
VERSION = 1
MANIFEST = "manifest.json"
CLIPS = "clips"
SKIPPED = "skipped"
CLIP_JSON = "clip.json"
TRACK_NPZ = "track.npz"
FRAMES = "frames"
MASKS = "masks"
IMAGE_FORMATS = ("jpg", "png")
SPLITS = ("train", "test", "all")

_TRACK_ARRAYS = {
    "keypoints": (kp.N_KEYPOINTS, 2),
    "pose": (6,),
    "landmarks": (kp.N_LANDMARKS, 3),
    "expression": (N_EXPRESSION,),
    "found": (),
}


def frame_name(index: int, image_format: str) -> str:
    return f"{index:06d}.{image_format}"


def mask_name(index: int) -> str:
    return f"{index:06d}.png"


def clip_name(video: Path, root: Path) -> str:
    """A file-system-safe, unique clip name: the path below `root`, without the suffix."""
    rel = video.relative_to(root).with_suffix("")
    name = "__".join(rel.parts)
    return re.sub(r"[^A-Za-z0-9._#+-]", "_", name)


def split_of(name: str, test_fraction: float) -> str:
    """Deterministic train/test split by a hash of the clip name (stable across resumes)."""
    value = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 2.0 ** 32
    return "test" if value < test_fraction else "train"


@dataclass
class ClipData:
    """One prepared clip, loaded for training or evaluation (frames stay on disk)."""

    name: str
    directory: Path
    res: int
    image_format: str
    split: str
    keypoints: np.ndarray  # (N, 72, 2) crop pixels at `res`
    pose: np.ndarray  # (N, 6) crop pixels at `res`
    landmarks: np.ndarray  # (N, 478, 3)
    expression: np.ndarray  # (N, 51)
    found: np.ndarray  # (N,) bool
    identity: np.ndarray  # (50,)

    def __len__(self) -> int:
        return len(self.found)

    @property
    def usable(self) -> np.ndarray:
        """Indices of frames with a detected face (filled frames are not used for pairs)."""
        return np.flatnonzero(self.found)

    def frame_path(self, index: int) -> Path:
        return self.directory / FRAMES / frame_name(index, self.image_format)

    def mask_path(self, index: int) -> Path:
        return self.directory / MASKS / mask_name(index)


def save_track_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a file object stops numpy appending ".npz"
        np.savez_compressed(handle, **arrays)


def load_clip(directory: Path) -> ClipData:
    """Read clip.json and track.npz of one finished clip; InputError if malformed."""
    try:
        info = json.loads((directory / CLIP_JSON).read_text())
        with np.load(directory / TRACK_NPZ, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise InputError(f"{directory}: not a readable prepared clip ({exc})") from exc
    n = int(info.get("frames", -1))
    for key, shape in _TRACK_ARRAYS.items():
        if key not in arrays or arrays[key].shape != (n, *shape):
            raise InputError(f"{directory / TRACK_NPZ}: array {key} is missing or has the "
                             f"wrong shape (expected {(n, *shape)})")
    return ClipData(name=str(info["name"]), directory=directory, res=int(info["res"]),
                    image_format=str(info["image_format"]), split=str(info["split"]),
                    keypoints=arrays["keypoints"].astype(np.float64),
                    pose=arrays["pose"].astype(np.float64),
                    landmarks=arrays["landmarks"], expression=arrays["expression"],
                    found=arrays["found"].astype(bool),
                    identity=arrays.get("identity", np.zeros(50, np.float32)))


def read_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    path = Path(dataset_dir) / MANIFEST
    if not path.is_file():
        raise InputError(f"{dataset_dir}: no {MANIFEST}; is this a dataset made by f2f prepare?")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable manifest ({exc})") from exc
    require_format(manifest, FORMAT, VERSION, path, "dataset manifest")
    return manifest


def load_clips(dataset_dir: str | Path, split: str = "train", min_frames: int = 2
               ) -> tuple[dict[str, Any], list[ClipData]]:
    """The manifest and the clips of `split` ("train", "test" or "all") with at least
    `min_frames` usable frames, sorted by name."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    manifest = read_manifest(dataset_dir)
    root = Path(dataset_dir) / CLIPS
    clips = []
    for entry in sorted(manifest.get("clips", []), key=lambda e: e["name"]):
        if split != "all" and entry.get("split") != split:
            continue
        clip = load_clip(root / entry["name"])
        if len(clip.usable) >= min_frames:
            clips.append(clip)
    return manifest, clips
