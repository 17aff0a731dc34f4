"""Training the networks: dataset preparation, losses, the training loop, evaluation.

Public API (imported lazily, so `import f2fcli.train` stays cheap):

- `prepare_dataset(video_dir, out_dir, PrepareOptions, progress) -> PrepareReport`
- `train(TrainConfig, log, progress) -> TrainResult` (single process or under torchrun)
- `export_weights(run_dir, out_path, overwrite, step) -> ExportResult`
- `evaluate(dataset_dir, weights_path, EvalOptions, progress) -> EvalReport`
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "PrepareOptions": "prepare", "PrepareReport": "prepare", "ClipResult": "prepare",
    "prepare_dataset": "prepare",
    "TrainConfig": "trainer", "TrainResult": "trainer", "train": "trainer",
    "LossWeights": "losses",
    "export_weights": "checkpoint", "ExportResult": "checkpoint",
    "EvalOptions": "evaluation", "EvalReport": "evaluation", "evaluate": "evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
