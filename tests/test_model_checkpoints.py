"""Weights: the official Face2FaceRHO key layout, import, our safetensors format, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from test_model_generator import calibrated_generator, random_inputs

from f2fcli import __version__
from f2fcli.errors import InputError, OutputError
from f2fcli.model.checkpoints import (
    HEADER_KEY,
    CheckpointInfo,
    import_official,
    load_generator,
    load_official,
    official_key_map,
    read_checkpoint_info,
    resolve_generator_weights,
    save_generator,
)
from f2fcli.model.generator import Generator, GeneratorConfig
from f2fcli.model.rendering import RenderConfig


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def parse_listing(listing: str) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in listing.strip().splitlines():
        name, _, shape = line.partition(" ")
        shapes[name] = tuple(int(v) for v in shape.split(",")) if shape else ()
    return shapes


def official_state_dicts(gen: Generator) -> tuple[dict, dict]:
    """`gen`'s weights under the official key names (render, motion)."""
    out = []
    for net in (gen.render, gen.motion):
        ours = net.state_dict()
        out.append({k: ours[v].clone() for k, v in official_key_map(net).items()})
    return out[0], out[1]


@pytest.fixture(scope="module")
def source() -> Generator:
    return calibrated_generator(seed=3)


@pytest.fixture(scope="module")
def official_files(source: Generator, tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("official")
    render, motion = official_state_dicts(source)
    paths = directory / "105_rendering_net.pth", directory / "105_motion_net.pth"
    torch.save(render, paths[0])
    torch.save(motion, paths[1])
    return paths


def test_official_key_names_and_shapes(source: Generator) -> None:
    render, motion = official_state_dicts(source)
    assert {k: tuple(v.shape) for k, v in render.items()} == parse_listing(OFFICIAL_RENDER)
    assert {k: tuple(v.shape) for k, v in motion.items()} == parse_listing(OFFICIAL_MOTION)
    assert len(render) == 503 and len(motion) == 179


def test_import_official_round_trip(source: Generator, official_files, tmp_path: Path) -> None:
    out = tmp_path / "official.safetensors"
    info = import_official(*official_files, out)
    assert (info.path, info.tensors, info.resolution) == (out, 682, 512)
    assert (info.render_params, info.motion_params) == (4_533_456, 6_781_302)
    header = read_checkpoint_info(out)
    assert header.config == GeneratorConfig(official_eye=True)
    assert header.resolution == 512 and "VoxCeleb" in header.training_data
    assert header.f2f_version == __version__ and "105_motion_net.pth" in header.source

    plain = load_generator(out, fold_bn=False, channels_last=False).model
    ours = source.state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in plain.state_dict().items())
    image, pose, landmarks = random_inputs(1, 64, 4)
    with torch.no_grad():
        ref = load_official(*official_files)(image, pose, landmarks, pose, landmarks).image
        assert torch.equal(plain(image, pose, landmarks, pose, landmarks).image, ref)
        fast = load_generator(out).model  # folded, channels-last
        out_fast = fast(image, pose, landmarks, pose, landmarks).image
    assert (out_fast - ref).abs().mean() < 1e-3

    with pytest.raises(OutputError, match="exists"):
        import_official(*official_files, out)
    import_official(*official_files, out, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_forward_uses_every_official_tensor(official_files) -> None:
    gen = load_official(*official_files)
    image, pose, landmarks = random_inputs(1, 64, 8)
    drv_pose, drv_landmarks = pose[:, ::-1], landmarks[:, ::-1]
    source_side = ("src_headpose_encoder.", "en_")

    def run(encode: bool, cached: list) -> torch.Tensor:
        if encode or not cached:
            cached[:] = [gen.encode_source(image, pose, landmarks)]
        return gen.drive(cached[0], drv_pose, drv_landmarks)

    cached: list = []
    unused = []
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        base = run(True, cached)
        for net in (gen.render, gen.motion):
            state = net.state_dict()  # shares storage with the module
            for official, ours in official_key_map(net).items():
                if official.endswith("num_batches_tracked"):
                    continue  # a training counter: no effect on an eval-mode forward
                tensor = state[ours]
                saved = tensor.clone()
                if official.endswith("running_var"):
                    tensor.mul_(2.0)
                else:
                    noise = torch.randn(tensor.shape, generator=generator)
                    tensor.add_(noise * (0.5 * tensor.std(unbiased=False) + 0.1))
                encode = net is gen.render and official.startswith(source_side)
                if torch.equal(run(encode, cached), base):
                    unused.append(official)
                tensor.copy_(saved)
                if encode:
                    cached.clear()
    assert not unused, unused


def _write(tmp_path: Path, render: dict, motion: dict) -> tuple[Path, Path]:
    paths = tmp_path / "r.pth", tmp_path / "m.pth"
    torch.save(render, paths[0])
    torch.save(motion, paths[1])
    return paths


def _message(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_official_import_errors(source: Generator, official_files, tmp_path: Path) -> None:
    render, motion = official_state_dicts(source)
    out = tmp_path / "x.safetensors"

    broken = dict(render)
    del broken["de_SPADE_4.mlp_beta.bias"]
    broken["extra.weight"] = torch.zeros(1)
    with pytest.raises(InputError) as excinfo:
        import_official(*_write(tmp_path, broken, motion), out)
    message = _message(excinfo)
    assert "1 missing keys: de_SPADE_4.mlp_beta.bias" in message
    assert "1 unexpected keys: extra.weight" in message

    broken = dict(motion)
    broken["f1_motion.weight"] = torch.zeros(2, 64, 1, 1)
    with pytest.raises(InputError) as excinfo:
        import_official(*_write(tmp_path, render, broken), out)
    assert "f1_motion.weight [2, 64, 1, 1] != [2, 64, 3, 3]" in _message(excinfo)

    with pytest.raises(InputError) as excinfo:
        import_official(official_files[1], official_files[0], out)
    assert "swapped" in _message(excinfo)

    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(InputError, match="bare state_dict"):
        import_official(tmp_path / "list.pth", official_files[1], out)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError) as excinfo:
        import_official(tmp_path / "junk.pth", official_files[1], out)
    assert "not a loadable PyTorch state_dict" in _message(excinfo)
    with pytest.raises(InputError, match="no such file"):
        import_official(tmp_path / "missing.pth", official_files[1], out)
    assert not out.exists()


def test_own_format_round_trip_and_errors(tmp_path: Path) -> None:
    config = GeneratorConfig(RenderConfig(pose_ngf=4))
    gen = Generator(config)
    info = CheckpointInfo(config, 256, "none (test)", __version__, "test")
    path = tmp_path / "small.safetensors"
    save_generator(gen, path, info)
    assert read_checkpoint_info(path) == info
    loaded = load_generator(path, fold_bn=False, channels_last=False)
    assert loaded.info == info and loaded.model.config == config

    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="not a safetensors file"):
        read_checkpoint_info(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(InputError, match="no f2f header"):
        read_checkpoint_info(tmp_path / "bare.safetensors")
    header = {**info.to_header(), "format_version": 99}
    save_file({"x": torch.zeros(1)}, str(tmp_path / "v99.safetensors"),
              metadata={HEADER_KEY: json.dumps(header)})
    with pytest.raises(InputError, match="format version 99"):
        read_checkpoint_info(tmp_path / "v99.safetensors")
    header = {**info.to_header(), "format_version": 1}
    save_file({"x": torch.zeros(1)}, str(tmp_path / "empty.safetensors"),
              metadata={HEADER_KEY: json.dumps(header)})
    with pytest.raises(InputError) as excinfo:
        load_generator(tmp_path / "empty.safetensors")
    assert "missing keys" in _message(excinfo) and "unexpected keys: x" in _message(excinfo)


def test_no_weights_error_says_none_ship(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("F2F_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "unrelated.safetensors").write_bytes(b"junk")
    with pytest.raises(InputError) as excinfo:
        resolve_generator_weights()
    message = _message(excinfo)
    assert "ships none" in message and "import-official" in message and str(tmp_path) in message
    config = GeneratorConfig()
    save_generator(Generator(config), tmp_path / "mine.safetensors",
                   CheckpointInfo(config, 512, "test", __version__, "test"))
    assert resolve_generator_weights() == tmp_path / "mine.safetensors"
    assert resolve_generator_weights("given.safetensors") == Path("given.safetensors")


# Every state_dict key and shape of the official networks (default configuration), from
# the design notes (f2f_state_dict.tsv): "name dims" per line; no dims = a 0-d tensor.
OFFICIAL_RENDER = """
src_headpose_encoder.embedding_module1.0.weight 6,64,4,4
src_headpose_encoder.embedding_module1.1.weight 64
src_headpose_encoder.embedding_module1.1.bias 64
src_headpose_encoder.embedding_module1.1.running_mean 64
src_headpose_encoder.embedding_module1.1.running_var 64
src_headpose_encoder.embedding_module1.1.num_batches_tracked
src_headpose_encoder.embedding_module2.0.weight 64,32,4,4
drv_headpose_encoder.embedding_module1.0.weight 6,64,4,4
drv_headpose_encoder.embedding_module1.1.weight 64
drv_headpose_encoder.embedding_module1.1.bias 64
drv_headpose_encoder.embedding_module1.1.running_mean 64
drv_headpose_encoder.embedding_module1.1.running_var 64
drv_headpose_encoder.embedding_module1.1.num_batches_tracked
drv_headpose_encoder.embedding_module2.0.weight 64,32,4,4
en_conv_block.0.weight 16,3,3,3
en_conv_block.1.weight 16
en_conv_block.1.bias 16
en_conv_block.1.running_mean 16
en_conv_block.1.running_var 16
en_conv_block.1.num_batches_tracked
en_down_block1.0.0.0.conv.0.weight 16,1,3,3
en_down_block1.0.0.0.conv.1.weight 16
en_down_block1.0.0.0.conv.1.bias 16
en_down_block1.0.0.0.conv.1.running_mean 16
en_down_block1.0.0.0.conv.1.running_var 16
en_down_block1.0.0.0.conv.1.num_batches_tracked
en_down_block1.0.0.0.conv.3.weight 8,16,1,1
en_down_block1.0.0.0.conv.4.weight 8
en_down_block1.0.0.0.conv.4.bias 8
en_down_block1.0.0.0.conv.4.running_mean 8
en_down_block1.0.0.0.conv.4.running_var 8
en_down_block1.0.0.0.conv.4.num_batches_tracked
en_down_block1.1.0.0.conv.0.weight 48,8,1,1
en_down_block1.1.0.0.conv.1.weight 48
en_down_block1.1.0.0.conv.1.bias 48
en_down_block1.1.0.0.conv.1.running_mean 48
en_down_block1.1.0.0.conv.1.running_var 48
en_down_block1.1.0.0.conv.1.num_batches_tracked
en_down_block1.1.0.0.conv.3.weight 48,1,3,3
en_down_block1.1.0.0.conv.4.weight 48
en_down_block1.1.0.0.conv.4.bias 48
en_down_block1.1.0.0.conv.4.running_mean 48
en_down_block1.1.0.0.conv.4.running_var 48
en_down_block1.1.0.0.conv.4.num_batches_tracked
en_down_block1.1.0.0.conv.6.weight 12,48,1,1
en_down_block1.1.0.0.conv.7.weight 12
en_down_block1.1.0.0.conv.7.bias 12
en_down_block1.1.0.0.conv.7.running_mean 12
en_down_block1.1.0.0.conv.7.running_var 12
en_down_block1.1.0.0.conv.7.num_batches_tracked
en_down_block1.1.0.1.conv.0.weight 72,12,1,1
en_down_block1.1.0.1.conv.1.weight 72
en_down_block1.1.0.1.conv.1.bias 72
en_down_block1.1.0.1.conv.1.running_mean 72
en_down_block1.1.0.1.conv.1.running_var 72
en_down_block1.1.0.1.conv.1.num_batches_tracked
en_down_block1.1.0.1.conv.3.weight 72,1,3,3
en_down_block1.1.0.1.conv.4.weight 72
en_down_block1.1.0.1.conv.4.bias 72
en_down_block1.1.0.1.conv.4.running_mean 72
en_down_block1.1.0.1.conv.4.running_var 72
en_down_block1.1.0.1.conv.4.num_batches_tracked
en_down_block1.1.0.1.conv.6.weight 12,72,1,1
en_down_block1.1.0.1.conv.7.weight 12
en_down_block1.1.0.1.conv.7.bias 12
en_down_block1.1.0.1.conv.7.running_mean 12
en_down_block1.1.0.1.conv.7.running_var 12
en_down_block1.1.0.1.conv.7.num_batches_tracked
en_down_block1.2.0.0.conv.0.weight 72,12,1,1
en_down_block1.2.0.0.conv.1.weight 72
en_down_block1.2.0.0.conv.1.bias 72
en_down_block1.2.0.0.conv.1.running_mean 72
en_down_block1.2.0.0.conv.1.running_var 72
en_down_block1.2.0.0.conv.1.num_batches_tracked
en_down_block1.2.0.0.conv.3.weight 72,1,3,3
en_down_block1.2.0.0.conv.4.weight 72
en_down_block1.2.0.0.conv.4.bias 72
en_down_block1.2.0.0.conv.4.running_mean 72
en_down_block1.2.0.0.conv.4.running_var 72
en_down_block1.2.0.0.conv.4.num_batches_tracked
en_down_block1.2.0.0.conv.6.weight 28,72,1,1
en_down_block1.2.0.0.conv.7.weight 28
en_down_block1.2.0.0.conv.7.bias 28
en_down_block1.2.0.0.conv.7.running_mean 28
en_down_block1.2.0.0.conv.7.running_var 28
en_down_block1.2.0.0.conv.7.num_batches_tracked
en_down_block1.2.0.1.conv.0.weight 168,28,1,1
en_down_block1.2.0.1.conv.1.weight 168
en_down_block1.2.0.1.conv.1.bias 168
en_down_block1.2.0.1.conv.1.running_mean 168
en_down_block1.2.0.1.conv.1.running_var 168
en_down_block1.2.0.1.conv.1.num_batches_tracked
en_down_block1.2.0.1.conv.3.weight 168,1,3,3
en_down_block1.2.0.1.conv.4.weight 168
en_down_block1.2.0.1.conv.4.bias 168
en_down_block1.2.0.1.conv.4.running_mean 168
en_down_block1.2.0.1.conv.4.running_var 168
en_down_block1.2.0.1.conv.4.num_batches_tracked
en_down_block1.2.0.1.conv.6.weight 28,168,1,1
en_down_block1.2.0.1.conv.7.weight 28
en_down_block1.2.0.1.conv.7.bias 28
en_down_block1.2.0.1.conv.7.running_mean 28
en_down_block1.2.0.1.conv.7.running_var 28
en_down_block1.2.0.1.conv.7.num_batches_tracked
en_SPADE1.param_free_norm.running_mean 28
en_SPADE1.param_free_norm.running_var 28
en_SPADE1.param_free_norm.num_batches_tracked
en_SPADE1.mlp_shared.0.weight 64,32,3,3
en_SPADE1.mlp_shared.0.bias 64
en_SPADE1.mlp_gamma.weight 28,64,3,3
en_SPADE1.mlp_gamma.bias 28
en_SPADE1.mlp_beta.weight 28,64,3,3
en_SPADE1.mlp_beta.bias 28
en_down_block2.0.0.0.conv.0.weight 168,28,1,1
en_down_block2.0.0.0.conv.1.weight 168
en_down_block2.0.0.0.conv.1.bias 168
en_down_block2.0.0.0.conv.1.running_mean 168
en_down_block2.0.0.0.conv.1.running_var 168
en_down_block2.0.0.0.conv.1.num_batches_tracked
en_down_block2.0.0.0.conv.3.weight 168,1,3,3
en_down_block2.0.0.0.conv.4.weight 168
en_down_block2.0.0.0.conv.4.bias 168
en_down_block2.0.0.0.conv.4.running_mean 168
en_down_block2.0.0.0.conv.4.running_var 168
en_down_block2.0.0.0.conv.4.num_batches_tracked
en_down_block2.0.0.0.conv.6.weight 64,168,1,1
en_down_block2.0.0.0.conv.7.weight 64
en_down_block2.0.0.0.conv.7.bias 64
en_down_block2.0.0.0.conv.7.running_mean 64
en_down_block2.0.0.0.conv.7.running_var 64
en_down_block2.0.0.0.conv.7.num_batches_tracked
en_down_block2.0.0.1.conv.0.weight 384,64,1,1
en_down_block2.0.0.1.conv.1.weight 384
en_down_block2.0.0.1.conv.1.bias 384
en_down_block2.0.0.1.conv.1.running_mean 384
en_down_block2.0.0.1.conv.1.running_var 384
en_down_block2.0.0.1.conv.1.num_batches_tracked
en_down_block2.0.0.1.conv.3.weight 384,1,3,3
en_down_block2.0.0.1.conv.4.weight 384
en_down_block2.0.0.1.conv.4.bias 384
en_down_block2.0.0.1.conv.4.running_mean 384
en_down_block2.0.0.1.conv.4.running_var 384
en_down_block2.0.0.1.conv.4.num_batches_tracked
en_down_block2.0.0.1.conv.6.weight 64,384,1,1
en_down_block2.0.0.1.conv.7.weight 64
en_down_block2.0.0.1.conv.7.bias 64
en_down_block2.0.0.1.conv.7.running_mean 64
en_down_block2.0.0.1.conv.7.running_var 64
en_down_block2.0.0.1.conv.7.num_batches_tracked
en_down_block2.1.0.0.conv.0.weight 384,64,1,1
en_down_block2.1.0.0.conv.1.weight 384
en_down_block2.1.0.0.conv.1.bias 384
en_down_block2.1.0.0.conv.1.running_mean 384
en_down_block2.1.0.0.conv.1.running_var 384
en_down_block2.1.0.0.conv.1.num_batches_tracked
en_down_block2.1.0.0.conv.3.weight 384,1,3,3
en_down_block2.1.0.0.conv.4.weight 384
en_down_block2.1.0.0.conv.4.bias 384
en_down_block2.1.0.0.conv.4.running_mean 384
en_down_block2.1.0.0.conv.4.running_var 384
en_down_block2.1.0.0.conv.4.num_batches_tracked
en_down_block2.1.0.0.conv.6.weight 72,384,1,1
en_down_block2.1.0.0.conv.7.weight 72
en_down_block2.1.0.0.conv.7.bias 72
en_down_block2.1.0.0.conv.7.running_mean 72
en_down_block2.1.0.0.conv.7.running_var 72
en_down_block2.1.0.0.conv.7.num_batches_tracked
en_down_block2.1.0.1.conv.0.weight 432,72,1,1
en_down_block2.1.0.1.conv.1.weight 432
en_down_block2.1.0.1.conv.1.bias 432
en_down_block2.1.0.1.conv.1.running_mean 432
en_down_block2.1.0.1.conv.1.running_var 432
en_down_block2.1.0.1.conv.1.num_batches_tracked
en_down_block2.1.0.1.conv.3.weight 432,1,3,3
en_down_block2.1.0.1.conv.4.weight 432
en_down_block2.1.0.1.conv.4.bias 432
en_down_block2.1.0.1.conv.4.running_mean 432
en_down_block2.1.0.1.conv.4.running_var 432
en_down_block2.1.0.1.conv.4.num_batches_tracked
en_down_block2.1.0.1.conv.6.weight 72,432,1,1
en_down_block2.1.0.1.conv.7.weight 72
en_down_block2.1.0.1.conv.7.bias 72
en_down_block2.1.0.1.conv.7.running_mean 72
en_down_block2.1.0.1.conv.7.running_var 72
en_down_block2.1.0.1.conv.7.num_batches_tracked
en_SPADE_2.param_free_norm.running_mean 72
en_SPADE_2.param_free_norm.running_var 72
en_SPADE_2.param_free_norm.num_batches_tracked
en_SPADE_2.mlp_shared.0.weight 64,32,3,3
en_SPADE_2.mlp_shared.0.bias 64
en_SPADE_2.mlp_gamma.weight 72,64,3,3
en_SPADE_2.mlp_gamma.bias 72
en_SPADE_2.mlp_beta.weight 72,64,3,3
en_SPADE_2.mlp_beta.bias 72
en_down_block3.0.0.0.conv.0.weight 432,72,1,1
en_down_block3.0.0.0.conv.1.weight 432
en_down_block3.0.0.0.conv.1.bias 432
en_down_block3.0.0.0.conv.1.running_mean 432
en_down_block3.0.0.0.conv.1.running_var 432
en_down_block3.0.0.0.conv.1.num_batches_tracked
en_down_block3.0.0.0.conv.3.weight 432,1,3,3
en_down_block3.0.0.0.conv.4.weight 432
en_down_block3.0.0.0.conv.4.bias 432
en_down_block3.0.0.0.conv.4.running_mean 432
en_down_block3.0.0.0.conv.4.running_var 432
en_down_block3.0.0.0.conv.4.num_batches_tracked
en_down_block3.0.0.0.conv.6.weight 140,432,1,1
en_down_block3.0.0.0.conv.7.weight 140
en_down_block3.0.0.0.conv.7.bias 140
en_down_block3.0.0.0.conv.7.running_mean 140
en_down_block3.0.0.0.conv.7.running_var 140
en_down_block3.0.0.0.conv.7.num_batches_tracked
en_down_block3.0.0.1.conv.0.weight 840,140,1,1
en_down_block3.0.0.1.conv.1.weight 840
en_down_block3.0.0.1.conv.1.bias 840
en_down_block3.0.0.1.conv.1.running_mean 840
en_down_block3.0.0.1.conv.1.running_var 840
en_down_block3.0.0.1.conv.1.num_batches_tracked
en_down_block3.0.0.1.conv.3.weight 840,1,3,3
en_down_block3.0.0.1.conv.4.weight 840
en_down_block3.0.0.1.conv.4.bias 840
en_down_block3.0.0.1.conv.4.running_mean 840
en_down_block3.0.0.1.conv.4.running_var 840
en_down_block3.0.0.1.conv.4.num_batches_tracked
en_down_block3.0.0.1.conv.6.weight 140,840,1,1
en_down_block3.0.0.1.conv.7.weight 140
en_down_block3.0.0.1.conv.7.bias 140
en_down_block3.0.0.1.conv.7.running_mean 140
en_down_block3.0.0.1.conv.7.running_var 140
en_down_block3.0.0.1.conv.7.num_batches_tracked
en_SPADE_3.param_free_norm.running_mean 140
en_SPADE_3.param_free_norm.running_var 140
en_SPADE_3.param_free_norm.num_batches_tracked
en_SPADE_3.mlp_shared.0.weight 64,32,3,3
en_SPADE_3.mlp_shared.0.bias 64
en_SPADE_3.mlp_gamma.weight 140,64,3,3
en_SPADE_3.mlp_gamma.bias 140
en_SPADE_3.mlp_beta.weight 140,64,3,3
en_SPADE_3.mlp_beta.bias 140
en_res_block.0.0.0.conv.0.weight 840,140,1,1
en_res_block.0.0.0.conv.1.weight 840
en_res_block.0.0.0.conv.1.bias 840
en_res_block.0.0.0.conv.1.running_mean 840
en_res_block.0.0.0.conv.1.running_var 840
en_res_block.0.0.0.conv.1.num_batches_tracked
en_res_block.0.0.0.conv.3.weight 840,1,3,3
en_res_block.0.0.0.conv.4.weight 840
en_res_block.0.0.0.conv.4.bias 840
en_res_block.0.0.0.conv.4.running_mean 840
en_res_block.0.0.0.conv.4.running_var 840
en_res_block.0.0.0.conv.4.num_batches_tracked
en_res_block.0.0.0.conv.6.weight 280,840,1,1
en_SPADE_4.param_free_norm.running_mean 280
en_SPADE_4.param_free_norm.running_var 280
en_SPADE_4.param_free_norm.num_batches_tracked
en_SPADE_4.mlp_shared.0.weight 64,32,3,3
en_SPADE_4.mlp_shared.0.bias 64
en_SPADE_4.mlp_gamma.weight 280,64,3,3
en_SPADE_4.mlp_gamma.bias 280
en_SPADE_4.mlp_beta.weight 280,64,3,3
en_SPADE_4.mlp_beta.bias 280
de_SPADE_1.param_free_norm.running_mean 280
de_SPADE_1.param_free_norm.running_var 280
de_SPADE_1.param_free_norm.num_batches_tracked
de_SPADE_1.mlp_shared.0.weight 64,32,3,3
de_SPADE_1.mlp_shared.0.bias 64
de_SPADE_1.mlp_gamma.weight 280,64,3,3
de_SPADE_1.mlp_gamma.bias 280
de_SPADE_1.mlp_beta.weight 280,64,3,3
de_SPADE_1.mlp_beta.bias 280
de_res_block.0.0.0.conv.0.weight 1680,280,1,1
de_res_block.0.0.0.conv.1.weight 1680
de_res_block.0.0.0.conv.1.bias 1680
de_res_block.0.0.0.conv.1.running_mean 1680
de_res_block.0.0.0.conv.1.running_var 1680
de_res_block.0.0.0.conv.1.num_batches_tracked
de_res_block.0.0.0.conv.3.weight 1680,1,3,3
de_res_block.0.0.0.conv.4.weight 1680
de_res_block.0.0.0.conv.4.bias 1680
de_res_block.0.0.0.conv.4.running_mean 1680
de_res_block.0.0.0.conv.4.running_var 1680
de_res_block.0.0.0.conv.4.num_batches_tracked
de_res_block.0.0.0.conv.6.weight 140,1680,1,1
de_SPADE_2.param_free_norm.running_mean 280
de_SPADE_2.param_free_norm.running_var 280
de_SPADE_2.param_free_norm.num_batches_tracked
de_SPADE_2.mlp_shared.0.weight 64,32,3,3
de_SPADE_2.mlp_shared.0.bias 64
de_SPADE_2.mlp_gamma.weight 280,64,3,3
de_SPADE_2.mlp_gamma.bias 280
de_SPADE_2.mlp_beta.weight 280,64,3,3
de_SPADE_2.mlp_beta.bias 280
de_up_block1.0.0.0.conv.0.weight 1680,280,1,1
de_up_block1.0.0.0.conv.1.weight 1680
de_up_block1.0.0.0.conv.1.bias 1680
de_up_block1.0.0.0.conv.1.running_mean 1680
de_up_block1.0.0.0.conv.1.running_var 1680
de_up_block1.0.0.0.conv.1.num_batches_tracked
de_up_block1.0.0.0.conv.3.weight 1680,1,3,3
de_up_block1.0.0.0.conv.4.weight 1680
de_up_block1.0.0.0.conv.4.bias 1680
de_up_block1.0.0.0.conv.4.running_mean 1680
de_up_block1.0.0.0.conv.4.running_var 1680
de_up_block1.0.0.0.conv.4.num_batches_tracked
de_up_block1.0.0.0.conv.6.weight 96,1680,1,1
de_up_block1.0.0.0.conv.7.weight 96
de_up_block1.0.0.0.conv.7.bias 96
de_up_block1.0.0.0.conv.7.running_mean 96
de_up_block1.0.0.0.conv.7.running_var 96
de_up_block1.0.0.0.conv.7.num_batches_tracked
de_up_block1.0.0.1.conv.0.weight 576,96,1,1
de_up_block1.0.0.1.conv.1.weight 576
de_up_block1.0.0.1.conv.1.bias 576
de_up_block1.0.0.1.conv.1.running_mean 576
de_up_block1.0.0.1.conv.1.running_var 576
de_up_block1.0.0.1.conv.1.num_batches_tracked
de_up_block1.0.0.1.conv.3.weight 576,1,3,3
de_up_block1.0.0.1.conv.4.weight 576
de_up_block1.0.0.1.conv.4.bias 576
de_up_block1.0.0.1.conv.4.running_mean 576
de_up_block1.0.0.1.conv.4.running_var 576
de_up_block1.0.0.1.conv.4.num_batches_tracked
de_up_block1.0.0.1.conv.6.weight 96,576,1,1
de_up_block1.0.0.1.conv.7.weight 96
de_up_block1.0.0.1.conv.7.bias 96
de_up_block1.0.0.1.conv.7.running_mean 96
de_up_block1.0.0.1.conv.7.running_var 96
de_up_block1.0.0.1.conv.7.num_batches_tracked
de_SPADE_3.param_free_norm.running_mean 168
de_SPADE_3.param_free_norm.running_var 168
de_SPADE_3.param_free_norm.num_batches_tracked
de_SPADE_3.mlp_shared.0.weight 64,32,3,3
de_SPADE_3.mlp_shared.0.bias 64
de_SPADE_3.mlp_gamma.weight 168,64,3,3
de_SPADE_3.mlp_gamma.bias 168
de_SPADE_3.mlp_beta.weight 168,64,3,3
de_SPADE_3.mlp_beta.bias 168
de_up_block2.0.0.0.conv.0.weight 1008,168,1,1
de_up_block2.0.0.0.conv.1.weight 1008
de_up_block2.0.0.0.conv.1.bias 1008
de_up_block2.0.0.0.conv.1.running_mean 1008
de_up_block2.0.0.0.conv.1.running_var 1008
de_up_block2.0.0.0.conv.1.num_batches_tracked
de_up_block2.0.0.0.conv.3.weight 1008,1,3,3
de_up_block2.0.0.0.conv.4.weight 1008
de_up_block2.0.0.0.conv.4.bias 1008
de_up_block2.0.0.0.conv.4.running_mean 1008
de_up_block2.0.0.0.conv.4.running_var 1008
de_up_block2.0.0.0.conv.4.num_batches_tracked
de_up_block2.0.0.0.conv.6.weight 64,1008,1,1
de_up_block2.0.0.0.conv.7.weight 64
de_up_block2.0.0.0.conv.7.bias 64
de_up_block2.0.0.0.conv.7.running_mean 64
de_up_block2.0.0.0.conv.7.running_var 64
de_up_block2.0.0.0.conv.7.num_batches_tracked
de_up_block2.0.0.1.conv.0.weight 384,64,1,1
de_up_block2.0.0.1.conv.1.weight 384
de_up_block2.0.0.1.conv.1.bias 384
de_up_block2.0.0.1.conv.1.running_mean 384
de_up_block2.0.0.1.conv.1.running_var 384
de_up_block2.0.0.1.conv.1.num_batches_tracked
de_up_block2.0.0.1.conv.3.weight 384,1,3,3
de_up_block2.0.0.1.conv.4.weight 384
de_up_block2.0.0.1.conv.4.bias 384
de_up_block2.0.0.1.conv.4.running_mean 384
de_up_block2.0.0.1.conv.4.running_var 384
de_up_block2.0.0.1.conv.4.num_batches_tracked
de_up_block2.0.0.1.conv.6.weight 64,384,1,1
de_up_block2.0.0.1.conv.7.weight 64
de_up_block2.0.0.1.conv.7.bias 64
de_up_block2.0.0.1.conv.7.running_mean 64
de_up_block2.0.0.1.conv.7.running_var 64
de_up_block2.0.0.1.conv.7.num_batches_tracked
de_up_block2.1.0.0.conv.0.weight 384,64,1,1
de_up_block2.1.0.0.conv.1.weight 384
de_up_block2.1.0.0.conv.1.bias 384
de_up_block2.1.0.0.conv.1.running_mean 384
de_up_block2.1.0.0.conv.1.running_var 384
de_up_block2.1.0.0.conv.1.num_batches_tracked
de_up_block2.1.0.0.conv.3.weight 384,1,3,3
de_up_block2.1.0.0.conv.4.weight 384
de_up_block2.1.0.0.conv.4.bias 384
de_up_block2.1.0.0.conv.4.running_mean 384
de_up_block2.1.0.0.conv.4.running_var 384
de_up_block2.1.0.0.conv.4.num_batches_tracked
de_up_block2.1.0.0.conv.6.weight 24,384,1,1
de_up_block2.1.0.0.conv.7.weight 24
de_up_block2.1.0.0.conv.7.bias 24
de_up_block2.1.0.0.conv.7.running_mean 24
de_up_block2.1.0.0.conv.7.running_var 24
de_up_block2.1.0.0.conv.7.num_batches_tracked
de_up_block2.1.0.1.conv.0.weight 144,24,1,1
de_up_block2.1.0.1.conv.1.weight 144
de_up_block2.1.0.1.conv.1.bias 144
de_up_block2.1.0.1.conv.1.running_mean 144
de_up_block2.1.0.1.conv.1.running_var 144
de_up_block2.1.0.1.conv.1.num_batches_tracked
de_up_block2.1.0.1.conv.3.weight 144,1,3,3
de_up_block2.1.0.1.conv.4.weight 144
de_up_block2.1.0.1.conv.4.bias 144
de_up_block2.1.0.1.conv.4.running_mean 144
de_up_block2.1.0.1.conv.4.running_var 144
de_up_block2.1.0.1.conv.4.num_batches_tracked
de_up_block2.1.0.1.conv.6.weight 24,144,1,1
de_up_block2.1.0.1.conv.7.weight 24
de_up_block2.1.0.1.conv.7.bias 24
de_up_block2.1.0.1.conv.7.running_mean 24
de_up_block2.1.0.1.conv.7.running_var 24
de_up_block2.1.0.1.conv.7.num_batches_tracked
de_SPADE_4.param_free_norm.running_mean 52
de_SPADE_4.param_free_norm.running_var 52
de_SPADE_4.param_free_norm.num_batches_tracked
de_SPADE_4.mlp_shared.0.weight 64,32,3,3
de_SPADE_4.mlp_shared.0.bias 64
de_SPADE_4.mlp_gamma.weight 52,64,3,3
de_SPADE_4.mlp_gamma.bias 52
de_SPADE_4.mlp_beta.weight 52,64,3,3
de_SPADE_4.mlp_beta.bias 52
de_up_block3.0.0.0.conv.0.weight 312,52,1,1
de_up_block3.0.0.0.conv.1.weight 312
de_up_block3.0.0.0.conv.1.bias 312
de_up_block3.0.0.0.conv.1.running_mean 312
de_up_block3.0.0.0.conv.1.running_var 312
de_up_block3.0.0.0.conv.1.num_batches_tracked
de_up_block3.0.0.0.conv.3.weight 312,1,3,3
de_up_block3.0.0.0.conv.4.weight 312
de_up_block3.0.0.0.conv.4.bias 312
de_up_block3.0.0.0.conv.4.running_mean 312
de_up_block3.0.0.0.conv.4.running_var 312
de_up_block3.0.0.0.conv.4.num_batches_tracked
de_up_block3.0.0.0.conv.6.weight 14,312,1,1
de_up_block3.0.0.0.conv.7.weight 14
de_up_block3.0.0.0.conv.7.bias 14
de_up_block3.0.0.0.conv.7.running_mean 14
de_up_block3.0.0.0.conv.7.running_var 14
de_up_block3.0.0.0.conv.7.num_batches_tracked
de_up_block3.0.0.1.conv.0.weight 84,14,1,1
de_up_block3.0.0.1.conv.1.weight 84
de_up_block3.0.0.1.conv.1.bias 84
de_up_block3.0.0.1.conv.1.running_mean 84
de_up_block3.0.0.1.conv.1.running_var 84
de_up_block3.0.0.1.conv.1.num_batches_tracked
de_up_block3.0.0.1.conv.3.weight 84,1,3,3
de_up_block3.0.0.1.conv.4.weight 84
de_up_block3.0.0.1.conv.4.bias 84
de_up_block3.0.0.1.conv.4.running_mean 84
de_up_block3.0.0.1.conv.4.running_var 84
de_up_block3.0.0.1.conv.4.num_batches_tracked
de_up_block3.0.0.1.conv.6.weight 14,84,1,1
de_up_block3.0.0.1.conv.7.weight 14
de_up_block3.0.0.1.conv.7.bias 14
de_up_block3.0.0.1.conv.7.running_mean 14
de_up_block3.0.0.1.conv.7.running_var 14
de_up_block3.0.0.1.conv.7.num_batches_tracked
de_up_block3.1.0.0.conv.0.weight 84,14,1,1
de_up_block3.1.0.0.conv.1.weight 84
de_up_block3.1.0.0.conv.1.bias 84
de_up_block3.1.0.0.conv.1.running_mean 84
de_up_block3.1.0.0.conv.1.running_var 84
de_up_block3.1.0.0.conv.1.num_batches_tracked
de_up_block3.1.0.0.conv.3.weight 84,1,3,3
de_up_block3.1.0.0.conv.4.weight 84
de_up_block3.1.0.0.conv.4.bias 84
de_up_block3.1.0.0.conv.4.running_mean 84
de_up_block3.1.0.0.conv.4.running_var 84
de_up_block3.1.0.0.conv.4.num_batches_tracked
de_up_block3.1.0.0.conv.6.weight 8,84,1,1
de_up_block3.1.0.0.conv.7.weight 8
de_up_block3.1.0.0.conv.7.bias 8
de_up_block3.1.0.0.conv.7.running_mean 8
de_up_block3.1.0.0.conv.7.running_var 8
de_up_block3.1.0.0.conv.7.num_batches_tracked
de_up_block3.1.0.1.conv.0.weight 48,8,1,1
de_up_block3.1.0.1.conv.1.weight 48
de_up_block3.1.0.1.conv.1.bias 48
de_up_block3.1.0.1.conv.1.running_mean 48
de_up_block3.1.0.1.conv.1.running_var 48
de_up_block3.1.0.1.conv.1.num_batches_tracked
de_up_block3.1.0.1.conv.3.weight 48,1,3,3
de_up_block3.1.0.1.conv.4.weight 48
de_up_block3.1.0.1.conv.4.bias 48
de_up_block3.1.0.1.conv.4.running_mean 48
de_up_block3.1.0.1.conv.4.running_var 48
de_up_block3.1.0.1.conv.4.num_batches_tracked
de_up_block3.1.0.1.conv.6.weight 8,48,1,1
de_up_block3.1.0.1.conv.7.weight 8
de_up_block3.1.0.1.conv.7.bias 8
de_up_block3.1.0.1.conv.7.running_mean 8
de_up_block3.1.0.1.conv.7.running_var 8
de_up_block3.1.0.1.conv.7.num_batches_tracked
de_up_block3.2.0.0.conv.0.weight 8,1,3,3
de_up_block3.2.0.0.conv.1.weight 8
de_up_block3.2.0.0.conv.1.bias 8
de_up_block3.2.0.0.conv.1.running_mean 8
de_up_block3.2.0.0.conv.1.running_var 8
de_up_block3.2.0.0.conv.1.num_batches_tracked
de_up_block3.2.0.0.conv.3.weight 16,8,1,1
de_up_block3.2.0.0.conv.4.weight 16
de_up_block3.2.0.0.conv.4.bias 16
de_up_block3.2.0.0.conv.4.running_mean 16
de_up_block3.2.0.0.conv.4.running_var 16
de_up_block3.2.0.0.conv.4.num_batches_tracked
de_conv_block.0.weight 3,16,3,3
"""

OFFICIAL_MOTION = """
f1_model.0.weight 64,9,3,3
f1_model.0.bias 64
f1_model.1.weight 64
f1_model.1.bias 64
f1_model.1.running_mean 64
f1_model.1.running_var 64
f1_model.1.num_batches_tracked
f1_model.3.conv.weight 128,64,4,4
f1_model.3.conv.bias 128
f1_model.3.norm.weight 128
f1_model.3.norm.bias 128
f1_model.3.norm.running_mean 128
f1_model.3.norm.running_var 128
f1_model.3.norm.num_batches_tracked
f1_model.4.conv.weight 256,128,4,4
f1_model.4.conv.bias 256
f1_model.4.norm.weight 256
f1_model.4.norm.bias 256
f1_model.4.norm.running_mean 256
f1_model.4.norm.running_var 256
f1_model.4.norm.num_batches_tracked
f1_model.5.conv.weight 128,256,3,3
f1_model.5.conv.bias 128
f1_model.5.norm.weight 128
f1_model.5.norm.bias 128
f1_model.5.norm.running_mean 128
f1_model.5.norm.running_var 128
f1_model.5.norm.num_batches_tracked
f1_model.6.conv.weight 64,128,3,3
f1_model.6.conv.bias 64
f1_model.6.norm.weight 64
f1_model.6.norm.bias 64
f1_model.6.norm.running_mean 64
f1_model.6.norm.running_var 64
f1_model.6.norm.num_batches_tracked
f1_motion.weight 2,64,3,3
f1_motion.bias 2
model1_1.0.conv.weight 64,9,4,4
model1_1.0.conv.bias 64
model1_1.0.norm.weight 64
model1_1.0.norm.bias 64
model1_1.0.norm.running_mean 64
model1_1.0.norm.running_var 64
model1_1.0.norm.num_batches_tracked
model1_2.0.conv.weight 128,64,4,4
model1_2.0.conv.bias 128
model1_2.0.norm.weight 128
model1_2.0.norm.bias 128
model1_2.0.norm.running_mean 128
model1_2.0.norm.running_var 128
model1_2.0.norm.num_batches_tracked
model1_2.1.conv.weight 256,128,4,4
model1_2.1.conv.bias 256
model1_2.1.norm.weight 256
model1_2.1.norm.bias 256
model1_2.1.norm.running_mean 256
model1_2.1.norm.running_var 256
model1_2.1.norm.num_batches_tracked
model1_2.2.conv1.weight 256,256,3,3
model1_2.2.conv1.bias 256
model1_2.2.conv2.weight 256,256,3,3
model1_2.2.conv2.bias 256
model1_2.2.norm.weight 256
model1_2.2.norm.bias 256
model1_2.2.norm.running_mean 256
model1_2.2.norm.running_var 256
model1_2.2.norm.num_batches_tracked
model1_2.3.conv1.weight 256,256,3,3
model1_2.3.conv1.bias 256
model1_2.3.conv2.weight 256,256,3,3
model1_2.3.conv2.bias 256
model1_2.3.norm.weight 256
model1_2.3.norm.bias 256
model1_2.3.norm.running_mean 256
model1_2.3.norm.running_var 256
model1_2.3.norm.num_batches_tracked
model1_2.4.conv1.weight 256,256,3,3
model1_2.4.conv1.bias 256
model1_2.4.conv2.weight 256,256,3,3
model1_2.4.conv2.bias 256
model1_2.4.norm.weight 256
model1_2.4.norm.bias 256
model1_2.4.norm.running_mean 256
model1_2.4.norm.running_var 256
model1_2.4.norm.num_batches_tracked
model1_2.5.conv.weight 128,256,3,3
model1_2.5.conv.bias 128
model1_2.5.norm.weight 128
model1_2.5.norm.bias 128
model1_2.5.norm.running_mean 128
model1_2.5.norm.running_var 128
model1_2.5.norm.num_batches_tracked
model1_2.6.conv.weight 64,128,3,3
model1_2.6.conv.bias 64
model1_2.6.norm.weight 64
model1_2.6.norm.bias 64
model1_2.6.norm.running_mean 64
model1_2.6.norm.running_var 64
model1_2.6.norm.num_batches_tracked
model1_2.7.conv.weight 32,64,3,3
model1_2.7.conv.bias 32
model1_2.7.norm.weight 32
model1_2.7.norm.bias 32
model1_2.7.norm.running_mean 32
model1_2.7.norm.running_var 32
model1_2.7.norm.num_batches_tracked
model1_3.weight 2,32,3,3
model1_3.bias 2
model2_1.0.conv.weight 32,9,4,4
model2_1.0.conv.bias 32
model2_1.0.norm.weight 32
model2_1.0.norm.bias 32
model2_1.0.norm.running_mean 32
model2_1.0.norm.running_var 32
model2_1.0.norm.num_batches_tracked
model2_2.0.conv.weight 64,32,4,4
model2_2.0.conv.bias 64
model2_2.0.norm.weight 64
model2_2.0.norm.bias 64
model2_2.0.norm.running_mean 64
model2_2.0.norm.running_var 64
model2_2.0.norm.num_batches_tracked
model2_2.1.conv.weight 128,64,4,4
model2_2.1.conv.bias 128
model2_2.1.norm.weight 128
model2_2.1.norm.bias 128
model2_2.1.norm.running_mean 128
model2_2.1.norm.running_var 128
model2_2.1.norm.num_batches_tracked
model2_2.2.conv1.weight 128,128,3,3
model2_2.2.conv1.bias 128
model2_2.2.conv2.weight 128,128,3,3
model2_2.2.conv2.bias 128
model2_2.2.norm.weight 128
model2_2.2.norm.bias 128
model2_2.2.norm.running_mean 128
model2_2.2.norm.running_var 128
model2_2.2.norm.num_batches_tracked
model2_2.3.conv1.weight 128,128,3,3
model2_2.3.conv1.bias 128
model2_2.3.conv2.weight 128,128,3,3
model2_2.3.conv2.bias 128
model2_2.3.norm.weight 128
model2_2.3.norm.bias 128
model2_2.3.norm.running_mean 128
model2_2.3.norm.running_var 128
model2_2.3.norm.num_batches_tracked
model2_2.4.conv1.weight 128,128,3,3
model2_2.4.conv1.bias 128
model2_2.4.conv2.weight 128,128,3,3
model2_2.4.conv2.bias 128
model2_2.4.norm.weight 128
model2_2.4.norm.bias 128
model2_2.4.norm.running_mean 128
model2_2.4.norm.running_var 128
model2_2.4.norm.num_batches_tracked
model2_2.5.conv.weight 64,128,3,3
model2_2.5.conv.bias 64
model2_2.5.norm.weight 64
model2_2.5.norm.bias 64
model2_2.5.norm.running_mean 64
model2_2.5.norm.running_var 64
model2_2.5.norm.num_batches_tracked
model2_2.6.conv.weight 32,64,3,3
model2_2.6.conv.bias 32
model2_2.6.norm.weight 32
model2_2.6.norm.bias 32
model2_2.6.norm.running_mean 32
model2_2.6.norm.running_var 32
model2_2.6.norm.num_batches_tracked
model2_2.7.conv.weight 16,32,3,3
model2_2.7.conv.bias 16
model2_2.7.norm.weight 16
model2_2.7.norm.bias 16
model2_2.7.norm.running_mean 16
model2_2.7.norm.running_var 16
model2_2.7.norm.num_batches_tracked
model2_3.weight 2,16,3,3
model2_3.bias 2
"""
