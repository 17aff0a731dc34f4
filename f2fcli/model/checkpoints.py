"""Generator weights: our safetensors format, and import of the official Face2FaceRHO release.

Our file: a safetensors file holding the Generator state_dict (FP32, batch norms unfolded)
and, in the safetensors metadata, one entry "f2f" with a small JSON header: format version,
architecture config, training resolution, a note on the training data, the f2f version
that wrote it and where the weights came from.

Official release: `<epoch>_rendering_net.pth` and `<epoch>_motion_net.pth`, each a bare
state_dict. Their key names are mapped onto our modules by walking our own structure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .. import __version__
from ..errors import InputError
from ..io.atomic import atomic_output
from ..io.digest import file_sha256
from .generator import Generator, GeneratorConfig, parameter_count, prepare_for_inference
from .motion import MotionNet
from .rendering import RenderingNet
from .weights_file import FORMAT, FORMAT_VERSION, HEADER_KEY, read_header

OFFICIAL_TRAINING_DATA = (
    "VoxCeleb, 512x512 crops (official Face2FaceRHO release by NetEase Games AI Lab; "
    "landmarks from their in-house 3DMM)")
_MAX_LISTED = 6


@dataclass(frozen=True)
class CheckpointInfo:
    """The JSON header of one of our weights files."""

    config: GeneratorConfig
    resolution: int
    training_data: str
    f2f_version: str
    source: str

    def to_header(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "config": self.config.to_dict(), "resolution": self.resolution,
                "training_data": self.training_data, "f2f_version": self.f2f_version,
                "source": self.source}


@dataclass
class LoadedGenerator:
    model: Generator
    info: CheckpointInfo
    path: Path


@dataclass(frozen=True)
class ImportInfo:
    """Result of `import_official`."""

    path: Path
    sha256: str
    tensors: int
    render_params: int
    motion_params: int
    resolution: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


# --- official key names ---------------------------------------------------------------------

_RENDER_GROUPS = (("encoder.enc1", "en_down_block1"), ("encoder.enc2", "en_down_block2"),
                  ("encoder.enc3", "en_down_block3"), ("encoder.enc4", "en_res_block"),
                  ("decoder.dec1", "de_res_block"), ("decoder.dec2", "de_up_block1"),
                  ("decoder.dec3", "de_up_block2"), ("decoder.dec4", "de_up_block3"))
_SPADES = (("encoder.spade1", "en_SPADE1"), ("encoder.spade2", "en_SPADE_2"),
           ("encoder.spade3", "en_SPADE_3"), ("encoder.spade4", "en_SPADE_4"),
           ("decoder.spade1", "de_SPADE_1"), ("decoder.spade2", "de_SPADE_2"),
           ("decoder.spade3", "de_SPADE_3"), ("decoder.spade4", "de_SPADE_4"))
_SPADE_PARTS = (("norm", "param_free_norm"), ("shared", "mlp_shared.0"),
                ("gamma", "mlp_gamma"), ("beta", "mlp_beta"))


def _render_modules(net: RenderingNet) -> dict[str, str]:
    """Our module name -> official module name, for every module that holds tensors."""
    names = {"encoder.stem.conv": "en_conv_block.0", "encoder.stem.bn": "en_conv_block.1",
             "decoder.head": "de_conv_block.0"}
    for ours, theirs in (("src_pose", "src_headpose_encoder"),
                         ("drv_pose", "drv_headpose_encoder")):
        names.update({f"{ours}.up1": f"{theirs}.embedding_module1.0",
                      f"{ours}.bn": f"{theirs}.embedding_module1.1",
                      f"{ours}.up2": f"{theirs}.embedding_module2.0"})
    for group, theirs in _RENDER_GROUPS:
        for s, stage in enumerate(net.get_submodule(group)):
            for b, block in enumerate(stage.blocks):
                # Official IR layers sit in one Sequential: conv, BN, ReLU per part.
                parts = ("expand", "depthwise", "project") if block.expand is not None \
                    else ("depthwise", "project")
                for j, part in enumerate(parts):
                    base = f"{theirs}.{s}.0.{b}.conv"
                    names[f"{group}.{s}.blocks.{b}.{part}.conv"] = f"{base}.{3 * j}"
                    names[f"{group}.{s}.blocks.{b}.{part}.bn"] = f"{base}.{3 * j + 1}"
    for ours, theirs in _SPADES:
        names.update({f"{ours}.{a}": f"{theirs}.{b}" for a, b in _SPADE_PARTS})
    return names


def _convnorm_names(ours: str, theirs: str) -> dict[str, str]:
    return {f"{ours}.conv": f"{theirs}.conv", f"{ours}.bn": f"{theirs}.norm"}


def _motion_modules(net: MotionNet) -> dict[str, str]:
    names = {"f1.stem.conv": "f1_model.0", "f1.stem.bn": "f1_model.1", "f1.head": "f1_motion"}
    # f1_model.2 is a ReLU; the down/up blocks follow from index 3.
    for i in range(len(net.f1.body)):
        names.update(_convnorm_names(f"f1.body.{i}", f"f1_model.{3 + i}"))
    for ours, theirs in (("f2", "model1"), ("f3", "model2")):
        names.update(_convnorm_names(f"{ours}.entry", f"{theirs}_1.0"))
        names[f"{ours}.head"] = f"{theirs}_3"
        for i in range(len(getattr(net, ours).body)):
            body, official = f"{ours}.body.{i}", f"{theirs}_2.{i}"
            names.update(_convnorm_names(body, official))
            names.update({f"{body}.conv1.conv": f"{official}.conv1",
                          f"{body}.conv1.bn": f"{official}.norm",
                          f"{body}.conv2": f"{official}.conv2"})
    return names


def official_key_map(net: nn.Module) -> dict[str, str]:
    """Official state_dict key -> our key, for a RenderingNet or a MotionNet."""
    modules = _render_modules(net) if isinstance(net, RenderingNet) else _motion_modules(net)
    mapping = {}
    for key in net.state_dict():
        module, tensor = key.rsplit(".", 1)
        mapping[f"{modules[module]}.{tensor}"] = key
    return mapping


# --- loading and checking state_dicts -------------------------------------------------------

def _listed(keys: set[str]) -> str:
    shown = sorted(keys)[:_MAX_LISTED]
    more = f" (and {len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(shown) + more


def _check_keys(name: str, what: str, got: Mapping[str, torch.Tensor],
                expected: Mapping[str, torch.Tensor], hint: str = "") -> None:
    """Raise InputError listing missing/unexpected keys and shape mismatches."""
    missing = set(expected) - set(got)
    unexpected = set(got) - set(expected)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_listed(unexpected)}")
    if not problems:
        wrong = {f"{k} {list(got[k].shape)} != {list(v.shape)}"
                 for k, v in expected.items() if got[k].shape != v.shape}
        if wrong:
            problems.append(f"{len(wrong)} tensors with the wrong shape: {_listed(wrong)}")
    if problems:
        raise InputError(f"{name} is not a {what}: " + "; ".join(problems) + hint)


def _load_pth(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles/zips
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path} is not a loadable PyTorch state_dict: {first}") from exc
    if not isinstance(data, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()):
        raise InputError(f"{path} is not a bare state_dict (name -> tensor mapping)")
    return dict(data)


def _map_official(path: Path, state: dict[str, torch.Tensor], net: nn.Module, what: str,
                  other: nn.Module, other_arg: str) -> dict[str, torch.Tensor]:
    mapping = official_key_map(net)
    ours = net.state_dict()
    expected = {k: ours[v] for k, v in mapping.items()}
    hint = ""
    if set(state) == set(official_key_map(other)):
        hint = f" (it is the {other_arg} file: are the arguments swapped?)"
    _check_keys(str(path), what, state, expected, hint)
    return {mapping[k]: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_official(render_pth: str | Path, motion_pth: str | Path,
                  config: GeneratorConfig | None = None) -> Generator:
    """Build a Generator from the official `*_rendering_net.pth` and `*_motion_net.pth`."""
    gen = Generator(config or GeneratorConfig(official_eye=True))
    render = _map_official(Path(render_pth), _load_pth(Path(render_pth)), gen.render,
                           "Face2FaceRHO rendering_net state_dict", gen.motion, "motion_net")
    motion = _map_official(Path(motion_pth), _load_pth(Path(motion_pth)), gen.motion,
                           "Face2FaceRHO motion_net state_dict", gen.render, "rendering_net")
    gen.render.load_state_dict(render, strict=True)
    gen.motion.load_state_dict(motion, strict=True)
    return gen.eval()


def save_generator(gen: Generator, path: Path, info: CheckpointInfo) -> None:
    """Write `gen`'s state_dict and header to `path` (plain write; wrap in atomic_output)."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in gen.state_dict().items()}
    save_file(tensors, str(path), metadata={HEADER_KEY: json.dumps(info.to_header())})


