"""The installed `f2f` console script: JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import onnxruntime
import torch

import f2fcli


def _script() -> str:
    # The console script installed beside this interpreter, even if the venv isn't activated.
    beside = Path(sys.executable).parent / "f2f"
    return str(beside) if beside.exists() else (shutil.which("f2f") or "f2f")


def f2f(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_script(), *args], capture_output=True, text=True, timeout=120)


def test_info_json_names_installed_versions() -> None:
    for args in (("info", "--json"), ("--json", "info")):
        result = f2f(*args)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["f2f"] == f2fcli.__version__
        assert data["torch"]["version"] == torch.__version__
        assert data["onnxruntime"]["version"] == onnxruntime.__version__
        assert data["av"] == av.__version__
        assert data["encoders"]["libx264"] is True
        assert data["neural_renderer"]["available"] is False


def test_version_and_module_entry_point() -> None:
    assert f2f("--version").stdout.strip().endswith(f2fcli.__version__)
    result = subprocess.run([sys.executable, "-m", "f2fcli", "--version"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and f2fcli.__version__ in result.stdout


def test_probe_reports_exact_rate(ntsc_clip: Path) -> None:
    result = f2f("--json", "probe", str(ntsc_clip), "--count")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["fps"] == "30000/1001" and data["decoded_frames"] == 60


def test_bad_input_is_one_line_exit_1(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mp4"
    bogus.write_text("not a video")
    result = f2f("probe", str(bogus))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_usage_error_exits_2() -> None:
    assert f2f("probe").returncode == 2
    assert f2f("no-such-command").returncode == 2
