"""Frames in, frames out: the source face driven by frames that arrive one at a time.

`Reenactor(source, options).stream(frames)` takes the driver's RGB frames (numpy arrays, or
(timestamp, frame) pairs) and yields the rendered output frames (or (timestamp, frame)
pairs) in the same order, one for each frame in, with bounded memory and latency:

- Warm-up: the first `warmup` driver frames fit the driver's identity and expression rig
  (held fixed afterwards, like `f2f track`'s over a whole clip). The driver's neutral is its
  first frame with a face (as `f2f reenact --ref-frame 0`; a stream has no "whole clip" to
  choose a neutral from).
- Then output comes in blocks of `block` frames, each once `lookahead` later frames have
  arrived: the temporal filters (the track's bilateral filter, the pose filter, the
  retargeting solve) see `context` frames before a block and `lookahead` after it, wider than
  their kernels (3 sigma = 6 frames), so a block looks as it would inside a whole clip.
  Latency: at most `block + lookahead` frames (after the warm-up); `block=1` gives a frame out
  for every frame in, at about `context + lookahead + 2` times the motion transfer's cost.
- Memory: the landmarks of the frames not yet rendered and of the `context` before them,
  never the frames.

Differences from `reenact` on a file: the identity comes from the warm-up frames, not from
frames spread over the clip, and the neutral is the first face, not one chosen over the clip.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np

from ..dirs import default_cache_dir
from ..errors import F2FError, InputError
from ..threads import opencv_threads
from ..tracking import keypoints as kp
from ..tracking.channels import N_BLENDSHAPES
from ..tracking.fitting import SharedFit, fit_sequence, fit_shared
from ..tracking.smoothing import fill_track, smooth_track
from ..tracking.track import Track
from ..tracking.tracker import FrameObservation, VideoFaceTracker
from .head import HeadRegion
from .motion import drive
from .paste import PasteBack
from .renderer import crop_motion, iris_response, observer
from .runner import ReenactOptions, Resources, probe_view
from .source import SourceCache, SourceFace, SourceOptions, analyse_source, load_source

Timed = tuple[float, np.ndarray]
StreamItem = Union[np.ndarray, Timed]


@dataclass(frozen=True)
class StreamSettings:
    """The stream's window: see the module docstring."""

    warmup: int = 16
    block: int = 16
    context: int = 6
    lookahead: int = 6

    def __post_init__(self) -> None:
        if self.warmup < 1 or self.block < 1 or self.context < 0 or self.lookahead < 0:
            raise ValueError("stream settings: warmup and block at least 1, context and "
                             "lookahead at least 0")


class Reenactor:
    """One source face, driven frame by frame (see the module docstring).

    `source`: an RGB image (H, W, 3 uint8) or a photo's path (analysed once, from the source
    cache when `options.use_cache`). `options`: as for `reenact` (renderer, motion, paste-back,
    output size; file and encoder options do not apply).
    """

    def __init__(self, source: np.ndarray | str | Path,
                 options: ReenactOptions = ReenactOptions(),
                 settings: StreamSettings = StreamSettings(),
                 resources: Resources | None = None) -> None:
        from .renderer import choose_renderer

        self.options = options
        self.settings = settings
        self.resources = resources or Resources()
        model = self.resources.model
        self.source = _source_face(source, options.source, options, model)
        name, weights = choose_renderer(options.renderer, options.weights)
        self.renderer = self.resources.renderer(name, weights, options)
        box = self.source.box
        with opencv_threads(1):
            self._prepared = self.renderer.prepare(self.source.crop(), crop_motion(
                model, self.source, box, self.source.pose[None], self.source.expression[None]))
            self._paste = (PasteBack(self.source.image, box,
                                     HeadRegion.of(model, self.source.pose))
                           if options.paste_back else None)
            self._iris, self._observe = None, None
            if options.motion.retarget:
                probe, probe_box = probe_view(self.renderer, self._prepared, model, self.source)
                self._observe = observer(self.renderer, probe, model, self.source, probe_box,
                                         self.resources.landmarker)
                self._iris = iris_response(self._observe, self.source)

    def stream(self, frames: Iterable[StreamItem], fps: float | Fraction = 25
               ) -> Iterator[StreamItem]:
        """The output frame for every driver frame, in order: arrays for arrays, (timestamp,
        frame) pairs for pairs. `fps`: the driver's rate (the temporal filters count frames;
        it is recorded, not resampled)."""
        run = _Run(self, Fraction(fps).limit_denominator(1001))
        for item in frames:
            timed = isinstance(item, tuple)
            stamp, frame = item if timed else (None, item)
            run.add(np.ascontiguousarray(frame), stamp, timed)
            yield from run.ready()
        yield from run.ready(final=True)


def _source_face(source: np.ndarray | str | Path, source_options: SourceOptions,
                 options: ReenactOptions, model: Any) -> SourceFace:
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise InputError(f"source image: expected (H, W, 3) uint8 RGB, got "
                             f"{source.shape} {source.dtype}")
        return analyse_source(np.ascontiguousarray(source), source_options, model)
    cache = (SourceCache(options.cache_dir or default_cache_dir()) if options.use_cache
             else None)
    return load_source(Path(source), source_options, model, cache)[0]


@dataclass(eq=False)
class _Pending:
    """A driver frame seen but not yet rendered."""

    index: int
    stamp: float | None
    timed: bool
    observation: FrameObservation


