"""Write-then-rename outputs: a target is either complete or untouched."""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import OutputError


def check_output_path(target: Path, overwrite: bool) -> None:
    """Fail early, before any work, if the target cannot be written."""
    if target.exists() and not overwrite:
        raise OutputError(f"{target} exists; pass `overwrite` to replace it")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory {parent} is not writable")


def temp_path_for(target: Path) -> Path:
    """A hidden sibling of the target that keeps its suffix, so muxers pick the same format."""
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.part{target.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(target: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only on success.

    On any exception, Ctrl-C included, the temporary file (or directory) is removed and an
    existing target is left as it was.
    """
    target = Path(target)
    check_output_path(target, overwrite)
    tmp = temp_path_for(target)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written for {target}")
        if target.exists() and target.is_dir() != tmp.is_dir():
            kind = "a directory" if target.is_dir() else "a file"
            raise OutputError(f"{target} is {kind}; cannot replace it with this output")
        if target.is_dir():
            _remove(target)
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
