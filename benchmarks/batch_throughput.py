"""`f2f batch` jobs per minute: 8 jobs sharing 2 driving videos, four ways.

Run:  python benchmarks/batch_throughput.py [--jobs 8] [--frames 100] [--no-ray]
1. sequential as before driver sharing (each job tracks its driver: `reenact` per job, models
   shared, as `f2f batch` did until drivers were shared);
2. sequential with each driver tracked once (`f2f batch`);
3. `--workers 2` (two processes);
4. `--ray` (a local Ray instance on this machine's cores; needs the ray extra).
Every way writes the same outputs (checked). The source is examples/source.jpg; the drivers
are skimage's astronaut moved two ways (needs scikit-image). Nothing else should run
meanwhile: the ways are timed one after another.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from f2fcli.pipeline.batch import Job, Sequential, read_jobs, run_batch
from f2fcli.pipeline.runner import ReenactOptions, Resources, reenact

SOURCE = Path(__file__).resolve().parents[1] / "examples" / "source.jpg"


def drivers(directory: Path, frames: int) -> list[Path]:
    from skimage import data

    from f2fcli.io.testclip import make_motion_clip, similarity_matrix

    paths = []
    for name, sign in (("a.mp4", 1.0), ("b.mp4", -1.0)):
        phases = 2 * np.pi * np.arange(frames) / 50
        paths.append(make_motion_clip(directory / name, data.astronaut(), [
            similarity_matrix(sign * 6 * np.sin(p), 1 + 0.04 * np.sin(p),
                              (sign * 8 * np.sin(p), 5 * np.cos(p)), (220.0, 180.0))
            for p in phases], Fraction(25)))
    return paths


def manifest(directory: Path, jobs: int, driving: list[Path]) -> list[Job]:
    directory.mkdir()
    rows = ["source,driving,out"] + [f"{SOURCE},{driving[i % 2]},out{i}.mp4"
                                     for i in range(jobs)]
    (directory / "jobs.csv").write_text("\n".join(rows) + "\n")
    return read_jobs(directory / "jobs.csv")


def timed(label: str, run, jobs: int) -> float:
    start = time.perf_counter()
    tracked = run()
    wall = time.perf_counter() - start
    print(f"{label:<42} {60 * jobs / wall:6.1f} jobs/min ({wall:.1f} s; "
          f"{tracked} driver trackings)")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    print("command: python " + " ".join(sys.argv))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        driving = drivers(tmp, args.frames)
        cache = tmp / "cache"

        def options(_job: Job) -> ReenactOptions:
            return ReenactOptions(cache_dir=cache)

        ways = {}

        def before() -> int:
            jobs, resources = manifest(tmp / "before", args.jobs, driving), Resources()
            for job in jobs:
                reenact(job.source, job.driving, job.out, options(job), resources=resources)
            return len(jobs)

        def executor_run(name: str, make):
            def run() -> int:
                executor = make()
                summary = run_batch(manifest(tmp / name, args.jobs, driving), options, False,
                                    lambda result: None, executor)
                assert summary.ok == args.jobs, summary
                return summary.drivers_tracked
            return run

        from f2fcli.pipeline.workers import LocalPool

        ways["sequential, each job tracks its driver"] = ("before", before)
        ways["sequential, drivers tracked once"] = ("shared", executor_run("shared", Sequential))
        ways["--workers 2"] = ("workers", executor_run("workers", lambda: LocalPool(2)))
        if not args.no_ray:
            from f2fcli.pipeline.ray_executor import RayPool

            ways["--ray (local, 2 CPUs)"] = ("ray", executor_run(
                "ray", lambda: RayPool("local", local_cpus=2)))
        for label, (_folder, run) in ways.items():
            timed(label, run, args.jobs)
        reference = tmp / "before"
        for folder, _run in ways.values():
            for i in range(args.jobs):
                assert (tmp / folder / f"out{i}.mp4").read_bytes() == \
                    (reference / f"out{i}.mp4").read_bytes(), (folder, i)
        print("outputs identical across the ways")


if __name__ == "__main__":
    main()
