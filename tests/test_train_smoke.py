"""End-to-end training smoke test on CPU at 128 px: prepare two tiny generated clips (plus
one without a face), overfit one pair and check the loss goes down, resume, export, load
the weights in `f2f reenact --renderer neural`, evaluate, and a 2-process torchrun run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import f2f_without_torch

from f2fcli.errors import InputError
from f2fcli.io.testclip import make_motion_clip, similarity_matrix
from f2fcli.model.checkpoints import load_generator, read_checkpoint_info
from f2fcli.train import (EvalOptions, PrepareOptions, TrainConfig, evaluate, export_weights,
                          layout, prepare_dataset, train)
from f2fcli.train.checkpoint import STATE, latest_checkpoint
from f2fcli.train.runlog import read_metrics

torch.set_num_threads(1)
RES = 128
FRAMES = 8
OVERFIT_STEPS = 40


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[0:320, 60:380])  # head and shoulders


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    image = _astronaut()
    for k, (angle, shift) in enumerate([(6.0, 5.0), (-5.0, -6.0)]):
        mats = [similarity_matrix(angle * np.sin(i / FRAMES * 2 * np.pi), 1 + 0.04 * np.sin(i / 3),
                                  (shift * np.cos(i / 2), 0.5 * shift * np.sin(i / 2)),
                                  (165, 130)) for i in range(FRAMES)]
        make_motion_clip(root / f"clip{k}.mp4", image, mats, audio_rate=None)
    still = [similarity_matrix(0, 1, (0, 0), (0, 0))] * 4
    make_motion_clip(root / "noface.mp4", image, still, audio_rate=None, blank=frozenset(range(4)))
    return root


@pytest.fixture(scope="module")
def dataset(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    report = prepare_dataset(videos, out, PrepareOptions(res=RES, workers=2,
                                                         threads_per_worker=1))
    assert (report.count("done"), report.count("skipped"), report.count("failed")) == (2, 1, 0)
    return out


@pytest.fixture(scope="module")
def overfit_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    config = TrainConfig(dataset_dir=dataset, run_dir=run, res=RES, batch_size=1,
                         iterations=OVERFIT_STEPS, lr=1e-3, decay_start=OVERFIT_STEPS,
                         device="cpu", workers=0, log_every=1, sample_every=OVERFIT_STEPS,
                         checkpoint_every=OVERFIT_STEPS, overfit_one_pair=True)
    result = train(config)
    assert result.steps == OVERFIT_STEPS and result.start_step == 0
    assert result.checkpoint is not None and result.checkpoint.is_dir()
    return run


def test_prepare_layout_and_resume(dataset: Path, videos: Path) -> None:
    manifest = layout.read_manifest(dataset)
    assert manifest["res"] == RES
    assert [c["name"] for c in manifest["clips"]] == ["clip0", "clip1"]
    assert [s["name"] for s in manifest["skipped"]] == ["noface"]
    assert "no face" in manifest["skipped"][0]["reason"]
    _, clips = layout.load_clips(dataset, "all")
    for clip in clips:
        assert len(clip) == FRAMES and clip.found.all()
        assert clip.keypoints.shape == (FRAMES, 72, 2) and clip.pose.shape == (FRAMES, 6)
        frame = cv2.imread(str(clip.frame_path(0)))
        mask = cv2.imread(str(clip.mask_path(0)), cv2.IMREAD_GRAYSCALE)
        assert frame.shape == (RES, RES, 3) and mask.shape == (RES, RES)
        assert set(np.unique(mask)) == {0, 255}
        # The face (mask) covers the keypoints and sits inside the crop.
        kp = clip.keypoints[0]
        assert (kp > 0).all() and (kp < RES).all()
        assert 0.1 < (mask > 0).mean() < 0.6
        inside = mask[kp[:, 1].astype(int), kp[:, 0].astype(int)] > 0
        assert inside.mean() > 0.9
        assert clip.identity.shape == (50,)
    again = prepare_dataset(videos, dataset, PrepareOptions(res=RES))
    assert sorted(c.status for c in again.clips) == ["exists", "exists", "skipped"]
    with pytest.raises(InputError, match="prepared with res"):
        prepare_dataset(videos, dataset, PrepareOptions(res=256))


def test_overfit_one_pair_loss_goes_down(overfit_run: Path) -> None:
    rows = read_metrics(overfit_run)
    assert [int(r["step"]) for r in rows] == list(range(1, OVERFIT_STEPS + 1))
    first, last = rows[1:6], rows[-5:]  # step 1 still carries the init-field term

    def mean(key: str, part: list[dict[str, float]]) -> float:
        return float(np.mean([r[key] for r in part]))

    assert mean("reconstruction", last) < 0.98 * mean("reconstruction", first)
    assert mean("l1", last) < 0.98 * mean("l1", first)
    assert mean("loss_g", last) < mean("loss_g", first)
    assert all(np.isfinite(list(r.values())).all() for r in rows)
    assert (overfit_run / "config.json").is_file()
    assert len(list((overfit_run / "samples").glob("*.png"))) == 1


def test_resume_export_and_reenact(overfit_run: Path, dataset: Path, videos: Path,
                                   tmp_path: Path) -> None:
    config = TrainConfig(dataset_dir=dataset, run_dir=overfit_run, res=RES, batch_size=1,
                         iterations=OVERFIT_STEPS + 2, device="cpu", workers=0, log_every=1,
                         sample_every=0, checkpoint_every=1000, overfit_one_pair=True,
                         precision="bf16")  # also runs the mixed-precision (autocast) path
    with pytest.raises(InputError, match="`resume`"):
        train(config)
    config.resume = True
    result = train(config)
    assert (result.start_step, result.steps) == (OVERFIT_STEPS, OVERFIT_STEPS + 2)
    step, path = latest_checkpoint(overfit_run)
    assert step == OVERFIT_STEPS + 2
    state = torch.load(path / STATE, weights_only=True)
    # Adam continued from the saved moments: its step count spans both runs.
    assert int(next(iter(state["opt_g"]["state"].values()))["step"]) == OVERFIT_STEPS + 2
    assert [int(r["step"]) for r in read_metrics(overfit_run)][-3:] == [
        OVERFIT_STEPS, OVERFIT_STEPS + 1, OVERFIT_STEPS + 2]

    weights = tmp_path / "trained.safetensors"
    exported = export_weights(overfit_run, weights)
    assert exported.step == OVERFIT_STEPS + 2 and exported.resolution == RES
    assert read_checkpoint_info(weights).resolution == RES
    load_generator(weights)
    with pytest.raises(Exception, match="exists"):
        export_weights(overfit_run, weights)

    source = tmp_path / "source.png"
    cv2.imwrite(str(source), cv2.cvtColor(_astronaut(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.mp4"
    done = subprocess.run(
        [sys.executable, "-m", "f2fcli", "reenact", "-s", str(source), "-d",
         str(videos / "clip1.mp4"), "-o", str(out), "--renderer", "neural", "--weights",
         str(weights), "--res", "256", "--json"],
        capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["renderer"] == "neural" and report["frames"] == FRAMES
    assert out.is_file()
    # the graphs exported by that run (cached) drive the same renderer without torch
    again = f2f_without_torch("reenact", "-s", str(source), "-d", str(videos / "clip1.mp4"),
                              "-o", str(tmp_path / "again.mp4"), "--renderer", "neural",
                              "--weights", str(weights), "--res", "256")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.mp4").read_bytes() == out.read_bytes()


def test_evaluate_held_out_clip(overfit_run: Path, dataset: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    export_weights(overfit_run, weights)
    report = evaluate(dataset, weights, EvalOptions(split="test", frames_per_clip=3))
    assert report.res == RES and report.clips == 1 and report.frames == 3
    assert 0 < report.l1 < 1 and np.isfinite(report.psnr) and -1 <= report.ssim <= 1
    assert report.akd_missing is not None and 0 <= report.akd_missing <= 1
    json.dumps(report.to_dict())
    with pytest.raises(InputError, match="no manifest.json"):
        evaluate(tmp_path / "nothing", weights)


def test_torchrun_two_processes(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "f2fcli", "train", str(dataset), "-o", str(run),
           "--res", str(RES), "--batch-size", "1", "--iterations", "3", "--device", "cpu",
           "--workers", "0", "--log-every", "1", "--sample-every", "3",
           "--checkpoint-every", "3", "--log-data", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["world_size"] == 2 and result["steps"] == 3
    assert latest_checkpoint(run)[0] == 3
    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == 2 and config["global_batch"] == 2
    seen = []
    for rank in (0, 1):
        lines = (run / "data" / f"rank{rank}.txt").read_text().split("\n")
        seen.append([tuple(int(v) for v in line.split()) for line in lines if line])
    assert [len(s) for s in seen] == [3, 3]
    items = [{(epoch, index) for _, index, epoch, *_ in s} for s in seen]
    assert not items[0] & items[1]  # each rank trains on its own share of the items
    pairs = [[tuple(row[3:]) for row in s] for s in seen]
    assert pairs[0] != pairs[1]
