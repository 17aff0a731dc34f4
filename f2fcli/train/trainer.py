"""`f2f train`: adversarial training of the motion and rendering modules (paper §3.4).

One iteration (official order): generator forward on a batch of (source, driving) pairs of
the same clip; generator loss = 15 perceptual (face-weighted) + 500 warp + 1 LSGAN + 1
feature matching (+ the init-field term that decays to 0 over `init_field_steps`); Adam
step of the generator; then a discriminator step on the real driving frame and the
detached fake. Adam betas (0.9, 0.999), lr 2e-4, constant until `decay_start`, then
linearly to 0 at `iterations` (paper: 380k iterations, decay from 330k, batch 6).

Mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler); FP32 on
CPU. Under `torchrun` every process trains on its own share of the pairs with
DistributedDataParallel; rank 0 writes logs, samples and checkpoints. The same call runs
single-process on one GPU or the CPU.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..errors import InputError
from ..model.checkpoints import CheckpointInfo, read_checkpoint_info
from ..model.generator import Generator, GeneratorConfig
from ..threads import torch_threads
from . import distributed as dist_utils
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .dataset import DEFAULT_REPEATS, PairBatchSampler, PairDataset
from .discriminator import PatchDiscriminator
from .layout import load_clips
from .losses import (LossWeights, face_weight, feature_matching_loss, gan_discriminator_loss,
                     gan_generator_loss, init_field_factor, init_field_loss, warp_loss)
from .perceptual import PerceptualLoss, load_backbone
from .runlog import RunLog, sample_grid, save_grid

CONFIG = "config.json"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
PAPER_ITERATIONS = 380_000
PAPER_DECAY_START = 330_000


@dataclass
class TrainConfig:
    """Everything `train` needs. None means "derive from the paper's schedule"."""

    dataset_dir: Path
    run_dir: Path
    res: int | None = None  # training resolution; default: the dataset's
    batch_size: int = 6  # per process
    iterations: int = PAPER_ITERATIONS
    decay_start: int | None = None  # default: 330/380 of `iterations`
    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999
    weights: LossWeights = field(default_factory=LossWeights)
    init_field_steps: int | None = None  # default: 5/106 of `iterations` (official)
    perceptual: str = "efficientnet-lite0"
    perceptual_weights: Path | None = None
    precision: str = "auto"
    device: str = "auto"
    workers: int = 4  # data-loader processes per training process
    # torch threads per training process; on 2 cores one thread took 0.6-3.5 s per step at
    # 128-256 px against 10-40 s with torch's default (issue 21)
    threads: int | None = 1
    seed: int = 0
    repeats: int = DEFAULT_REPEATS  # pairs per clip per epoch
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    resume: bool = False
    init_weights: Path | None = None  # start the generator from a weights file (fine-tune)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    tensorboard: bool = True  # also write TensorBoard events if `tensorboard` is installed
    overfit_one_pair: bool = False  # debugging: always the same pair
    log_data: bool = False  # write the (clip, source, driving) ids each rank trains on

    def __post_init__(self) -> None:
        self.dataset_dir, self.run_dir = Path(self.dataset_dir), Path(self.run_dir)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.batch_size < 1 or self.iterations < 1:
            raise ValueError("batch size and iterations must be at least 1")
        if self.res is not None and (self.res % 64 or self.res < 64):
            raise ValueError(f"training resolution must be a multiple of 64, got {self.res}")

    @property
    def decay_from(self) -> int:
        if self.decay_start is not None:
            return self.decay_start
        return round(self.iterations * PAPER_DECAY_START / PAPER_ITERATIONS)

    @property
    def init_steps(self) -> int:
        if self.init_field_steps is not None:
            return self.init_field_steps
        return round(self.iterations * 5 / 106)

    def lr_at(self, step: int) -> float:
        """Learning rate of iteration `step` (0-based)."""
        start = self.decay_from
        if step < start or self.iterations <= start:
            return self.lr
        return self.lr * max(0.0, 1.0 - (step - start) / (self.iterations - start))

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif f.name == "weights":
                value = asdict(value)
            elif f.name == "generator":
                value = value.to_dict()
            out[f.name] = value
        out["decay_from"], out["init_steps"] = self.decay_from, self.init_steps
        return out


@dataclass
class TrainResult:
    run_dir: Path
    start_step: int
    steps: int  # iterations completed in total (including before a resume)
    checkpoint: Path | None
    seconds: float
    seconds_per_iteration: float  # this process, after the first iteration
    world_size: int
    device: str
    precision: str
    last_losses: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["run_dir"] = str(self.run_dir)
        out["checkpoint"] = None if self.checkpoint is None else str(self.checkpoint)
        return out


def resolve_precision(precision: str, device: torch.device) -> str:
    if device.type != "cuda":
        if precision == "fp16":
            raise InputError("`precision` fp16 needs a CUDA GPU; CPU trains in fp32 (or bf16)")
        return "bf16" if precision == "bf16" else "fp32"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def _check_resume_config(run_dir: Path, res: int) -> None:
    path = run_dir / CONFIG
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    if old.get("resolved_res") != res:
        raise InputError(f"{run_dir} was trained at {old.get('resolved_res')} px, not {res}; "
                         "resume with the same `res` or start a new run directory")


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def _initial_generator(config: TrainConfig) -> Generator:
    if config.init_weights is None:
        return Generator(config.generator)
    from safetensors.torch import load_file

    info = read_checkpoint_info(config.init_weights)
    gen = Generator(info.config)
    gen.load_state_dict(load_file(str(config.init_weights)), strict=True)
    return gen


def train(config: TrainConfig, log: Callable[[str], None] = lambda s: None,
          progress: Callable[[int, dict[str, float]], None] = lambda step, row: None
          ) -> TrainResult:
    """Train (or, with `config.resume`, continue training) into `config.run_dir`.

    Works as one process (CPU or one GPU) or under `torchrun` (reads RANK, WORLD_SIZE,
    LOCAL_RANK). `log` gets human-readable messages and `progress` each logged row; both
    are called on rank 0 only.
    """
    ctx = dist_utils.init_distributed(config.device)
    try:
        with torch_threads(config.threads):
            return _train(config, ctx, log if ctx.is_main else (lambda s: None),
                          progress if ctx.is_main else (lambda step, row: None))
    finally:
        dist_utils.shutdown(ctx)


def _train(config: TrainConfig, ctx: dist_utils.DistContext, log: Callable[[str], None],
           progress: Callable[[int, dict[str, float]], None]) -> TrainResult:
    t_start = time.perf_counter()
    device = ctx.device
    precision = resolve_precision(config.precision, device)
    manifest, clips = load_clips(config.dataset_dir, "train")
    if not clips:
        raise InputError(f"{config.dataset_dir}: no training clips with at least 2 usable "
                         "frames (check the manifest's split and skipped lists)")
    backbone = load_backbone(config.perceptual, config.perceptual_weights)  # fail early
    res = config.res or int(manifest["res"])
    if res % 64:
        raise InputError(f"training resolution must be a multiple of 64; the dataset is "
                         f"{res} px: pass `res`")
    run_dir = config.run_dir
    latest = latest_checkpoint(run_dir)
    if latest is not None and not config.resume:
        raise InputError(f"{run_dir} already has checkpoints (step {latest[0]}); pass `resume` "
                         "to continue or choose a new run directory")
    ckpt = None
    if config.resume:
        _check_resume_config(run_dir, res)
        if latest is not None:
            ckpt = load_checkpoint(latest[1])

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    # A resumed run keeps its architecture (and landmark drawing) from the checkpoint.
    gen = (Generator(ckpt.info.config) if ckpt is not None else _initial_generator(config)
           ).to(device)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {**config.to_dict(), "generator": gen.config.to_dict(), "resolved_res": res,
                  "world_size": ctx.world_size,
                  "global_batch": config.batch_size * ctx.world_size, "precision": precision,
                  "device": device.type, "f2f_version": __version__,
                  "torch_version": torch.__version__, "training_clips": len(clips)}
        (run_dir / CONFIG).write_text(json.dumps(record, indent=1))
    dist_utils.barrier(ctx)
    disc = PatchDiscriminator().to(device)
    perceptual = PerceptualLoss(backbone).to(device)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=betas)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    start_step = 0
    if ckpt is not None:
        gen.load_state_dict(ckpt.generator, strict=True)
        disc.load_state_dict(ckpt.discriminator, strict=True)
        opt_g.load_state_dict(ckpt.state["opt_g"])
        opt_d.load_state_dict(ckpt.state["opt_d"])
        if ckpt.state.get("scaler"):
            scaler.load_state_dict(ckpt.state["scaler"])
        start_step = ckpt.step
        log(f"resumed from {ckpt.path} (step {start_step})")
    elif config.resume:
        log(f"{run_dir}: no checkpoint to resume from; starting at step 0")
    main_step = dist_utils.broadcast_int(ctx, start_step)
    if main_step != start_step:
        raise InputError(f"rank {ctx.rank} found a checkpoint at step {start_step} but rank 0 "
                         f"at step {main_step}: every node must see the same run directory")
    torch.manual_seed(config.seed + 1000 * ctx.rank + start_step)

    gen_model: nn.Module = gen
    disc_model: nn.Module = disc
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        gen_model = DDP(gen, device_ids=ids)
        disc_model = DDP(disc, device_ids=ids)

    dataset = PairDataset(clips, res, config.seed, config.repeats, config.overfit_one_pair)
    sampler = PairBatchSampler(dataset, config.batch_size, ctx.rank, ctx.world_size,
                               config.seed, start_step)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                         num_workers=config.workers,
                                         pin_memory=device.type == "cuda",
                                         persistent_workers=config.workers > 0)
    runlog = RunLog(run_dir, config.tensorboard) if ctx.is_main else None
    data_log = None
    if config.log_data:
        (run_dir / "data").mkdir(parents=True, exist_ok=True)
        data_log = open(run_dir / "data" / f"rank{ctx.rank}.txt", "a")
    info = CheckpointInfo(gen.config, res,
                          f"f2f prepare dataset {config.dataset_dir.name} ({len(clips)} training "
                          f"clips, {manifest['res']} px crops)", __version__,
                          f"f2f train run {run_dir.name} (perceptual {config.perceptual})")
    w = config.weights
    amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    log(f"training {config.iterations - start_step} iterations at {res} px on {ctx.world_size} "
        f"x {device.type} ({precision}), batch {config.batch_size} per process, "
        f"{len(clips)} clips, perceptual {config.perceptual}")

    gen.train()
    disc.train()
    step = start_step
    checkpoint_path = None
    sums: dict[str, float] = {}
    count = 0
    t_iter = time.perf_counter()
    t_first_done: float | None = None
    last_row: dict[str, float] = {}
    iterator = iter(loader)
    try:
        while step < config.iterations:
            batch = next(iterator)
            lr = config.lr_at(step)
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = lr
            if data_log is not None:  # step, item index, epoch, clip, source, driving
                for ids in batch["ids"].tolist():
                    data_log.write(f"{step} {' '.join(map(str, ids))}\n")
            source = batch["source"].to(device, non_blocking=True)
            driving = batch["driving"].to(device, non_blocking=True)
            landmarks = batch["driving_landmarks"].to(device, non_blocking=True)
            weight = face_weight(batch["mask"].to(device, non_blocking=True), w.face)
            init_factor = init_field_factor(step, config.init_steps)

            # --- generator step
            _set_requires_grad(disc, False)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out = gen_model(source, batch["source_pose"].to(device),
                                batch["source_keypoints"].numpy(),
                                batch["driving_pose"].to(device),
                                batch["driving_keypoints"].numpy())
                fake = out.image
                rec = perceptual(fake, driving, weight)
                fake_pred, fake_feats = disc(fake, landmarks)
                with torch.no_grad():
                    _, real_feats = disc(driving, landmarks)
            warp = warp_loss(source, driving, out.flows)
            adv = gan_generator_loss(fake_pred)
            fm = feature_matching_loss(real_feats, fake_feats, weight)
            loss_g = (w.reconstruction * rec + w.warp * warp + w.adversarial * adv
                      + w.feature_matching * fm)
            init = torch.zeros((), device=device)
            if init_factor > 0 and w.init_field > 0:
                init = init_field_loss(out.flows)
                loss_g = loss_g + w.init_field * init_factor * init
            opt_g.zero_grad(set_to_none=True)
            scaler.scale(loss_g).backward()
            scaler.step(opt_g)

            # --- discriminator step (real and fake in one batch: one DDP forward)
            _set_requires_grad(disc, True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                pred, _ = disc_model(torch.cat((driving, fake.detach())),
                                     torch.cat((landmarks, landmarks)))
            real_pred, fake_pred_d = pred.float().chunk(2)
            loss_d = gan_discriminator_loss(real_pred, fake_pred_d)
            opt_d.zero_grad(set_to_none=True)
            scaler.scale(loss_d).backward()
            scaler.step(opt_d)
            scaler.update()
            step += 1
            if t_first_done is None:
                t_first_done = time.perf_counter()

            values = {"loss_g": loss_g, "reconstruction": rec, "warp": warp, "adversarial": adv,
                      "feature_matching": fm, "init_field": init, "loss_d": loss_d,
                      "d_real": real_pred.mean(), "d_fake": fake_pred_d.mean(),
                      "l1": (fake.detach().float() - driving).abs().mean()}
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            count += 1

            if step % config.log_every == 0 or step == config.iterations or step == start_step + 1:
                means = torch.tensor([sums[k] / count for k in values], dtype=torch.float64,
                                     device=device if ctx.device.type == "cuda" else "cpu")
                means = dist_utils.all_mean(ctx, means)
                now = time.perf_counter()
                row = {"step": step, "lr": lr,
                       **{k: float(v) for k, v in zip(values, means.tolist())},
                       "seconds_per_iteration": (now - t_iter) / count,
                       "pairs_per_second": count * config.batch_size * ctx.world_size
                       / max(now - t_iter, 1e-9)}
                sums, count, t_iter = {}, 0, now
                last_row = row
                if runlog is not None:
                    runlog.write(row)
                progress(step, row)
            if ctx.is_main and config.sample_every > 0 and (
                    step % config.sample_every == 0 or step == config.iterations):
                with torch.no_grad():
                    warped = F.grid_sample(source.float(), out.flows[-1].float(),
                                           mode="bilinear", align_corners=False)
                    save_grid(run_dir, step, sample_grid(source, landmarks, warped, fake,
                                                         driving))
            if step % config.checkpoint_every == 0 or step == config.iterations:
                if ctx.is_main:
                    state = {"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                             "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                             "world_size": ctx.world_size, "batch_size": config.batch_size,
                             "seed": config.seed}
                    checkpoint_path = save_checkpoint(
                        run_dir, step, gen, disc,
                        replace(info, source=f"{info.source}, step {step}"), state,
                        config.keep_checkpoints)
                    log(f"checkpoint {checkpoint_path}")
                dist_utils.barrier(ctx)
    finally:
        if data_log is not None:
            data_log.close()
        if runlog is not None:
            runlog.close()
        del iterator
    done = time.perf_counter()
    timed = step - start_step - 1
    per_iter = (done - t_first_done) / timed if timed > 0 and t_first_done else 0.0
    if checkpoint_path is None and latest is not None:
        checkpoint_path = latest[1]
    return TrainResult(run_dir, start_step, step, checkpoint_path, done - t_start, per_iter,
                       ctx.world_size, device.type, precision, last_row)
