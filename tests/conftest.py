"""Shared fixtures and helpers: every test medium is generated here by the project's own code.

Tests never read the user's home: the whole session runs with `HOME`, `F2F_WEIGHTS_DIR` and
`F2F_CACHE_DIR` (and the XDG folders) pointed at empty temporary folders, for the library and
for the `f2f` processes the tests start.
"""

from __future__ import annotations

# f2fcli first: importing it before NumPy limits BLAS to one thread (see f2fcli/__init__.py),
# as in the `f2f` processes the tests start; the face model's identity basis depends on it.
import f2fcli  # noqa: F401  # isort: skip

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from f2fcli.io.testclip import make_clip


@pytest.fixture(scope="session", autouse=True)
def _no_user_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
            mp.setenv(name, str(home / name.lower()))
        mp.setenv("F2F_WEIGHTS_DIR", str(tmp_path_factory.mktemp("weights")))
        mp.setenv("F2F_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def ntsc_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames, 64x48, 30000/1001 fps, AAC tone."""
    path = tmp_path_factory.mktemp("media") / "ntsc.mp4"
    return make_clip(path, 60, 64, 48, Fraction(30000, 1001))


def leftover_temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if ".part" in p.name]


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two 8-bit images (over `mask` if given)."""
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    mse = d[mask].mean() if mask is not None else d.mean()
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


def f2f_script() -> str:
    """The console script installed beside this interpreter, even if the venv isn't
    activated."""
    beside = Path(sys.executable).parent / "f2f"
    return str(beside) if beside.exists() else (shutil.which("f2f") or "f2f")


def f2f(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `f2f` with `args` (the session's environment)."""
    return subprocess.run([f2f_script(), *args], capture_output=True, text=True, timeout=120)


# An interpreter in which `import torch` fails as on an install without it: the module is
# blocked, so every path that needs it meets the real ImportError.
WITHOUT_TORCH = "import sys; sys.modules['torch'] = None; from f2fcli.cli import main; main()"


def f2f_without_torch(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `f2f` with `args` as an install without PyTorch would."""
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *args], capture_output=True,
                          text=True, timeout=300)


# Randomly initialised networks for the model and weights tests; torch is imported only here.
def random_inputs(n: int, size: int, seed: int) -> tuple[object, np.ndarray, np.ndarray]:
    """Image (n, 3, size, size) tensor in [-1, 1], poses (n, 6), keypoints (n, 72, 2)."""
    import torch

    rng = np.random.default_rng(seed)
    image = torch.from_numpy(rng.uniform(-1, 1, (n, 3, size, size))).float()
    return image, rng.normal(0, 0.5, (n, 6)), rng.uniform(-0.6, 0.6, (n, 72, 2))


def calibrate(module, run):
    """Set every batch norm's running statistics of `module` (a torch module) from two
    training-mode passes of `run`, so that random weights give unit-scale activations;
    returns `module` in eval mode."""
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    module.train()
    with torch.no_grad():
        run(0)
        run(1)
    return module.eval()


def calibrated_generator(seed: int = 0, size: int = 64):
    """A randomly initialised, calibrated `f2fcli.model.generator.Generator`."""
    import torch

    from f2fcli.model.generator import Generator

    torch.manual_seed(seed)
    gen = Generator()

    def run(i: int) -> None:
        image, pose, landmarks = random_inputs(4, size, 100 * seed + i)
        gen(image, pose, landmarks, np.roll(pose, 1, 0), np.roll(landmarks, 1, 0))

    return calibrate(gen, run)


def talking_astronaut(path: Path, frames: int, cycles: int = 1) -> Path:
    """The astronaut opening and closing her mouth `cycles` times over `frames` frames at
    25 fps (drawn by the warp renderer): a generated driver whose jaw is
    sin(pi * cycles * t / (frames - 1)) ** 2 (`jaw_curve`)."""
    from skimage import data

    from f2fcli.io.writer import write_video
    from f2fcli.renderers.warp import WarpRenderer
    from f2fcli.tracking.channels import EXPR_INDEX
    from f2fcli.tracking.face_model import FaceModel, transform_points
    from f2fcli.tracking.fitting import fit_image
    from f2fcli.tracking.tracker import VideoFaceTracker

    image = data.astronaut()
    obs = VideoFaceTracker(threads=1)(image)
    model = FaceModel.canonical()
    fit = fit_image(model, obs.landmarks, obs.blendshapes)
    renderer = WarpRenderer()

    def mesh(e: np.ndarray) -> np.ndarray:
        v = model.vertices(fit.identity.s, e, fit.identity.detail)
        return transform_points(v, fit.hp[0], model.pivot)

    prepared = renderer.prepare(image, mesh(fit.expression[0]))
    with write_video(path, Fraction(25), time_base=Fraction(1, 25)) as writer:
        for t, jaw in enumerate(jaw_curve(frames, cycles)):
            e = fit.expression[0].copy()
            e[EXPR_INDEX["jawOpen"]] = jaw
            writer.write(renderer.render(prepared, mesh(e)[None])[0], t)
    return path


def jaw_curve(frames: int, cycles: int = 1) -> np.ndarray:
    """The jaw opening of `talking_astronaut`'s frames."""
    return np.sin(np.pi * cycles * np.arange(frames) / (frames - 1)) ** 2


def terminate_while_writing(args: list[str], directory: Path, timeout: float = 120
                            ) -> tuple[int, str, bool]:
    """Run `f2f args`, send SIGTERM once a temporary output appears in `directory`; the exit
    code, stderr and whether the temporary file was seen."""
    proc = subprocess.Popen([f2f_script(), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = False
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if any(".part" in p.name for p in directory.iterdir()):
            seen = True
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    _out, err = proc.communicate(timeout=120)
    return proc.returncode, err, seen
