"""`f2f bench` library: MACs against the paper, latency and memory rows, failures reported
as rows, reports (JSON, CSV, rich, PNG), the pipeline breakdown; and the CPU speed work
in the model (fused SPADE), which must not change the output."""

from __future__ import annotations

import copy
import json

import cv2
import numpy as np
import pytest
import torch
from rich.console import Console

from f2fcli.bench import DEFAULT_RESOLUTIONS, FP16_ON_CPU_MESSAGE, BenchConfig, BenchReport
from f2fcli.bench import core as bench_core
from f2fcli.bench import pipeline_breakdown, plot, run_bench
from f2fcli.bench.measure import PeakRss, is_out_of_memory, time_calls
from f2fcli.bench.paper import PAPER_TABLE1
from f2fcli.errors import F2FError
from f2fcli.export.weights import example_inputs, random_generator
from f2fcli.model.generator import prepare_for_inference
from f2fcli.model.spade import SPADE, FusedSPADE, compressed_axis, nearest_indices


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> None:
    torch.set_num_threads(1)  # a small shared machine: no oversubscription


def _render(renderable: object) -> str:
    console = Console(width=220, record=True)
    console.print(renderable)
    return console.export_text()


# --- MACs and parameters ------------------------------------------------------------------

def test_macs_of_all_six_sizes_match_table_1() -> None:
    report = run_bench(BenchConfig(latency=False))
    assert [r.resolution for r in report.rows] == list(DEFAULT_RESOLUTIONS)
    for row in report.rows:
        assert row.status == "not measured"
        assert row.paper["gmacs"] == PAPER_TABLE1[row.resolution].gmacs
        assert abs(row.macs_vs_paper) <= 0.15, row.resolution
        # Inference preparation only removes work (SPADE on the compressed pose map).
        assert row.drive_gmacs_executed <= row.drive_gmacs + 1e-9
        assert row.macs["drive"][""] == pytest.approx(row.drive_gmacs * 1e9)
        assert {"motion.f1", "motion.f2", "motion.f3", "render.decoder"} <= set(row.macs["drive"])
        assert set(row.macs["encode"]) >= {"render.encoder", "render.src_pose"}
    r256, r512 = report.rows[:2]
    assert r256.drive_gmacs == pytest.approx(1.979, abs=0.01)  # paper 1.9
    assert r512.drive_gmacs == pytest.approx(7.916, abs=0.01)  # paper 9.2
    assert r512.encode_gmacs == pytest.approx(4.218, abs=0.01)
    assert r256.drive_gmacs_executed == pytest.approx(r256.drive_gmacs)  # nothing to drop
    assert r512.drive_gmacs_executed < r512.drive_gmacs - 0.7  # de_SPADE_4 128^2 -> 80^2
    # Parameters: per-frame path = motion + driving pose encoder + decoder.
    assert r256.params["motion"] == 6_781_302
    assert r256.drive_params == 6_781_302 + r256.params["render.drv_pose"] + \
        r256.params["render.decoder"]
    assert r256.drive_params + r256.encode_params == 6_781_302 + 4_533_456
    table = _render(report.modules_table())
    assert "render.decoder" in table and "2048" in table


def test_fp16_on_cpu_is_refused_with_a_clear_message() -> None:
    with pytest.raises(F2FError, match="bf16") as info:
        run_bench(BenchConfig(resolutions=(1440,), precision="fp16"))
    assert str(info.value) == FP16_ON_CPU_MESSAGE
    with pytest.raises(F2FError, match="unknown backend"):
        BenchConfig(backends=("tensorrt",)).validate()
    with pytest.raises(F2FError, match="at least 64"):
        BenchConfig(resolutions=(32,)).validate()
    if not torch.cuda.is_available():
        with pytest.raises(F2FError, match="no CUDA device"):
            BenchConfig(device="cuda").validate()


# --- latency and memory -------------------------------------------------------------------

