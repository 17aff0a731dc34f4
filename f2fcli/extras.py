"""Optional parts of the install: the plain `pip install f2fcli` has no PyTorch (tracking, the
warp renderer and the neural renderer on onnxruntime need none); what needs it says so."""

from __future__ import annotations

import importlib
import importlib.util

from .errors import F2FError

TORCH_INSTALL = ('pip install "f2fcli[torch]" (a CPU-only build, much smaller: pip install '
                 'torch --index-url https://download.pytorch.org/whl/cpu)')


class MissingExtra(F2FError):
    """A capability needs a package this install lacks; the message says what to install."""


def has_torch() -> bool:
    """Whether PyTorch is installed (without importing it: that costs over a second)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as none
        return False


def require_torch(what: str) -> None:
    """Raise `MissingExtra` naming `what` and the install command unless torch imports."""
    try:
        importlib.import_module("torch")
    except ImportError:
        raise MissingExtra(f"{what} needs PyTorch, which is not installed: {TORCH_INSTALL}"
                           ) from None
