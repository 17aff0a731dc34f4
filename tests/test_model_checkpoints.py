"""Weights: the official Face2FaceRHO key layout, import, our safetensors format, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import calibrated_generator, random_inputs
from safetensors.torch import save_file

from f2fcli import __version__
from f2fcli.errors import InputError, OutputError
from f2fcli.model.checkpoints import (HEADER_KEY, CheckpointInfo, import_official, load_generator,
                                      load_official, official_key_map, read_checkpoint_info,
                                      save_generator)
from f2fcli.model.generator import Generator, GeneratorConfig
from f2fcli.model.rendering import RenderConfig
from f2fcli.model.weights_file import resolve_generator_weights


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


DATA = Path(__file__).parent / "data"


def parse_listing(path: Path) -> dict[str, tuple[int, ...]]:
    """`name dims` per line of `path` (`#` comments), dims comma-separated."""
    shapes = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
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
    assert {k: tuple(v.shape) for k, v in render.items()} == parse_listing(
        DATA / "official_rendering_net.txt")
    assert {k: tuple(v.shape) for k, v in motion.items()} == parse_listing(
        DATA / "official_motion_net.txt")
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



def test_a_small_file_declaring_a_huge_network_is_refused_before_building_it(
        tmp_path: Path) -> None:
    import time

    import psutil

    config = GeneratorConfig()
    wide = {**config.to_dict()}
    wide["render"] = {**wide["render"],
                      "encoder_channels": [16, 8, 12, 28, 64, 72, 140, 280 * 400],
                      "decoder_channels": [16, 8, 14, 24, 64, 96, 140, 280 * 400]}
    info = CheckpointInfo(config, 512, "test", __version__, "test").to_header()
    info["config"] = wide
    path = tmp_path / "tiny.safetensors"
    save_file({"x": torch.zeros(4)}, str(path), metadata={HEADER_KEY: json.dumps(info)})
    assert path.stat().st_size < 2000
    before, start = psutil.Process().memory_info().rss, time.perf_counter()
    with pytest.raises(InputError, match="network its header declares"):
        load_generator(path)
    assert time.perf_counter() - start < 10
    assert psutil.Process().memory_info().rss - before < 300e6  # nothing the size of it built
