"""ONNX export and the onnxruntime backend: manifest, standard operators only, parity with
torch at 256 (the tolerance is stated in `onnx_export.PARITY_TOLERANCE`), batching,
padding of sizes that are not multiples of 64, caching, errors."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
import torch

from f2fcli.errors import F2FError, InputError, OutputError
from f2fcli.export import layout
from f2fcli.export.cache import load_onnx_generator
from f2fcli.export.layout import DRIVE_FILE, ENCODE_FILE, MANIFEST, onnx_export_available
from f2fcli.export.onnx_export import PARITY_TOLERANCE, export_onnx
from f2fcli.export.runtime import (OnnxGenerator, array_to_images, images_to_array, load_manifest,
                                   resolve_backend)
from f2fcli.export.weights import RANDOM_WEIGHTS, example_inputs, random_generator
from f2fcli.model.generator import prepare_for_inference

SEED = 0


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> None:
    torch.set_num_threads(1)  # a small shared machine: no oversubscription


@pytest.fixture(scope="module")
def model_256(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx256")
    manifest = export_onnx(out, 256, None, random_weights=True, seed=SEED)
    return out, manifest


def _torch_generator(dtype: torch.dtype = torch.float32):
    gen = random_generator(SEED)
    return prepare_for_inference(gen.to(dtype), dtype=dtype, channels_last=False)


def test_manifest(model_256) -> None:
    out, manifest = model_256
    on_disk = json.loads((out / MANIFEST).read_text())
    assert on_disk == load_manifest(out)
    assert on_disk["verification"]["passed"] is True
    assert manifest["resolution"] == 256 and manifest["padded"] == 256
    assert manifest["opset"] == 17 and manifest["precision"] == "fp32"
    assert manifest["weights"]["kind"] == RANDOM_WEIGHTS and manifest["random_weights"]
    assert manifest["landmark_images"]["sizes"] == [16, 32, 64]
    encode, drive = manifest["graphs"]["encode"], manifest["graphs"]["drive"]
    assert encode["file"] == ENCODE_FILE and drive["file"] == DRIVE_FILE
    assert [i["name"] for i in drive["inputs"]] == list(layout.DRIVE_INPUTS)
    assert drive["inputs"][-1] == {"name": "pose", "dtype": "float32", "shape": ["frames", 6]}
    assert drive["inputs"][0]["shape"] == ["sources", 28, 64, 64]
    assert drive["outputs"] == [{"name": "image", "dtype": "float32",
                                 "shape": ["frames", 3, 256, 256]}]
    assert encode["inputs"][0]["shape"] == ["sources", 3, 256, 256]
    from f2fcli.io.digest import file_sha256

    assert file_sha256(out / DRIVE_FILE) == drive["sha256"]


def test_only_standard_onnx_operators(model_256) -> None:
    out, _ = model_256
    allowed = {"Add", "BatchNormalization", "Cast", "Concat", "Constant", "ConstantOfShape",
               "Conv", "ConvTranspose", "Equal", "Expand", "Gather", "GridSample", "Mul",
               "Pad", "Relu", "Reshape", "Resize", "Shape", "Slice", "Tanh", "Transpose",
               "Unsqueeze", "Where", "Sub", "Div"}
    for name in (ENCODE_FILE, DRIVE_FILE):
        model = onnx.load(str(out / name))
        onnx.checker.check_model(model)
        assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
        ops = {node.op_type for node in model.graph.node}
        assert all(node.domain == "" for node in model.graph.node)  # no custom operators
        assert ops <= allowed, ops - allowed
        if name == DRIVE_FILE:
            assert "GridSample" in ops  # standard from opset 16


def test_onnxruntime_matches_torch_at_256(model_256) -> None:
    """Parity against torch FP32, judged against torch's own FP32 rounding: both are
    compared with a float64 run of the same network. Random networks amplify rounding
    (about 4e-3 at most, 3e-4 on average in FP32 torch itself), so the stated tolerance
    is PARITY_TOLERANCE; ONNX Runtime must also stay within 3x torch's own error."""
    out, _ = model_256
    runtime = OnnxGenerator(out, threads=1)
    assert runtime.random_weights and runtime.size == 256
    image, src_pose, src_lm, drv_pose, drv_lm = example_inputs(256, 1, 3, 11)
    gen32, gen64 = _torch_generator(), _torch_generator(torch.float64)
    with torch.no_grad():
        ref32 = gen32.drive(gen32.encode_source(image, src_pose, src_lm), drv_pose, drv_lm)
        ref64 = gen64.drive(gen64.encode_source(image.double(), src_pose, src_lm), drv_pose,
                            drv_lm)
    ref32, ref64 = ref32.numpy(), ref64.numpy()
    encoding = runtime.encode_source(image.numpy(), src_pose, src_lm)
    assert encoding.batch == 1 and encoding.size == 256
    out_ort = runtime.drive(encoding, drv_pose, drv_lm)
    assert out_ort.shape == (3, 3, 256, 256) and out_ort.dtype == np.float32
    assert ref64.std() > 0.2  # a non-trivial image
    diff = np.abs(out_ort - ref32)
    assert diff.max() <= PARITY_TOLERANCE["drive_max_abs"]
    assert diff.mean() <= PARITY_TOLERANCE["drive_mean_abs"]
    torch_error = np.abs(ref32 - ref64)
    ort_error = np.abs(out_ort - ref64)
    assert ort_error.mean() <= 3 * torch_error.mean() + 1e-6
    assert ort_error.max() <= 3 * torch_error.max() + 1e-5
    # The same through drive_drawn with pre-drawn landmark images.
    drawn = runtime.landmark_images(drv_lm)
    assert np.array_equal(runtime.drive_drawn(encoding, drv_pose, drawn), out_ort)


