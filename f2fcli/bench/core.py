"""`run_bench`: MACs, parameters, latency and memory of the per-frame path (`drive`, source
encoding cached) and of the source encoding, per size, backend, device and precision."""

from __future__ import annotations

import copy
import functools
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..choices import BACKENDS, DEVICES, check_choice
from ..errors import F2FError
from ..threads import torch_threads
from .measure import (CudaPeak, PeakRss, Timing, available_memory, is_out_of_memory, release_memory,
                      time_calls)
from .paper import PAPER_GPU, PAPER_TABLE1
from .report import BenchReport, BenchRow

DEFAULT_RESOLUTIONS = (256, 512, 1024, 1440, 1536, 2048)
PRECISIONS = ("fp32", "fp16", "bf16")
STATUSES = ("ok", "out of memory", "unsupported", "error", "not measured")
FP16_ON_CPU_MESSAGE = (
    "`fp16` on CPU is not meaningful: CPUs have no fast FP16 convolutions (PyTorch runs "
    "them slower than FP32) and the paper's FP16 figures are GPU figures; use `bf16` to "
    "measure bfloat16 on CPU, or `device` cuda")

# Peak RSS increase on CPU, FP32, batch 1 (weights, source encoding, activations; for
# onnxruntime its arena too), measured at 256-2048: about 60 MB + 450 B (torch) or
# 1350 B (onnxruntime) per padded pixel, the pixel part times the batch. With a safety
# margin, used only to refuse sizes that cannot fit before the operating system kills
# the process; refined by each size measured.
_RSS_FIXED = 200e6
_RSS_PER_PIXEL = {"torch": 900.0, "onnxruntime": 2000.0}
_RSS_SAFETY = 1.3


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. `threads`: CPU threads for torch and onnxruntime (None: the
    libraries' defaults); `budget_s`: time per size after which fewer runs are timed
    (never fewer than 3); `latency=False` counts MACs and parameters only."""

    resolutions: tuple[int, ...] = DEFAULT_RESOLUTIONS
    device: str = "cpu"
    precision: str = "fp32"
    backends: tuple[str, ...] = ("auto",)
    batch: int = 1
    warmup: int = 2
    runs: int = 10
    threads: int | None = 1
    budget_s: float = 30.0
    weights: Path | None = None
    seed: int = 0
    latency: bool = True
    encode_runs: int = 3

    def validate(self) -> None:
        """Raise F2FError for a request that cannot be measured at all."""
        from ..model.inputs import MIN_SIZE

        if not self.resolutions:
            raise F2FError("no resolution to measure")
        if min(self.resolutions) < MIN_SIZE:
            raise F2FError(f"`res`: sizes must be at least {MIN_SIZE}")
        check_choice("device", self.device, DEVICES)
        if self.precision not in PRECISIONS:
            raise F2FError(f"unknown precision {self.precision!r}")
        for backend in self.backends:
            check_choice("backend", backend, BACKENDS)
        if self.batch < 1 or self.runs < 1 or self.warmup < 0 or self.encode_runs < 1:
            raise F2FError("`batch` and `runs` must be at least 1, `warmup` at least 0")
        if self.threads is not None and self.threads < 1:
            raise F2FError("`threads` must be at least 1")
        if self.precision == "fp16" and self.device == "cpu":
            raise F2FError(FP16_ON_CPU_MESSAGE)
        if self.latency:
            import torch

            if self.device == "cuda" and not torch.cuda.is_available():
                raise F2FError("`device` cuda: no CUDA device is available to torch")
            if self.device == "mps" and not (getattr(torch.backends, "mps", None)
                                             and torch.backends.mps.is_available()):
                raise F2FError("`device` mps: MPS is not available")
            if "onnxruntime" in self.backends:
                from ..export.layout import EXPORT_EXTRA_MESSAGE, onnx_export_available

                if not onnx_export_available():
                    raise F2FError("`backend` onnxruntime: " + EXPORT_EXTRA_MESSAGE)

    def resolved_backends(self) -> tuple[str, ...]:
        from ..export.runtime import resolve_backend

        out: list[str] = []
        for backend in self.backends:
            name = resolve_backend(backend, self.device, self.precision)
            if name not in out:
                out.append(name)
        return tuple(out)


def _environment(config: BenchConfig) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "f2f_version": __version__, "python": platform.python_version(),
        "torch": torch.__version__, "platform": platform.platform(),
        "cpu": _cpu_name(), "cpu_count": _cpu_count(),
        "torch_threads": torch.get_num_threads(), "threads": config.threads,
    }
    import onnxruntime

    env["onnxruntime"] = onnxruntime.__version__
    env["onnxruntime_providers"] = onnxruntime.get_available_providers()
    if config.device == "cuda" and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _module_params(gen: Any) -> dict[str, int]:
    from ..model.generator import parameter_count

    parts = {"motion": gen.motion, "motion.f1": gen.motion.f1, "motion.f2": gen.motion.f2,
             "motion.f3": gen.motion.f3, "render.drv_pose": gen.render.drv_pose,
             "render.decoder": gen.render.decoder, "render.src_pose": gen.render.src_pose,
             "render.encoder": gen.render.encoder}
    return {name: parameter_count(m) for name, m in parts.items()}


def count_executed_drive_macs(resolution: int) -> int:
    """MACs that `drive` really runs after `prepare_for_inference` (SPADE scale/shift on
    the compressed pose map; see `model.spade.FusedSPADE`), counted on the meta device."""
    import torch

    from ..model.generator import Generator, prepare_for_inference
    from ..model.macs import measure_macs
    from ..tracking.keypoints import N_KEYPOINTS

    with torch.device("meta"):
        gen = Generator().eval()
        image = torch.zeros(1, 3, resolution, resolution)
    prepare_for_inference(gen, "meta", channels_last=False)
    pose, landmarks = np.zeros((1, 6)), np.zeros((1, N_KEYPOINTS, 2))
    with torch.no_grad():
        encoding = gen.encode_source(image, pose, landmarks)
        return measure_macs(lambda: gen.drive(encoding, pose, landmarks))["Global"]


@functools.lru_cache(maxsize=16)
def _macs(resolution: int) -> tuple[Any, int]:
    from ..model.macs import count_macs

    return count_macs(resolution), count_executed_drive_macs(resolution)


def _macs_row(row: BenchRow, gen_meta_params: dict[str, int]) -> None:
    report, executed = _macs(row.resolution)
    row.drive_gmacs = report.drive_total / 1e9
    row.encode_gmacs = report.encode_total / 1e9
    row.drive_gmacs_executed = executed / 1e9
    row.macs = {"drive": {k: v for k, v in report.drive.items() if k.count(".") <= 2},
                "encode": {k: v for k, v in report.encode.items() if k.count(".") <= 2}}
    row.params = dict(gen_meta_params)
    row.drive_params = sum(gen_meta_params[k] for k in ("motion", "render.drv_pose",
                                                        "render.decoder"))
    row.encode_params = sum(gen_meta_params[k] for k in ("render.src_pose", "render.encoder"))
    paper = PAPER_TABLE1.get(row.resolution)
    row.paper = paper.to_dict() if paper else None


def _torch_dtype(precision: str) -> Any:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


class _Runner:
    """Builds the model for one row and measures it."""

    def __init__(self, config: BenchConfig, progress: Any) -> None:
        self.config = config
        self.progress = progress
        self._random = None  # the calibrated random generator, built once
        self.weights_info: dict[str, Any] | None = None
        self._rss_per_pixel: dict[str, float] = {}

    def say(self, message: str) -> None:
        if self.progress is not None and hasattr(self.progress, "info"):
            self.progress.info(message)

    def prebuild(self) -> None:
        """Build the random generator (once) before any memory is tracked."""
        from ..export.weights import random_generator

        if self.config.weights is None and self._random is None:
            self._random = random_generator(self.config.seed)

    def generator(self, channels_last: bool, device: str, precision: str) -> Any:
        from ..export.weights import RANDOM_WEIGHTS, build_generator
        from ..model.generator import prepare_for_inference

        dtype = _torch_dtype(precision)
        if self.config.weights is not None:
            gen, info = build_generator(self.config.weights, device=device, dtype=dtype,
                                        channels_last=channels_last)
            self.weights_info = info
            return gen
        self.prebuild()
        self.weights_info = {"kind": RANDOM_WEIGHTS, "seed": self.config.seed}
        return prepare_for_inference(copy.deepcopy(self._random), device, dtype,
                                     channels_last=channels_last)

    def check_fits(self, row: BenchRow) -> str | None:
        """On CPU, why this size would not fit in memory (None if it should)."""
        if self.config.device != "cpu":
            return None
        available = available_memory()
        if available is None:
            return None
        per_pixel = self._rss_per_pixel.get(row.backend, _RSS_PER_PIXEL[row.backend])
        need = _RSS_FIXED + per_pixel * row.padded ** 2 * self.config.batch
        if need > 0.9 * available:
            return (f"estimated {need / 1e9:.1f} GB needed, {available / 1e9:.1f} GB "
                    f"available; not run")
        return None

    def measure(self, row: BenchRow) -> None:
        reason = self.check_fits(row)
        if reason is not None:
            row.status, row.note = "out of memory", reason
            return
        if row.backend == "onnxruntime" and row.precision != "fp32":
            row.status = "unsupported"
            row.note = "the ONNX export is FP32; use `backend` torch for FP16/bf16"
            return
        if row.backend == "onnxruntime" and row.device == "mps":
            row.status, row.note = "unsupported", "onnxruntime runs on cpu or cuda"
            return
        self.prebuild()
        release_memory()
        try:
            if row.backend == "torch":
                self._measure_torch(row)
            else:
                self._measure_onnx(row)
        except Exception as exc:  # report the size as failed, go on with the next
            if is_out_of_memory(exc):
                row.status = "out of memory"
                row.note = str(exc).strip().splitlines()[0][:160] if str(exc) else ""
            else:
                row.status, row.note = "error", f"{type(exc).__name__}: {exc}"[:300]
        finally:
            release_memory()
        if row.status == "ok" and row.rss_increase_mb:
            per_pixel = (row.rss_increase_mb * 1e6 / (row.padded ** 2 * row.batch)
                         * _RSS_SAFETY)
            self._rss_per_pixel[row.backend] = max(per_pixel,
                                                   _RSS_PER_PIXEL[row.backend] / 3)

    def _inputs(self, row: BenchRow) -> tuple[Any, ...]:
        from ..export.weights import example_inputs

        return example_inputs(row.resolution, 1, row.batch, self.config.seed + 1)

    def _memory_start(self, row: BenchRow) -> Any:
        if row.device == "cuda" and row.backend == "torch":
            return CudaPeak().start()
        if row.device == "cpu":
            return PeakRss().start()
        return None

    def _memory_stop(self, row: BenchRow, tracker: Any) -> None:
        if isinstance(tracker, CudaPeak):
            allocated, reserved = tracker.stop()
            row.peak_allocated_mb, row.peak_reserved_mb = allocated / 1e6, reserved / 1e6
        elif isinstance(tracker, PeakRss):
            increase = tracker.stop()
            row.rss_increase_mb = increase / 1e6 if increase is not None else None

    def _timed(self, row: BenchRow, fn: Any, encode_fn: Any) -> None:
        config = self.config
        encode = time_calls(encode_fn, device=row.device, warmup=0, runs=config.encode_runs,
                            budget_s=config.budget_s / 4)
        row.encode_ms = encode.median_ms
        timing: Timing = time_calls(fn, device=row.device, warmup=max(1, config.warmup),
                                    runs=config.runs, budget_s=config.budget_s)
        row.runs = timing.runs
        row.batch_ms_median = timing.median_ms
        row.drive_ms_median = timing.median_ms / row.batch
        row.drive_ms_p90 = timing.p90_ms / row.batch
        row.drive_ms_min = timing.min_ms / row.batch

    def _measure_torch(self, row: BenchRow) -> None:
        import torch

        tracker = self._memory_start(row)
        gen = self.generator(channels_last=True, device=row.device, precision=row.precision)
        image, src_pose, src_lm, drv_pose, drv_lm = self._inputs(row)
        dtype = _torch_dtype(row.precision)
        image = image.to(row.device, dtype)
        with torch.inference_mode():
            encoding = gen.encode_source(image, src_pose, src_lm)
            drawn = gen.driving_landmark_images(encoding, drv_lm)
            pose = torch.from_numpy(np.asarray(drv_pose)).to(row.device, dtype)
            self._timed(row, lambda: gen.drive_drawn(encoding, pose, drawn),
                        lambda: gen.encode_source(image, src_pose, src_lm))
        self._memory_stop(row, tracker)

    def _measure_onnx(self, row: BenchRow) -> None:
        from ..export.onnx_export import export_onnx
        from ..export.runtime import OnnxGenerator

        with tempfile.TemporaryDirectory(prefix="f2f-bench-") as tmp:
            started = time.perf_counter()
            gen = self.generator(channels_last=False, device="cpu", precision="fp32")
            export_onnx(tmp, row.resolution, generator=gen, weights_info=self.weights_info,
                        overwrite=True, verify=False)
            del gen
            release_memory()
            self.say(f"  exported {row.resolution} to ONNX in "
                     f"{time.perf_counter() - started:.1f} s")
            tracker = self._memory_start(row)
            runtime = OnnxGenerator(tmp, device=row.device, threads=self.config.threads)
            image, src_pose, src_lm, drv_pose, drv_lm = self._inputs(row)
            image = image.numpy()
            encoding = runtime.encode_source(image, src_pose, src_lm)
            drawn = runtime.landmark_images(drv_lm)
            pose = np.asarray(drv_pose, np.float32)
            self._timed(row, lambda: runtime.drive_drawn(encoding, pose, drawn),
                        lambda: runtime.encode_source(image, src_pose, src_lm))
            self._memory_stop(row, tracker)
            if row.device == "cuda":
                row.note = "onnxruntime CUDA memory is not measured"


def run_bench(config: BenchConfig, progress: Any = None) -> Any:
    """Measure every (backend, size) of `config`; never raises for a size that fails
    (its row says "out of memory", "unsupported" or "error"). `progress`: an object with
    `info(str)` (e.g. the CLI's Reporter), told about each step. Returns a `BenchReport`.
    """
    import torch

    from ..model.generator import Generator
    from ..model.inputs import padded_size

    config.validate()
    backends = config.resolved_backends()
    runner = _Runner(config, progress)
    with torch.device("meta"):
        params = _module_params(Generator())
    rows: list[BenchRow] = []
    started = time.perf_counter()
    with torch_threads(config.threads):
        for backend in backends:
            for res in sorted(config.resolutions):
                row = BenchRow(res, padded_size(res), backend, config.device, config.precision,
                               config.batch)
                _macs_row(row, params)
                if config.latency:
                    runner.say(f"{backend} {config.device} {config.precision} {res}x{res} "
                               f"batch {config.batch}")
                    runner.measure(row)
                    if row.status != "ok":
                        runner.say(f"  {row.status}: {row.note}")
                    else:
                        runner.say(f"  {row.drive_ms_median:.1f} ms/frame (median of "
                                   f"{row.runs}), p90 {row.drive_ms_p90:.1f} ms")
                else:
                    row.status, row.note = "not measured", "MACs and parameters only"
                rows.append(row)
    weights = runner.weights_info or (
        {"kind": "file", "path": str(config.weights)} if config.weights else
        {"kind": "random, for timing only", "seed": config.seed})
    meta = {"config": _config_dict(config), "backends": list(backends),
            "environment": _environment(config), "weights": weights,
            "paper_gpu": PAPER_GPU, "seconds": round(time.perf_counter() - started, 1),
            "notes": _notes(config)}
    return BenchReport(rows, meta)


def _config_dict(config: BenchConfig) -> dict[str, Any]:
    out = dict(config.__dict__)
    out["weights"] = str(config.weights) if config.weights else None
    out["resolutions"] = list(config.resolutions)
    out["backends"] = list(config.backends)
    return out


def _notes(config: BenchConfig) -> list[str]:
    notes = [
        "MACs: torch.utils.flop_counter on the reference networks (convolutions, transposed "
        "ones as input x C_out x k^2; batch norm, activations, grid_sample, resizing not "
        "counted), per frame with the source encoding cached, like Table 1. 'executed' "
        "counts what runs after inference preparation (SPADE scale/shift on the compressed "
        "pose map).",
        f"Paper: Table 1, Face2Face^rho on an {PAPER_GPU} (FP32 or FP16 column).",
        "Latency: drive() networks only (driving landmark images drawn beforehand), per "
        "frame = batch time / batch; warm-up calls first.",
    ]
    if config.device == "cpu":
        notes.append("Memory: peak RSS increase over the process before the model was built "
                     "(weights, source encoding, activations).")
    elif config.device == "cuda":
        notes.append("Memory: peak allocated/reserved by torch's CUDA allocator (the CUDA "
                     "context, ~0.3-0.5 GB, is not included).")
    if config.weights is None:
        notes.append("Weights: random, for timing only (MACs, time and memory do not depend "
                     "on the weight values).")
    return notes
