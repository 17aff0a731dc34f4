"""`f2f batch --ray [ADDRESS]`: the batch's jobs on a Ray cluster (the `[ray]` extra).

A pool of actors, each holding the models once (`job_cpus`/`job_gpus` each, fractions
allowed), is scheduled dynamically: a free actor takes the next piece of work. First every
distinct driving video is tracked once; its track goes into Ray's object store and every job
that uses it reads it from there, a job starting as soon as its drivers are tracked. Outputs
are written where the manifest says (a filesystem all nodes share), atomically as locally.
A job that failed for a reason other than its input (an internal error, a worker lost with
its node) is tried again up to `retries` times; bad input is not. Ctrl-C or SIGTERM on the
submitting machine cancels the work, kills the actors and removes the outputs they were
writing.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import Terminated
from ..extras import MissingExtra
from ..io.atomic import remove_temp_files
from .batch import (INTERNAL_ERROR, DriverBook, DriverKey, JobResult, Task, execute, failure_text,
                    track_driver)
from .runner import Resources

RAY_INSTALL = 'pip install "f2fcli[ray]"'


class BatchWorker:
    """One actor: the models, loaded once, for every job it is given."""

    def __init__(self, threads: int | None) -> None:
        if threads is not None:
            os.environ["F2F_ORT_THREADS"] = str(threads)
        self.resources = Resources()

    def track(self, key: DriverKey) -> Any:
        return track_driver(key, self.resources)

    def run(self, task: Task, keys: tuple[DriverKey, ...], *tracks: Any) -> JobResult:
        return execute(task, dict(zip(keys, tracks)), self.resources)


@dataclass
class _Work:
    """A piece of work in flight: a driver to track or a job to run."""

    kind: str  # "track" or "job"
    key: DriverKey | None = None
    task: Task | None = None
    attempt: int = 0


class RayPool:
    """`address`: "local" starts a Ray instance on this machine (`local_cpus` CPUs, default
    all), "auto" joins the cluster this machine belongs to, else a cluster's address.
    `workers`: actors (default: as many as the cluster's CPUs allow at `job_cpus` each)."""

    name = "ray"

    def __init__(self, address: str = "local", workers: int | None = None,
                 job_cpus: float = 1.0, job_gpus: float = 0.0, retries: int = 0,
                 threads: int | None = None, local_cpus: int | None = None) -> None:
        if job_cpus <= 0 or job_gpus < 0 or retries < 0:
            raise ValueError("`job_cpus` must be above 0, `job_gpus` and `retries` at least 0")
        self.address = address
        self.workers = workers or 0
        self.job_cpus, self.job_gpus = job_cpus, job_gpus
        self.retries = retries
        self.threads = threads
        self.local_cpus = local_cpus
        self.drivers_tracked = 0
        self.running = 0  # jobs in progress, for the progress bar

    def run(self, tasks: list[Task]) -> Iterator[JobResult]:
        try:
            import ray
        except ImportError:
            raise MissingExtra(f"running a batch on Ray needs Ray, which is not installed: "
                               f"{RAY_INSTALL}") from None
        if not tasks:
            return
        started = not ray.is_initialized()
        # Ray installs a handler of its own that exits at once on SIGTERM, and a signal's
        # exception raised inside Ray's calls comes out garbled: while the batch runs, a
        # signal is only noted, and the scheduler stops at its next step (cancelling the
        # work, removing partial outputs); the caller's handlers are put back after.
        handlers = _signal_handlers()
        stop: list[int] = []
        if started:
            local = self.address == "local"
            ray.init(address=None if local else self.address,
                     num_cpus=(self.local_cpus or os.cpu_count()) if local else None,
                     include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, configure_logging=False)
        for sig in handlers:
            signal.signal(sig, lambda number, _frame: stop.append(number))
        try:
            yield from _Scheduler(self, ray, tasks, stop).run()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            if started:
                ray.shutdown()


def _signal_handlers() -> dict[int, Any]:
    """SIGTERM's and SIGINT's handlers now (none off the main thread: they cannot be set
    there)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}


class _Scheduler:
    """One batch on the cluster: a queue of work, free actors taking it."""

    def __init__(self, pool: RayPool, ray: Any, tasks: list[Task], stop: list[int]) -> None:
        self.pool, self.ray, self.stop = pool, ray, stop
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        count = pool.workers or max(1, int(cpus // pool.job_cpus))
        pool.workers = min(count, len(tasks))
        self.actor_class = ray.remote(BatchWorker).options(num_cpus=pool.job_cpus,
                                                           num_gpus=pool.job_gpus)
        self.free = [self.actor_class.remote(pool.threads) for _ in range(pool.workers)]
        self.in_flight: dict[Any, tuple[_Work, Any]] = {}  # ref -> (work, actor)
        self.book = DriverBook(tasks)  # its tracks: ObjectRefs into the object store
        self.queue: deque[_Work] = deque(_Work("track", key=key) for key in self.book.keys)

    def run(self) -> Iterator[JobResult]:
        try:
            while self.queue or self.in_flight or self.book.waiting:
                if self.stop:
                    raise Terminated() if self.stop[0] == signal.SIGTERM else KeyboardInterrupt()
                yield from self._release_ready_jobs()
                self._submit()
                if not self.in_flight:
                    continue
                ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=1.0)
                for ref in ready:
                    yield from self._finished(ref)
        finally:
            self._cancel()

    def _release_ready_jobs(self) -> Iterator[JobResult]:
        """Jobs whose drivers are all tracked go to the queue; those with a driver that
        could not be tracked fail with its error."""
        for task, failure in self.book.ready():
            if failure is not None:
                yield self._count(failure)
            else:
                self.queue.append(_Work("job", task=task))

    def _submit(self) -> None:
        while self.free and self.queue:
            work, actor = self.queue.popleft(), self.free.pop()
            if work.kind == "track":
                ref = actor.track.remote(work.key)
            else:
                tracks = self.book.tracks_of(work.task)
                ref = actor.run.remote(work.task, tuple(tracks), *tracks.values())
            self.in_flight[ref] = (work, actor)
        self.pool.running = sum(1 for w, _ in self.in_flight.values() if w.kind == "job")

    def _finished(self, ref: Any) -> Iterator[JobResult]:
        work, actor = self.in_flight.pop(ref)
        try:
            value = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:  # the actor (or its node) is gone
            self.free.append(self.actor_class.remote(self.pool.threads))
            yield from self._failed(work, f"{INTERNAL_ERROR}: worker lost ({type(exc).__name__})")
            return
        except self.ray.exceptions.RayTaskError as exc:
            self.free.append(actor)
            yield from self._failed(work, failure_text(exc.cause or exc))
            return
        self.free.append(actor)
        if work.kind == "track":
            self.pool.drivers_tracked += 1
            self.book.settle(work.key, ref)  # the track stays in the object store
            return
        if (value.status == "failed" and (value.error or "").startswith(INTERNAL_ERROR)
                and work.attempt < self.pool.retries):
            self._retry(work)
            return
        self.book.release(work.task)
        yield self._count(value)

    def _failed(self, work: _Work, error: str) -> Iterator[JobResult]:
        transient = error.startswith(INTERNAL_ERROR)
        if transient and work.attempt < self.pool.retries:
            self._retry(work)
        elif work.kind == "track":
            self.pool.drivers_tracked += 1
            self.book.settle(work.key, error=error)
        else:
            remove_temp_files(work.task.job.out)
            self.book.release(work.task)
            job = work.task.job
            yield self._count(JobResult(job.index, str(job.out), "failed", error))

    def _retry(self, work: _Work) -> None:
        if work.kind == "job":
            remove_temp_files(work.task.job.out)
        work.attempt += 1
        self.queue.appendleft(work)

    def _count(self, result: JobResult) -> JobResult:
        self.pool.running = sum(1 for w, _ in self.in_flight.values() if w.kind == "job")
        return result

    def _cancel(self) -> None:
        """Stop whatever still runs (Ctrl-C, SIGTERM, an error): the actors are killed, then
        the outputs they were writing removed."""
        actors = [actor for _, actor in self.in_flight.values()] + self.free
        for actor in actors:
            self.ray.kill(actor, no_restart=True)
        if self.in_flight:  # the killed actors' work ends with an error, once they are gone
            self.ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=10)
        for work, _ in self.in_flight.values():
            if work.kind == "job":
                remove_temp_files(work.task.job.out)
        self.in_flight.clear()