def test_bench_measures_latency_and_memory(tmp_path) -> None:
    backends = ("torch", "onnxruntime")
    config = BenchConfig(resolutions=(128,), backends=backends, runs=3, warmup=1,
                         encode_runs=1, batch=2)
    messages: list[str] = []

    class Progress:
        def info(self, message: str) -> None:
            messages.append(message)

    report = run_bench(config, Progress())
    assert [r.backend for r in report.rows] == list(backends)
    for row in report.rows:
        assert row.status == "ok", row.note
        assert row.runs == 3 and row.batch == 2
        assert 0 < row.drive_ms_min <= row.drive_ms_median <= row.drive_ms_p90
        assert row.batch_ms_median == pytest.approx(2 * row.drive_ms_median)
        assert row.encode_ms > 0
        assert row.rss_increase_mb is not None and row.rss_increase_mb > 1
        assert row.memory_mb == row.rss_increase_mb
        assert row.peak_reserved_mb is None
        assert row.paper is None  # Table 1 has no 128
    assert any("ms/frame" in m for m in messages)
    data = json.loads(report.to_json())
    assert data["weights"]["kind"] == "random, for timing only"
    assert data["environment"]["threads"] == 1
    assert data["rows"][0]["drive_ms_median"] == report.rows[0].drive_ms_median
    assert BenchReport.from_dict(data).rows[0].drive_ms_p90 == report.rows[0].drive_ms_p90
    lines = report.to_csv().strip().splitlines()
    assert len(lines) == 1 + len(backends)
    assert lines[0].startswith("resolution,padded,backend,device,precision,batch,status")
    assert "random, for timing only" in _render(report.rich_table())
    png = plot(report, tmp_path / "bench.png")
    image = cv2.imread(str(png))
    assert image is not None and image.shape[:2] == (600, 1280)
    with pytest.raises(Exception, match="exists"):
        plot(report, png, overwrite=False)


def test_sizes_that_do_not_fit_are_rows_not_crashes(monkeypatch) -> None:
    # Estimated not to fit: not even tried.
    monkeypatch.setattr(bench_core, "available_memory", lambda: 400_000_000)
    report = run_bench(BenchConfig(resolutions=(64, 2048), backends=("torch",), runs=1,
                                   warmup=0, encode_runs=1))
    small, big = report.rows
    assert small.status == "ok"
    assert big.status == "out of memory" and "GB needed" in big.note
    assert big.drive_gmacs > 100 and big.drive_ms_median is None  # MACs still reported
    monkeypatch.undo()

    # An allocation failure while measuring.
    def fail(self, row):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                           "allocate 123456789 bytes")

    monkeypatch.setattr(bench_core._Runner, "_measure_torch", fail)
    report = run_bench(BenchConfig(resolutions=(64,), backends=("torch",)))
    assert report.rows[0].status == "out of memory"
    assert "allocate" in report.rows[0].note
    assert "out of memory" in _render(report.rich_table())
    assert "OOM" not in report.to_csv()  # the CSV keeps the status words

    def broken(self, row):
        raise ValueError("something else")

    monkeypatch.setattr(bench_core._Runner, "_measure_torch", broken)
    row = run_bench(BenchConfig(resolutions=(64,), backends=("torch",))).rows[0]
    assert row.status == "error" and "something else" in row.note


def test_half_precision_onnxruntime_rows_are_unsupported() -> None:
    report = run_bench(BenchConfig(resolutions=(64,), backends=("onnxruntime",),
                                   precision="bf16", runs=1, warmup=0, encode_runs=1))
    assert report.rows[0].status == "unsupported"
    assert "FP32" in report.rows[0].note


def test_bf16_on_cpu_is_measured() -> None:
    report = run_bench(BenchConfig(resolutions=(64,), backends=("torch",), precision="bf16",
                                   runs=1, warmup=0, encode_runs=1))
    assert report.rows[0].status == "ok", report.rows[0].note
    assert report.rows[0].precision == "bf16"


