"""The plain install has no PyTorch: what runs without it, and what says how to get it."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

from conftest import f2f_without_torch
from skimage import data

from f2fcli.io.image import write_image
from f2fcli.io.testclip import make_motion_clip, similarity_matrix

TORCH_HINT = 'pip install "f2fcli[torch]"'


def test_without_torch_the_main_job_runs_and_torch_commands_say_what_to_install(
        tmp_path: Path) -> None:
    image = data.astronaut()
    write_image(tmp_path / "face.png", image)
    moves = [similarity_matrix(3.0 * k, 1.0, (2.0 * k, 0.0), (220.0, 180.0)) for k in range(6)]
    make_motion_clip(tmp_path / "drive.mp4", image, moves, Fraction(25))
    out = tmp_path / "out.mp4"
    done = f2f_without_torch("reenact", "-s", str(tmp_path / "face.png"), "-d",
                             str(tmp_path / "drive.mp4"), "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["renderer"], result["device"], result["frames"]) == ("warp", "cpu", 6)

    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"not needed: refused before it is read")
    for pth in ("r.pth", "m.pth"):
        (tmp_path / pth).write_bytes(b"")
    needs_torch = {
        "export": ["export", "--random-weights", "-o", str(tmp_path / "onnx")],
        "bench": ["bench", "--macs-only", "--res", "256"],
        "weights import-official": ["weights", "import-official", str(tmp_path / "r.pth"),
                                    str(tmp_path / "m.pth"), "-o", str(tmp_path / "x")],
        "backend torch": ["reenact", "-s", str(tmp_path / "face.png"), "-d",
                          str(tmp_path / "drive.mp4"), "-o", str(tmp_path / "n.mp4"),
                          "--renderer", "neural", "--weights", str(weights), "--backend",
                          "torch"],
        # onnxruntime runs the neural renderer without torch, but exporting its graphs
        # (once per weights file and size) needs it
        "first export": ["reenact", "-s", str(tmp_path / "face.png"), "-d",
                         str(tmp_path / "drive.mp4"), "-o", str(tmp_path / "n.mp4"),
                         "--renderer", "neural", "--weights", str(weights)],
    }
    for name, args in needs_torch.items():
        done = f2f_without_torch(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1, (name, done.stderr)
        assert "needs PyTorch" in lines[-1] and TORCH_HINT in lines[-1], (name, done.stderr)
        assert not any("Traceback" in line for line in lines), name
    assert not (tmp_path / "onnx").exists() and not (tmp_path / "n.mp4").exists()


def test_the_whole_public_api_imports_without_torch() -> None:
    script = ("import sys; sys.modules['torch'] = None\n"
              "import f2fcli\n"
              "missing = [n for n in f2fcli.__all__ if getattr(f2fcli, n, None) is None]\n"
              "assert not missing, missing\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
