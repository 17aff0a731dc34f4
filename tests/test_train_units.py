"""Training building blocks: losses, discriminator, perceptual backbones, schedule, sampler,
metrics, checkpoint state files. Fast: no tracking, no training loop."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from f2fcli.errors import InputError
from f2fcli.train.checkpoint import STATE, load_checkpoint, save_checkpoint
from f2fcli.train.dataset import PairBatchSampler
from f2fcli.train.discriminator import PatchDiscriminator
from f2fcli.train.evaluation import psnr, ssim
from f2fcli.train.losses import (face_weight, feature_matching_loss, gan_discriminator_loss,
                                 gan_generator_loss, identity_grid, init_field_factor,
                                 init_field_loss, warp_loss)
from f2fcli.train.perceptual import (MISSING_EFFICIENTNET, PerceptualLoss, VGG19Features,
                                     gaussian_downsample, load_backbone, load_efficientnet_lite0,
                                     load_vgg19)
from f2fcli.train.trainer import TrainConfig

torch.set_num_threads(1)


def _image(seed: int = 0, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear") * 2 - 1


def test_identity_grid_warp_reproduces_image() -> None:
    img = _image(size=32)
    flows = [identity_grid(s, img.device).expand(1, s, s, 2) for s in (2, 8, 32)]
    assert init_field_loss(flows).item() == pytest.approx(0.0, abs=1e-6)
    # Exact at the full size; coarser identity grids resized bilinearly stay the identity.
    assert warp_loss(img, img, flows, size=32).item() < 0.02
    shifted = torch.roll(img, 3, dims=-1)
    assert warp_loss(img, shifted, flows, size=32).item() > 0.05


def test_gan_and_feature_matching_losses() -> None:
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert gan_generator_loss(ones).item() == 0.0
    assert gan_generator_loss(zeros).item() == 1.0
    assert gan_discriminator_loss(ones, zeros).item() == 0.0
    assert gan_discriminator_loss(zeros, ones).item() == 2.0
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    w = face_weight(mask, 4.0)
    assert w.min().item() == 1.0 and w.max().item() == 4.0
    a, b = [torch.zeros(1, 2, 8, 8)], [torch.ones(1, 2, 8, 8)]
    assert feature_matching_loss(a, b, w).item() == pytest.approx(2.5)
    assert feature_matching_loss(a, b, None).item() == pytest.approx(1.0)
    assert init_field_factor(0, 10) == 1.0 and init_field_factor(5, 10) == 0.5
    assert init_field_factor(20, 10) == 0.0 and init_field_factor(3, 0) == 0.0


def test_discriminator_matches_official_size() -> None:
    disc = PatchDiscriminator()
    assert sum(p.numel() for p in disc.parameters()) == 2_761_921
    pred, feats = disc(torch.zeros(2, 3, 128, 128), torch.zeros(2, 3, 32, 32))
    # 128 -> 125 -> pool 62 -> 59 -> 29 -> 26 -> 13 -> 10
    assert pred.shape == (2, 1, 10, 10)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]


def test_lr_schedule_paper_defaults() -> None:
    cfg = TrainConfig(dataset_dir=Path("d"), run_dir=Path("r"))
    assert cfg.decay_from == 330_000 and cfg.init_steps == round(380_000 * 5 / 106)
    assert cfg.lr_at(0) == 2e-4 and cfg.lr_at(329_999) == 2e-4
    assert cfg.lr_at(355_000) == pytest.approx(1e-4)
    assert cfg.lr_at(380_000) == 0.0
    with pytest.raises(ValueError):
        TrainConfig(dataset_dir=Path("d"), run_dir=Path("r"), res=100)


def test_vgg19_loads_torchvision_state_dict(tmp_path: Path) -> None:
    net = VGG19Features()
    # torchvision's vgg19 keys: features.N.weight with N the layer index in `features`
    state = {f"features.{k}": v.clone() for k, v in net.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    loaded = load_vgg19(path)
    feats = loaded(torch.zeros(1, 3, 32, 32))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]  # relu1_1 .. relu5_1
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    assert not any(p.requires_grad for p in loaded.parameters())
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="not a torchvision VGG-19"):
        load_vgg19(tmp_path / "bad.pth")
    with pytest.raises(InputError, match="needs `perceptual_weights`"):
        load_backbone("vgg19", None)


def test_missing_efficientnet_package_is_one_line_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(InputError) as info:
        load_efficientnet_lite0()
    assert str(info.value) == MISSING_EFFICIENTNET and "\n" not in str(info.value)


def test_efficientnet_perceptual_loss() -> None:
    backbone = load_backbone("efficientnet-lite0")
    feats = backbone(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    loss = PerceptualLoss(backbone)
    a, b = _image(1), _image(2)
    assert loss(a, a).item() == 0.0
    weight = face_weight(torch.ones(1, 1, 64, 64), 4.0)
    plain, weighted = loss(a, b).item(), loss(a, b, weight).item()
    assert plain > 0 and weighted == pytest.approx(4 * plain, rel=1e-4)
    a.requires_grad_(True)
    loss(a, b).backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_gaussian_pyramid_keeps_mean() -> None:
    img = _image(3, 64)
    for scale, size in ((0.5, 32), (0.25, 16), (0.125, 8)):
        small = gaussian_downsample(img, scale)
        assert small.shape[-1] == size
        assert small.mean().item() == pytest.approx(img.mean().item(), abs=0.03)


def test_ssim_psnr_match_reference() -> None:
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random((48, 48, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, data_range=1.0,
                                use_sample_covariance=False, channel_axis=2)
    t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].float()  # noqa: E731
    assert ssim(t(a), t(b)).item() == pytest.approx(ref, abs=1e-5)
    assert ssim(t(a), t(a)).item() == pytest.approx(1.0, abs=1e-5)
    mse = ((a - b) ** 2).mean()
    assert psnr(t(a), t(b)).item() == pytest.approx(10 * np.log10(1 / mse), abs=1e-3)


class _Sized:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def _take(sampler: PairBatchSampler, n: int) -> list[list[tuple[int, int]]]:
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_batch_sampler_disjoint_ranks_and_exact_resume() -> None:
    data = _Sized(20)
    r0 = _take(PairBatchSampler(data, 2, 0, 2, seed=1), 12)  # 5 batches per epoch
    r1 = _take(PairBatchSampler(data, 2, 1, 2, seed=1), 12)
    for step in range(12):
        assert not set(r0[step]) & set(r1[step])
    epoch0 = {i for b in r0[:5] + r1[:5] for i, _ in b}
    assert epoch0 == set(range(20))  # one epoch covers every item once
    assert {e for b in r0[5:10] for _, e in b} == {1}
    assert _take(PairBatchSampler(data, 2, 0, 2, seed=1, start_step=7), 5) == r0[7:]
    with pytest.raises(InputError):
        PairBatchSampler(_Sized(3), 2, 0, 2)


def test_training_state_loads_with_weights_only(tmp_path: Path) -> None:
    from f2fcli.model.checkpoints import CheckpointInfo
    from f2fcli.model.generator import Generator, GeneratorConfig

    gen, disc = Generator(), PatchDiscriminator()
    opt = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.9, 0.999))
    disc(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 16, 16))[0].mean().backward()
    opt.step()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    info = CheckpointInfo(GeneratorConfig(), 128, "test", "0", "unit test")
    path = save_checkpoint(tmp_path, 7, gen, disc, info,
                           {"opt_g": opt.state_dict(), "opt_d": opt.state_dict(),
                            "scaler": scaler.state_dict()}, keep=2)
    torch.load(path / STATE, weights_only=True)  # no unpickling of arbitrary objects
    loaded = load_checkpoint(path)
    assert loaded.step == 7 and loaded.info.resolution == 128
    fresh = torch.optim.Adam(PatchDiscriminator().parameters())
    fresh.load_state_dict(loaded.state["opt_d"])
    assert fresh.param_groups[0]["betas"] == (0.9, 0.999)
    for step in (8, 9):
        save_checkpoint(tmp_path, step, gen, disc, info, {}, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_00000008", "step_00000009"]
