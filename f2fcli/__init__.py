"""f2f: one-shot face reenactment (Face2Face^rho) for video batch pipelines.

The public API is importable from here, lazily (`import f2fcli` loads neither NumPy nor torch):

    from f2fcli import reenact, ReenactOptions, MotionOptions
    result = reenact(Path("face.jpg"), Path("talk.mp4"), Path("out.mp4"),
                     ReenactOptions(motion=MotionOptions(expression_scale=1.2)))
"""

import os
from importlib import import_module

# Before NumPy loads (when f2f is imported first): BLAS threads fight the model threads for the
# cores, which made the face-model fit 2-20x slower on small machines. A user's setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "reenact": "pipeline.runner", "ReenactOptions": "pipeline.runner",
    "ReenactResult": "pipeline.runner", "Resources": "pipeline.runner",
    "MotionOptions": "pipeline.motion", "SourceOptions": "pipeline.source",
    "Job": "pipeline.batch", "JobResult": "pipeline.batch", "read_jobs": "pipeline.batch",
    "run_batch": "pipeline.batch", "Sequential": "pipeline.batch",
    "BatchSummary": "pipeline.batch", "LocalPool": "pipeline.workers",
    "RayPool": "pipeline.ray_executor",
    "Reenactor": "pipeline.stream", "StreamSettings": "pipeline.stream",
    "track_faces": "tracking.video_track", "load_tracks": "tracking.track",
    "save_tracks": "tracking.track", "list_faces": "pipeline.faces",
    "track_video": "tracking.video_track", "TrackOptions": "tracking.video_track",
    "FaceSelection": "tracking.tracker", "Track": "tracking.track",
    "load_track": "tracking.track", "save_track": "tracking.track",
    "EncoderSettings": "io.writer",
    "F2FError": "errors", "InputError": "errors", "OutputError": "errors",
    "ExpressionMode": "choices", "PoseMode": "choices", "Region": "choices",
    "RendererName": "choices", "Backend": "choices", "Device": "choices", "Codec": "choices",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'f2fcli' has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
