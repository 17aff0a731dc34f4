"""`f2f batch`: many reenactment jobs from a CSV manifest.

Each distinct driving video is tracked once and its track shared by every job that uses it;
an `Executor` runs the jobs: one after another here (`Sequential`), in worker processes
(`workers.LocalPool`) or on a Ray cluster (`ray_executor.RayPool`), with the same results.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from ..errors import F2FError, InputError
from ..io.image import is_image_path
from ..tracking.track import Track
from ..tracking.video_track import TrackOptions
from .faces import drivers_named
from .runner import ReenactOptions, Resources, SilentProgress, load_driver, reenact

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


def parse_shard(text: str, environ: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """"i/n" (0 <= i < n): this process takes jobs whose index % n == i. "slurm": i and n
    from the Slurm array's SLURM_ARRAY_TASK_ID, _MIN and _COUNT (any base: `--array=1-20`
    gives shards 0..19)."""
    if text == "slurm":
        try:
            task, low, count = (int(environ[f"SLURM_ARRAY_TASK_{name}"])
                                for name in ("ID", "MIN", "COUNT"))
        except KeyError as exc:
            raise ValueError(f"`shard` slurm: {exc.args[0]} is not set (not in a Slurm "
                             "array job?)") from None
        except ValueError:
            raise ValueError("`shard` slurm: SLURM_ARRAY_TASK_ID/_MIN/_COUNT are not "
                             "numbers") from None
        i, n = task - low, count
    else:
        try:
            i, n = (int(v) for v in text.split("/"))
        except ValueError:
            raise ValueError(f"`shard` must look like i/n or be slurm, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"`shard` {text}: need 0 <= i < n (got {i}/{n})")
    return i, n


DriverKey = tuple[Path, TrackOptions]  # a driving video (resolved) and how it is tracked


@dataclass(frozen=True)
class Task:
    """A job ready to run: its options, and the driving videos it needs tracked."""

    job: Job
    options: ReenactOptions
    drivers: tuple[DriverKey, ...]


def plan_jobs(jobs: list[Job], options_for: Callable[[Job], ReenactOptions],
              skip_existing: bool) -> tuple[list[Task], list[JobResult]]:
    """The jobs to run, and the results of those settled without running (malformed rows,
    bad options, outputs that exist with `skip_existing`)."""
    tasks, settled = [], []
    for job in jobs:
        if job.problem is not None:
            settled.append(JobResult(job.index, str(job.out), "failed", job.problem))
            continue
        if skip_existing and job.out.exists():
            settled.append(JobResult(job.index, str(job.out), "skipped"))
            continue
        try:
            options = options_for(job)
        except (F2FError, ValueError) as exc:
            settled.append(JobResult(job.index, str(job.out), "failed", str(exc)))
            continue
        tasks.append(Task(job, options, video_drivers(job, options)))
    return tasks, settled


def video_drivers(job: Job, options: ReenactOptions) -> tuple[DriverKey, ...]:
    """The driving videos of a job (its `driving` and its face map's): each is tracked once
    per batch and shared by every job that uses it. Images and track files are read as
    they are."""
    paths = drivers_named(job.driving, options.face_map)
    return tuple(dict.fromkeys(
        (path.resolve(), options.driver) for path in paths
        if not is_image_path(path) and path.suffix.lower() != ".npz"))


def track_driver(key: DriverKey, resources: Resources) -> Track:
    """Track one driving video (a worker's part of a batch)."""
    track, _kind = load_driver(key[0], key[1], SilentProgress(), resources)
    return track


def execute(task: Task, tracks: Mapping[DriverKey, Track], resources: Resources,
            log: object = None) -> JobResult:
    """Run one job with its drivers' tracks given; any failure is its result (Ctrl-C and
    SIGTERM still stop the batch)."""
    job = task.job
    start = time.perf_counter()
    for key in task.drivers:
        resources.remember_track(*key, tracks[key])
    try:
        done = reenact(job.source, job.driving, job.out, task.options, log, resources)
        result = JobResult(job.index, str(job.out), "ok", details=done.to_dict())
    except (F2FError, ValueError) as exc:
        result = JobResult(job.index, str(job.out), "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - one job's crash (e.g. GPU memory) is
        # recorded and the batch goes on
        result = JobResult(job.index, str(job.out), "failed",
                           f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}")
    finally:
        resources.forget_tracks()
    result.seconds = time.perf_counter() - start
    return result


# How a failure that is not the input's fault is worded (and recognised for `retries`)
INTERNAL_ERROR = "internal error"


def failure_text(exc: BaseException) -> str:
    """A driver's tracking failure as the jobs that needed it report it."""
    if isinstance(exc, (F2FError, ValueError)):
        return str(exc)
    return f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}"


@dataclass
class BatchSummary:
    jobs: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    drivers_tracked: int = 0  # distinct driving videos tracked (each once)
    executor: str = "sequential"
    workers: int = 1

    def add(self, result: JobResult) -> None:
        self.jobs += 1
        setattr(self, result.status, getattr(self, result.status) + 1)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Executor(Protocol):
    """Runs a batch's tasks: tracks each driving video once, then the jobs; yields each
    job's result as it finishes and counts the drivers it tracked."""

    name: str
    workers: int
    drivers_tracked: int
    running: int  # jobs in progress now

    def run(self, tasks: list[Task]) -> Iterator[JobResult]: ...


class Sequential:
    """One job after another in this process. Jobs are taken driver by driver, so that each
    driving video's track is held only while its jobs run."""

    name = "sequential"
    workers = 1

    def __init__(self, log: object = None) -> None:
        self.log = log
        self.resources = Resources()
        self.drivers_tracked = 0
        self.running = 0

    def run(self, tasks: list[Task]) -> Iterator[JobResult]:
        book = DriverBook(tasks)
        for task in list(book.waiting):
            for key in task.drivers:
                if key not in book.settled:
                    try:
                        book.settle(key, track_driver(key, self.resources))
                    except Exception as exc:  # noqa: BLE001 - the jobs that need it fail
                        book.settle(key, error=failure_text(exc))
                    self.drivers_tracked += 1
            for ready, failure in book.ready():
                if failure is not None:
                    yield failure
                    continue
                self.running = 1
                result = execute(ready, book.tracks_of(ready), self.resources, self.log)
                self.running = 0
                book.release(ready)
                yield result


class DriverBook:
    """A batch's driving videos: which are tracked (their tracks, or whatever refers to them:
    a Ray object reference) or failed, which jobs may start, and when a track may be dropped
    (after the last job that needs it). Shared by the executors."""

    def __init__(self, tasks: list[Task]) -> None:
        self.waiting = by_driver(tasks)
        self.keys = list(dict.fromkeys(key for task in self.waiting for key in task.drivers))
        self.left = Counter(key for task in tasks for key in task.drivers)
        self.tracks: dict[DriverKey, Any] = {}
        self.failed: dict[DriverKey, str] = {}
        self.settled: set[DriverKey] = set()  # tracked or failed (tracks are dropped later)

    def settle(self, key: DriverKey, track: Any = None, error: str | None = None) -> None:
        self.settled.add(key)
        if error is None:
            self.tracks[key] = track
        else:
            self.failed[key] = error

    @property
    def tracking(self) -> bool:
        """Whether some driver is still to be tracked."""
        return len(self.settled) < len(self.keys)

    def ready(self) -> Iterator[tuple[Task, JobResult | None]]:
        """The waiting jobs whose drivers are all settled, each with its failure when one of
        them could not be tracked (the job is then done: its tracks are released)."""
        for task in [t for t in self.waiting if all(k in self.settled for k in t.drivers)]:
            self.waiting.remove(task)
            broken = [self.failed[k] for k in task.drivers if k in self.failed]
            if broken:
                self.release(task)
                yield task, JobResult(task.job.index, str(task.job.out), "failed", broken[0])
            else:
                yield task, None

    def tracks_of(self, task: Task) -> dict[DriverKey, Any]:
        return {key: self.tracks[key] for key in task.drivers}

    def release(self, task: Task) -> None:
        """`task` is done: drop the tracks no job still needs."""
        for key in task.drivers:
            self.left[key] -= 1
            if self.left[key] == 0:
                self.tracks.pop(key, None)


def by_driver(tasks: list[Task]) -> list[Task]:
    """The tasks with each driving video's jobs together (in the order the videos are first
    used; manifest order within), so that few tracks are held at once."""
    first: dict[DriverKey, int] = {}
    for i, task in enumerate(tasks):
        for key in task.drivers:
            first.setdefault(key, i)
    return sorted(tasks, key=lambda t: (first[t.drivers[0]] if t.drivers else -1, t.job.index))


def run_batch(jobs: list[Job], options_for: Callable[[Job], ReenactOptions],
              skip_existing: bool, on_result: Callable[[JobResult], None],
              executor: Executor, progress: Any = None) -> BatchSummary:
    """Run every job, going on past failures; report each result as it comes.
    `progress`: a bar (`advance`, `describe`) over the jobs."""
    tasks, settled = plan_jobs(jobs, options_for, skip_existing)
    summary = BatchSummary(executor=executor.name, workers=executor.workers)
    for result in settled:
        summary.add(result)
        on_result(result)
        if progress is not None:
            progress.advance(1)
    for result in executor.run(tasks):
        summary.add(result)
        on_result(result)
        if progress is not None:
            progress.advance(1)
            progress.describe(f"jobs: {summary.ok} ok, {summary.failed} failed, "
                              f"{executor.running} running")
    summary.drivers_tracked, summary.workers = executor.drivers_tracked, executor.workers
    return summary


# When shard reports name a job more than once (a resumed run), the best outcome counts.
_RANK = {"ok": 2, "skipped": 1, "failed": 0}


def merge_reports(directory: Path) -> tuple[list[dict], dict[str, int]]:
    """The job lines of the `--json` reports (*.jsonl, *.json) in `directory`, one per job
    (the best outcome where a job is reported twice), in job order, and their summary."""
    files = sorted([*directory.glob("*.jsonl"), *directory.glob("*.json")])
    if not files:
        raise InputError(f"{directory}: no *.jsonl or *.json reports to merge")
    jobs: dict[int, dict] = {}
    for path in files:
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                raise InputError(f"{path}:{number}: not a JSON line") from None
            if not isinstance(line, dict) or "job" not in line or "status" not in line:
                continue  # a summary or an error line
            old = jobs.get(line["job"])
            if old is None or _RANK.get(line["status"], 0) > _RANK.get(old["status"], 0):
                jobs[line["job"]] = line
    lines = [jobs[k] for k in sorted(jobs)]
    counts = Counter(line["status"] for line in lines)
    return lines, {"jobs": len(lines), "ok": counts["ok"], "failed": counts["failed"],
                   "skipped": counts["skipped"], "reports": len(files)}
