"""`f2f track --preview`: the video with the model keypoints and a head-pose axis drawn on."""

from __future__ import annotations

import os
from typing import Callable

import cv2
import numpy as np

from ..geometry import rotvec_to_euler_deg
from ..io.video import VideoReader
from ..io.writer import EncoderSettings, write_video
from .face_model import project_points
from .track import Track

AXIS_COLOURS = ((230, 60, 60), (60, 200, 60), (70, 110, 255))  # x red, y green, z blue
FOUND_COLOUR = (40, 255, 120)
FILLED_COLOUR = (255, 170, 0)


def draw_overlay(image: np.ndarray, keypoints: np.ndarray, pose: np.ndarray, filled: bool
                 ) -> np.ndarray:
    """Keypoints (orange when the frame was filled, not seen) and the pose axes at the nose."""
    out = image.copy()
    size = max(image.shape[:2])
    radius = max(1, size // 300)
    colour = FILLED_COLOUR if filled else FOUND_COLOUR
    for x, y in np.round(keypoints).astype(int):
        cv2.circle(out, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)
    axes = project_points(np.vstack([np.zeros(3), 4.0 * np.eye(3)]), pose, np.zeros(3))
    origin = tuple(int(v) for v in np.round(axes[0]))
    for end, axis_colour in zip(axes[1:], AXIS_COLOURS):
        cv2.line(out, origin, tuple(int(v) for v in np.round(end)), axis_colour,
                 max(1, size // 200), cv2.LINE_AA)
    pitch, yaw, roll = rotvec_to_euler_deg(pose[:3])
    label = f"pitch {pitch:+.0f} yaw {yaw:+.0f} roll {roll:+.0f}" + (" (filled)" if filled else "")
    cv2.putText(out, label, (8, max(16, size // 30)), cv2.FONT_HERSHEY_SIMPLEX, size / 900,
                colour, max(1, size // 400), cv2.LINE_AA)
    return out


def write_preview(video: str | os.PathLike[str], track: Track, out: str | os.PathLike[str],
                  settings: EncoderSettings = EncoderSettings(), overwrite: bool = False,
                  on_frames: Callable[[int], None] = lambda n: None) -> None:
    """Re-read `video` and write it with the track drawn on, keeping its timing and audio."""
    reader = VideoReader(video)
    audio = video if reader.info.has_audio else None
    with write_video(out, reader.info.fps, settings, reader.info.time_base, audio,
                     overwrite) as writer:
        for chunk in reader.chunks(32):
            for i, image, pts in zip(chunk.indices, chunk.images, chunk.pts):
                if i < len(track):
                    image = draw_overlay(image, track.keypoints[i], track.pose[i],
                                         bool(track.filled[i]))
                writer.write(image, int(pts))
            on_frames(len(chunk))
