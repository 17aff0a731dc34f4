"""`f2f batch`: many reenactment jobs from a CSV manifest in one process."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import F2FError, InputError
from .runner import ReenactOptions, Resources, reenact

REQUIRED_COLUMNS = ("source", "out")
# driving may be left empty where a face_map column gives the drivers
PATH_COLUMNS = ("source", "driving", "out")


@dataclass(frozen=True)
class Job:
    """One manifest row: paths resolved against the manifest's folder, plus option overrides."""

    index: int
    source: Path
    driving: Path | None
    out: Path
    options: dict[str, str] = field(default_factory=dict)
    problem: str | None = None  # a malformed row: reported as failed, not run


@dataclass
class JobResult:
    index: int
    out: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    details: dict | None = None

    def to_dict(self) -> dict[str, object]:
        return {"job": self.index, "out": self.out, "status": self.status, "error": self.error,
                "seconds": round(self.seconds, 3), **({"result": self.details}
                                                      if self.details else {})}


def read_jobs(manifest: Path) -> list[Job]:
    """Rows of a CSV with columns source, driving, out and optional per-job option columns
    (a row with a `face_map` may leave driving empty)."""
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
            columns = [] if not rows else list(rows[0].keys())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{manifest}: cannot read the manifest ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if not rows:
        raise InputError(f"{manifest}: no jobs (need a header row and at least one job)")
    if missing:
        raise InputError(f"{manifest}: missing column(s) {', '.join(missing)}")
    base = manifest.resolve().parent
    jobs = []
    for i, row in enumerate(rows):
        values = [(row.get(c) or "").strip() for c in PATH_COLUMNS]
        paths = [None if column == "driving" and not v else base / Path(v)
                 for column, v in zip(PATH_COLUMNS, values)]
        extra = {k.strip().replace("-", "_"): v.strip() for k, v in row.items()
                 if k and k not in PATH_COLUMNS and isinstance(v, str) and v.strip() != ""}
        problem = None
        if not (values[0] and values[2] and (values[1] or "face_map" in extra)):
            problem = f"line {i + 2}: empty source, driving or out"
        elif None in row or None in row.values():
            problem = f"line {i + 2}: {'more' if None in row else 'fewer'} fields than columns"
        jobs.append(Job(i, *paths, options=extra, problem=problem))
    _refuse_shared_outputs(manifest, jobs)
    return jobs


def _refuse_shared_outputs(manifest: Path, jobs: list[Job]) -> None:
    """Two jobs writing one file would overwrite each other and both report success."""
    first: dict[Path, int] = {}
    for job in jobs:
        if job.problem is None:
            other = first.setdefault(job.out.resolve(), job.index)
            if other != job.index:
                raise InputError(f"{manifest}: jobs {other} and {job.index} both write "
                                 f"{job.out}")


def parse_shard(text: str) -> tuple[int, int]:
    """"i/n" (0 <= i < n): this process takes jobs whose index % n == i."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"`shard` must look like i/n, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"`shard` {text}: need 0 <= i < n")
    return i, n


def run_jobs(jobs: list[Job], options_for: Callable[[Job], ReenactOptions],
             skip_existing: bool, on_result: Callable[[JobResult], None],
             log: object = None) -> list[JobResult]:
    """Run every job, going on past failures; models and cached sources are reused."""
    resources = Resources()
    results = []
    for job in jobs:
        start = time.perf_counter()
        if job.problem is not None:
            result = JobResult(job.index, str(job.out), "failed", job.problem)
        elif skip_existing and job.out.exists():
            result = JobResult(job.index, str(job.out), "skipped")
        else:
            try:
                done = reenact(job.source, job.driving, job.out, options_for(job), log,
                               resources)
                result = JobResult(job.index, str(job.out), "ok", details=done.to_dict())
            except (F2FError, ValueError) as exc:
                result = JobResult(job.index, str(job.out), "failed", str(exc))
            except Exception as exc:  # noqa: BLE001 - one job's crash (e.g. GPU memory) is
                # recorded and the batch goes on; Ctrl-C and SIGTERM still stop it
                result = JobResult(job.index, str(job.out), "failed",
                                   f"internal error: {type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - start
        on_result(result)
        results.append(result)
    return results
