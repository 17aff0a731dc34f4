"""Run-directory checkpoints and weights export.

    RUN_DIR/checkpoints/step_00005000/
      generator.safetensors      the generator in the `f2f reenact --weights` format
                                 (model.checkpoints: state_dict + JSON header)
      discriminator.safetensors  the discriminator state_dict
      state.pt                   optimiser, grad-scaler and step: a `torch.save` of plain
                                 containers and tensors, read back with weights_only=True
                                 (no arbitrary unpickling)

Each checkpoint folder is written under a temporary name and renamed when complete; the
newest complete folder is the one `--resume` and `export_weights` use.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import InputError
from ..io.atomic import atomic_output
from ..io.digest import file_sha256
from ..model.checkpoints import CheckpointInfo, read_checkpoint_info, save_generator
from ..model.generator import Generator

CHECKPOINTS = "checkpoints"
GENERATOR = "generator.safetensors"
DISCRIMINATOR = "discriminator.safetensors"
STATE = "state.pt"
STATE_FORMAT = "f2f-train-state"
STATE_VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d{8})$")


def checkpoint_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and all((path / f).is_file() for f in (GENERATOR, DISCRIMINATOR, STATE)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    found = checkpoint_dirs(run_dir)
    return found[-1] if found else None


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(run_dir: Path, step: int, generator: Generator,
                    discriminator: torch.nn.Module, info: CheckpointInfo,
                    state: dict[str, Any], keep: int) -> Path:
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    with atomic_output(final, overwrite=True) as tmp:
        tmp.mkdir()
        save_generator(generator, tmp / GENERATOR, info)
        save_file(_cpu_state(discriminator), str(tmp / DISCRIMINATOR))
        torch.save({"format": STATE_FORMAT, "version": STATE_VERSION, "step": step, **state},
                   tmp / STATE)
    if keep > 0:
        for _, old in checkpoint_dirs(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


@dataclass
class LoadedCheckpoint:
    step: int
    path: Path
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    state: dict[str, Any]
    info: CheckpointInfo


def load_checkpoint(path: Path) -> LoadedCheckpoint:
    try:
        state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file is a one-line user error
        raise InputError(f"{path / STATE}: unreadable training state "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                         ) from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise InputError(f"{path / STATE}: not an f2f training state file")
    if state.get("version") != STATE_VERSION:
        raise InputError(f"{path / STATE}: training state version {state.get('version')} is "
                         f"not supported (this f2f reads {STATE_VERSION})")
    info = read_checkpoint_info(path / GENERATOR)
    return LoadedCheckpoint(int(state["step"]), path, load_file(str(path / GENERATOR)),
                            load_file(str(path / DISCRIMINATOR)), state, info)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    step: int
    resolution: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "step": self.step, "resolution": self.resolution,
                "sha256": self.sha256}


def export_weights(run_dir: str | Path, out_path: str | Path, overwrite: bool = False,
                   step: int | None = None) -> ExportResult:
    """Copy the generator of the newest (or the `step`) checkpoint of a run to `out_path`:
    the file `f2f reenact --weights` takes. Written atomically; checked before copying."""
    run_dir = Path(run_dir)
    found = checkpoint_dirs(run_dir)
    if not found:
        raise InputError(f"{run_dir}: no complete checkpoint; is this an f2f train run "
                         "directory?")
    if step is None:
        step, path = found[-1]
    else:
        matches = [p for s, p in found if s == step]
        if not matches:
            raise InputError(f"{run_dir}: no checkpoint at step {step} (have "
                             f"{', '.join(str(s) for s, _ in found)})")
        path = matches[0]
    info = read_checkpoint_info(path / GENERATOR)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out_path, overwrite) as tmp:
        shutil.copyfile(path / GENERATOR, tmp)
    out = Path(out_path)
    return ExportResult(out, step, info.resolution, file_sha256(out))
