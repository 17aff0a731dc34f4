"""Training pairs from a prepared dataset, and the resumable distributed batch sampler.

A sample is a (source, driving) pair of two distinct usable frames of one clip, the source
being the earlier frame (official sampling). An epoch visits every clip `repeats` times
(official: 60). Network inputs follow `pipeline.neural` exactly (`network_keypoints`,
`network_pose`), so trained weights work with `f2f reenact --renderer neural`.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from ..errors import InputError
from ..model.landmark_images import draw_landmark_images
from ..pipeline.neural import network_keypoints, network_pose
from ..tracking.face_model import warp_pose
from .layout import ClipData

DEFAULT_REPEATS = 60


def read_rgb(path, res: int) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: missing or unreadable frame")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.shape[0] != res:
        shrink = res < image.shape[0]
        image = cv2.resize(image, (res, res),
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return image


def read_mask(path, res: int) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise InputError(f"{path}: missing or unreadable mask")
    if mask.shape[0] != res:
        mask = cv2.resize(mask, (res, res), interpolation=cv2.INTER_NEAREST)
    return (mask >= 128).astype(np.float32)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [-1, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1).float() * (2.0 / 255.0) - 1.0


def frame_inputs(clip: ClipData, index: int, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (72, 2) and pose (6,) of one frame in the networks' convention at `res`."""
    s = res / clip.res
    keypoints = clip.keypoints[index] * s
    pose = warp_pose(clip.pose[index], s, np.zeros(2))
    return network_keypoints(keypoints, res), network_pose(pose, res)


class PairDataset(Dataset):
    """Items are addressed by (index, epoch); the pair drawn depends only on them and the
    seed, so a resumed run sees the same data."""

    def __init__(self, clips: list[ClipData], res: int, seed: int = 0,
                 repeats: int = DEFAULT_REPEATS, overfit_one_pair: bool = False) -> None:
        if not clips:
            raise InputError("the dataset has no usable training clips (each needs at least "
                             "2 frames with a face)")
        if res % 64:
            raise ValueError(f"training resolution must be a multiple of 64, got {res}")
        self.clips, self.res, self.seed = clips, res, seed
        self.repeats = repeats
        self.overfit_one_pair = overfit_one_pair

    def __len__(self) -> int:
        return len(self.clips) * self.repeats

    def pair(self, index: int, epoch: int) -> tuple[int, int, int]:
        """(clip index, source frame, driving frame) of item `index` in `epoch`."""
        if self.overfit_one_pair:
            usable = self.clips[0].usable
            return 0, int(usable[0]), int(usable[-1])
        c = index % len(self.clips)
        rng = np.random.default_rng([self.seed, epoch, index])
        src, drv = sorted(int(i) for i in rng.choice(self.clips[c].usable, 2, replace=False))
        return c, src, drv

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = item
        c, src, drv = self.pair(index, epoch)
        clip, res = self.clips[c], self.res
        src_kp, src_pose = frame_inputs(clip, src, res)
        drv_kp, drv_pose = frame_inputs(clip, drv, res)
        drv_lmk = draw_landmark_images(drv_kp[None], res)[-1][0]  # finest, 1/4 scale
        return {
            "source": to_tensor(read_rgb(clip.frame_path(src), res)),
            "driving": to_tensor(read_rgb(clip.frame_path(drv), res)),
            "mask": torch.from_numpy(read_mask(clip.mask_path(drv), res))[None],
            "source_keypoints": torch.from_numpy(src_kp).float(),
            "source_pose": torch.from_numpy(src_pose).float(),
            "driving_keypoints": torch.from_numpy(drv_kp).float(),
            "driving_pose": torch.from_numpy(drv_pose).float(),
            "driving_landmarks": to_tensor(drv_lmk),
            "ids": torch.tensor([index, epoch, c, src, drv]),
        }


class PairBatchSampler:
    """Endless per-process batches, starting at `start_step`.

    Each epoch shuffles the item indices with `DistributedSampler` (seed + epoch) and gives
    every process a disjoint share; incomplete batches are dropped. Batch `k` of the run is
    a pure function of (seed, rank, world size, k), which makes `--resume` exact.
    """

    def __init__(self, dataset: PairDataset, batch_size: int, rank: int = 0,
                 world_size: int = 1, seed: int = 0, start_step: int = 0) -> None:
        self.dataset, self.batch_size = dataset, batch_size
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.start_step = start_step
        self.per_epoch = (len(dataset) // world_size) // batch_size
        if self.per_epoch < 1:
            raise InputError(f"too few clips for a batch of {batch_size} on {world_size} "
                             "processes")

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, skip = divmod(self.start_step, self.per_epoch)
        while True:
            sampler = DistributedSampler(self.dataset, num_replicas=self.world_size,
                                         rank=self.rank, shuffle=True, seed=self.seed,
                                         drop_last=True)
            sampler.set_epoch(epoch)
            indices = list(sampler)
            b = self.batch_size
            for k in range(skip, self.per_epoch):
                yield [(i, epoch) for i in indices[k * b:(k + 1) * b]]
            skip = 0
            epoch += 1