def import_official(render_pth: str | Path, motion_pth: str | Path, out_path: str | Path,
                    resolution: int = 512, overwrite: bool = False) -> ImportInfo:
    """Convert the official release to one of our safetensors files, written atomically."""
    gen = load_official(render_pth, motion_pth)
    sources = ", ".join(f"{Path(p).name} (sha256 {file_sha256(Path(p))[:16]})"
                        for p in (render_pth, motion_pth))
    info = CheckpointInfo(gen.config, resolution, OFFICIAL_TRAINING_DATA, __version__,
                          f"official Face2FaceRHO release: {sources}")
    with atomic_output(out_path, overwrite) as tmp:
        save_generator(gen, tmp, info)
    out = Path(out_path)
    return ImportInfo(out, file_sha256(out), len(gen.state_dict()), parameter_count(gen.render),
                      parameter_count(gen.motion), resolution)


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """The header of one of our weights files; InputError if it is not one."""
    header = read_header(path)
    try:
        return CheckpointInfo(GeneratorConfig.from_dict(header["config"]),
                              int(header["resolution"]), str(header["training_data"]),
                              str(header["f2f_version"]), str(header["source"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: bad f2f header: {exc}") from exc


def load_generator(path: str | Path, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32, fold_bn: bool = True,
                   channels_last: bool = True, use_compile: bool = False) -> LoadedGenerator:
    """Load one of our weights files for inference (see `prepare_for_inference`)."""
    path = Path(path)
    info = read_checkpoint_info(path)
    # The header's architecture is checked against the tensors the file holds before anything
    # is allocated: a small file must not make us build (and fill) a huge network.
    with torch.device("meta"):
        skeleton = Generator(info.config).state_dict()
    with safe_open(str(path), framework="pt") as handle:
        stored = {k: torch.empty(handle.get_slice(k).get_shape(), device="meta")
                  for k in handle.keys()}
    _check_keys(str(path), "weights file for the network its header declares", stored,
                skeleton)
    gen = Generator(info.config)
    with safe_open(str(path), framework="pt") as handle:
        state = {k: handle.get_tensor(k) for k in handle.keys()}
    gen.load_state_dict(state, strict=True)
    prepare_for_inference(gen, device, dtype, fold_bn, channels_last, use_compile)
    return LoadedGenerator(gen, info, path)