def test_timing_and_memory_helpers() -> None:
    calls = []
    timing = time_calls(lambda: calls.append(1), warmup=2, runs=5)
    assert len(calls) == 7 and timing.runs == 5 and timing.warmup == 2
    slow = time_calls(lambda: __import__("time").sleep(0.02), warmup=0, runs=50, budget_s=0.05)
    assert slow.runs == 3  # budget spent: stops after the minimum of 3 runs
    tracker = PeakRss().start()
    block = np.ones(40_000_000 // 8)  # 40 MB, touched
    block += 1
    increase = tracker.stop()
    del block
    assert increase is not None and increase >= 35e6
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(ValueError("bad shape"))


def test_pipeline_breakdown_times_every_step() -> None:
    # The face-model fit is left out here: building the face model takes seconds.
    report = pipeline_breakdown(256, backend="torch", frames=2, skip=("face-model fit",))
    names = [s.name for s in report.steps]
    assert names == ["tracking", "face-model fit", "landmark images", "motion field estimation",
                     "feature warping", "decoding", "paste-back", "video encoding"]
    for step in report.steps:
        if step.name == "face-model fit":
            assert step.ms is None and step.note == "not requested"
        else:
            assert step.ms is not None and step.ms > 0, step
    by_name = {s.name: s for s in report.steps}
    assert by_name["decoding"].paper_cpu_ms == 25.1  # Table 4 at 256
    assert by_name["landmark images"].paper_gpu_ms == 0.1
    assert "face followed" in by_name["tracking"].note
    with pytest.raises(ValueError, match="unknown pipeline steps"):
        pipeline_breakdown(256, skip=("rendering",))
    assert report.total_ms == pytest.approx(sum(s.ms for s in report.steps if s.ms))
    text = _render(report.rich_table())
    assert "Table 4" in text and "total" in text
    assert json.dumps(report.to_dict())


# --- CPU speed work: the fused SPADE is the same function ---------------------------------

@pytest.mark.parametrize("size_out", [4, 16, 23, 32, 64, 92, 128, 184, 512])
def test_compressed_axis_reproduces_nearest_upsampling(size_out: int) -> None:
    rows, expand = compressed_axis(16, size_out)
    src = nearest_indices(16, size_out)
    kept = torch.arange(16) if rows is None else rows
    full = kept if expand is None else kept[expand]
    assert torch.equal(full, src)  # every output row reads the right condition row
    if size_out // 16 >= 6:
        assert len(kept) == 16 * 5  # first three and last two of each run


@pytest.mark.parametrize("size", [16, 32, 64, 92, 128, 184])
def test_fused_spade_matches_spade(size: int) -> None:
    torch.manual_seed(size)
    spade = SPADE(40).double()
    spade.norm.running_mean.normal_()
    spade.norm.running_var.uniform_(0.5, 2.0)
    spade.eval()
    fused = FusedSPADE(spade)
    x = torch.randn(2, 40, size, size, dtype=torch.float64)
    condition = torch.randn(2, 32, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        ref = spade(x, condition)
        assert torch.allclose(fused(x, condition), ref, atol=1e-12)
        cl = copy.deepcopy(fused).to(memory_format=torch.channels_last)
        out = cl(x.to(memory_format=torch.channels_last), condition)
        assert torch.allclose(out, ref, atol=1e-12)


def test_prepared_generator_matches_reference_at_384() -> None:
    """Fused SPADE (compressed from 384 on), folded batch norms, channels-last: same
    frames."""
    gen = random_generator(3)
    fast = prepare_for_inference(copy.deepcopy(gen).double(), dtype=torch.float64)
    image, src_pose, src_lm, drv_pose, drv_lm = example_inputs(384, 1, 1, 5)
    with torch.no_grad():
        ref = gen.double()(image.double(), src_pose, src_lm, drv_pose, drv_lm).image
        out = fast(image.double(), src_pose, src_lm, drv_pose, drv_lm).image
    assert ref.std() > 0.1
    assert torch.allclose(out, ref, atol=1e-8)
