"""Errors that the CLI turns into one-line messages and exit codes.

Exit codes: 0 success, 1 bad input or processing failure, 2 usage error (click), 130 interrupted.
"""

from __future__ import annotations


class F2FError(Exception):
    """A failure the user can act on; printed as one line, exit code 1."""

    exit_code = 1


class InputError(F2FError):
    """An input file is missing, unreadable, malformed or too large."""


class OutputError(F2FError):
    """An output cannot be written (exists, unwritable directory, encoder refused)."""


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM: `timeout`, Slurm, `docker stop`). A
    BaseException, like KeyboardInterrupt, so that no per-job handler swallows it and every
    `with` on the way out cleans up (temporary outputs removed)."""

    exit_code = 143


def require_format(meta: dict, fmt: str, version: int, path: object, what: str) -> None:
    """Refuse a file whose header names another format, or a version this f2f can't read."""
    if meta.get("format") != fmt:
        raise InputError(f"{path}: not an f2f {what}")
    if meta.get("version") != version:
        raise InputError(f"{path}: {what} version {meta.get('version')} is not supported "
                         f"(this f2f reads version {version})")


EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
