"""`f2f batch` scaled out: shared driver tracks, worker processes, a real Ray cluster, Slurm
array shards and merged reports."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import f2f, leftover_temp_files, terminate_while_writing
from skimage import data

from f2fcli.io.image import write_image
from f2fcli.io.testclip import make_motion_clip, similarity_matrix
from f2fcli.pipeline.batch import parse_shard

ROWS = 6


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A source photo, a faceless image, and two short driving clips of the astronaut."""
    root = tmp_path_factory.mktemp("scale")
    image = data.astronaut()
    write_image(root / "face.png", image)
    write_image(root / "blank.png", np.full((200, 200, 3), 90, np.uint8))
    for name, sign in (("a.mp4", 1.0), ("b.mp4", -1.0)):
        moves = [similarity_matrix(sign * 3.0 * np.sin(k / 2), 1.0,
                                   (sign * 4.0 * np.sin(k / 3), 0.0), (220.0, 180.0))
                 for k in range(8)]
        make_motion_clip(root / name, image, moves, Fraction(25))
    return root


def _manifest(media: Path, folder: Path) -> Path:
    """Six jobs over two shared drivers; the fourth has no face in its source."""
    folder.mkdir()
    rows = ["source,driving,out,expression_scale"]
    for i in range(ROWS):
        source = media / ("blank.png" if i == 3 else "face.png")
        rows.append(f"{source},{media / ('a.mp4' if i % 2 else 'b.mp4')},out{i}.mp4,"
                    f"{1.0 + 0.1 * i:.1f}")
    (folder / "jobs.csv").write_text("\n".join(rows) + "\n")
    return folder / "jobs.csv"


def _run(manifest: Path, *args: str) -> tuple[int, dict[int, dict], dict]:
    done = f2f("batch", str(manifest), "--json", "--cache-dir",
               str(manifest.parent / "cache"), *args)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    jobs = {line["job"]: line for line in lines if "job" in line}
    return done.returncode, jobs, lines[-1]["summary"]


@pytest.fixture(scope="module")
def sequential(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest = _manifest(media, tmp_path_factory.mktemp("runs") / "sequential")
    code, jobs, summary = _run(manifest)
    assert code == 1 and summary["drivers_tracked"] == 2
    assert [jobs[i]["status"] for i in range(ROWS)] == ["ok"] * 3 + ["failed"] + ["ok"] * 2
    return manifest.parent


def _same_outputs(folder: Path, reference: Path) -> None:
    for i in range(ROWS):
        if i == 3:
            assert not (folder / f"out{i}.mp4").exists()
        else:
            assert (folder / f"out{i}.mp4").read_bytes() == \
                (reference / f"out{i}.mp4").read_bytes(), i
    assert not list(folder.glob(".*.part*"))


def test_worker_processes_give_the_sequential_outputs(media: Path, sequential: Path,
                                                      tmp_path: Path) -> None:
    manifest = _manifest(media, tmp_path / "workers")
    code, jobs, summary = _run(manifest, "--workers", "2")
    assert code == 1
    assert (summary["executor"], summary["workers"], summary["drivers_tracked"]) == \
        ("workers", 2, 2)
    assert jobs[3]["status"] == "failed" and "no face" in jobs[3]["error"]
    _same_outputs(manifest.parent, sequential)


def test_a_local_ray_cluster_gives_the_sequential_outputs(media: Path, sequential: Path,
                                                          tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed: it has no wheels for this "
                                      "platform (the test extra installs it elsewhere)")
    manifest = _manifest(media, tmp_path / "ray")
    code, jobs, summary = _run(manifest, "--ray", "--retries", "1")
    assert code == 1
    assert (summary["executor"], summary["drivers_tracked"]) == ("ray", 2)
    assert summary["ok"] == 5 and summary["failed"] == 1
    assert jobs[3]["status"] == "failed" and "no face" in jobs[3]["error"]
    _same_outputs(manifest.parent, sequential)


def test_slurm_shards_and_merged_reports(media: Path, sequential: Path,
                                         tmp_path: Path) -> None:
    # Slurm's default 1-based arrays: --array=1-3 gives ids 1..3, shards 0..2
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1",
           "SLURM_ARRAY_TASK_COUNT": "3"}
    assert parse_shard("slurm", env) == (2, 3)
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(ValueError, match="SLURM_ARRAY_TASK_ID"):
        parse_shard("slurm", {})
    reports = tmp_path / "reports"
    reports.mkdir()
    for i, name in enumerate(("shard0.jsonl", "shard1.jsonl")):
        done = f2f("batch", str(sequential / "jobs.csv"), "--json", "--skip-existing",
                   "--shard", f"{i}/2", "--cache-dir", str(tmp_path / "cache"))
        (reports / name).write_text(done.stdout)
    # a first run's report, where job 3 failed and the others were done
    shutil.copy(reports / "shard1.jsonl", reports / "earlier.json")
    merged = f2f("batch", "--merge", str(reports), "--json")
    assert merged.returncode == 1  # job 3 failed
    lines = [json.loads(line) for line in merged.stdout.splitlines()]
    assert [line["job"] for line in lines[:-1]] == list(range(ROWS))
    assert lines[-1]["summary"] == {"jobs": ROWS, "ok": 0, "failed": 1, "skipped": 5,
                                    "reports": 3}


def test_sigterm_to_a_ray_submitter_leaves_nothing_and_a_rerun_completes(
        media: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed: it has no wheels for this "
                                      "platform (the test extra installs it elsewhere)")
    moves = [similarity_matrix(3.0 * np.sin(k / 5), 1.0, (4.0 * np.sin(k / 7), 0.0),
                               (220.0, 180.0)) for k in range(150)]
    long = make_motion_clip(tmp_path / "long.mp4", data.astronaut(), moves, Fraction(25))
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("source,driving,out\n" + "".join(
        f"{media / 'face.png'},{long},out{i}.mp4\n" for i in range(2)))
    cache = ["--cache-dir", str(tmp_path / "cache"), "--res", "256"]
    code, err, seen = terminate_while_writing(["batch", str(manifest), "--ray", *cache],
                                              tmp_path, timeout=180)
    assert seen and code == 143, err
    assert err.strip().splitlines()[-1] == "error: terminated"
    assert leftover_temp_files(tmp_path) == []
    assert not all((tmp_path / f"out{i}.mp4").exists() for i in range(2))
    done = f2f("batch", str(manifest), "--skip-existing", "--json", *cache)
    assert done.returncode == 0, done.stderr
    assert all((tmp_path / f"out{i}.mp4").exists() for i in range(2))
