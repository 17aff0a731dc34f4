"""Reference values from the Face2Face^rho paper (Yang et al., ECCV 2022)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..model.macs import PAPER_PER_FRAME_GMACS

PAPER_GPU = "NVIDIA GeForce RTX 2080Ti"
PAPER_MOBILE = "mobile Kryo 680 CPU (4 threads) / Adreno 660 GPU (FP16), MNN"


@dataclass(frozen=True)
class PaperTable1:
    """Face2Face^rho in Table 1: MACs (x1e9), inference time (ms) and GPU memory (GB),
    FP32 and FP16, on an RTX 2080Ti."""

    gmacs: float
    ms_fp32: float
    ms_fp16: float
    mem_gb_fp32: float
    mem_gb_fp16: float

    def ms(self, precision: str) -> float:
        return self.ms_fp32 if precision == "fp32" else self.ms_fp16

    def mem_gb(self, precision: str) -> float:
        return self.mem_gb_fp32 if precision == "fp32" else self.mem_gb_fp16

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


PAPER_TABLE1: dict[int, PaperTable1] = {
    256: PaperTable1(1.9, 5.3, 4.8, 0.9, 0.9),
    512: PaperTable1(9.2, 10.9, 9.5, 1.0, 0.9),
    1024: PaperTable1(37.0, 27.1, 18.9, 1.4, 1.2),
    1440: PaperTable1(71.8, 52.1, 32.5, 1.8, 1.6),
    1536: PaperTable1(82.8, 56.7, 34.8, 2.0, 1.8),
    2048: PaperTable1(146.2, 95.8, 60.2, 2.7, 2.4),
}
assert {k: v.gmacs for k, v in PAPER_TABLE1.items()} == PAPER_PER_FRAME_GMACS

PAPER_TABLE4_STEPS = ("3DMM fitting", "Landmark image generation", "Motion field estimation",
                      "Feature warping", "Decoding", "GPU-CPU communication", "Total")
PAPER_TABLE4: dict[int, dict[str, tuple[float | None, float | None]]] = {
    # size -> step -> (mobile CPU ms, mobile GPU ms); None where the paper has "-" or
    # gives one value for both (fitting and landmark images run on the CPU).
    256: {"3DMM fitting": (6.9, 6.9), "Landmark image generation": (0.1, 0.1),
          "Motion field estimation": (5.6, 4.1), "Feature warping": (1.5, 0.5),
          "Decoding": (25.1, 12.7), "GPU-CPU communication": (None, 3.8),
          "Total": (39.2, 28.1)},
    384: {"3DMM fitting": (7.0, 7.0), "Landmark image generation": (0.1, 0.1),
          "Motion field estimation": (11.2, 5.7), "Feature warping": (4.0, 0.6),
          "Decoding": (59.9, 27.5), "GPU-CPU communication": (None, 16.7),
          "Total": (82.2, 57.6)},
    512: {"3DMM fitting": (7.1, 7.1), "Landmark image generation": (0.2, 0.2),
          "Motion field estimation": (16.3, 8.9), "Feature warping": (8.9, 0.7),
          "Decoding": (110.7, 49.4), "GPU-CPU communication": (None, 29.1),
          "Total": (143.2, 95.4)},
}
"""Table 4: running time per step on a phone (MNN), per output size."""
