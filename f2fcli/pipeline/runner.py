"""`f2f reenact`: source + driving motion -> rendered, pasted-back, encoded video, in chunks.

Data flow: driving video -> track (decoded once) -> motion on the source -> render in
chunks of `batch_size` -> paste-back -> encode. Paste-back and encoding run in a background
thread, so they work while the next chunk renders; memory holds a few chunks of crops,
whatever the length.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

import cv2
import numpy as np

from ..choices import Backend, Device, DriverEnd
from ..dirs import default_cache_dir
from ..errors import F2FError, InputError
from ..frames import frame_blocks
from ..io.atomic import check_output_path
from ..io.image import ImageOutput, is_image_path
from ..io.video import VideoReader
from ..io.writer import EncoderSettings, VideoWriter, write_video
from ..threads import opencv_threads
from ..tracking import keypoints as kp
from ..tracking.face_model import FaceModel
from ..tracking.landmarks import BlendshapeModel, FaceLandmarker
from ..tracking.track import Track, load_track
from ..tracking.tracker import landmark_box
from ..tracking.video_track import TrackOptions, track_video
from .crop import CropBox
from .faces import (FaceChoice, FaceMap, check_drivers, choose_faces, drivers_named, main_driver,
                    several)
from .head import HeadRegion
from .motion import DrivenMotion, MotionOptions, drive
from .paste import PasteBack, paste_faces
from .renderer import (FaceRenderer, WarpFaceRenderer, choose_renderer, crop_motion, iris_response,
                       observer)
from .source import SourceCache, SourceFace, SourceOptions, load_faces, load_source, still_track
from .timing import driver_frames, follower_end, seconds_from_start
from .video_source import reenact_video_source

# Face size (px) in the crops retargeting renders to read back: the landmarker sees a face
# about this large in its 256-px input, so more pixels are only more work.
PROBE_FACE_PX = 176


class Progress(Protocol):
    def info(self, message: str) -> None: ...

    def debug(self, message: str) -> None: ...

    def progress(self, description: str, total: int | None) -> Any: ...


class SilentProgress:
    def info(self, message: str) -> None:
        pass

    def debug(self, message: str) -> None:
        pass

    def progress(self, description: str, total: int | None) -> Any:
        from ..console import Reporter

        return Reporter(verbosity=-1).progress(description, total)


@dataclass(frozen=True)
class ReenactOptions:
    """Everything `f2f reenact` can be told. `audio`: "auto" (the source video's, else the
    driver's), "source", "driving", "none" or a file path; `driver_end`: what a driver shorter
    than a source video does at its end."""

    source: SourceOptions = SourceOptions()
    motion: MotionOptions = MotionOptions()
    driver: TrackOptions = TrackOptions()
    renderer: str = "auto"
    weights: Path | None = None
    device: Device = "auto"  # the neural renderer's: CUDA, then MPS, then the CPU
    fp16: bool = False
    backend: Backend = "auto"
    batch_size: int = 8
    paste_back: bool = True
    output_size: tuple[int, int] | None = None
    audio: str = "auto"
    encoder: EncoderSettings = EncoderSettings()
    overwrite: bool = False
    cache_dir: Path | None = None
    use_cache: bool = True
    frames: int | None = None  # an image driver's clip length (None: one frame)
    driver_end: DriverEnd = "hold"
    faces: FaceChoice = None  # the faces `driving` moves, by number; None: the one selected
    face_map: FaceMap = ()  # faces with drivers of their own: (number, driver) pairs


@dataclass
class ReenactResult:
    output: Path
    frames: int
    fps: Fraction
    renderer: str
    cache_hit: bool
    ref_frame: int
    faces_found: int
    audio: str | None
    wall_seconds: float  # less than the steps' sum: some of them overlap
    seconds: dict[str, float] = field(default_factory=dict)
    size: tuple[int, int] = (0, 0)  # the output's width and height
    faces: list[dict] | None = None  # per face moved, when faces were named (`faces`)
    device: str = "cpu"  # where the renderer ran

    def to_dict(self) -> dict[str, object]:
        total = self.wall_seconds
        return {"output": str(self.output), "frames": self.frames,
                "width": self.size[0], "height": self.size[1],
                "fps": f"{self.fps.numerator}/{self.fps.denominator}",
                "renderer": self.renderer, "device": self.device,
                "source_cache_hit": self.cache_hit,
                "ref_frame": self.ref_frame, "driver_faces_found": self.faces_found,
                "filled_frames": self.frames - self.faces_found, "audio": self.audio,
                "throughput_fps": round(self.frames / total, 2) if total else None,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                **({"faces": self.faces} if self.faces is not None else {})}


class _BackgroundEncoder:
    """Feeds a VideoWriter from a thread; a bounded queue keeps memory flat.

    `finish` turns a rendered crop into the output frame (paste-back, output size) in the
    encoder's thread, one frame at a time: the queue then holds crops, not full-size frames,
    whose size follows the source photo (a 4096-px photo makes 50 MB frames).
    Used as a context manager inside `write_video`, so the thread has stopped before the
    writer finishes or aborts.
    """

    def __init__(self, writer: VideoWriter,
                 finish: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 depth: int = 2) -> None:
        self._writer = writer
        self._finish = finish
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self.size = (0, 0)  # the output frames' width and height
        self._thread = threading.Thread(target=self._run, name="f2f-encoder", daemon=True)

    def __enter__(self) -> "_BackgroundEncoder":
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None or self._stop.is_set():
                continue
            try:
                for frame, pts, head in zip(*item):
                    out = self._finish(frame, head)
                    self.size = (out.shape[1], out.shape[0])
                    self._writer.write(out, int(pts))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = exc

    def put(self, frames: np.ndarray, pts: np.ndarray, heads: np.ndarray) -> None:
        """Rendered crops (N, F, R, R, 3) of F faces, the frames' timestamps (N,) and the
        heads' similarities (N, F, 2, 3)."""
        if self._error is not None:
            raise self._error
        self._queue.put((frames, pts, heads))

    def __exit__(self, exc_type: type | None, *_: object) -> None:
        if exc_type is not None:
            self._stop.set()
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put(None)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error


DriverKind = Literal["video", "track", "image"]


def load_driver(driving: Path, options: TrackOptions, log: Progress, resources: "Resources",
                frames: int = 1) -> tuple[Track, DriverKind]:
    """The driving motion: a track file as is, an image held for `frames` frames
    (`source.still_track`), or a video tracked now."""
    if driving.suffix.lower() == ".npz":
        return load_track(driving), "track"
    if is_image_path(driving):
        still = SourceOptions(selection=options.selection, threads=options.threads)
        return still_track(driving, still, resources.model, frames), "image"
    known = resources.known_track(driving, options)
    if known is not None:
        return known, "video"
    reader = VideoReader(driving)
    with log.progress("tracking driver", reader.info.frame_count) as bar:
        track, stats = track_video(driving, options, bar.advance, reader=reader)
    log.debug(f"driver tracking: {stats.to_dict()}")
    if reader.truncated:
        log.info(f"warning: {driving} is cut short ({reader.truncation_reason}); the output "
                 f"has the {len(track)} frames it has")
    return track, "video"


def check_track_model(track: Track, model: FaceModel, path: Path) -> None:
    """Refuse a track file fitted with another face model: its identity and expression
    coefficients mean other shapes in this one."""
    made_with = track.meta.get("face_model")
    if made_with is not None and made_with != model.fingerprint():
        raise InputError(f"{path}: track made with another face model (an older f2f or a "
                         "changed model); run `f2f track` on the video again")


def _renderer_line(renderer: FaceRenderer, weights: Path | None) -> str:
    return f"renderer: {renderer.name}" + (f" ({weights}) on {renderer.device}" if weights else
                                           " (training-free; no neural weights given)")


def _audio_source(option: str, driving: Path, kind: DriverKind,
                  source_video: Path | None = None) -> Path | None:
    """The output's audio: `auto` is the source video's (a video source) or the driver's."""
    if option == "none":
        return None
    if option == "auto":
        option = "source" if source_video is not None else "driving"
    if option == "source":
        if source_video is None:
            raise InputError("`audio` source needs a video as the source")
        return source_video if VideoReader(source_video).info.has_audio else None
    if option == "driving":
        if kind != "video":
            return None
        return driving if VideoReader(driving).info.has_audio else None
    path = Path(option)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    return path


class Resources:
    """Things worth keeping between jobs of one process: the face model and renderers."""

    def __init__(self) -> None:
        self._model: FaceModel | None = None
        self._blendshapes: BlendshapeModel | None = None
        self._landmarker: FaceLandmarker | None = None
        self._renderers: dict[tuple, FaceRenderer] = {}
        self._said: set[str] = set()
        self._tracks: dict[tuple[Path, TrackOptions], Track] = {}

    def remember_track(self, path: Path, options: TrackOptions, track: Track) -> None:
        """A driving video's track, made elsewhere (a batch tracks each driver once):
        `load_driver` takes it instead of tracking the video again."""
        self._tracks[(path.resolve(), options)] = track

    def known_track(self, path: Path, options: TrackOptions) -> Track | None:
        return self._tracks.get((path.resolve(), options))

    def forget_tracks(self) -> None:
        self._tracks.clear()

    def announce(self, log: Progress, message: str) -> None:
        """`log.info` a message once per process (a batch's jobs share their renderer)."""
        if message not in self._said:
            self._said.add(message)
            log.info(message)

    @property
    def model(self) -> FaceModel:
        if self._model is None:
            self._model = FaceModel.canonical()
        return self._model

    @property
    def landmarker(self) -> FaceLandmarker:
        if self._landmarker is None:
            self._landmarker = FaceLandmarker(threads=1)
        return self._landmarker

    @property
    def blendshapes(self) -> BlendshapeModel:
        """The tracker's blendshape network, for retargeting: many small calls, spread over
        the cores (two threads: this is a laptop CPU's worth, and rendering has not started)."""
        if self._blendshapes is None:
            self._blendshapes = BlendshapeModel(threads=1, workers=2)
        return self._blendshapes

    def renderer(self, name: str, weights: Path | None, options: ReenactOptions) -> FaceRenderer:
        key = (name, weights, options.device, options.fp16, options.backend)
        if key not in self._renderers:
            if name == "warp":
                self._renderers[key] = WarpFaceRenderer()
            else:
                from .neural import NeuralFaceRenderer

                self._renderers[key] = NeuralFaceRenderer(weights, options.device, options.fp16,
                                                          options.backend)
        return self._renderers[key]


def probe_view(renderer: FaceRenderer, prepared: object, model: FaceModel,
                source: SourceFace) -> tuple[object, CropBox]:
    """The warp renderer prepared at the smallest size that still shows the landmarker the
    face at its own input scale (a 256-px crop of about 1.5 face widths), for the frames
    retargeting renders to read back; other renderers keep their size."""
    box = source.box
    face = float(np.ptp(source.landmarks[:kp.N_MESH, :2], axis=0).max()) * box.scale
    res = int(np.ceil(box.res * PROBE_FACE_PX / max(face, 1.0) / 16.0)) * 16
    if renderer.name != "warp" or res >= box.res:
        return prepared, box
    small = replace(box, res=res)
    return renderer.prepare(small.cut(source.image),
                            crop_motion(model, source, small, source.pose[None],
                                        source.expression[None])), small


def reenact(source_path: Path, driving: Path | None, output: Path,
            options: ReenactOptions = ReenactOptions(), log: Progress | None = None,
            resources: Resources | None = None) -> ReenactResult:
    """Animate the face in `source_path` with the motion of `driving` into `output` (or the
    faces `options.faces` and `options.face_map` name, see `faces`; `driving` may then be
    None).

    OpenCV runs single-threaded during the call (the decoder, the source analysis and the
    encoder already keep the cores busy); the caller's setting is restored afterwards."""
    with opencv_threads(1):
        return _reenact(source_path, driving, output, options, log, resources)


@dataclass
class _Face:
    """One source face on its way to the output: its driver, the driver frame shown at each
    output frame, and what rendering it needs."""

    number: int | None  # left-to-right number; None: the one face the selection picked
    source: SourceFace
    driving: Path
    track: Track
    index: np.ndarray
    prepared: object = None
    motion: DrivenMotion | None = None
    paste: PasteBack | None = None

    def to_dict(self) -> dict[str, object]:
        return {"face": self.number, "driving": str(self.driving),
                "box": [round(float(v), 1) for v in landmark_box(self.source.landmarks)],
                "ref_frame": None if self.motion is None else self.motion.ref_frame,
                "driver_faces_found": int(self.track.found.sum())}


def _check_request(driving: Path | None, output: Path, options: ReenactOptions) -> None:
    if several(options.faces, options.face_map) and not options.paste_back:
        raise InputError("several faces (`faces`, `face_map`) are pasted back into one "
                         "picture; a crop output without paste-back has room for one face")
    check_drivers(driving, options.faces, options.face_map)


def _reenact(source_path: Path, driving: Path | None, output: Path, options: ReenactOptions,
             log: Progress | None, resources: Resources | None) -> ReenactResult:
    log = log or SilentProgress()
    resources = resources or Resources()
    _check_request(driving, output, options)
    if is_video_source(source_path):
        return _reenact_from_video(source_path, driving, output, options, log, resources)
    drivers = drivers_named(driving, options.face_map)
    image_out = is_image_path(output)
    if image_out and not all(is_image_path(path) for path in drivers):
        raise InputError(f"{output}: an image output needs an image as the driver (a video "
                         "driver makes a video: give the output a video suffix)")
    if image_out and options.frames not in (None, 1):
        raise InputError(f"{output}: an image output is one frame; `frames` is for videos")
    if not image_out:
        options.encoder.validate_for(output)
    check_output_path(output, options.overwrite)
    if options.batch_size < 1:
        raise F2FError("batch size must be at least 1")
    renderer_name, weights = choose_renderer(options.renderer, options.weights)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    every = several(options.faces, options.face_map)

    cache = (SourceCache(options.cache_dir or default_cache_dir()) if options.use_cache else None)

    def source_job() -> tuple[list[SourceFace], bool]:
        t0 = time.perf_counter()
        args = (source_path, options.source, resources.model, cache, log.debug,
                lambda message: log.info(f"warning: {message}"))
        if every:
            found = load_faces(*args)
        else:
            one, hit = load_source(*args)
            found = ([one], hit)
        seconds["source"] = time.perf_counter() - t0
        return found

    # The source analysis (and the face model it builds) runs on the second core while the
    # drivers are decoded and tracked; the drivers' fit finds the model built by then.
    with ThreadPoolExecutor(1, thread_name_prefix="f2f-source") as pool:
        pending = pool.submit(source_job)
        t0 = time.perf_counter()
        tracks = {path: load_driver(path, options.driver, log, resources, options.frames or 1)
                  for path in drivers}
        seconds["driver_tracking"] = time.perf_counter() - t0
        sources, cache_hit = pending.result()
    model = resources.model
    main = main_driver(driving, options.face_map)
    track, driver_kind = tracks[main]
    for path, (each, kind) in tracks.items():
        if kind == "track":
            check_track_model(each, model, path)
    if driver_kind == "image" and not image_out and options.frames is None:
        log.info(f"warning: {main} is an image: the video has one frame (`frames` N makes "
                 "a clip of N)")
    faces = _faces_to_move(source_path, sources, driving, tracks, main, options, log)
    audio = _audio_source(options.audio, main, driver_kind)
    if options.audio in ("auto", "driving") and driver_kind != "video" and not image_out:
        log.info(f"{main}: a {'track file' if driver_kind == 'track' else 'still image'} "
                 "has no audio; the output is silent (`audio` PATH adds a sound track)")

    t0 = time.perf_counter()
    renderer = resources.renderer(renderer_name, weights, options)
    resources.announce(log, _renderer_line(renderer, weights))
    for face in faces:
        face.prepared = renderer.prepare(face.source.crop(), crop_motion(
            model, face.source, face.source.box, face.source.pose[None],
            face.source.expression[None]))
        if options.paste_back:
            face.paste = PasteBack(face.source.image, face.source.box,
                                   HeadRegion.of(model, face.source.pose))
    seconds["prepare"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    for face in faces:
        face.motion = _face_motion(face, renderer, options, resources, log, len(faces) > 1)
    seconds["motion"] = time.perf_counter() - t0

    def finish(crops: np.ndarray, heads: np.ndarray) -> np.ndarray:
        if options.paste_back:
            frame = paste_faces([face.paste for face in faces], crops, heads)
        else:
            frame = crops[0]
        if options.output_size is not None:
            frame = cv2.resize(frame, options.output_size, interpolation=cv2.INTER_AREA)
        return frame

    render_s = 0.0
    t_start = time.perf_counter()
    sink = (ImageOutput(output, options.overwrite) if image_out else
            write_video(output, track.fps, options.encoder, track.time_base, audio,
                        options.overwrite))
    with sink as writer, _BackgroundEncoder(writer, finish) as encoder:
        with log.progress("rendering", len(track)) as bar:
            for part in frame_blocks(len(track), options.batch_size):
                t0 = time.perf_counter()
                crops, heads = zip(*(_render_face(face, part, renderer, model)
                                     for face in faces))
                render_s += time.perf_counter() - t0
                encoder.put(np.stack(crops, 1), track.pts[part], np.stack(heads, 1))
                bar.advance(part.stop - part.start)
    seconds["render"] = render_s
    seconds["encode_wait"] = time.perf_counter() - t_start - render_s
    first = faces[0]
    return ReenactResult(output, len(track), track.fps, renderer_name, cache_hit,
                         first.motion.ref_frame, int(first.track.found.sum()),
                         None if audio is None else str(audio),
                         time.perf_counter() - started, seconds, encoder.size,
                         [face.to_dict() for face in faces] if every else None,
                         renderer.device)


def _faces_to_move(source_path: Path, sources: list[SourceFace], driving: Path | None,
                   tracks: dict[Path, tuple[Track, DriverKind]], main: Path,
                   options: ReenactOptions, log: Progress) -> list[_Face]:
    """The source faces that move, each with its driver sampled on the main driver's
    frames (by time; see `video_source.driver_frames`)."""
    timeline, _ = tracks[main]
    if not several(options.faces, options.face_map) and sources[0].faces_seen > 1:
        log.info(f"{source_path}: {sources[0].faces_seen} faces; using face "
                 f"{options.source.selection.index} by size (`face_index`/`face_box` "
                 "choose; `faces` all moves every one)")
    # the output has the main driver's length: the others hold or loop at their end
    end = follower_end(options.driver_end)
    moved = []
    for number, source, path in choose_faces(sources, driving, options.faces,
                                             options.face_map, str(source_path), log.info):
        track = tracks[path][0]
        index = (np.arange(len(timeline)) if path == main else
                 driver_frames(seconds_from_start(timeline), seconds_from_start(track), end))
        moved.append(_Face(number, source, path, track, index))
    return moved


def _face_motion(face: _Face, renderer: FaceRenderer, options: ReenactOptions,
                 resources: Resources, log: Progress, numbered: bool) -> DrivenMotion:
    """The driven motion of one face over its driver's frames (retargeted against what the
    renderer draws for this face)."""
    model = resources.model
    iris, observe = None, None
    if options.motion.retarget:
        probe, probe_box = probe_view(renderer, face.prepared, model, face.source)
        observe = observer(renderer, probe, model, face.source, probe_box,
                           resources.landmarker)
        iris = iris_response(observe, face.source)
    what = f"transferring the motion (face {face.number})" if numbered else \
        "transferring the motion"
    try:
        # a third of a run on a small CPU: a bar that shows it is alive (no count to give)
        with log.progress(what, None):
            return drive(face.source, face.track, model, options.motion, resources.blendshapes,
                         iris, observe, renderer.readback_stride)
    except ValueError as exc:
        raise F2FError(str(exc)) from exc


def _render_face(face: _Face, part: slice, renderer: FaceRenderer, model: FaceModel
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One face's crops for output frames `part`, and their head similarities."""
    motion, at = face.motion, face.index[part]
    target = crop_motion(model, face.source, face.source.box, motion.pose[at],
                         motion.expression[at], motion.gaze[at],
                         None if motion.offset is None else motion.offset[at], motion.head[at])
    return renderer.render(face.prepared, target), motion.head[at]


def is_video_source(path: Path) -> bool:
    """A source that is a video rather than a photo: not named as an image, and a file that
    opens as a video of more than one frame."""
    if is_image_path(path) or not path.is_file():
        return False
    try:
        info = VideoReader(path).info
    except InputError:
        return False
    return (info.frame_count or 2) > 1


def _reenact_from_video(source_path: Path, driving: Path | None, output: Path,
                        options: ReenactOptions, log: Progress, resources: Resources
                        ) -> ReenactResult:
    """`reenact` with a video as the source (`video_source.reenact_video_source`)."""
    if is_image_path(output):
        raise InputError(f"{output}: a video source makes a video; give the output a video "
                         "suffix")
    options.encoder.validate_for(output)
    check_output_path(output, options.overwrite)
    renderer_name, weights = choose_renderer(options.renderer, options.weights)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    t0 = time.perf_counter()
    model = resources.model
    drivers, kinds = {}, {}
    for path in drivers_named(driving, options.face_map):
        drivers[path], kinds[path] = load_driver(path, options.driver, log, resources,
                                                 options.frames or 1)
        if kinds[path] == "track":
            check_track_model(drivers[path], model, path)
    seconds["driver_tracking"] = time.perf_counter() - t0
    main = main_driver(driving, options.face_map)
    audio = _audio_source(options.audio, main, kinds[main], source_video=source_path)
    renderer = resources.renderer(renderer_name, weights, options)
    resources.announce(log, _renderer_line(renderer, weights))
    frames, fps, size, cache_hit, faces = reenact_video_source(
        source_path, drivers, driving, output, options, log, resources, renderer, audio,
        seconds)
    return ReenactResult(output, frames, fps, renderer_name, cache_hit, 0, frames,
                         None if audio is None else str(audio),
                         time.perf_counter() - started, seconds, size, faces, renderer.device)
