"""A video as the source: each of its frames takes the driver's change of expression.

The source video is tracked like a driver (one identity for the person). Output frame t is
source frame t with the expression `e_src(t) + (e_drv(t') - rest)` (`transfer.transfer_rig`:
the driver's change since its reference, on top of the source's own expression at that
moment) and the source's own head pose (`pose_mode` off) or that pose plus the driver's head
motion (`relative`). The driver is sampled by time: t' is the last driver frame shown at the
source frame's time; when the driver is shorter it is held on its last frame, looped, or the
output stops with it (`DriverEnd`). Timing, frame count and audio are the source video's.
Frames where the source shows no face are passed through untouched.

Several faces (`faces`, `face_map`): every face is tracked through the video under its own
number (`tracking.tracker.MultiFaceTracker`), each driven by its own driver on the same clock,
and the faces in view at a frame are pasted back together (`paste.paste_faces`).

The photo path's retargeting (a solve against one photo's landmarks) does not apply here: the
rig coefficients are transferred as they are, and the source keeps its own gaze.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..dirs import default_cache_dir
from ..errors import F2FError, InputError
from ..io.digest import file_sha256
from ..io.video import VideoReader
from ..io.writer import write_video
from ..tracking.channels import N_BLENDSHAPES
from ..tracking.track import Track, load_tracks, save_tracks
from ..tracking.video_track import TrackOptions, track_faces, track_video
from .crop import face_crop_box
from .faces import choose_faces, main_driver, several
from .head import HeadRegion, head_similarity
from .motion import driven_expression, expression_rest, reference_frame
from .paste import PasteBack, paste_faces
from .renderer import crop_motion
from .source import SourceCache, SourceFace
from .timing import driver_frames, follower_end, seconds_from_start
from .transfer import transfer_pose


@dataclass
class _VideoFace:
    """One face of the source video and what drives it, per output frame."""

    number: int | None  # None: the one face the selection picked
    track: Track  # the source face through the video
    driving: Path
    index: np.ndarray  # the driver frame shown at each output frame
    pose: np.ndarray  # driven head pose per output frame
    expression: np.ndarray
    paste: PasteBack | None = None

    def to_dict(self) -> dict[str, object]:
        return {"face": self.number, "driving": str(self.driving),
                "source_frames_with_face": int(self.track.found[:len(self.index)].sum())}


def reenact_video_source(source_path: Path, drivers: dict[Path, Track], driving: Path | None,
                         output: Path, options: Any, log: Any, resources: Any, renderer: Any,
                         audio: Path | None, seconds: dict[str, float]
                         ) -> tuple[int, Fraction, tuple[int, int], bool, list[dict] | None]:
    """Render `source_path` (a video) driven by `drivers` (tracks by path; `driving` the
    main one, see `faces`) into `output`. Returns (frames written, fps, output size, whether
    the source's tracks were cached, per-face details when faces were named)."""
    t0 = time.perf_counter()
    model = resources.model
    every = several(options.faces, options.face_map)
    tracks, cache_hit = source_tracks(source_path, options, model, log, every)
    seconds["source"] = time.perf_counter() - t0
    faces = _faces_to_move(source_path, tracks, drivers, driving, options, log)
    n = len(faces[0].index)
    t0 = time.perf_counter()
    size = (0, 0)
    written = 0
    with write_video(output, tracks[0].fps, options.encoder, tracks[0].time_base, audio,
                     options.overwrite) as writer, \
            log.progress("rendering", n) as bar:
        for t, (pts, frame) in enumerate(VideoReader(source_path).frames()):
            if t >= n:
                break
            out = _drive_frame(model, renderer, faces, t, frame, options)
            if options.output_size is not None:
                out = cv2.resize(out, options.output_size, interpolation=cv2.INTER_AREA)
            size = (out.shape[1], out.shape[0])
            writer.write(out, int(pts))
            written += 1
            bar.advance(1)
    seconds["render"] = time.perf_counter() - t0
    return (written, tracks[0].fps, size, cache_hit,
            [face.to_dict() for face in faces] if every else None)


def _faces_to_move(source_path: Path, tracks: list[Track], drivers: dict[Path, Track],
                   driving: Path | None, options: Any, log: Any) -> list[_VideoFace]:
    """The source's faces that move, with the driven pose and expression of each over the
    output's frames. The output has the source's length; with `driver_end` "stop" it ends
    with the main driver (the others are held)."""
    main = main_driver(driving, options.face_map)
    chosen = choose_faces(tracks, driving, options.faces, options.face_map, str(source_path),
                          log.info)
    times = seconds_from_start(tracks[0])
    n = len(times)
    if options.driver_end == "stop":
        n = int(np.sum(driver_frames(times, seconds_from_start(drivers[main]), "stop") >= 0))
        if n == 0:
            raise InputError(f"{source_path}: the driver ends before the source's first frame")
    end = follower_end(options.driver_end)
    faces = []
    for number, src, path in chosen:
        driver = drivers[path]
        index = driver_frames(times, seconds_from_start(driver), end)[:n]
        pose, expression = _driven(src, driver, index, options)
        faces.append(_VideoFace(number, src, path, index, pose, expression))
    return faces


def _driven(src: Track, driver: Track, index: np.ndarray, options: Any
            ) -> tuple[np.ndarray, np.ndarray]:
    """The source face's pose and expression at each output frame, driven by `driver`'s
    frames `index`."""
    n = len(index)
    reference = reference_frame(driver, options.motion.ref_frame)
    expression = driven_expression(src.expression[:n], driver.expression[index],
                                   expression_rest(driver, reference, src.expression[:n]),
                                   options.motion)
    if (options.motion.pose_mode in ("relative", "absolute")
            and options.motion.region in ("all", "pose")):
        pose = transfer_pose(src.pose[:n], driver.pose[index], driver.pose[reference.frame],
                             options.motion.pose_mode)
    else:  # "off" and the default for a video source: the source's own head motion
        pose = src.pose[:n].astype(np.float64)
    return pose, expression


def source_tracks(path: Path, options: Any, model: Any, log: Any, every: bool
                  ) -> tuple[list[Track], bool]:
    """The source video's face tracks, from the source cache when it holds them (keyed like
    a photo's analysis: the file's content, the face choice, the models): the selected face,
    or with `every` all faces in their numbers' order. A cache that cannot be used is passed
    by with a warning."""
    cache = SourceCache(options.cache_dir or default_cache_dir()) if options.use_cache else None
    where = None
    if cache is not None:
        key = cache.key(file_sha256(path), options.source,
                        {"face_model": model.fingerprint(),
                         "kind": "video faces" if every else "video track"})
        where = cache.track_path(key)
        try:
            tracks = load_tracks(where)
            log.debug(f"source cache hit: {where}")
            return tracks, True
        except (InputError, OSError):
            where.unlink(missing_ok=True)  # absent or damaged: rebuilt
    reader = VideoReader(path)
    with log.progress("tracking source", reader.info.frame_count) as bar:
        if every:
            tracks, _stats = track_faces(path, TrackOptions(), bar.advance, reader=reader)
        else:
            track, _stats = track_video(path, TrackOptions(selection=options.source.selection),
                                        bar.advance, reader=reader)
            tracks = [track]
    if where is not None:
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            save_tracks(tracks, where)
        except (OSError, F2FError) as exc:
            log.info(f"warning: source cache {where.parent} unusable ({exc}); the track is "
                     "not kept")
    return tracks, False


def _drive_frame(model: Any, renderer: Any, faces: list[_VideoFace], t: int,
                 frame: np.ndarray, options: Any) -> np.ndarray:
    """Output frame `t`: source frame `t` with each face in view there rendered with its
    driven pose and expression and pasted back (or, without paste-back, the one face's
    crop); a frame with no face in view is the source frame."""
    crops, heads, pastes = [], [], []
    for face in faces:
        if not face.track.found[t]:
            continue
        src = face.track
        landmarks = src.landmarks[t]
        box = face_crop_box(landmarks, options.source.crop_scale, options.source.res)
        source = SourceFace(image=frame, box=box, landmarks=landmarks,
                            scores=np.zeros(N_BLENDSHAPES, np.float32), identity=src.identity,
                            identity_detail=src.identity_detail, pose=src.pose[t],
                            expression=src.expression[t])
        prepared = renderer.prepare(box.cut(frame), crop_motion(
            model, source, box, source.pose[None], source.expression[None]))
        head = head_similarity(model, source.pose, face.pose[t][None])
        target = crop_motion(model, source, box, face.pose[t][None],
                             face.expression[t][None], head=head)
        crops.append(renderer.render(prepared, target)[0])
        heads.append(head[0])
        if options.paste_back:
            region = HeadRegion.of(model, source.pose)
            face.paste = (PasteBack(frame, box, region) if face.paste is None
                          else face.paste.over(frame, box, region))
            pastes.append(face.paste)
    if not crops:
        return frame
    if not options.paste_back:
        return crops[0]
    return paste_faces(pastes, crops, heads)
