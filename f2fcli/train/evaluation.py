"""`f2f eval`: self-reenactment metrics on held-out clips of a prepared dataset.

For every clip of the split, the first usable frame is the source and every other usable
frame (or `frames_per_clip` of them, evenly spaced) is driven from it with the clip's own
keypoints and poses. The generated frame is compared with the real one:

- L1: mean absolute difference, RGB in [0, 1];
- PSNR (dB, peak 1) and SSIM (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, per
  channel, averaged), per frame then averaged;
- AKD: average distance (pixels at the evaluation resolution) between the 478 MediaPipe
  landmarks our tracker finds in the generated frame and in the real one; `akd_missing`
  is the share of frames where no face was found in the generated frame (or the real one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..model.checkpoints import load_generator
from .dataset import frame_inputs, read_rgb
from .layout import load_clips


@dataclass(frozen=True)
class EvalOptions:
    split: str = "test"  # "test", "train" or "all"
    res: int | None = None  # default: the weights' training resolution
    frames_per_clip: int | None = None  # default: all usable frames
    max_clips: int | None = None
    batch_size: int = 8
    device: str = "cpu"
    akd: bool = True
    threads: int | None = None  # tracker threads (AKD)


@dataclass
class ClipMetrics:
    name: str
    frames: int
    l1: float
    psnr: float
    ssim: float
    akd: float | None
    akd_missing: float | None


@dataclass
class EvalReport:
    weights: str
    dataset_dir: str
    split: str
    res: int
    clips: int = 0
    frames: int = 0
    l1: float = float("nan")
    psnr: float = float("nan")
    ssim: float = float("nan")
    akd: float | None = None
    akd_missing: float | None = None
    seconds: float = 0.0
    per_clip: list[ClipMetrics] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    return (g[:, None] * g[None, :]).float()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of (N, C, H, W) batches in [0, 1] (valid window positions only)."""
    c = a.shape[1]
    window = _gaussian_window().to(a.device)[None, None].expand(c, 1, 11, 11)
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1)
                                                      * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


class _LandmarkFinder:
    """Detector + 478-point landmarker on single images (no tracking between frames)."""

    def __init__(self, threads: int | None) -> None:
        from ..tracking.detector import FaceDetector
        from ..tracking.landmarks import FaceLandmarker

        self.detector = FaceDetector(threads=threads)
        self.landmarker = FaceLandmarker(threads=threads)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        from ..tracking.landmarks import roi_from_detection

        faces = self.detector(image)
        if not faces:
            return None
        centre = np.array(image.shape[1::-1], np.float32) / 2
        face = min(faces, key=lambda f: float(np.linalg.norm(f.center - centre)))
        result = self.landmarker.settled(image, roi_from_detection(face))
        return result.points[:, :2] if result.present else None


def _choose(usable: np.ndarray, count: int | None) -> np.ndarray:
    drivers = usable[1:]
    if count is not None and len(drivers) > count:
        drivers = drivers[np.linspace(0, len(drivers) - 1, count).round().astype(int)]
    return drivers


def evaluate(dataset_dir: str | Path, weights_path: str | Path,
             options: EvalOptions = EvalOptions(),
             progress: Callable[[ClipMetrics], None] = lambda m: None) -> EvalReport:
    import time

    start = time.perf_counter()
    _, clips = load_clips(dataset_dir, options.split)
    if not clips:
        raise InputError(f"{dataset_dir}: no usable clips in split {options.split!r}"
                         + (" (prepare with `test_fraction` > 0, or use `split` all)"
                            if options.split == "test" else ""))
    if options.max_clips is not None:
        clips = clips[:options.max_clips]
    loaded = load_generator(weights_path, options.device)
    gen = loaded.model
    res = options.res or loaded.info.resolution
    finder = _LandmarkFinder(options.threads) if options.akd else None
    report = EvalReport(str(weights_path), str(dataset_dir), options.split, res)
    totals = {"l1": [], "psnr": [], "ssim": [], "akd": [], "missing": []}
    for clip in clips:
        usable = clip.usable
        src = int(usable[0])
        drivers = _choose(usable, options.frames_per_clip)
        src_kp, src_pose = frame_inputs(clip, src, res)
        source = torch.from_numpy(read_rgb(clip.frame_path(src), res)[None])
        source = source.permute(0, 3, 1, 2).float().div(127.5).sub(1).to(gen.device)
        l1s, psnrs, ssims, akds, missing = [], [], [], [], 0
        with torch.inference_mode():
            encoding = gen.encode_source(source, src_pose[None], src_kp[None])
            for i in range(0, len(drivers), options.batch_size):
                part = drivers[i:i + options.batch_size]
                kps, poses = zip(*(frame_inputs(clip, int(j), res) for j in part))
                fake = gen.drive(encoding, np.stack(poses), np.stack(kps)).float()
                fake = ((fake.clamp(-1, 1) + 1) / 2).cpu()
                real_u8 = np.stack([read_rgb(clip.frame_path(int(j)), res) for j in part])
                real = torch.from_numpy(real_u8).permute(0, 3, 1, 2).float() / 255.0
                l1s += (fake - real).abs().mean(dim=(1, 2, 3)).tolist()
                psnrs += psnr(fake, real).tolist()
                ssims += ssim(fake, real).tolist()
                if finder is not None:
                    fake_u8 = (fake * 255).round().byte().permute(0, 2, 3, 1).numpy()
                    for f_img, r_img in zip(fake_u8, real_u8):
                        got, want = finder(np.ascontiguousarray(f_img)), finder(r_img)
                        if got is None or want is None:
                            missing += 1
                        else:
                            akds.append(float(np.linalg.norm(got - want, axis=1).mean()))
        n = len(drivers)
        if n == 0:
            continue
        metrics = ClipMetrics(clip.name, n, float(np.mean(l1s)), float(np.mean(psnrs)),
                              float(np.mean(ssims)),
                              float(np.mean(akds)) if akds else None,
                              missing / n if finder is not None else None)
        report.per_clip.append(metrics)
        progress(metrics)
        totals["l1"] += l1s
        totals["psnr"] += psnrs
        totals["ssim"] += ssims
        totals["akd"] += akds
        totals["missing"].append(missing)
    report.clips = len(report.per_clip)
    report.frames = len(totals["l1"])
    if report.frames:
        report.l1 = float(np.mean(totals["l1"]))
        report.psnr = float(np.mean(totals["psnr"]))
        report.ssim = float(np.mean(totals["ssim"]))
        if finder is not None:
            report.akd = float(np.mean(totals["akd"])) if totals["akd"] else None
            report.akd_missing = sum(totals["missing"]) / report.frames
    report.seconds = time.perf_counter() - start
    return report
