"""The expression channels: the ARKit blendshape vocabulary that MediaPipe's blendshape network
scores and the face model's rig shapes, in the network's order."""

from __future__ import annotations

ARKIT_NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
"""The 51 expression channels, MediaPipe blendshape order without ``_neutral``."""

N_EXPRESSION = len(ARKIT_NAMES)
BLENDSHAPE_NAMES: tuple[str, ...] = ("_neutral", *ARKIT_NAMES)  # the blendshape network's outputs
N_BLENDSHAPES = len(BLENDSHAPE_NAMES)
EXPR_INDEX: dict[str, int] = {n: i for i, n in enumerate(ARKIT_NAMES)}
GAZE_CHANNELS: tuple[int, ...] = tuple(
    i for i, n in enumerate(ARKIT_NAMES) if n.startswith("eyeLook"))
CONTACT_CHANNELS: tuple[int, ...] = tuple(EXPR_INDEX[n] for n in (
    "eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker"))
"""Channels whose absolute value matters (lids shut, lips sealed, jaw open)."""
