"""`pipeline_breakdown`: milliseconds per frame of each step of `f2f reenact`, like the
paper's Table 4, on one generated HD frame (skimage's astronaut when scikit-image is
installed). Steps whose module is not importable are skipped with a note."""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..threads import torch_threads
from .measure import synchronizer, time_calls
from .paper import PAPER_MOBILE, PAPER_TABLE4

FRAME_SIZE = (1920, 1080)


@dataclass
class PipelineStep:
    name: str
    ms: float | None  # median per frame; None when skipped
    runs: int = 0
    note: str = ""
    paper_cpu_ms: float | None = None
    paper_gpu_ms: float | None = None


@dataclass
class PipelineReport:
    resolution: int
    backend: str
    device: str
    precision: str
    frame_size: tuple[int, int]
    steps: list[PipelineStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total_ms(self) -> float:
        return sum(s.ms for s in self.steps if s.ms is not None)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total_ms"] = self.total_ms
        out["paper"] = PAPER_MOBILE if self.resolution in PAPER_TABLE4 else None
        return out

    def rich_table(self) -> Any:
        from rich.table import Table

        paper = self.resolution in PAPER_TABLE4
        table = Table(title=f"f2f pipeline per frame at {self.resolution}x{self.resolution} "
                            f"({self.backend}, {self.device}, {self.precision}; frame "
                            f"{self.frame_size[0]}x{self.frame_size[1]})", title_justify="left")
        table.add_column("step")
        table.add_column("ms", justify="right")
        if paper:
            table.add_column("paper CPU/GPU ms", justify="right")
        table.add_column("note")
        for step in self.steps + [PipelineStep("total", self.total_ms,
                                               paper_cpu_ms=_paper(self.resolution, "Total", 0),
                                               paper_gpu_ms=_paper(self.resolution, "Total", 1))]:
            cells = [step.name, "skipped" if step.ms is None else f"{step.ms:.1f}"]
            if paper:
                cpu = "-" if step.paper_cpu_ms is None else f"{step.paper_cpu_ms:g}"
                gpu = "-" if step.paper_gpu_ms is None else f"{step.paper_gpu_ms:g}"
                cells.append("" if step.paper_cpu_ms is None and step.paper_gpu_ms is None
                             else f"{cpu}/{gpu}")
            cells.append(step.note)
            table.add_row(*cells)
        if paper:
            table.caption = f"paper: Table 4, {PAPER_MOBILE}"
            table.caption_justify = "left"
        return table


def _paper(res: int, step: str, index: int) -> float | None:
    values = PAPER_TABLE4.get(res, {}).get(step)
    return None if values is None else values[index]


_PAPER_STEP = {"face-model fit": ("3DMM fitting",),
               "landmark images": ("Landmark image generation",),
               "motion field estimation": ("Motion field estimation",),
               "feature warping": ("Feature warping",), "decoding": ("Decoding",),
               "motion + warping + decoding": ("Motion field estimation", "Feature warping",
                                               "Decoding")}


def demo_frame() -> tuple[np.ndarray, str]:
    """An HD RGB frame with a face in the middle (skimage's astronaut, public domain), or
    a plain synthetic frame when scikit-image is not installed."""
    import cv2

    width, height = FRAME_SIZE
    frame = np.full((height, width, 3), 96, np.uint8)
    try:
        from skimage import data

        face = cv2.resize(data.astronaut(), (height, height), interpolation=cv2.INTER_CUBIC)
        x0 = (width - height) // 2
        frame[:, x0:x0 + height] = face
        return frame, "skimage astronaut"
    except ImportError:
        yy, xx = np.mgrid[0:height, 0:width]
        frame[..., 0] = (128 + 100 * np.sin(xx / 97.0)).astype(np.uint8)
        frame[..., 1] = (128 + 100 * np.cos(yy / 71.0)).astype(np.uint8)
        return frame, "synthetic (no face: install scikit-image for the astronaut)"


STEPS = ("tracking", "face-model fit", "networks", "paste-back", "video encoding")
"""Step groups that `skip` can name ("networks": landmark images and the networks)."""


def pipeline_breakdown(res: int = 256, *, backend: str = "auto", device: str = "cpu",
                       precision: str = "fp32", threads: int | None = 1, frames: int = 10,
                       weights: Path | None = None, seed: int = 0, progress: Any = None,
                       skip: tuple[str, ...] = ()) -> PipelineReport:
    """Time each step of the reenactment pipeline per frame (median of `frames` calls,
    batch 1): tracking, face-model fit, landmark images, the networks (motion, warping,
    decoding separately on torch; together on onnxruntime), paste-back, video encoding.
    Random generator weights unless `weights`. `skip`: groups of `STEPS` not to time."""
    unknown = set(skip) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown pipeline steps {sorted(unknown)}; choose from {STEPS}")
    from ..export.runtime import resolve_backend
    from .core import FP16_ON_CPU_MESSAGE, BenchConfig

    backend = resolve_backend(backend, device, precision)
    BenchConfig((res,), device, precision, (backend,), threads=threads).validate()
    if precision == "fp16" and device == "cpu":
        raise ValueError(FP16_ON_CPU_MESSAGE)
    frame, frame_kind = demo_frame()
    report = PipelineReport(res, backend, device, precision, FRAME_SIZE)
    report.notes.append(f"frame: {frame_kind}")
    with torch_threads(threads):
        _run_steps(report, frame, frames, threads, weights, seed, progress, set(skip))
    for step in report.steps:
        keys = _PAPER_STEP.get(step.name)
        if keys is None or res not in PAPER_TABLE4:
            continue
        for index in (0, 1):
            values = [_paper(res, key, index) for key in keys]
            total = None if None in values else round(sum(values), 1)
            if index == 0:
                step.paper_cpu_ms = total
            else:
                step.paper_gpu_ms = total
    return report


def _step(report: PipelineReport, name: str, fn: Callable[[], Any] | None, frames: int,
          device: str = "cpu", note: str = "", per_call: int = 1) -> None:
    if fn is None:
        report.steps.append(PipelineStep(name, None, 0, note))
        return
    timing = time_calls(fn, device=device, warmup=1, runs=frames)
    report.steps.append(PipelineStep(name, timing.median_ms / per_call, timing.runs, note))


@functools.lru_cache(maxsize=1)
def _face_model() -> Any:
    from ..tracking.face_model import FaceModel

    return FaceModel.canonical()  # a few seconds to build: once per process


def _run_steps(report: PipelineReport, frame: np.ndarray, frames: int, threads: int | None,
               weights: Path | None, seed: int, progress: Any, skip: set[str]) -> None:
    res = report.resolution

    def say(message: str) -> None:
        if progress is not None and hasattr(progress, "info"):
            progress.info(message)

    def skipped(name: str, note: str) -> None:
        report.steps.append(PipelineStep(name, None, 0, note))

    # Tracking: steady state (the landmarker follows the face; detection only at a cut).
    # Its first result also gives the landmarks for the fit and the paste-back box.
    from ..io.writer import EncoderSettings, VideoWriter
    from ..pipeline.crop import CropBox, face_crop_box
    from ..pipeline.head import HeadRegion
    from ..pipeline.paste import PasteBack
    from ..tracking.fitting import fit_sequence
    from ..tracking.tracker import VideoFaceTracker

    landmarks = scores = None
    say("tracking")
    tracker = VideoFaceTracker(threads=threads)
    first = tracker(frame)
    if first.found:
        landmarks, scores = first.landmarks, first.blendshapes
    if "tracking" in skip:
        skipped("tracking", "not requested")
    else:
        _step(report, "tracking", lambda: tracker(frame), frames,
              note="landmarks + blendshapes, face followed (no detection)"
              if first.found else "no face found: detector on every frame")

    # Face-model fit of the driving frames (the paper's 3DMM fitting).
    if "face-model fit" in skip:
        skipped("face-model fit", "not requested")
    elif landmarks is None:
        skipped("face-model fit", "no tracked face")
    else:
        say("face-model fit")
        model = _face_model()
        rng = np.random.default_rng(seed)
        count = max(2, frames)
        seq = landmarks[None] + rng.normal(0, 0.3, (count, *landmarks.shape))
        seq_scores = np.repeat(np.asarray(scores)[None], count, 0)
        _step(report, "face-model fit", lambda: fit_sequence(model, seq, seq_scores),
              max(3, frames // 3), per_call=count,
              note=f"sequence fit of {count} frames, per frame")

    if "networks" in skip:
        skipped("networks", "not requested")
        crop = np.zeros((res, res, 3), np.uint8)
    else:
        crop = _network_steps(report, frames, threads, weights, seed, say)

    # Paste-back of the rendered crop into the full frame.
    if "paste-back" in skip:
        skipped("paste-back", "not requested")
    else:
        say("paste-back")
        if landmarks is not None:
            box = face_crop_box(landmarks, 2.0, res)
        else:
            side = min(frame.shape[:2]) // 2
            box = CropBox((frame.shape[1] - side) // 2, (frame.shape[0] - side) // 2, side, res)
        centre = (box.x0 + box.size / 2, box.y0 + box.size / 2)
        region = HeadRegion(centre, (box.size / 4, box.size / 3.2), 0.0)
        # a head that has moved a tenth of the crop: the whole field is evaluated
        head = np.array([[1.0, 0.0, 0.1 * box.size], [0.0, 1.0, 0.0]])
        paste = PasteBack(frame, box, region)
        _step(report, "paste-back", lambda: paste(crop, head), frames,
              note=f"{box.size}x{box.size} px face region carried with the head")

    # Video encoding of full frames (libx264, default settings) to a temporary file.
    if "video encoding" in skip:
        skipped("video encoding", "not requested")
    else:
        say("video encoding")
        report.steps.append(_encoding_step(frame, max(frames, 3), seed, EncoderSettings(),
                                           VideoWriter))


def _encoding_step(frame: np.ndarray, count: int, seed: int, settings: Any,
                   writer_class: Any) -> PipelineStep:
    rng = np.random.default_rng(seed)
    clip = [np.clip(frame.astype(np.int16) + rng.integers(-3, 4, frame.shape), 0, 255)
            .astype(np.uint8) for _ in range(4)]
    with tempfile.TemporaryDirectory(prefix="f2f-bench-") as tmp:
        writer = writer_class(Path(tmp) / "bench.mp4", Fraction(25), settings)
        started = time.perf_counter()
        for i in range(count):
            writer.write(clip[i % len(clip)])
        writer.close()
        ms = 1e3 * (time.perf_counter() - started) / count
    return PipelineStep("video encoding", ms, count,
                        f"{writer.settings.codec} preset {settings.preset}, "
                        f"{frame.shape[1]}x{frame.shape[0]}, mean of {count} frames incl. flush")


def _network_steps(report: PipelineReport, frames: int, threads: int | None,
                   weights: Path | None, seed: int, say: Callable[[str], None]) -> np.ndarray:
    """Landmark images and the networks; returns a rendered uint8 crop (res, res, 3)."""
    import torch

    from ..export.weights import build_generator, example_inputs

    res, device, backend = report.resolution, report.device, report.backend
    image, src_pose, src_lm, drv_pose, drv_lm = example_inputs(res, 1, 1, seed + 1)
    random_weights = weights is None
    report.notes.append("generator weights: " + ("random, for timing only" if random_weights
                                                 else str(weights)))
    if backend == "onnxruntime":
        from ..export.onnx_export import export_onnx
        from ..export.runtime import OnnxGenerator, array_to_images

        say("exporting the generator to ONNX")
        with tempfile.TemporaryDirectory(prefix="f2f-bench-") as tmp:
            gen, info = build_generator(weights, random_weights=random_weights, seed=seed,
                                        channels_last=False)
            export_onnx(tmp, res, generator=gen, weights_info=info, overwrite=True,
                        verify=False)
            del gen
            runtime = OnnxGenerator(tmp, device=device, threads=threads)
            encoding = runtime.encode_source(image.numpy(), src_pose, src_lm)
            say("networks (onnxruntime)")
            _step(report, "landmark images", lambda: runtime.landmark_images(drv_lm), frames,
                  note="3 sketches, OpenCV")
            drawn = runtime.landmark_images(drv_lm)
            pose = np.asarray(drv_pose, np.float32)
            _step(report, "motion + warping + decoding",
                  lambda: runtime.drive_drawn(encoding, pose, drawn), frames, device,
                  note="onnxruntime, one graph")
            return array_to_images(runtime.drive_drawn(encoding, pose, drawn))[0]

    from ..model.generator import tensor_to_images
    from ..model.rendering import EncoderFeatures, warp
    from .core import _torch_dtype

    dtype = _torch_dtype(report.precision)
    gen, _ = build_generator(weights, random_weights=random_weights, seed=seed, device=device,
                             dtype=dtype)
    sync = synchronizer(device)
    say("networks (torch)")
    with torch.inference_mode():
        encoding = gen.encode_source(image.to(device, dtype), src_pose, src_lm)
        _step(report, "landmark images",
              lambda: gen.driving_landmark_images(encoding, drv_lm), frames,
              device, note="3 sketches, OpenCV, to tensors")
        drawn = gen.driving_landmark_images(encoding, drv_lm)
        pose = torch.from_numpy(np.asarray(drv_pose)).to(device, dtype)
        inputs = [torch.cat((src, drv, img), 1) for src, drv, img in
                  zip(encoding.landmark_images, drawn, encoding.images)]
        _step(report, "motion field estimation", lambda: gen.motion(inputs), frames, device,
              note="F1-F3")
        grid = gen.motion(inputs)[-1]
        features = encoding.features.as_tuple()
        _step(report, "feature warping", lambda: [warp(f, grid) for f in features], frames,
              device, note="4 source maps, grid_sample")
        warped = EncoderFeatures(*(warp(f, grid) for f in features))
        decoder = gen.render.decoder

        def decode() -> torch.Tensor:
            return decoder.decode(warped, gen.render.drv_pose(pose))

        _step(report, "decoding", decode, frames, device, note="driving pose + decoder")
        out = gen.drive_drawn(encoding, pose, drawn).image
        sync()
    return tensor_to_images(out)[0]
