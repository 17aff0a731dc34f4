"""Training logs (rank 0): `metrics.csv` always, TensorBoard event files when the
`tensorboard` package is installed, and PNG sample grids.

Sample grid rows (up to 4 pairs of the current batch), columns: source | driving landmark
image | source warped by the finest motion field | generated | driving (ground truth).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

METRICS = "metrics.csv"
SAMPLES = "samples"
TENSORBOARD = "tensorboard"


class RunLog:
    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = run_dir / METRICS
        self._fields: list[str] | None = None
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, newline="") as handle:
                self._fields = next(csv.reader(handle), None)
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run_dir / TENSORBOARD))
            except ImportError:  # tensorboard not installed: the CSV is the log
                self._tb = None

    def write(self, row: dict[str, float]) -> None:
        if self._fields is None:
            self._fields = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self._fields)
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([_fmt(row.get(k, "")) for k in self._fields])
        if self._tb is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key != "step":
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of a run's metrics.csv as floats."""
    with open(Path(run_dir) / METRICS, newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    t = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return t.permute(0, 2, 3, 1).cpu().numpy()


def sample_grid(source: torch.Tensor, landmarks: torch.Tensor, warped: torch.Tensor,
                fake: torch.Tensor, driving: torch.Tensor, rows: int = 4) -> np.ndarray:
    """uint8 RGB grid of the first `rows` pairs (all inputs (B, 3, h, w) in [-1, 1])."""
    size = source.shape[-1]
    n = min(rows, source.shape[0])
    columns = [source[:n], landmarks[:n], warped[:n], fake[:n], driving[:n]]
    columns = [c if c.shape[-1] == size else
               F.interpolate(c.float(), size=(size, size), mode="nearest") for c in columns]
    tiles = [_to_uint8(c) for c in columns]
    return np.concatenate([np.concatenate([t[i] for t in tiles], 1) for i in range(n)], 0)


def save_grid(run_dir: Path, step: int, grid: np.ndarray) -> Path:
    path = run_dir / SAMPLES / f"step_{step:08d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path