class _Run:
    """The state of one `stream` call."""

    def __init__(self, reenactor: Reenactor, fps: Fraction) -> None:
        self.r = reenactor
        self.fps = fps
        self.tracker = VideoFaceTracker(reenactor.options.driver.selection,
                                        threads=reenactor.options.driver.threads)
        # what the next windows can still need: `context` rendered frames and the pending ones
        self.recent: deque[_Pending] = deque()
        self.waiting: list[_Pending] = []
        self.shared: SharedFit | None = None
        self.reference: FrameObservation | None = None
        self.count = 0
        self.size = (0, 0)

    def add(self, frame: np.ndarray, stamp: float | None, timed: bool) -> None:
        if self.count == 0:
            self.size = (frame.shape[1], frame.shape[0])
        with opencv_threads(1):
            observation = self.tracker(frame)
        item = _Pending(self.count, stamp, timed, observation)
        self.count += 1
        self.waiting.append(item)
        self.recent.append(item)
        if self.reference is None and observation.found:
            self.reference = observation
        if self.shared is None and self.count >= self.r.settings.warmup:
            self._fit_shared()

    def _fit_shared(self) -> None:
        seen = [p.observation for p in self.waiting if p.observation.found]
        if not seen:
            return  # no face yet: the warm-up goes on
        model = self.r.resources.model
        self.shared = fit_shared(model, np.stack([o.landmarks for o in seen]),
                                 np.stack([o.blendshapes for o in seen]))

    def ready(self, final: bool = False) -> Iterator[StreamItem]:
        """The blocks whose lookahead has arrived (all of them at the end)."""
        s = self.r.settings
        if final and self.shared is None:
            self._fit_shared()
        if self.shared is None:
            if final and self.waiting:
                raise InputError(f"no face found in any of the {self.count} driver frames")
            return
        while self.waiting and (final or len(self.waiting) >= s.block + s.lookahead):
            block = self.waiting[:s.block]
            yield from self._render(block)
            self.waiting = self.waiting[len(block):]
            while self.recent and self.recent[0].index < block[-1].index + 1 - s.context:
                self.recent.popleft()

    def _render(self, block: list[_Pending]) -> Iterator[StreamItem]:
        s = self.r.settings
        first, last = block[0].index, block[-1].index
        window = [p for p in self.recent
                  if first - s.context <= p.index <= last + s.lookahead]
        track = self._track(window)
        options = self.r.options
        motion_options = replace(options.motion, ref_frame=0)
        model = self.r.resources.model
        with opencv_threads(1):
            try:
                motion = drive(self.r.source, track, model, motion_options,
                               self.r.resources.blendshapes, self.r._iris, self.r._observe,
                               self.r.renderer.readback_stride)
            except ValueError as exc:
                raise F2FError(str(exc)) from exc
            # the track's frame 0 is the reference, then the window's frames in order
            at = np.array([1 + p.index - window[0].index for p in block])
            target = crop_motion(model, self.r.source, self.r.source.box, motion.pose[at],
                                 motion.expression[at], motion.gaze[at],
                                 None if motion.offset is None else motion.offset[at],
                                 motion.head[at])
            crops = self.r.renderer.render(self.r._prepared, target)
            out = []
            for item, crop, head in zip(block, crops, motion.head[at]):
                frame = crop if self.r._paste is None else self.r._paste(crop, head)
                if options.output_size is not None:
                    frame = cv2.resize(frame, options.output_size,
                                       interpolation=cv2.INTER_AREA)
                out.append((item.stamp, frame) if item.timed else frame)
        # yielded outside the OpenCV setting: the caller's code runs with its own
        yield from out

    def _track(self, window: list[_Pending]) -> Track:
        """The driver's track over the reference frame (index 0) and `window`."""
        model = self.r.resources.model
        observations = [self.reference] + [p.observation for p in window]
        missing = np.full((kp.N_LANDMARKS, 3), np.nan, np.float32)
        landmarks = np.stack([o.landmarks if o.found else missing for o in observations])
        scores = np.stack([o.blendshapes if o.found else np.full(N_BLENDSHAPES, np.nan)
                           for o in observations]).astype(np.float32)
        found = np.array([o.found for o in observations])
        fit = fit_sequence(model, landmarks, scores, valid=found, shared=self.shared)
        smoothing = self.r.options.driver.smoothing
        if smoothing is None:
            pose, expression = fill_track(fit.hp, fit.expression, found)
        else:
            smoothed = smooth_track(fit.hp, fit.expression, found, smoothing)
            pose, expression = smoothed.hp, smoothed.expression
        identity = self.shared.identity
        n = len(observations)
        width, height = self.size
        return Track(
            pts=np.arange(n), pose=pose.astype(np.float32),
            expression=expression.astype(np.float32),
            keypoints=model.keypoints72(identity.s, expression, pose,
                                        identity.detail).astype(np.float32),
            landmarks=landmarks, confidence=np.array([o.confidence for o in observations],
                                                     np.float32),
            box=np.stack([o.box for o in observations]), found=found, filled=~found,
            identity=identity.s.astype(np.float32),
            identity_detail=identity.detail.astype(np.float32), fps=self.fps,
            time_base=1 / self.fps, width=width, height=height,
            meta={"reference_frame": 0, "face_model": model.fingerprint()})
