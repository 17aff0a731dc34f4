"""Rebuild examples/: a public-domain source photo and a driving clip made by f2f itself.

- examples/source.jpg: skimage's `astronaut` (Eileen Collins, NASA; public domain), from the
  scikit-image wheel.
- examples/driving.mp4: Grace Hopper (US Navy photo; public domain), from the matplotlib
  wheel's sample data, animated by f2f's own warp renderer with a scripted motion (head turns,
  nods, blinks, talking mouth, a smile), 25 fps, with a synthetic "speech" tone whose loudness
  follows the mouth.

Run:  pip install scikit-image matplotlib && python tools/make_example.py
"""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from f2fcli.io.image import read_image
from f2fcli.pipeline.motion import MotionOptions
from f2fcli.pipeline.runner import ReenactOptions, reenact
from f2fcli.pipeline.source import SourceOptions, load_source
from f2fcli.tracking.channels import ARKIT_NAMES
from f2fcli.tracking.face_model import FaceModel
from f2fcli.tracking.track import Track, save_track

FPS = 25
SECONDS = 4
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def scripted_motion(pose0: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Head turns/nods around `pose0`, blinks, speech-like jaw motion and a late smile."""
    t = np.arange(n) / FPS
    pose = np.tile(pose0, (n, 1)).astype(np.float64)
    pose[:, 1] += np.radians(12) * np.sin(2 * np.pi * t / 3.0)   # yaw
    pose[:, 0] += np.radians(6) * np.sin(2 * np.pi * t / 2.2)    # pitch
    pose[:, 2] += np.radians(4) * np.sin(2 * np.pi * t / 4.0)    # roll
    expression = np.zeros((n, len(ARKIT_NAMES)))
    channel = {name: i for i, name in enumerate(ARKIT_NAMES)}
    talk = np.clip(0.45 * np.abs(np.sin(2 * np.pi * t * 2.3)) * (t > 0.6), 0, 1)
    expression[:, channel["jawOpen"]] = talk
    for start in (1.2, 3.1):
        blink = np.clip(1 - np.abs(t - start) / 0.12, 0, 1)
        expression[:, channel["eyeBlinkLeft"]] = np.maximum(expression[:, channel["eyeBlinkLeft"]], blink)
        expression[:, channel["eyeBlinkRight"]] = np.maximum(expression[:, channel["eyeBlinkRight"]], blink)
    smile = np.clip((t - 2.4) / 0.5, 0, 1) * 0.7
    expression[:, channel["mouthSmileLeft"]] = smile
    expression[:, channel["mouthSmileRight"]] = smile
    return pose, expression


def add_speech_tone(video: Path, out: Path, loudness: np.ndarray) -> None:
    """Copy `video` and add an AAC track: a buzzy 140 Hz voice, loud when the mouth is open."""
    rate = 22050
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=rate, layout="mono")
        for packet in src.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                dst.mux(packet)
        total = int(len(loudness) / FPS * rate)
        t = np.arange(total) / rate
        envelope = np.interp(t, np.arange(len(loudness)) / FPS, loudness / max(loudness.max(), 1e-6))
        voice = np.sign(np.sin(2 * np.pi * 140 * t)) * 0.5 + np.sin(2 * np.pi * 280 * t) * 0.5
        samples = (0.25 * envelope * voice).astype(np.float32)
        for start in range(0, total, 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt",
                                               layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            dst.mux(aout.encode(frame))
        dst.mux(aout.encode(None))


def main() -> None:
    from matplotlib import cbook
    from skimage import data

    EXAMPLES.mkdir(exist_ok=True)
    Image.fromarray(data.astronaut()).save(EXAMPLES / "source.jpg", quality=92)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        hopper = tmp / "grace_hopper.jpg"
        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            hopper.write_bytes(handle.read())
        model = FaceModel.canonical()
        face, _ = load_source(hopper, SourceOptions(), model, None)
        n = FPS * SECONDS
        pose, expression = scripted_motion(face.pose, n)
        image = read_image(hopper)
        track = Track(pts=np.arange(n), pose=pose.astype(np.float32),
                      expression=expression.astype(np.float32),
                      keypoints=np.zeros((n, 72, 2), np.float32),
                      landmarks=np.zeros((n, 478, 3), np.float32),
                      confidence=np.ones(n, np.float32), box=np.zeros((n, 4), np.float32),
                      found=np.ones(n, bool), filled=np.zeros(n, bool),
                      identity=face.identity, identity_detail=face.identity_detail,
                      fps=Fraction(FPS), time_base=Fraction(1, FPS), width=image.shape[1],
                      height=image.shape[0], meta={"reference_frame": 0})
        save_track(track, tmp / "script.npz")
        silent = tmp / "silent.mp4"
        options = ReenactOptions(
            source=SourceOptions(res=512),
            motion=MotionOptions(expression_mode="absolute", pose_mode="absolute", ref_frame=0),
            audio="none", use_cache=False)
        reenact(hopper, tmp / "script.npz", silent, options)
        add_speech_tone(silent, EXAMPLES / "driving.mp4", expression[:, ARKIT_NAMES.index("jawOpen")])
    print(f"wrote {EXAMPLES / 'source.jpg'} and {EXAMPLES / 'driving.mp4'}")


if __name__ == "__main__":
    main()
