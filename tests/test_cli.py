"""The installed `f2f` console script: JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import onnxruntime
import torch
from conftest import f2f, f2f_script

import f2fcli


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


def test_library_messages_name_options_and_the_cli_names_flags(tmp_path: Path) -> None:
    from f2fcli.cli import as_flags
    from f2fcli.errors import OutputError
    from f2fcli.io.atomic import check_output_path

    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"x")
    try:
        check_output_path(taken, overwrite=False)
    except OutputError as exc:
        message = str(exc)
    assert "`overwrite`" in message and "--" not in message  # a Python caller's words
    assert "pass --overwrite" in as_flags(message)
    assert as_flags("`face_box` and `not_an_option`") == "--face-box and `not_an_option`"
    result = f2f("reenact", "-s", "face.jpg", "-d", "talk.mp4", "-o", str(taken))
    assert result.returncode == 1
    assert "--overwrite" in result.stderr and "`" not in result.stderr


def test_usage_error_exits_2() -> None:
    assert f2f("probe").returncode == 2
    assert f2f("no-such-command").returncode == 2


def test_the_public_api_is_importable_from_the_top_and_lazy() -> None:
    code = ("import sys, f2fcli\n"
            "assert 'numpy' not in sys.modules and 'torch' not in sys.modules\n"
            "from f2fcli import reenact, ReenactOptions, MotionOptions, track_video, Track\n"
            "assert 'torch' not in sys.modules  # the warp path and the tracker need no torch\n"
            "missing = [n for n in f2fcli.__all__ if getattr(f2fcli, n, None) is None]\n"
            "assert not missing, missing\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_encoder_settings_are_checked_before_any_work(tmp_path: Path) -> None:
    out = str(tmp_path / "x.mp4")
    args = ("reenact", "-s", "face.jpg", "-d", "talk.mp4", "-o", out)
    assert f2f(*args, "--crf", "999").returncode == 2  # no codec takes it
    assert f2f(*args, "--preset", "nonsense").returncode == 2
    result = f2f(*args, "--crf", "60")  # VP9 takes it, H.264 does not
    assert result.returncode == 1 and result.stderr.strip() == (
        "error: --crf 60 is outside libx264's range 0-51")


def test_json_errors_and_one_output_grammar(tmp_path: Path) -> None:
    result = f2f("--json", "reenact", "-s", "face.jpg", "-d", "talk.mp4",
                 "--output", str(tmp_path / "x.mp4"))
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"error": "talk.mp4: no such file", "exit_code": 1}
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    for command in (("track", "missing.mp4"), ("reenact", "-s", "a.jpg", "-d", "b.mp4")):
        for spelling in ("-o", "--out", "--output"):
            done = f2f(*command, spelling, str(tmp_path / "y.mp4"))
            assert done.returncode == 1, (command, spelling, done.stderr)  # input, not usage


def test_bench_with_an_unloadable_weights_file_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 600)
    result = f2f("bench", "--res", "256", "--macs-only", "--weights", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error:")


def test_dash_as_the_output_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([f2f_script(), "reenact", "-s", "a.jpg", "-d", "b.mp4", "-o", "-"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1 and "standard output" in result.stderr
    assert list(tmp_path.iterdir()) == []
