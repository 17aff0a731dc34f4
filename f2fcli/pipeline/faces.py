"""Several faces in one source: which faces move, and which driver moves each.

Faces are numbered left to right (by the centre of their landmarks) in a photo, and by their
first appearance in a video (those of one frame left to right), as `f2f track --list-faces`
prints them. `faces` names the faces the main driver moves ("all" or numbers); `face_map`
gives faces drivers of their own. A face with no driver stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence, TypeVar, Union

import numpy as np

from ..errors import InputError
from ..io.image import is_image_path, read_image
from ..io.video import VideoReader
from ..tracking.tracker import MultiFaceTracker, landmark_box
from ..tracking.video_track import TrackStats, observe_faces
from .source import SourceOptions, find_faces

FaceChoice = Union[Literal["all"], tuple[int, ...], None]
FaceMap = tuple[tuple[int, Path], ...]
T = TypeVar("T")


def parse_faces(text: str | None) -> FaceChoice:
    """`--faces`: "all", or face numbers "0,2"; None or "" for the one chosen face."""
    if text is None or not text.strip():
        return None
    if text.strip().lower() == "all":
        return "all"
    try:
        numbers = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"`faces` is all or face numbers such as 0,2; got {text!r}") from None
    if any(n < 0 for n in numbers) or len(set(numbers)) != len(numbers):
        raise ValueError(f"`faces` {text}: numbers from 0, each once")
    return numbers


def parse_face_map(text: str | None, base: Path = Path()) -> FaceMap:
    """`--face-map "0=a.mp4,2=b.mp4"`: face number = its driver (relative paths against
    `base`, the manifest's folder in a batch)."""
    if text is None or not text.strip():
        return ()
    pairs = []
    for item in text.split(","):
        number, sep, path = item.partition("=")
        try:
            face = int(number)
        except ValueError:
            face = -1
        if not sep or face < 0 or not path.strip():
            raise ValueError(f"`face_map` is N=DRIVER pairs such as 0=a.mp4,2=b.mp4; got "
                             f"{item!r}")
        pairs.append((face, base / Path(path.strip())))
    numbers = [n for n, _ in pairs]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"`face_map` {text}: a face is given two drivers")
    return tuple(pairs)


def several(faces: FaceChoice, face_map: FaceMap) -> bool:
    """Whether a run animates faces by number (`faces`, `face_map`) rather than the one face
    the source selection picks."""
    return faces is not None or bool(face_map)


def main_driver(driving: Path | None, face_map: FaceMap) -> Path:
    """The driver whose timing (and audio) a photo source's output has: `driving`, else the
    lowest-numbered face's in `face_map`."""
    if driving is not None:
        return driving
    if not face_map:
        raise InputError("no driver: give `driving` or `face_map`")
    return min(face_map)[1]


def check_drivers(driving: Path | None, faces: FaceChoice, face_map: FaceMap) -> None:
    """Refuse a request whose drivers and faces do not fit together (before any work)."""
    if driving is None and not face_map:
        raise InputError("no driver: give `driving` (or `face_map`)")
    if faces is not None and driving is None:
        raise InputError("`faces` names the faces `driving` moves: give `driving` too")
    if faces is None and face_map and driving is not None:
        raise InputError("`driving` with `face_map` moves no face: add `faces` all (every "
                         "face the map does not name) or leave `driving` out")


def face_drivers(count: int, driving: Path | None, faces: FaceChoice, face_map: FaceMap,
                 name: str) -> dict[int, Path]:
    """Face number -> its driver, for a source with `count` faces."""
    numbers = range(count) if faces == "all" else (faces or ())
    assigned: dict[int, Path] = {n: driving for n in numbers if driving is not None}
    assigned.update(dict(face_map))
    missing = sorted(n for n in assigned if n >= count)
    if missing:
        raise InputError(f"{name}: no face {missing[0]}: {count} found, numbered 0 to "
                         f"{count - 1} left to right (`f2f track --list-faces` shows them)")
    return dict(sorted(assigned.items()))


def choose_faces(items: Sequence[T], driving: Path | None, faces: FaceChoice,
                 face_map: FaceMap, name: str, log: Callable[[str], None]
                 ) -> list[tuple[int | None, T, Path]]:
    """The source's faces that move (`items`: one per face, in their numbers' order; without
    `faces`/`face_map` only the first, the one the selection picked, numbered None), each
    with its face number and driver; the faces moved are logged."""
    if not several(faces, face_map):
        return [(None, items[0], main_driver(driving, face_map))]
    assigned = face_drivers(len(items), driving, faces, face_map, name)
    log(f"{name}: {len(items)} faces; moving " + ", ".join(
        f"{n} ({path.name})" for n, path in assigned.items()))
    return [(n, items[n], path) for n, path in assigned.items()]


def drivers_named(driving: Path | None, face_map: FaceMap) -> list[Path]:
    """Each distinct driver once, the main one first: each is tracked once, however many
    faces it moves."""
    seen = [driving] if driving is not None else []
    for _, path in sorted(face_map):
        if path not in seen:
            seen.append(path)
    return seen


@dataclass(frozen=True)
class FaceListing:
    """A face of a source as `f2f track --list-faces` shows it: its number, its box
    (x, y, w, h pixels, where first seen), the first frame it is in and how many it is in."""

    number: int
    box: tuple[float, float, float, float]
    first_frame: int
    frames: int

    def to_dict(self) -> dict[str, object]:
        return {"face": self.number, "box": [round(v, 1) for v in self.box],
                "first_frame": self.first_frame, "frames": self.frames}


def list_faces(path: Path, on_frames: Callable[[int], None] = lambda n: None
               ) -> list[FaceListing]:
    """The faces of a photo or a video, by number."""
    if is_image_path(path):
        found = find_faces(read_image(path), SourceOptions(), str(path))
        return [FaceListing(n, _box(lm.points), 0, 1) for n, lm in enumerate(found)]
    reader = VideoReader(path)
    observed = observe_faces(reader, MultiFaceTracker(), TrackStats(), on_frames)
    if not observed:
        raise InputError(f"{path}: no face found in any of its frames")
    listing = []
    for n, face in enumerate(observed):
        seen = np.flatnonzero(np.isfinite(face["landmarks"]).all(axis=(1, 2)))
        listing.append(FaceListing(n, _box(face["landmarks"][seen[0]]), int(seen[0]),
                                   len(seen)))
    return listing


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in landmark_box(points))
    return x, y, w, h
