"""`f2f bench`: MACs, latency and memory of the networks and the pipeline.

- `BenchConfig`, `run_bench(config, progress=None) -> BenchReport`: per size, backend,
  device and precision; rows say "ok", "out of memory", "unsupported" or "error".
- `BenchReport.to_dict()/to_json()/to_csv()/rich_table()/modules_table()`.
- `plot(report, path)`: latency and memory against resolution (PNG, OpenCV).
- `pipeline_breakdown(res, ...) -> PipelineReport`: ms per step like the paper's Table 4.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BenchConfig", "BenchReport", "BenchRow", "PipelineReport", "run_bench", "plot",
           "pipeline_breakdown", "render_plot", "FP16_ON_CPU_MESSAGE", "DEFAULT_RESOLUTIONS"]

_WHERE = {"BenchConfig": "core", "BenchRow": "core", "run_bench": "core",
          "FP16_ON_CPU_MESSAGE": "core", "DEFAULT_RESOLUTIONS": "core",
          "BenchReport": "report", "plot": "figure", "render_plot": "figure",
          "pipeline_breakdown": "pipeline", "PipelineReport": "pipeline"}


def __getattr__(name: str) -> Any:
    # Lazy: `f2f --help` should not import torch.
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
