"""Logging and progress for the CLI: logs and bars on stderr, results on stdout."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class _SpeedColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:6.1f}/s" if task.speed else "      -/s")


class _NullBar:
    def advance(self, n: int = 1) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


class _RichBar:
    def __init__(self, progress: Progress, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        """Change the bar's description (a batch's done / failed / running counts)."""
        self._progress.update(self._task, description=text)


@dataclass
class Reporter:
    """Where a command says things. Verbosity: -1 quiet, 0 normal, 1 verbose. `wording`
    rewrites the library's messages for the reader (the CLI shows option fields as flags)."""

    verbosity: int = 0
    json_mode: bool = False
    wording: Callable[[str], str] = str

    def __post_init__(self) -> None:
        self._err = Console(stderr=True, highlight=False, soft_wrap=True)

    @property
    def show_progress(self) -> bool:
        # Bars only for a person watching: never in --json, --quiet, or when stderr is a pipe/file.
        return self.verbosity >= 0 and not self.json_mode and sys.stderr.isatty()

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            self._err.print(self.wording(message), markup=False)

    def debug(self, message: str) -> None:
        if self.verbosity >= 1:
            self._err.print(self.wording(message), markup=False, style="dim")

    def warn(self, message: str) -> None:
        self._err.print(f"warning: {self.wording(message)}", markup=False, style="yellow")

    def error(self, message: str) -> None:
        self._err.print(f"error: {self.wording(message)}", markup=False, style="bold red")

    def result(self, data: dict[str, Any], human: str | None = None) -> None:
        """The command's result: JSON on stdout with --json, else the human text."""
        if self.json_mode:
            sys.stdout.write(json.dumps(data, default=str) + "\n")
            sys.stdout.flush()
        elif human is not None and self.verbosity >= 0:
            Console(highlight=False, soft_wrap=True).print(human, markup=False)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[_NullBar | _RichBar]:
        if not self.show_progress:
            yield _NullBar()
            return
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _SpeedColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=self._err, transient=True) as progress:
            yield _RichBar(progress, progress.add_task(description, total=total))
