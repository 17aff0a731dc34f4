"""A video as the source: each of its frames takes the driver's change of expression.

The source video is tracked like a driver (one identity for the person). Output frame t is
source frame t with the expression `e_src(t) + (e_drv(t') - rest)` (`transfer.transfer_rig`:
the driver's change since its reference, on top of the source's own expression at that
moment) and the source's own head pose (`pose_mode` off) or that pose plus the driver's head
motion (`relative`). The driver is sampled by time: t' is the last driver frame shown at the
source frame's time; when the driver is shorter it is held on its last frame, looped, or the
output stops with it (`DriverEnd`). Timing, frame count and audio are the source video's.
Frames where the source shows no face are passed through untouched.

The photo path's retargeting (a solve against one photo's landmarks) does not apply here: the
rig coefficients are transferred as they are, and the source keeps its own gaze.
"""

from __future__ import annotations

import time
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
from ..tracking.track import Track, load_track, save_track
from ..tracking.video_track import TrackOptions, track_video
from .crop import face_crop_box
from .head import HeadRegion, head_similarity
from .motion import driven_expression, expression_rest, reference_frame
from .paste import PasteBack
from .renderer import crop_motion
from .source import SourceCache, SourceFace
from .timing import driver_frames, seconds_from_start
from .transfer import transfer_pose


def reenact_video_source(source_path: Path, driver: Track, output: Path, options: Any, log: Any,
                         resources: Any, renderer: Any, audio: Path | None,
                         seconds: dict[str, float]
                         ) -> tuple[int, Fraction, tuple[int, int], bool]:
    """Render `source_path` (a video) driven by `driver` (a `Track`) into `output`.
    Returns (frames written, fps, output size, whether the source's track was cached)."""
    t0 = time.perf_counter()
    model = resources.model
    src, cache_hit = source_track(source_path, options, model, log)
    seconds["source"] = time.perf_counter() - t0
    n = len(src)
    index = driver_frames(seconds_from_start(src), seconds_from_start(driver),
                          options.driver_end)
    if options.driver_end == "stop":
        n = int(np.sum(index >= 0))
        if n == 0:
            raise InputError(f"{source_path}: the driver ends before the source's first frame")
    index = index[:n]
    reference = reference_frame(driver, options.motion.ref_frame)
    ref = reference.frame
    expression = driven_expression(src.expression[:n], driver.expression[index],
                                   expression_rest(driver, reference, src.expression[:n]),
                                   options.motion)
    if (options.motion.pose_mode in ("relative", "absolute")
            and options.motion.region in ("all", "pose")):
        pose = transfer_pose(src.pose[:n], driver.pose[index], driver.pose[ref],
                             options.motion.pose_mode)
    else:  # "off" and the default for a video source: the source's own head motion
        pose = src.pose[:n].astype(np.float64)
    t0 = time.perf_counter()
    size = (0, 0)
    written = 0
    paste: PasteBack | None = None
    with write_video(output, src.fps, options.encoder, src.time_base, audio,
                     options.overwrite) as writer, \
            log.progress("rendering", n) as bar:
        for t, (pts, frame) in enumerate(VideoReader(source_path).frames()):
            if t >= n:
                break
            out = frame
            if src.found[t]:
                face, crop, head = _drive_frame(model, renderer, src, t, frame, pose[t],
                                                expression[t], options)
                out = crop
                if options.paste_back:
                    region = HeadRegion.of(model, face.pose)
                    paste = (PasteBack(frame, face.box, region) if paste is None
                             else paste.over(frame, face.box, region))
                    out = paste(crop, head)
            if options.output_size is not None:
                out = cv2.resize(out, options.output_size, interpolation=cv2.INTER_AREA)
            size = (out.shape[1], out.shape[0])
            writer.write(out, int(pts))
            written += 1
            bar.advance(1)
    seconds["render"] = time.perf_counter() - t0
    return written, src.fps, size, cache_hit


def source_track(path: Path, options: Any, model: Any, log: Any) -> tuple[Track, bool]:
    """The source video's track, from the source cache when it holds one (keyed like a photo's
    analysis: the file's content, the face choice, the models); a cache that cannot be used
    is passed by with a warning."""
    cache = SourceCache(options.cache_dir or default_cache_dir()) if options.use_cache else None
    where = None
    if cache is not None:
        key = cache.key(file_sha256(path), options.source,
                        {"face_model": model.fingerprint(), "kind": "video track"})
        where = cache.track_path(key)
        if where.is_file():
            try:
                track = load_track(where)
                log.debug(f"source cache hit: {where}")
                return track, True
            except InputError:
                where.unlink(missing_ok=True)  # damaged: rebuilt
    reader = VideoReader(path)
    with log.progress("tracking source", reader.info.frame_count) as bar:
        track, _stats = track_video(path, TrackOptions(selection=options.source.selection),
                                    bar.advance, reader=reader)
    if where is not None:
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            save_track(track, where, overwrite=True)
        except (OSError, F2FError) as exc:
            log.info(f"warning: source cache {where.parent} unusable ({exc}); the track is "
                     "not kept")
    return track, False


def _drive_frame(model, renderer, src: Track, t: int, frame: np.ndarray, pose: np.ndarray,
                 expression: np.ndarray, options) -> tuple[SourceFace, np.ndarray, np.ndarray]:
    """Source frame `t` as a source face, its crop rendered with the driven `pose` and
    `expression`, and the head's similarity (2, 3) for the paste-back."""
    landmarks = src.landmarks[t]
    box = face_crop_box(landmarks, options.source.crop_scale, options.source.res)
    face = SourceFace(image=frame, box=box, landmarks=landmarks,
                      scores=np.zeros(N_BLENDSHAPES, np.float32), identity=src.identity,
                      identity_detail=src.identity_detail, pose=src.pose[t],
                      expression=src.expression[t])
    prepared = renderer.prepare(box.cut(frame), crop_motion(model, face, box, face.pose[None],
                                                             face.expression[None]))
    head = head_similarity(model, face.pose, pose[None])
    target = crop_motion(model, face, box, pose[None], expression[None], head=head)
    return face, renderer.render(prepared, target)[0], head[0]
