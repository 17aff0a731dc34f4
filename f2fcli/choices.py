"""The user's choices: one `Literal` type and one tuple of allowed values each.

The CLI offers these tuples (`click.Choice`) and the library checks against them, so a value
is spelled in one place. Light on purpose: importing it imports nothing heavy.
"""

from __future__ import annotations

from typing import Literal, get_args

from .errors import F2FError

ExpressionMode = Literal["hybrid", "relative", "absolute"]
EXPRESSION_MODES: tuple[ExpressionMode, ...] = get_args(ExpressionMode)
PoseMode = Literal["relative", "absolute", "off"]
POSE_MODES: tuple[PoseMode, ...] = get_args(PoseMode)
Region = Literal["all", "expression", "pose", "eyes", "lips"]
REGIONS: tuple[Region, ...] = get_args(Region)
RendererName = Literal["auto", "warp", "neural"]
RENDERERS: tuple[RendererName, ...] = get_args(RendererName)
Backend = Literal["auto", "torch", "onnxruntime"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
Device = Literal["auto", "cpu", "cuda", "mps"]  # auto: see `devices.resolve_device`
DEVICES: tuple[Device, ...] = get_args(Device)
DriverEnd = Literal["hold", "loop", "stop"]  # a driver shorter than a source video
DRIVER_ENDS: tuple[DriverEnd, ...] = get_args(DriverEnd)
Codec = Literal["auto", "libx264", "libx265", "libvpx-vp9", "png"]
CODECS: tuple[Codec, ...] = get_args(Codec)
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow"]  # x264/x265 speed presets
PRESETS: tuple[Preset, ...] = get_args(Preset)


class ChoiceError(F2FError, ValueError):
    """A value outside its choices (`field` names the option, for the CLI to name its flag)."""

    def __init__(self, field: str, value: object, allowed: tuple[str, ...]) -> None:
        super().__init__(f"unknown {field.replace('_', ' ')} {value!r}; "
                         f"choose from {', '.join(allowed)}")
        self.field = field


def check_choice(field: str, value: object, allowed: tuple[str, ...]) -> None:
    """Raise `ChoiceError` unless `value` is one of `allowed`."""
    if value not in allowed:
        raise ChoiceError(field, value, allowed)
