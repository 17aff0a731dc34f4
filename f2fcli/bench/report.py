"""`BenchReport`: the rows of `run_bench` as a dict (JSON), CSV or rich tables."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from .paper import PAPER_GPU


@dataclass
class BenchRow:
    """One size on one backend. Times are per frame unless named `batch_`; memory in MB
    (10^6 bytes). `macs`: per module path (see `MacsReport`), "" = total."""

    resolution: int
    padded: int
    backend: str
    device: str
    precision: str
    batch: int
    status: str = "ok"
    note: str = ""
    drive_gmacs: float = 0.0
    drive_gmacs_executed: float = 0.0
    encode_gmacs: float = 0.0
    drive_params: int = 0
    encode_params: int = 0
    macs: dict[str, dict[str, int]] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    drive_ms_median: float | None = None
    drive_ms_p90: float | None = None
    drive_ms_min: float | None = None
    batch_ms_median: float | None = None
    runs: int = 0
    encode_ms: float | None = None
    peak_allocated_mb: float | None = None
    peak_reserved_mb: float | None = None
    rss_increase_mb: float | None = None
    paper: dict[str, float] | None = None

    @property
    def memory_mb(self) -> float | None:
        """The memory figure shown: peak reserved on CUDA, else peak RSS increase."""
        return self.peak_reserved_mb if self.peak_reserved_mb is not None else self.rss_increase_mb

    @property
    def macs_vs_paper(self) -> float | None:
        """Relative difference of the per-frame MACs from Table 1 (0.05 = +5%)."""
        if not self.paper:
            return None
        return self.drive_gmacs / self.paper["gmacs"] - 1.0

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["memory_mb"] = self.memory_mb
        out["macs_vs_paper"] = self.macs_vs_paper
        return out


CSV_COLUMNS = (
    "resolution", "padded", "backend", "device", "precision", "batch", "status", "note",
    "drive_gmacs", "drive_gmacs_executed", "encode_gmacs", "drive_params", "encode_params",
    "drive_ms_median", "drive_ms_p90", "drive_ms_min", "batch_ms_median", "runs", "encode_ms",
    "peak_allocated_mb", "peak_reserved_mb", "rss_increase_mb", "memory_mb",
    "paper_gmacs", "macs_vs_paper", "paper_ms_fp32", "paper_ms_fp16", "paper_mem_gb_fp32",
    "paper_mem_gb_fp16")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass
class BenchReport:
    rows: list[BenchRow]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [row.to_dict() for row in self.rows], **self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchReport:
        """Inverse of `to_dict` (e.g. to plot a saved --json report)."""
        fields = set(BenchRow.__dataclass_fields__)
        rows = [BenchRow(**{k: v for k, v in row.items() if k in fields})
                for row in data.get("rows", [])]
        return cls(rows, {k: v for k, v in data.items() if k != "rows"})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self) -> str:
        """One line per row; per-module MACs are in the JSON only."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            data = row.to_dict()
            paper = row.paper or {}
            data.update({"paper_gmacs": paper.get("gmacs"),
                         "paper_ms_fp32": paper.get("ms_fp32"),
                         "paper_ms_fp16": paper.get("ms_fp16"),
                         "paper_mem_gb_fp32": paper.get("mem_gb_fp32"),
                         "paper_mem_gb_fp16": paper.get("mem_gb_fp16")})
            writer.writerow({k: ("" if data.get(k) is None else data.get(k))
                             for k in CSV_COLUMNS})
        return buffer.getvalue()

    def rich_table(self) -> Any:
        """Per size and backend: MACs against Table 1, latency, memory, status."""
        from rich.table import Table

        weights = self.meta.get("weights", {}).get("kind", "")
        env = self.meta.get("environment", {})
        where = env.get("gpu") or env.get("cpu", "")
        table = Table(title=f"f2f bench: per frame, source encoding cached ({where}; "
                            f"weights: {weights})", title_justify="left")
        for name, justify in (("size", "right"), ("backend", "left"), ("prec", "left"),
                              ("GMACs", "right"), ("paper", "right"), ("diff", "right"),
                              ("params", "right"), ("ms median", "right"), ("ms p90", "right"),
                              ("paper ms", "right"), ("memory MB", "right"),
                              ("paper GB", "right"), ("encode ms", "right"),
                              ("status", "left")):
            table.add_column(name, justify=justify)
        for row in self.rows:
            paper = row.paper or {}
            prec = "fp32" if row.precision == "fp32" else "fp16"
            diff = row.macs_vs_paper
            table.add_row(
                str(row.resolution), row.backend, row.precision,
                f"{row.drive_gmacs:.2f}", _fmt(paper.get("gmacs")),
                "-" if diff is None else f"{100 * diff:+.0f}%",
                f"{row.drive_params / 1e6:.2f} M",
                _fmt(row.drive_ms_median), _fmt(row.drive_ms_p90),
                _fmt(paper.get(f"ms_{prec}")), _fmt(row.memory_mb, 0),
                _fmt(paper.get(f"mem_gb_{prec}")), _fmt(row.encode_ms),
                row.status if row.status == "ok" else f"{row.status}: {row.note}")
        table.caption = (f"paper: Table 1 ({PAPER_GPU}, {'FP32' if self._fp32 else 'FP16'}); "
                         "GMACs and params: per-frame path (motion, driving pose, warping, "
                         "decoder); memory: " + ("CUDA peak reserved" if self._cuda else
                                                 "peak RSS increase"))
        table.caption_justify = "left"
        return table

    @property
    def _fp32(self) -> bool:
        return all(r.precision == "fp32" for r in self.rows)

    @property
    def _cuda(self) -> bool:
        return any(r.device == "cuda" for r in self.rows)

    def modules_table(self) -> Any:
        """MACs (G) and parameters per sub-module, per size (the first backend's rows)."""
        from rich.table import Table

        rows = {}
        for row in self.rows:
            rows.setdefault(row.resolution, row)
        table = Table(title="MACs per sub-module (G), source encoding once per source",
                      title_justify="left")
        table.add_column("module")
        table.add_column("params", justify="right")
        for res in rows:
            table.add_column(str(res), justify="right")
        first = next(iter(rows.values()), None)
        if first is None:
            return table
        names = [("drive", "motion.f1"), ("drive", "motion.f2"), ("drive", "motion.f3"),
                 ("drive", "render.drv_pose"), ("drive", "render.decoder"), ("drive", ""),
                 ("encode", "render.src_pose"), ("encode", "render.encoder"), ("encode", "")]
        for which, name in names:
            label = name or f"{'per frame' if which == 'drive' else 'source encoding'} total"
            params = (first.params.get(name) if name else
                      first.drive_params if which == "drive" else first.encode_params)
            table.add_row(label, f"{params / 1e6:.2f} M" if params is not None else "-",
                          *(f"{r.macs.get(which, {}).get(name, 0) / 1e9:.3f}"
                            for r in rows.values()))
        return table
