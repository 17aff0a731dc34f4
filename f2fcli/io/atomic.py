"""Write-then-rename outputs: a target is either complete or untouched."""

from __future__ import annotations

import errno
import glob
import os
import shutil
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import OutputError


def check_output_path(target: Path, overwrite: bool) -> None:
    """Fail early, before any work, if the target cannot be written."""
    if target.name == "-":
        raise OutputError("output `-`: writing to standard output is not supported; give a "
                          "file name")
    if target.exists() and not overwrite:
        raise OutputError(f"{target} exists; pass `overwrite` to replace it")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory {parent} is not writable")


def _owner() -> str:
    """This process, as named in its temporary files: host and process id."""
    return f"{socket.gethostname().replace('.', '_').replace('-', '_')}-{os.getpid()}"


def temp_path_for(target: Path) -> Path:
    """A hidden sibling of the target that keeps its suffix, so muxers pick the same format,
    and names its writer, so that a killed writer's leftovers can be told apart."""
    return target.with_name(f".{target.stem}.{_owner()}.{uuid.uuid4().hex[:8]}"
                            f".part{target.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_orphans(target: Path) -> list[Path]:
    """Remove the temporary files of `target` left by writers on this host that no longer run
    (killed with SIGKILL, or the machine lost power); a running writer's file is kept."""
    host = _owner().rpartition("-")[0]
    prefix = f".{target.stem}."
    removed = []
    for path in target.parent.glob(f"{glob.escape(prefix)}*.part{glob.escape(target.suffix)}"):
        owner = path.name[len(prefix):].split(".")[0]
        name, _, pid = owner.rpartition("-")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            _remove(path)
            removed.append(path)
    return removed


def remove_temp_files(target: Path) -> list[Path]:
    """Remove every writer's temporary files of `target`, running or not: for a batch that
    has stopped the writers itself (its workers killed on Ctrl-C or SIGTERM)."""
    prefix = f".{target.stem}."
    found = list(target.parent.glob(f"{glob.escape(prefix)}*.part{glob.escape(target.suffix)}"))
    for path in found:
        _remove(path)
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(target: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only on success.

    On any exception, Ctrl-C and SIGTERM (`errors.Terminated`) included, the temporary file
    (or directory) is removed and an existing target is left as it was; leftovers of earlier
    writers of `target` that were killed outright are removed first (`remove_orphans`).
    """
    target = Path(target)
    check_output_path(target, overwrite)
    remove_orphans(target)
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
    except BaseException as exc:
        _remove(tmp)
        if _disk_full(exc):
            raise OutputError(f"{target}: the disk is full (no space left in "
                              f"{target.parent.resolve()})") from exc
        raise


def _disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error it was raised from (the encoder's, wrapped), is a full disk
    or an exhausted quota."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
