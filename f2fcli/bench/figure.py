"""`plot(report, path)`: latency and memory against resolution as a PNG, drawn with
OpenCV (no plotting library). Log-scaled y axes; the paper's Table 1 values dashed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import OutputError
from .paper import PAPER_TABLE1

WIDTH, HEIGHT = 1280, 600
_MARGIN = (80, 60, 30, 110)  # left, top, right, bottom of each panel's plot area
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_COLORS = [(200, 90, 30), (40, 140, 230), (60, 170, 60), (50, 50, 200), (160, 60, 160),
           (30, 160, 160)]  # BGR
_GREY = (130, 130, 130)
_INK = (40, 40, 40)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45,
          color: tuple[int, int, int] = _INK, thickness: int = 1, align: str = "left") -> None:
    (w, h), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    x, y = org
    if align == "center":
        x -= w // 2
    elif align == "right":
        x -= w
    cv2.putText(img, text, (int(x), int(y + h // 2)), _FONT, scale, color, thickness,
                cv2.LINE_AA)


def _dashed(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int],
            color: tuple[int, int, int], dash: int = 8) -> None:
    length = math.hypot(p1[0] - p0[0], p1[1] - p0[1])
    steps = max(1, int(length // dash))
    for i in range(0, steps, 2):
        a, b = i / steps, min(1.0, (i + 1) / steps)
        q0 = (int(p0[0] + a * (p1[0] - p0[0])), int(p0[1] + a * (p1[1] - p0[1])))
        q1 = (int(p0[0] + b * (p1[0] - p0[0])), int(p0[1] + b * (p1[1] - p0[1])))
        cv2.line(img, q0, q1, color, 2, cv2.LINE_AA)


def _nice_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks per decade covering [lo, hi] (log axis)."""
    ticks = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def _label(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


class _Panel:
    def __init__(self, img: np.ndarray, x0: int, width: int, title: str, unit: str,
                 xs: list[int], values: list[float]) -> None:
        left, top, right, bottom = _MARGIN
        self.img = img
        self.box = (x0 + left, top, x0 + width - right, HEIGHT - bottom)
        self.xs = xs
        positive = [v for v in values if v and v > 0] or [1.0]
        lo, hi = min(positive), max(positive)
        self.lo = 10 ** math.floor(math.log10(lo) - 0.05)
        self.hi = 10 ** (math.log10(hi) + 0.15)
        bx0, by0, bx1, by1 = self.box
        cv2.rectangle(img, (bx0, by0), (bx1, by1), _INK, 1)
        _text(img, title, ((bx0 + bx1) // 2, by0 - 28), 0.6, align="center", thickness=1)
        for v in _nice_ticks(self.lo, self.hi):
            y = self.y(v)
            cv2.line(img, (bx0, y), (bx1, y), (225, 225, 225), 1)
            _text(img, _label(v), (bx0 - 8, y), align="right")
        previous, low = -1000, False
        for x in xs:
            px = self.x(x)
            low = px - previous < 44 and not low  # stagger labels that would overlap
            cv2.line(img, (px, by1), (px, by1 + (19 if low else 5)), _INK, 1)
            _text(img, str(x), (px, by1 + (30 if low else 16)), align="center")
            previous = px
        _text(img, "output size (pixels)", ((bx0 + bx1) // 2, by1 + 50), align="center")
        _text(img, unit, (bx0 - 70, by0 - 12))

    def x(self, value: float) -> int:
        bx0, _, bx1, _ = self.box
        lo, hi = min(self.xs), max(self.xs)
        if hi == lo:
            return (bx0 + bx1) // 2
        pad = 0.06 * (bx1 - bx0)
        return int(bx0 + pad + (value - lo) / (hi - lo) * (bx1 - bx0 - 2 * pad))

    def y(self, value: float) -> int:
        _, by0, _, by1 = self.box
        t = (math.log10(value) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return int(by1 - t * (by1 - by0))

    def series(self, points: list[tuple[int, float | None]], color: tuple[int, int, int],
               dashed: bool = False) -> None:
        drawn = [(self.x(x), self.y(v)) for x, v in points if v is not None and v > 0]
        for a, b in zip(drawn, drawn[1:]):
            if dashed:
                _dashed(self.img, a, b, color)
            else:
                cv2.line(self.img, a, b, color, 2, cv2.LINE_AA)
        for p in drawn:
            if dashed:
                cv2.rectangle(self.img, (p[0] - 3, p[1] - 3), (p[0] + 3, p[1] + 3), color, -1)
            else:
                cv2.circle(self.img, p, 5, color, -1, cv2.LINE_AA)

    def failed(self, x: int, label: str, color: tuple[int, int, int]) -> None:
        px, y = self.x(x), self.box[1] + 14
        cv2.drawMarker(self.img, (px, y), color, cv2.MARKER_TILTED_CROSS, 12, 2)
        _text(self.img, label, (px, y + 14), 0.38, color, align="center")


def _legend(img: np.ndarray, entries: list[tuple[str, tuple[int, int, int], bool]]) -> None:
    """One row of legend entries under both panels."""
    x, y = _MARGIN[0], HEIGHT - 32
    for name, color, dashed in entries:
        if dashed:
            _dashed(img, (x, y), (x + 28, y), color)
        else:
            cv2.line(img, (x, y), (x + 28, y), color, 2, cv2.LINE_AA)
        _text(img, name, (x + 36, y), 0.42)
        (w, _), _ = cv2.getTextSize(name, _FONT, 0.42, 1)
        x += 36 + w + 30


def render_plot(report: Any) -> np.ndarray:
    """The figure as a BGR image (HEIGHT x WIDTH x 3)."""
    rows = report.rows
    img = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    xs = sorted({r.resolution for r in rows})
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for r in rows:
        groups.setdefault((r.backend, r.device, r.precision), []).append(r)
    fp32 = all(r.precision == "fp32" for r in rows)
    prec = "fp32" if fp32 else "fp16"
    paper = [(x, PAPER_TABLE1[x]) for x in xs if x in PAPER_TABLE1]
    paper_ms = [(x, p.ms(prec)) for x, p in paper]
    paper_mb = [(x, p.mem_gb(prec) * 1000) for x, p in paper]
    latency = [r.drive_ms_median for r in rows if r.drive_ms_median] + [v for _, v in paper_ms]
    memory = [r.memory_mb for r in rows if r.memory_mb] + [v for _, v in paper_mb]
    half = WIDTH // 2
    weights = report.meta.get("weights", {}).get("kind", "")
    env = report.meta.get("environment", {})
    where = env.get("gpu") or env.get("cpu", "")
    panels = (_Panel(img, 0, half, "per-frame latency (median)", "ms / frame", xs, latency),
              _Panel(img, half, half, "memory (peak)", "MB", xs, memory))
    entries = []
    for i, ((backend, device, precision), group) in enumerate(groups.items()):
        color = _COLORS[i % len(_COLORS)]
        entries.append((f"{backend} {device} {precision} (batch {group[0].batch})", color, False))
        panels[0].series([(r.resolution, r.drive_ms_median) for r in group], color)
        panels[1].series([(r.resolution, r.memory_mb) for r in group], color)
        for r in group:
            if r.status not in ("ok", "not measured"):
                label = "OOM" if r.status == "out of memory" else r.status
                for panel in panels:
                    panel.failed(r.resolution, label, color)
    if paper:
        entries.append((f"paper Table 1, RTX 2080Ti {prec.upper()}", _GREY, True))
        panels[0].series(paper_ms, _GREY, dashed=True)
        panels[1].series(paper_mb, _GREY, dashed=True)
    _legend(img, entries)
    memory_kind = ("CUDA peak reserved" if any(r.device == "cuda" for r in rows)
                   else "peak RSS increase")
    _text(img, f"f2f bench on {where}; weights: {weights}; memory: {memory_kind}",
          (12, HEIGHT - 10), 0.42, _GREY)
    return img


def plot(report: Any, path: str | Path, overwrite: bool = True) -> Path:
    """Write the latency and memory figure of `report` to `path` (PNG); atomic, and an
    existing file is replaced only with `overwrite`."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OutputError(f"{path}: the plot is written as PNG; use a .png name")
    from ..io.atomic import atomic_output

    image = render_plot(report)
    with atomic_output(path, overwrite=overwrite) as tmp:
        ok, data = cv2.imencode(".png", image)
        if not ok:
            raise OutputError(f"{path}: PNG encoding failed")
        tmp.write_bytes(data.tobytes())
    return path