def test_dynamic_batch_and_one_source_per_frame(model_256) -> None:
    out, _ = model_256
    runtime = OnnxGenerator(out, threads=1)
    image, src_pose, src_lm, drv_pose, drv_lm = example_inputs(256, 2, 2, 12)
    many = runtime.encode_source(image.numpy(), src_pose, src_lm)
    both = runtime.drive(many, drv_pose, drv_lm)
    for i in range(2):
        one = runtime.encode_source(image[i:i + 1].numpy(), src_pose[i:i + 1], src_lm[i:i + 1])
        single = runtime.drive(one, drv_pose[i:i + 1], drv_lm[i:i + 1])
        assert np.abs(single - both[i:i + 1]).max() < 1e-4
    with pytest.raises(ValueError, match="cannot drive"):
        runtime.drive(many, np.zeros((3, 6)), np.zeros((3, 72, 2)))
    with pytest.raises(ValueError, match="exported for 256"):
        runtime.encode_source(np.zeros((1, 3, 128, 128), np.float32), src_pose[:1],
                              src_lm[:1])
    with pytest.raises(ValueError, match="same batch"):
        runtime.drive(many, drv_pose, drv_lm[:1])


def test_size_that_is_not_a_multiple_of_64(tmp_path) -> None:
    # 100 is padded to 128 inside both graphs and cropped back.
    manifest = export_onnx(tmp_path, 100, None, random_weights=True, seed=SEED)
    assert manifest["padded"] == 128 and manifest["verification"]["passed"]
    runtime = OnnxGenerator(tmp_path)
    image, src_pose, src_lm, drv_pose, drv_lm = example_inputs(100, 1, 1, 13)
    gen = _torch_generator()
    with torch.no_grad():
        ref = gen.drive(gen.encode_source(image, src_pose, src_lm), drv_pose, drv_lm).numpy()
    out = runtime.drive(runtime.encode_source(image.numpy(), src_pose, src_lm), drv_pose,
                        drv_lm)
    assert out.shape == ref.shape == (1, 3, 100, 100)
    assert np.abs(out - ref).mean() <= PARITY_TOLERANCE["drive_mean_abs"]


def test_export_refusals(tmp_path, monkeypatch) -> None:
    with pytest.raises(F2FError, match="opset 16"):
        export_onnx(tmp_path / "a", 64, None, opset=15, random_weights=True)
    with pytest.raises(F2FError, match="minimum"):
        export_onnx(tmp_path / "a", 32, None, random_weights=True)
    # Random weights only when asked: without them and without a weights file, an error.
    monkeypatch.setenv("F2F_WEIGHTS_DIR", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="no trained"):
        export_onnx(tmp_path / "b", 64, None)
    export_onnx(tmp_path / "c", 64, None, random_weights=True, verify=False)
    with pytest.raises(OutputError, match="overwrite"):
        export_onnx(tmp_path / "c", 64, None, random_weights=True)
    with pytest.raises(InputError, match="no manifest.json"):
        OnnxGenerator(tmp_path)
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(F2FError, match="CUDAExecutionProvider"):
            OnnxGenerator(tmp_path / "c", device="cuda")
    with pytest.raises(F2FError, match="cpu or cuda"):
        OnnxGenerator(tmp_path / "c", device="mps")


def test_export_from_a_weights_file(tmp_path) -> None:
    from f2fcli.model.checkpoints import CheckpointInfo, save_generator

    gen = random_generator(SEED)
    path = tmp_path / "gen.safetensors"
    save_generator(gen, path, CheckpointInfo(gen.config, 256, "none (test)", "0", "test"))
    manifest = export_onnx(tmp_path / "m", 64, path)
    assert manifest["weights"]["kind"] == "file"
    assert manifest["weights"]["path"] == str(path) and not manifest["random_weights"]
    assert manifest["verification"]["passed"]


def test_load_onnx_generator_exports_once(tmp_path) -> None:
    first = load_onnx_generator(None, 64, cache_dir=tmp_path, random_weights=True)
    stamp = os.stat(first.model_dir / DRIVE_FILE).st_mtime_ns
    second = load_onnx_generator(None, 64, cache_dir=tmp_path, random_weights=True)
    assert second.model_dir == first.model_dir
    assert os.stat(second.model_dir / DRIVE_FILE).st_mtime_ns == stamp


def test_backend_choice_and_conversions() -> None:
    assert onnx_export_available()
    assert resolve_backend("auto", "cpu") == "onnxruntime"  # measured faster on CPU
    assert resolve_backend("auto", "cpu", "bf16") == "torch"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("torch", "cpu") == "torch"
    with pytest.raises(F2FError, match="unknown backend"):
        resolve_backend("tensorrt", "cpu")
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 6, 3), dtype=np.uint8)
    arrays = images_to_array(frames)
    assert arrays.shape == (2, 3, 8, 6) and arrays.dtype == np.float32
    assert arrays.min() >= -1 and arrays.max() <= 1
    assert np.array_equal(array_to_images(arrays), frames)
