"""`f2f track`: video -> per-frame landmarks -> face-model fit -> smoothed track."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..dirs import shipped_weights_dir
from ..errors import InputError
from ..io.video import VideoReader
from . import keypoints as kp
from .channels import N_BLENDSHAPES
from .face_model import FaceModel
from .fitting import choose_reference_frame, fit_sequence
from .smoothing import SmoothingParams, fill_track, smooth_track
from .track import Track
from .tracker import FaceSelection, FrameObservation, MultiFaceTracker, VideoFaceTracker

DEFAULT_SMOOTHING = SmoothingParams()


@dataclass(frozen=True)
class TrackOptions:
    """How a video is tracked. `smoothing=None` keeps the raw per-frame fit."""

    selection: FaceSelection = FaceSelection()
    smoothing: SmoothingParams | None = DEFAULT_SMOOTHING
    threads: int | None = None
    chunk_size: int = 32


@dataclass
class TrackStats:
    """What tracking did and where the time went (seconds)."""

    frames: int = 0
    faces_found: int = 0
    detections: int = 0
    scene_cuts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        total = sum(self.seconds.values())
        return self.frames / total if total > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"frames": self.frames, "faces_found": self.faces_found,
                "detections": self.detections, "scene_cuts": self.scene_cuts,
                "throughput_fps": round(self.fps, 2),
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def smoothing_from_sigmas(sigma_t: float, sigma_r: float) -> SmoothingParams:
    """`--smooth SIGMA_T,SIGMA_R`: SIGMA_R is the expression range sigma (blendshape units);
    the pose range sigmas scale with it from their defaults."""
    if sigma_t <= 0 or sigma_r <= 0:
        raise ValueError("smoothing sigmas must be positive")
    k = sigma_r / DEFAULT_SMOOTHING.sigma_expression
    d = DEFAULT_SMOOTHING
    return SmoothingParams(sigma_t=sigma_t, sigma_expression=sigma_r,
                           sigma_rotation=d.sigma_rotation * k,
                           sigma_translation=d.sigma_translation * k,
                           sigma_log_scale=d.sigma_log_scale * k)


def model_hashes() -> dict[str, str]:
    """SHA-256 of the shipped model files, as recorded in weights/provenance.json."""
    directory = shipped_weights_dir()
    if directory is None or not (directory / "provenance.json").is_file():
        return {}
    record = json.loads((directory / "provenance.json").read_text())
    return {name: entry["sha256"] for name, entry in record.get("derived", {}).items()}


def _timed_chunks(reader: VideoReader, stats: TrackStats,
                  on_frames: Callable[[int], None]) -> Iterator[Any]:
    """The video's chunks of 32 frames; the time spent decoding them and the time the caller
    spends on them (the face models) go into `stats`, and `on_frames` hears of each."""
    t_decode = t_models = 0.0
    start = time.perf_counter()
    for chunk in reader.chunks(32):
        t_decode += time.perf_counter() - start
        t0 = time.perf_counter()
        yield chunk
        t_models += time.perf_counter() - t0
        on_frames(len(chunk))
        start = time.perf_counter()
    stats.seconds.update(decode=t_decode, face_models=t_models)


def observe_video(reader: VideoReader, tracker: VideoFaceTracker, stats: TrackStats,
                  on_frames: Callable[[int], None]) -> dict[str, np.ndarray]:
    """Run the face models on every frame; frames without a face hold NaN."""
    pts, landmarks, scores, confidence, box = [], [], [], [], []
    for chunk in _timed_chunks(reader, stats, on_frames):
        chunk_landmarks = []
        for image in chunk.images:
            obs = tracker(image)
            chunk_landmarks.append(obs.landmarks if obs.found else
                                   np.full((kp.N_LANDMARKS, 3), np.nan, np.float32))
            scores.append(obs.blendshapes if obs.found
                          else np.full(N_BLENDSHAPES, np.nan, np.float32))
            confidence.append(obs.confidence)
            box.append(obs.box)
        # one array per chunk, not per frame: a long video's landmarks are stacked only once
        landmarks.append(np.stack(chunk_landmarks).astype(np.float32, copy=False))
        pts.append(chunk.pts)
    if not landmarks:
        raise InputError(f"{reader.path}: no decodable video frames")
    return {"pts": np.concatenate(pts), "landmarks": np.concatenate(landmarks),
            "scores": np.stack(scores).astype(np.float32),
            "confidence": np.asarray(confidence, np.float32), "box": np.stack(box)}


def track_video(path: str | os.PathLike[str], options: TrackOptions = TrackOptions(),
                on_frames: Callable[[int], None] = lambda n: None,
                reader: VideoReader | None = None) -> tuple[Track, TrackStats]:
    """Track the face in a video and fit the face model to every frame.

    Frames without a face are kept: their pose and expression are interpolated between
    neighbours (held at the ends) and flagged `filled`. Raises InputError if no frame has a face.
    """
    reader = reader or VideoReader(path)
    tracker = VideoFaceTracker(options.selection, threads=options.threads)
    stats = TrackStats()
    observed = observe_video(reader, tracker, stats, on_frames)
    stats.detections, stats.scene_cuts = tracker.detections, tracker.scene_cuts
    found = np.isfinite(observed["landmarks"]).all(axis=(1, 2))
    stats.frames, stats.faces_found = len(found), int(found.sum())
    if not found.any():
        hint = "" if options.selection.box is not None else (
            "; a face under about 1/5 of the frame needs `face_box` X,Y,W,H around it")
        raise InputError(f"{reader.path}: no face found in any of its {len(found)} frames{hint}")
    return fitted_track(observed, reader, options, stats), stats


def track_faces(path: str | os.PathLike[str], options: TrackOptions = TrackOptions(),
                on_frames: Callable[[int], None] = lambda n: None,
                reader: VideoReader | None = None) -> tuple[list[Track], TrackStats]:
    """Every face of a video, each tracked and fitted like `track_video`'s one face, in the
    order of their numbers (`tracker.MultiFaceTracker`); a face's track is `filled` where it
    is not in view. `stats.faces_found` counts frames with any face."""
    reader = reader or VideoReader(path)
    tracker = MultiFaceTracker(threads=options.threads)
    stats = TrackStats()
    per_face = observe_faces(reader, tracker, stats, on_frames)
    stats.detections, stats.scene_cuts = tracker.detections, tracker.scene_cuts
    if not per_face:
        raise InputError(f"{reader.path}: no face found in any of its {stats.frames} frames")
    found = np.stack([np.isfinite(o["landmarks"]).all(axis=(1, 2)) for o in per_face])
    stats.faces_found = int(found.any(0).sum())
    return [fitted_track(observed, reader, options, stats) for observed in per_face], stats


def observe_faces(reader: VideoReader, tracker: MultiFaceTracker, stats: TrackStats,
                  on_frames: Callable[[int], None]) -> list[dict[str, np.ndarray]]:
    """`observe_video` for every face: one set of arrays per face number, NaN where that
    face is not in view."""
    pts: list[np.ndarray] = []
    seen: list[list[FrameObservation]] = []  # per frame, per face number so far
    for chunk in _timed_chunks(reader, stats, on_frames):
        seen.extend(tracker(image) for image in chunk.images)
        pts.append(chunk.pts)
    if not seen:
        raise InputError(f"{reader.path}: no decodable video frames")
    stats.frames = len(seen)
    count = max(len(frame) for frame in seen)
    missing = FrameObservation(None, None, 0.0, False)
    faces = []
    for n in range(count):
        obs = [frame[n] if n < len(frame) else missing for frame in seen]
        faces.append({
            "pts": np.concatenate(pts),
            "landmarks": np.stack([o.landmarks if o.found else
                                   np.full((kp.N_LANDMARKS, 3), np.nan, np.float32)
                                   for o in obs]).astype(np.float32),
            "scores": np.stack([o.blendshapes if o.found else
                                np.full(N_BLENDSHAPES, np.nan, np.float32)
                                for o in obs]).astype(np.float32),
            "confidence": np.asarray([o.confidence for o in obs], np.float32),
            "box": np.stack([o.box for o in obs])})
    return faces


def fitted_track(observed: dict[str, np.ndarray], reader: VideoReader, options: TrackOptions,
                 stats: TrackStats) -> Track:
    """The face model fitted to one face's observed frames, smoothed, as a Track."""
    found = np.isfinite(observed["landmarks"]).all(axis=(1, 2))
    t0 = time.perf_counter()
    model = FaceModel.canonical()
    fit = fit_sequence(model, observed["landmarks"], observed["scores"], valid=found)
    stats.seconds["fit"] = stats.seconds.get("fit", 0.0) + time.perf_counter() - t0
    t0 = time.perf_counter()
    if options.smoothing is None:
        hp, expression = fill_track(fit.hp, fit.expression, found)
    else:
        smoothed = smooth_track(fit.hp, fit.expression, found, options.smoothing)
        hp, expression = smoothed.hp, smoothed.expression
    keypoints = model.keypoints72(fit.identity.s, expression, hp, fit.identity.detail)
    stats.seconds["smooth"] = stats.seconds.get("smooth", 0.0) + time.perf_counter() - t0

    info = reader.info
    meta = {
        "source_video": Path(info.path).name,
        "models": model_hashes(),
        "face_model": model.fingerprint(),
        "smoothing": None if options.smoothing is None else vars(options.smoothing),
        "reference_frame": int(choose_reference_frame(hp, expression, found)),
        "median_keypoint_error": float(np.nanmedian(fit.keypoint_error[found])),
        "truncated_input": reader.truncated,
        "truncation": reader.truncation_reason,
    }
    track = Track(pts=observed["pts"], pose=hp.astype(np.float32),
                  expression=expression.astype(np.float32),
                  keypoints=keypoints.astype(np.float32), landmarks=observed["landmarks"],
                  confidence=observed["confidence"], box=observed["box"], found=found,
                  filled=~found, identity=fit.identity.s.astype(np.float32),
                  identity_detail=fit.identity.detail.astype(np.float32),
                  fps=info.fps, time_base=info.time_base, width=info.width,
                  height=info.height, meta=meta)
    return track
