"""GPU check, ready to run on a CUDA machine: one command, one Markdown table.

Run:  python benchmarks/gpu_check.py [--out gpu_check.md] [--sizes 256,512,1024,1440,2048]
                                    [--frames 100] [--runs 10]
Needs the `torch` extra (and scikit-image for the driving clip).

On CUDA it measures, with randomly initialised (calibrated) weights, which is enough for
timing and for comparing devices:
1. `f2f bench` at each size in FP32 and FP16: per-frame drive latency (median, p90), peak
   GPU memory, MACs;
2. the same generator's frames on CUDA against the CPU's (FP32 reference): max and mean
   |difference| in [-1, 1] units, FP32 and FP16, at 256 and 512;
3. a neural `reenact` end to end (decode, tracking, motion, render, paste-back, encode) with
   `device` cuda and `fp16`, at 512, frames per second; and the same on the CPU in FP32.
Without CUDA every CUDA step is refused in its row, with the reason, and the CPU parts run
(bench at 256 in FP32, a CPU reenact), so the script is checked end to end anywhere.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cuda_reason() -> str | None:
    """Why the CUDA steps cannot run here, or None when they can."""
    import torch

    if not torch.cuda.is_available():
        return f"no CUDA device (torch {torch.__version__}: torch.cuda.is_available() is False)"
    return None


def bench_rows(sizes: tuple[int, ...], device: str, precision: str, runs: int) -> list[list]:
    from f2fcli.bench.core import BenchConfig, run_bench

    config = BenchConfig(resolutions=sizes, device=device, precision=precision,
                         backends=("torch",), runs=runs, warmup=2, budget_s=60.0,
                         threads=None if device == "cuda" else 1)
    config.validate()
    rows = []
    for row in run_bench(config).rows:
        if row.status != "ok":
            result = row.status + (f" ({row.note})" if row.note else "")
        else:
            memory = f"{row.memory_mb:,.0f} MB" if row.memory_mb is not None else "n/a"
            result = (f"drive {row.drive_ms_median:.1f} ms/frame (p90 {row.drive_ms_p90:.1f}), "
                      f"{1000 / row.drive_ms_median:.0f} frames/s; memory {memory}; "
                      f"{row.drive_gmacs:.1f} GMACs/frame")
        rows.append(["bench", row.resolution, precision, device, result])
    return rows


def compare_rows(sizes: tuple[int, ...]) -> list[list]:
    """The same random generator's frames on CUDA (FP32, FP16) against the CPU's."""
    import torch

    from f2fcli.export.weights import example_inputs, random_generator
    from f2fcli.model.generator import prepare_for_inference

    rows = []
    for size in sizes:
        image, pose, landmarks, drv_pose, drv_landmarks = example_inputs(size, frames=2)

        def frames(device: str, dtype: torch.dtype) -> np.ndarray:
            gen = prepare_for_inference(random_generator(0), device, dtype)
            with torch.inference_mode():
                encoding = gen.encode_source(image.to(device, dtype), pose, landmarks)
                return gen.drive(encoding, drv_pose, drv_landmarks).float().cpu().numpy()

        reference = frames("cpu", torch.float32)
        for precision, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
            diff = np.abs(frames("cuda", dtype) - reference)
            rows.append(["CUDA vs CPU", size, precision, "cuda",
                         f"max |diff| {diff.max():.2e}, mean {diff.mean():.2e} "
                         "(images in [-1, 1])"])
    return rows


def reenact_row(device: str, fp16: bool, res: int, frames: int, tmp: Path) -> list:
    from skimage import data

    from f2fcli import __version__
    from f2fcli.export.weights import random_generator
    from f2fcli.io.testclip import make_motion_clip, similarity_matrix
    from f2fcli.model.checkpoints import CheckpointInfo, save_generator
    from f2fcli.model.generator import GeneratorConfig
    from f2fcli.pipeline.runner import ReenactOptions, reenact
    from f2fcli.pipeline.source import SourceOptions

    weights = tmp / "random.safetensors"
    if not weights.is_file():
        save_generator(random_generator(0), weights,
                       CheckpointInfo(GeneratorConfig(), res, "random init, timing only",
                                      __version__, "gpu_check"))
    drive = tmp / "drive.mp4"
    if not drive.is_file():
        phases = 2 * np.pi * np.arange(frames) / 50
        make_motion_clip(drive, data.astronaut(), [
            similarity_matrix(8 * np.sin(p), 1 + 0.05 * np.sin(p),
                              (10 * np.sin(p), 6 * np.cos(p)), (220.0, 180.0))
            for p in phases], Fraction(30000, 1001))
    options = ReenactOptions(source=SourceOptions(res=res), renderer="neural", weights=weights,
                             device=device, fp16=fp16, backend="torch", cache_dir=tmp / "cache",
                             overwrite=True)
    start = time.perf_counter()
    result = reenact(ROOT / "examples" / "source.jpg", drive, tmp / f"out_{device}.mp4",
                     options)
    wall = time.perf_counter() - start
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    return ["reenact", res, "fp16" if fp16 else "fp32", device,
            f"{result.frames} frames, {result.frames / wall:.1f} frames/s end to end ({steps})"]


def table(rows: list[list], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"))
    parser.add_argument("--sizes", default="256,512,1024,1440,2048")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    sizes = tuple(int(v) for v in args.sizes.split(","))
    import torch

    reason = cuda_reason()
    rows: list[list] = []
    if reason is None:
        for precision in ("fp32", "fp16"):
            rows += bench_rows(sizes, "cuda", precision, args.runs)
        rows += compare_rows(tuple(s for s in (256, 512) if s in sizes) or sizes[:1])
    else:
        refused = f"refused: {reason}"
        rows += [["bench", ",".join(map(str, sizes)), p, "cuda", refused] for p in ("fp32", "fp16")]
        rows.append(["CUDA vs CPU", "256,512", "fp32, fp16", "cuda", refused])
        rows += bench_rows((256,), "cpu", "fp32", 3)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if reason is None:
            rows.append(reenact_row("cuda", True, 512, args.frames, tmp))
        else:
            rows.append(["reenact", 512, "fp16", "cuda", f"refused: {reason}"])
        rows.append(reenact_row("cpu", False, 256 if reason else 512,
                                min(args.frames, 30), tmp))
    gpu = torch.cuda.get_device_name() if reason is None else "none"
    text = (f"# f2f GPU check\n\nGPU: {gpu}; torch {torch.__version__}; python "
            f"{platform.python_version()}; {platform.platform()}\n"
            f"Command: python {' '.join(sys.argv)}\n\n"
            + table(rows, ["step", "size", "precision", "device", "result"]) + "\n")
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
