"""`f2f batch --workers N`: the batch's jobs in N worker processes on this machine.

Each worker loads the models once and serves tasks from a queue: first every distinct driving
video is tracked once (by whichever worker is free), then each job runs with its drivers'
tracks (`batch.execute`), a job starting as soon as its drivers are tracked. Results come back
as they finish. Ctrl-C or SIGTERM stops the workers and removes the outputs they were writing.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..io.atomic import remove_temp_files
from .batch import INTERNAL_ERROR, DriverBook, JobResult, Task, execute, failure_text, track_driver
from .runner import Resources

# Seconds between liveness checks: of the workers by the submitter, and of it by them
_POLL_S = 1.0


def serve(inbox: Any, outbox: Any, threads: int | None) -> None:
    """A worker process: track drivers and run jobs from `inbox` until it gets None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the submitter handles Ctrl-C
    if threads is not None:
        os.environ["F2F_ORT_THREADS"] = str(threads)
    resources = Resources()
    idle = threading.Event()
    threading.Thread(target=_leave_when_orphaned, args=(os.getppid(), idle), daemon=True,
                     name="f2f-orphan-check").start()
    while True:
        idle.set()
        message = inbox.get()
        idle.clear()
        if message is None:
            return
        kind, payload = message
        if kind == "track":
            outbox.put(("start", ("track", payload), os.getpid()))
            try:
                outbox.put(("tracked", payload, track_driver(payload, resources), None))
            except Exception as exc:  # noqa: BLE001 - reported to the jobs that need it
                outbox.put(("tracked", payload, None, failure_text(exc)))
        else:
            task, tracks = payload
            outbox.put(("start", ("job", task.job.index), os.getpid()))
            outbox.put(("done", execute(task, tracks, resources), os.getpid()))


def _leave_when_orphaned(parent: int, idle: threading.Event) -> None:
    """End this worker once the submitter is gone (killed outright, so it could not stop
    us) and no job is running: otherwise it would wait for work forever, or for the rest of a
    message the submitter died writing."""
    while True:
        time.sleep(_POLL_S)
        if os.getppid() != parent and idle.is_set():
            os._exit(0)


class LocalPool:
    """`workers` processes on this machine, each with `threads` onnxruntime threads per model
    (default 1: N workers on N cores)."""

    name = "workers"

    def __init__(self, workers: int, threads: int | None = None) -> None:
        if workers < 1:
            raise ValueError("`workers` must be at least 1")
        self.workers = workers
        self.threads = threads
        self.drivers_tracked = 0
        self.running = 0

    def run(self, tasks: list[Task]) -> Iterator[JobResult]:
        if not tasks:
            return
        context = multiprocessing.get_context("spawn")
        inbox, outbox = context.Queue(), context.Queue()
        processes = [context.Process(target=serve, args=(inbox, outbox, self.threads),
                                     daemon=True, name=f"f2f-worker-{i}")
                     for i in range(min(self.workers, len(tasks)))]
        for process in processes:
            process.start()
        running: dict[int, Task] = {}  # job index -> task, for jobs a worker has taken
        finished = False
        try:
            yield from self._serve(tasks, inbox, outbox, processes, running)
            finished = True
        finally:
            _stop(processes, inbox, finished)
            for task in running.values():  # stopped mid-job: nothing half-written stays
                remove_temp_files(task.job.out)

    def _serve(self, tasks: list[Task], inbox: Any, outbox: Any, processes: list,
               running: dict[int, Task]) -> Iterator[JobResult]:
        book = DriverBook(tasks)
        for key in book.keys:
            inbox.put(("track", key))
        queued: dict[int, Task] = {}
        worker_of: dict[int, tuple] = {}  # pid -> ("track", key) or ("job", index) it runs
        while book.waiting or queued or running or book.tracking:
            for task, failure in book.ready():
                if failure is not None:
                    yield failure
                else:
                    inbox.put(("job", (task, book.tracks_of(task))))
                    queued[task.job.index] = task
            try:
                message = outbox.get(timeout=_POLL_S)
            except queue.Empty:
                yield from _lost_work(processes, worker_of, running, book)
                continue
            if message[0] == "tracked":
                _, key, track, error = message
                self.drivers_tracked += 1
                worker_of = {pid: w for pid, w in worker_of.items() if w != ("track", key)}
                book.settle(key, track, error)
            elif message[0] == "start":
                _, what, pid = message
                worker_of[pid] = what
                if what[0] == "job":
                    running[what[1]] = queued.pop(what[1])
                    self.running = len(running)
            else:
                _, result, pid = message
                book.release(running.pop(result.index))
                self.running = len(running)
                worker_of.pop(pid, None)
                yield result


def _lost_work(processes: list, worker_of: dict[int, tuple], running: dict[int, Task],
               book: DriverBook) -> Iterator[JobResult]:
    """What died with a worker (killed for memory, a crash in a native library): its job
    fails, or the driver it was tracking does (and with it the jobs that need it)."""
    for process in processes:
        if process.is_alive() or process.pid not in worker_of:
            continue
        kind, what = worker_of.pop(process.pid)
        error = f"{INTERNAL_ERROR}: its worker process died (exit code {process.exitcode})"
        if kind == "track":
            book.settle(what, error=error)
            continue
        task = running.pop(what)
        remove_temp_files(task.job.out)
        book.release(task)
        yield JobResult(task.job.index, str(task.job.out), "failed", error)
    if not any(p.is_alive() for p in processes):
        raise RuntimeError("every batch worker process has died")


def _stop(processes: list, inbox: Any, finished: bool) -> None:
    """Let the idle workers of a finished batch leave; stop them at once otherwise (Ctrl-C,
    SIGTERM, an error)."""
    for _ in processes:
        inbox.put(None)
    for process in processes:
        process.join(timeout=5 if finished else 0)
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)
        if process.is_alive():
            process.kill()
    inbox.cancel_join_thread()
