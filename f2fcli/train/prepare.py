"""`f2f prepare`: a folder of talking-head videos -> a training dataset (see `layout`).

Per clip: track the face through the video (one identity fit per clip), cut one fixed square
around the face for the whole clip (VoxCeleb "tube" style: the square around the union of
the per-frame face boxes, `crop_scale` times its larger side, the same framing rule as the
reenact crop), resize every frame to `res`, and store the frames, the per-frame 72
keypoints, head pose, 478 mesh landmarks and a face mask (convex hull of the mesh), all in
crop pixels. Clips run in parallel worker processes and finished clips are skipped on
a re-run, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from .. import __version__
from ..errors import F2FError, InputError, OutputError
from ..io.atomic import atomic_output
from . import layout

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg")
MIN_RES, MAX_RES = 64, 2048
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class PrepareOptions:
    """How `prepare_dataset` builds the dataset.

    res: side of the stored square crops. crop_scale: crop side / larger side of the union
    of the clip's face boxes (2.0 matches `f2f reenact --crop-scale`'s default framing for a
    still head). image_format: "jpg" (quality `jpeg_quality`, compact) or "png" (lossless).
    min_found: skip clips where fewer than this fraction of frames have a face.
    max_frames / frame_step: keep at most this many frames, every `frame_step`-th.
    test_fraction: share of clips (by a hash of the name) marked "test" for `f2f eval`.
    """

    res: int = 512
    crop_scale: float = 2.0
    image_format: str = "jpg"
    jpeg_quality: int = 95
    workers: int = 1
    threads_per_worker: int | None = None
    min_found: float = 0.5
    max_frames: int | None = None
    frame_step: int = 1
    test_fraction: float = 0.05
    recursive: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not MIN_RES <= self.res <= MAX_RES:
            raise ValueError(f"res must be within {MIN_RES}..{MAX_RES}, got {self.res}")
        if self.image_format not in layout.IMAGE_FORMATS:
            raise ValueError(f"image format must be one of {', '.join(layout.IMAGE_FORMATS)}")
        if not 1.0 <= self.crop_scale <= 5.0:
            raise ValueError(f"crop scale must be within 1..5, got {self.crop_scale}")
        if self.workers < 1 or self.frame_step < 1:
            raise ValueError("workers and frame step must be at least 1")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("test fraction must be within [0, 1)")


@dataclass
class ClipResult:
    """What happened to one video: "done" (prepared now), "exists" (finished earlier),
    "skipped" (no usable face; `reason` says why) or "failed" (an error; `reason`)."""

    name: str
    source: str
    status: str
    frames: int = 0
    found: int = 0
    split: str = ""
    reason: str = ""
    seconds: float = 0.0


@dataclass
class PrepareReport:
    dataset_dir: Path
    clips: list[ClipResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for c in self.clips if c.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset_dir": str(self.dataset_dir), "seconds": round(self.seconds, 2),
                **{s: self.count(s) for s in ("done", "exists", "skipped", "failed")},
                "clips": [asdict(c) for c in self.clips]}


def find_videos(video_dir: Path, recursive: bool = True) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in video_dir.glob(pattern)
                  if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                  and not p.name.startswith("."))


def clip_crop_box(landmarks: np.ndarray, found: np.ndarray, crop_scale: float, res: int):
    """One square for the whole clip around the union of the per-frame landmark boxes,
    framed like `pipeline.crop.face_crop_box` (which this calls on the union's corners)."""
    from ..pipeline.crop import MIN_RES as CROP_MIN_RES
    from ..pipeline.crop import face_crop_box

    xy = landmarks[found][:, :, :2]
    corners = np.stack([xy.min(axis=(0, 1)), xy.max(axis=(0, 1))])
    box = face_crop_box(corners, crop_scale, max(res, CROP_MIN_RES))
    return replace(box, res=res)


def face_mask(points: np.ndarray, res: int) -> np.ndarray:
    """uint8 res x res mask, 255 inside the convex hull of the (crop-pixel) points."""
    mask = np.zeros((res, res), np.uint8)
    if np.isfinite(points).all():
        hull = cv2.convexHull(np.round(points[:, :2] * 16).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA, shift=4)
        mask = np.where(mask >= 128, 255, 0).astype(np.uint8)
    return mask


def _write_image(path: Path, rgb: np.ndarray, quality: int) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
        raise OutputError(f"could not write {path}")


def prepare_clip(video: Path, name: str, out_dir: Path, options: PrepareOptions) -> ClipResult:
    """Track, crop and store one clip in `out_dir/clips/name` (written atomically)."""
    from ..io.video import VideoReader
    from ..tracking.face_model import warp_pose
    from ..tracking.video_track import TrackOptions, track_video

    start = time.perf_counter()
    result = ClipResult(name, str(video), "done")
    try:
        track, _ = track_video(video, TrackOptions(threads=options.threads_per_worker))
    except InputError as exc:
        return _skip(out_dir, result, str(exc), start)
    keep = np.arange(0, len(track), options.frame_step)
    if options.max_frames is not None:
        keep = keep[:options.max_frames]
    found = track.found[keep]
    if found.sum() < 2 or found.mean() < options.min_found:
        return _skip(out_dir, result, f"a face in only {int(found.sum())} of {len(keep)} frames "
                     f"(need at least 2 and {options.min_found:.0%})", start)
    box = clip_crop_box(track.landmarks[keep], found, options.crop_scale, options.res)
    offset = -np.array([box.x0, box.y0], np.float64) * box.scale
    arrays = {
        "keypoints": box.to_crop(track.keypoints[keep]).astype(np.float32),
        "pose": warp_pose(track.pose[keep], box.scale, offset).astype(np.float32),
        "landmarks": box.to_crop(track.landmarks[keep]).astype(np.float32),
        "expression": track.expression[keep].astype(np.float32),
        "found": found,
        "identity": np.asarray(track.identity, np.float32),
    }
    final = out_dir / layout.CLIPS / name
    with atomic_output(final, overwrite=True) as tmp:
        (tmp / layout.FRAMES).mkdir(parents=True)
        (tmp / layout.MASKS).mkdir()
        wanted = {int(k): i for i, k in enumerate(keep)}
        written, last = 0, int(keep[-1])
        for chunk in VideoReader(video).chunks(16):
            if chunk.start_index > last:
                break
            for index, image in zip(chunk.indices, chunk.images):
                j = wanted.get(int(index))
                if j is None:
                    continue
                _write_image(tmp / layout.FRAMES / layout.frame_name(j, options.image_format),
                             box.cut(image), options.jpeg_quality)
                points = arrays["landmarks"][j] if found[j] else arrays["keypoints"][j]
                cv2.imwrite(str(tmp / layout.MASKS / layout.mask_name(j)),
                            face_mask(points, options.res))
                written += 1
        if written != len(keep):
            raise InputError(f"{video}: decoded {written} of the {len(keep)} tracked frames")
        layout.save_track_arrays(tmp / layout.TRACK_NPZ, arrays)
        split = layout.split_of(name, options.test_fraction)
        info = {"name": name, "source": str(video), "frames": len(keep),
                "found": int(found.sum()), "res": options.res, "split": split,
                "image_format": options.image_format, "crop": box.to_dict(),
                "crop_scale": options.crop_scale, "frame_step": options.frame_step,
                "fps": f"{track.fps.numerator}/{track.fps.denominator}",
                "source_size": [track.width, track.height], "f2f_version": __version__}
        (tmp / layout.CLIP_JSON).write_text(json.dumps(info, indent=1))
    result.frames, result.found, result.split = len(keep), int(found.sum()), split
    result.seconds = time.perf_counter() - start
    return result


def _skip(out_dir: Path, result: ClipResult, reason: str, start: float) -> ClipResult:
    result.status, result.reason = "skipped", reason
    result.seconds = time.perf_counter() - start
    record = out_dir / layout.SKIPPED / f"{result.name}.json"
    record.write_text(json.dumps({"name": result.name, "source": result.source,
                                  "reason": reason}))
    return result


def _run_clip(video: Path, name: str, out_dir: Path, options: PrepareOptions) -> ClipResult:
    """Worker entry: never raises for a per-clip problem, so one bad video does not stop
    the run (the report lists it as failed)."""
    try:
        return prepare_clip(video, name, out_dir, options)
    except F2FError as exc:
        return ClipResult(name, str(video), "failed", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - reported per clip, with the traceback's last line
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return ClipResult(name, str(video), "failed", reason=last)


def _existing(out_dir: Path, name: str, video: Path) -> ClipResult | None:
    clip_dir = out_dir / layout.CLIPS / name
    if (clip_dir / layout.CLIP_JSON).is_file():
        info = json.loads((clip_dir / layout.CLIP_JSON).read_text())
        return ClipResult(name, str(video), "exists", int(info["frames"]), int(info["found"]),
                          str(info["split"]))
    skipped = out_dir / layout.SKIPPED / f"{name}.json"
    if skipped.is_file():
        return ClipResult(name, str(video), "skipped",
                          reason=json.loads(skipped.read_text()).get("reason", ""))
    return None


def _check_settings(out_dir: Path, options: PrepareOptions) -> None:
    path = out_dir / layout.MANIFEST
    if not path.is_file():
        return
    old = layout.read_manifest(out_dir)
    for key in ("res", "crop_scale", "image_format", "frame_step"):
        if old.get(key) != getattr(options, key):
            raise InputError(f"{out_dir} was prepared with {key} {old.get(key)!r}, not "
                             f"{getattr(options, key)!r}; use another directory or `overwrite`")


def write_manifest(out_dir: Path, options: PrepareOptions) -> dict[str, Any]:
    """Rebuild manifest.json from the finished clip folders and skip records."""
    clips, skipped = [], []
    clip_root, skip_root = out_dir / layout.CLIPS, out_dir / layout.SKIPPED
    for clip_json in sorted(clip_root.glob(f"*/{layout.CLIP_JSON}")):
        info = json.loads(clip_json.read_text())
        clips.append({k: info[k] for k in ("name", "source", "frames", "found", "split")})
    for record in sorted(skip_root.glob("*.json")):
        skipped.append(json.loads(record.read_text()))
    manifest = {"format": layout.FORMAT, "version": layout.VERSION, "f2f_version": __version__,
                "res": options.res, "crop_scale": options.crop_scale,
                "image_format": options.image_format, "frame_step": options.frame_step,
                "coordinates": "crop pixels at res, origin at the crop's top-left corner",
                "clips": clips, "skipped": skipped}
    with atomic_output(out_dir / layout.MANIFEST, overwrite=True) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return manifest


def prepare_dataset(video_dir: str | Path, out_dir: str | Path,
                    options: PrepareOptions = PrepareOptions(),
                    progress: Callable[[ClipResult], None] = lambda r: None) -> PrepareReport:
    """Prepare every video below `video_dir` into `out_dir` (created if needed).

    Finished clips (and clips recorded as skipped) are not redone unless `overwrite`.
    `progress` is called once per video as it finishes.
    """
    start = time.perf_counter()
    video_dir, out_dir = Path(video_dir), Path(out_dir)
    if not video_dir.is_dir():
        raise InputError(f"{video_dir}: not a directory")
    videos = find_videos(video_dir, options.recursive)
    if not videos:
        raise InputError(f"{video_dir}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    if options.overwrite and out_dir.exists():
        for sub in (layout.CLIPS, layout.SKIPPED, layout.MANIFEST):
            target = out_dir / sub
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    _check_settings(out_dir, options)
    (out_dir / layout.CLIPS).mkdir(parents=True, exist_ok=True)
    (out_dir / layout.SKIPPED).mkdir(exist_ok=True)
    for stale in (out_dir / layout.CLIPS).glob(".*.part*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)

    names: dict[str, Path] = {}
    for video in videos:
        name = layout.clip_name(video, video_dir)
        if name in names:  # same stem, different container: keep both
            name = f"{name}_{video.suffix.lstrip('.').lower()}"
        names[name] = video
    report = PrepareReport(out_dir)
    todo = []
    for name, video in names.items():
        done = _existing(out_dir, name, video)
        if done is not None:
            report.clips.append(done)
            progress(done)
        else:
            todo.append((name, video))

    threads = options.threads_per_worker
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // options.workers)
    worker_options = replace(options, threads_per_worker=threads)
    if options.workers == 1 or len(todo) <= 1:
        for name, video in todo:
            result = _run_clip(video, name, out_dir, worker_options)
            report.clips.append(result)
            progress(result)
    else:
        # Workers inherit the environment: cap their BLAS/OpenMP pools at their thread share
        # (oversubscribed OpenBLAS slows the face-model fit down 10x or more).
        saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: str(threads) for k in _THREAD_VARS})
        try:
            with ProcessPoolExecutor(min(options.workers, len(todo)),
                                     mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_run_clip, video, name, out_dir, worker_options)
                           for name, video in todo]
                for future in as_completed(futures):
                    result = future.result()
                    report.clips.append(result)
                    progress(result)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    report.clips.sort(key=lambda c: c.name)
    write_manifest(out_dir, options)
    report.seconds = time.perf_counter() - start
    return report
