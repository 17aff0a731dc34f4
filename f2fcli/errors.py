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


EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
