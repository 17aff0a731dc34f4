"""The `f2f` command line: parses options, calls the library, prints results."""

from __future__ import annotations

import re
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from . import __version__
from .choices import (BACKENDS, CODECS, DEVICES, DRIVER_ENDS, EXPRESSION_MODES, POSE_MODES, PRESETS,
                      REGIONS, RENDERERS, ChoiceError)
from .console import Reporter
from .errors import EXIT_FAILURE, EXIT_INTERRUPTED, F2FError, InputError, Terminated
from .extras import require_torch

if TYPE_CHECKING:
    from .pipeline.runner import ReenactOptions


@dataclass
class OutputSettings:
    json_mode: bool = False
    verbosity: int = 0

    def reporter(self) -> Reporter:
        return Reporter(verbosity=self.verbosity, json_mode=self.json_mode, wording=as_flags)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(OutputSettings).json_mode = True


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(OutputSettings).verbosity = -1


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        ctx.ensure_object(OutputSettings).verbosity = value


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--json/-q/-v, accepted before or after the subcommand name."""
    func = click.option("-v", "--verbose", count=True, expose_value=False, callback=_set_verbose,
                        help="More log output on stderr.")(func)
    func = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_set_quiet,
                        help="Only errors on stderr; no progress bars.")(func)
    func = click.option("--json", "json_mode", is_flag=True, expose_value=False,
                        callback=_set_json,
                        help="Print the result as JSON on stdout (logs stay on stderr).")(func)
    return func


@contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM (`timeout`, Slurm, `docker stop`) raises `Terminated` in the main thread, so the
    command unwinds as for Ctrl-C: temporary outputs removed, one line, exit 143. The CLI owns
    the process; the library never installs handlers."""
    def stop(signum: int, frame: object) -> None:
        raise Terminated()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class F2FGroup(click.Group):
    """Turns library errors into one-line messages and documented exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _terminate_on_sigterm():
                return super().invoke(ctx)
        except F2FError as exc:
            _fail(ctx, str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", EXIT_INTERRUPTED)
        except Terminated:
            _fail(ctx, "terminated", Terminated.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
            if _reporter_of(ctx).verbosity >= 1:
                traceback.print_exc()
            _fail(ctx, f"internal error: {type(exc).__name__}: {exc} (run with -v for details)",
                  EXIT_FAILURE)


def _fail(ctx: click.Context, message: str, code: int) -> None:
    """One `error:` line on stderr (and with --json, the error as JSON on stdout); exit."""
    reporter = _reporter_of(ctx)
    reporter.error(message)
    if reporter.json_mode:
        reporter.result({"error": reporter.wording(message), "exit_code": code})
    ctx.exit(code)


_FIELD = re.compile(r"`([a-z][a-z0-9_]*)`")


@lru_cache(maxsize=1)
def _option_flags(command: click.Command) -> dict[str, str]:
    """Every option's name -> its long flag, over the whole command tree (built once)."""
    flags: dict[str, str] = {}
    stack = [command]
    while stack:
        cmd = stack.pop()
        for param in cmd.params:
            long = [o for o in param.opts if o.startswith("--")]
            if isinstance(param, click.Option) and long:
                flags.setdefault(param.name or "", long[0])
        if isinstance(cmd, click.Group):
            stack.extend(cmd.commands.values())
    return flags


def as_flags(message: str) -> str:
    """A library message with the option fields it names (`face_box`) shown as the command
    line's flags (--face-box): the library speaks of its options, the CLI of its flags."""
    flags = _option_flags(main)
    return _FIELD.sub(lambda m: flags.get(m.group(1), m.group(0)), message)


def _reporter_of(ctx: click.Context) -> Reporter:
    return ctx.ensure_object(OutputSettings).reporter()


@click.group(cls=F2FGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="f2f")
@output_options
@click.pass_context
def main(ctx: click.Context) -> None:
    """f2f: one-shot face reenactment (Face2Face^rho) for video pipelines.

    Exit codes: 0 success, 1 bad input or processing failure, 2 usage error, 130 interrupted.
    """
    ctx.ensure_object(OutputSettings)


@main.command()
@output_options
@click.pass_context
def info(ctx: click.Context) -> None:
    """Versions, devices, encoders and model files of this installation."""
    from .info import format_info, system_info

    data = system_info()
    _reporter_of(ctx).result(data, format_info(data))


@main.command(short_help="Size, exact fps, time base and frame count of a video.")
@click.argument("video", type=click.Path(dir_okay=False, path_type=str))
@click.option("--count", is_flag=True, help="Decode every frame to count them exactly.")
@output_options
@click.pass_context
def probe(ctx: click.Context, video: str, count: bool) -> None:
    """What a video file declares: size, exact fps, time base, frames, rotation, audio."""
    from .io.video import VideoReader

    reader = VideoReader(video)
    data = reader.info.to_dict()
    if count:
        data["decoded_frames"] = sum(1 for _ in reader.frames())
        data["truncated"] = reader.truncated
    human = "\n".join(f"{key:<18} {value}" for key, value in data.items())
    _reporter_of(ctx).result(data, human)


def _floats(text: str, count: int, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count:
        raise click.BadParameter(f"expected {count} comma-separated numbers", param_hint=name)
    return values


def encoder_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--codec/--crf/--preset for commands that write video."""
    func = click.option("--preset", default="medium", show_default=True,
                        type=click.Choice(PRESETS), help="x264/x265 speed preset.")(func)
    func = click.option("--crf", type=click.IntRange(0, 63), default=None,
                        help="Quality (lower is better); default 18 x264, 22 x265, 32 VP9.")(func)
    func = click.option("--codec", default="auto", show_default=True,
                        type=click.Choice(CODECS),
                        help="Video codec; auto: VP9 for .webm, PNG frames for a name "
                             "without suffix (a directory), else H.264.")(func)
    return func


@main.command()
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "--out", "output",
              type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Track file to write [default: VIDEO.track.npz beside the video].")
@click.option("--preview", type=click.Path(path_type=Path), default=None,
              help="Also write the video with keypoints and pose axes drawn on.")
@click.option("--face-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which face to follow when several are visible (0 = largest).")
@click.option("--face-box", default=None, metavar="X,Y,W,H",
              help="Follow the face that best overlaps this box (first-frame pixels).")
@click.option("--smooth", default=None, metavar="SIGMA_T,SIGMA_R",
              help="Bilateral filter: time sigma in frames, expression range sigma "
                   "(pose range sigmas scale with it) [default: 2,0.1].")
@click.option("--no-smooth", is_flag=True, help="Keep the raw per-frame fit.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="onnxruntime threads per model [default: 1, or $F2F_ORT_THREADS].")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--list-faces", is_flag=True,
              help="Only list the faces of VIDEO (or a photo) with their numbers, as "
                   "`f2f reenact --faces/--face-map` count them, and boxes; write nothing.")
@encoder_options
@output_options
@click.pass_context
def track(ctx: click.Context, video: Path, output: Path | None, preview: Path | None,
          face_index: int, face_box: str | None, smooth: str | None, no_smooth: bool,
          threads: int | None, overwrite: bool, list_faces: bool, codec: str,
          crf: int | None, preset: str) -> None:
    """Track the face in VIDEO and fit the 3D face model to every frame.

    Writes a track file (pose, expression, 72 keypoints per frame; identity per video)
    that `f2f reenact --driving` accepts instead of a video.
    """
    if list_faces:
        _list_faces(ctx, video)
        return
    from .io.atomic import check_output_path
    from .io.video import VideoReader
    from .io.writer import EncoderSettings
    from .tracking.preview import write_preview
    from .tracking.track import save_track
    from .tracking.tracker import FaceSelection
    from .tracking.video_track import (DEFAULT_SMOOTHING, TrackOptions, smoothing_from_sigmas,
                                       track_video)

    if smooth and no_smooth:
        raise click.UsageError("--smooth and --no-smooth exclude each other")
    smoothing = DEFAULT_SMOOTHING
    if no_smooth:
        smoothing = None
    elif smooth:
        try:
            smoothing = smoothing_from_sigmas(*_floats(smooth, 2, "--smooth"))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--smooth") from exc
    box = _floats(face_box, 4, "--face-box") if face_box else None
    output = output or video.with_name(video.name.rsplit(".", 1)[0] + ".track.npz")
    settings = EncoderSettings(codec=codec, crf=crf, preset=preset)
    check_output_path(output, overwrite)
    if preview is not None:
        settings.validate_for(preview)
        check_output_path(preview, overwrite)

    reporter = _reporter_of(ctx)
    reader = VideoReader(video)
    options = TrackOptions(selection=FaceSelection(index=face_index, box=box),
                           smoothing=smoothing, threads=threads)
    with reporter.progress("tracking", reader.info.frame_count) as bar:
        result, stats = track_video(video, options, bar.advance, reader=reader)
    if reader.truncated:
        reporter.warn(f"{video} is cut short ({reader.truncation_reason}); tracked the "
                      f"{len(result)} frames it has")
    save_track(result, output, overwrite)
    reporter.debug(f"time: {stats.to_dict()['seconds']}")
    if preview is not None:
        with reporter.progress("preview", reader.info.frame_count) as bar:
            write_preview(video, result, preview, settings, overwrite, bar.advance)
    data = {"track": str(output), "preview": str(preview) if preview else None,
            **result.summary(), **stats.to_dict(),
            "reference_frame": result.meta["reference_frame"]}
    human = (f"{output}: {stats.frames} frames, face found in {stats.faces_found} "
             f"({stats.frames - stats.faces_found} filled), {stats.detections} detector runs, "
             f"{stats.fps:.1f} frames/s")
    if preview is not None:
        human += f"\npreview: {preview}"
    _reporter_of(ctx).result(data, human)


def _list_faces(ctx: click.Context, path: Path) -> None:
    """`f2f track --list-faces`: the faces of a photo or video, numbered."""
    from .io.image import is_image_path
    from .io.video import VideoReader
    from .pipeline.faces import list_faces

    reporter = _reporter_of(ctx)
    if is_image_path(path):
        faces = list_faces(path)
    else:
        with reporter.progress("finding faces", VideoReader(path).info.frame_count) as bar:
            faces = list_faces(path, bar.advance)
    lines = [f"face {f.number}: box {','.join(f'{v:.0f}' for v in f.box)}"
             + ("" if is_image_path(path) else
                f" (from frame {f.first_frame}, in {f.frames} frames)") for f in faces]
    reporter.result({"source": str(path), "faces": [f.to_dict() for f in faces]},
                    "\n".join(lines))


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter("expected WIDTHxHEIGHT, e.g. 1280x720",
                                 param_hint="--output-size") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise click.BadParameter("sizes must be within 16..8192", param_hint="--output-size")
    return width, height


def reenact_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `reenact` and `batch` (batch rows may override them per job)."""
    options = [
        click.option("--renderer", type=click.Choice(RENDERERS), default="auto",
                     show_default=True,
                     help="auto = neural when weights are available, else warp (training-free)."),
        click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Neural renderer weights (.safetensors)."),
        click.option("--res", type=click.IntRange(256, 2048), default=512, show_default=True,
                     help="Face crop resolution the renderer works at."),
        click.option("--crop-scale", type=click.FloatRange(1.2, 4.0), default=2.0,
                     show_default=True, help="Crop side as a multiple of the face size."),
        click.option("--output-size", default=None, metavar="WxH",
                     help="Resize output frames [default: the source image's size]."),
        click.option("--no-paste-back", is_flag=True,
                     help="Output the rendered face crop instead of the full source image."),
        click.option("--expression-mode", type=click.Choice(EXPRESSION_MODES),
                     default="hybrid", show_default=True,
                     help="Expression transfer (hybrid: relative; lids, jaw, lips close fully)."),
        click.option("--pose-mode", type=click.Choice(POSE_MODES), default=None,
                     help="Head-pose transfer [default: relative for a photo source, off (its "
                          "own motion) for a video source]."),
        click.option("--expression-scale", type=click.FloatRange(0.0, 3.0), default=1.0,
                     show_default=True, help="Exaggerate (>1) or damp (<1) expressions."),
        click.option("--region", type=click.Choice(REGIONS),
                     default="all", show_default=True, help="Which parts follow the driver."),
        click.option("--ref-frame", type=click.IntRange(min=0), default=None,
                     help="Driver frame taken as neutral [default: chosen automatically]."),
        click.option("--no-retarget", is_flag=True,
                     help="Transfer the fitted expression coefficients as they are, instead of "
                          "solving for the source expression that reads as the driver's."),
        click.option("--no-residual", is_flag=True,
                     help="Move the source only by the face model, without the part of the "
                          "driver's observed mesh motion that the model's rig misses."),
        click.option("--pose-smoothing", type=click.FloatRange(0.0, 10.0), default=2.0,
                     show_default=True,
                     help="Widest Gaussian (frames) over the driven head pose; it narrows where "
                          "the head turns round (0 = off)."),
        click.option("--face-index", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Source face when several are visible (0 = largest)."),
        click.option("--face-box", default=None, metavar="X,Y,W,H",
                     help="Source face that best overlaps this box."),
        click.option("--faces", default=None, metavar="all|N,M",
                     help="Move these source faces with the driver: all, or numbers counted "
                          "left to right (`f2f track --list-faces SOURCE` shows them) "
                          "[default: the one face --face-index/--face-box picks]."),
        click.option("--face-map", default=None, metavar="N=DRIVER,...",
                     help="Give source faces drivers of their own, e.g. 0=a.mp4,2=b.mp4 "
                          "(--driving is then optional); faces without a driver stay as "
                          "they are."),
        click.option("--batch-size", type=click.IntRange(1, 256), default=8, show_default=True,
                     help="Frames rendered per chunk."),
        click.option("--device", type=click.Choice(DEVICES), default="auto",
                     show_default=True,
                     help="Device of the neural renderer; auto: CUDA, then MPS, then the CPU "
                          "(the warp renderer runs on the CPU)."),
        click.option("--fp16", is_flag=True, help="Half precision (neural renderer on GPU)."),
        click.option("--backend", type=click.Choice(BACKENDS),
                     default="auto", show_default=True,
                     help="Neural renderer runtime; auto = onnxruntime for FP32 on CPU."),
        click.option("--audio", default="auto", show_default=True,
                     metavar="auto|source|driving|none|PATH",
                     help="Audio of the output; auto: a video source's, else the driver's."),
        click.option("--driver-end", type=click.Choice(DRIVER_ENDS), default="hold",
                     show_default=True,
                     help="A video source longer than the driver: hold the driver's last "
                          "frame, loop it, or stop the output with it."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Source cache [default: $F2F_CACHE_DIR or the user cache dir]."),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the source cache."),
        click.option("--frames", type=click.IntRange(min=1), default=None,
                     help="With an image as the driver and a video output: the clip's length "
                          "in frames (25 fps) [default: 1]."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output."),
    ]
    for option in reversed(options):
        func = option(func)
    return encoder_options(func)


def build_reenact_options(params: dict[str, Any], base: Path = Path()) -> "ReenactOptions":
    """ReenactOptions from the CLI's (or a batch row's) parameter values; a face map's
    relative paths are taken against `base`."""
    from .io.writer import EncoderSettings
    from .pipeline.faces import parse_face_map, parse_faces
    from .pipeline.motion import MotionOptions
    from .pipeline.runner import ReenactOptions
    from .pipeline.source import SourceOptions
    from .tracking.tracker import FaceSelection

    box = _floats(params["face_box"], 4, "--face-box") if params.get("face_box") else None
    try:
        motion = MotionOptions(expression_mode=params["expression_mode"],
                               pose_mode=params["pose_mode"],
                               expression_scale=float(params["expression_scale"]),
                               region=params["region"], ref_frame=params["ref_frame"],
                               retarget=not params["no_retarget"],
                               residual=not params["no_residual"],
                               pose_sigma=float(params["pose_smoothing"]))
    except ChoiceError as exc:  # a batch row's value (the command line's are checked by click)
        raise click.BadParameter(str(exc), param_hint=as_flags(f"`{exc.field}`")) from exc
    try:
        faces = parse_faces(params.get("faces"))
        face_map = parse_face_map(params.get("face_map"), base)
    except ValueError as exc:
        raise click.BadParameter(as_flags(str(exc))) from exc
    return ReenactOptions(
        source=SourceOptions(crop_scale=float(params["crop_scale"]), res=int(params["res"]),
                             selection=FaceSelection(index=int(params["face_index"]), box=box)),
        motion=motion,
        renderer=params["renderer"],
        weights=Path(params["weights"]) if params.get("weights") else None,
        device=params["device"],
        fp16=bool(params["fp16"]),
        backend=params["backend"],
        batch_size=int(params["batch_size"]),
        paste_back=not params["no_paste_back"],
        output_size=_size(params.get("output_size")),
        audio=params["audio"],
        encoder=EncoderSettings(codec=params["codec"], crf=params["crf"], preset=params["preset"]),
        overwrite=bool(params["overwrite"]),
        cache_dir=Path(params["cache_dir"]) if params.get("cache_dir") else None,
        use_cache=not params["no_cache"],
        frames=params.get("frames"),
        driver_end=params.get("driver_end") or "hold",
        faces=faces,
        face_map=face_map,
    )


@main.command(short_help="Animate a photo with the motion of a driving video.")
@click.option("-s", "--source", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Photo (or video) of the person to animate.")
@click.option("-d", "--driving", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Driving video, an image (its expression), or a track file from `f2f track` "
                   "(required unless --face-map gives the drivers).")
@click.option("-o", "--out", "--output", "out", type=click.Path(path_type=Path), required=True,
              help="Output video (or a directory with --codec png; an image such as out.png "
                   "with an image driver).")
@reenact_options
@output_options
@click.pass_context
def reenact(ctx: click.Context, source: Path, driving: Path | None, out: Path,
            **params: Any) -> None:
    """Animate the face in SOURCE with the head pose and expressions of DRIVING.

    The output has the driving video's exact frame rate, frame count and timestamps, and its
    audio (unless --audio says otherwise). A video as SOURCE keeps its own timing, audio and
    head motion and takes the driver's expressions. Several faces: --faces all, or
    --face-map 0=a.mp4,1=b.mp4 for a driver each.
    """
    from .pipeline.runner import reenact as run_reenact

    if driving is None and not params.get("face_map"):
        raise click.UsageError("Missing option '-d' / '--driving' (or --face-map).")
    reporter = _reporter_of(ctx)
    result = run_reenact(source, driving, out, build_reenact_options(params), reporter)
    data = result.to_dict()
    human = (f"{out}: {result.frames} frames at {data['fps']} fps, renderer {result.renderer}, "
             f"{data['throughput_fps']} frames/s"
             + (", source from cache" if result.cache_hit else ""))
    reporter.result(data, human)


@main.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--skip-existing", is_flag=True, help="Skip jobs whose output exists (resume).")
@click.option("--shard", default=None, metavar="I/N|slurm",
              help="Run only jobs with index % N == I (0-based); slurm: I and N from the "
                   "Slurm array's SLURM_ARRAY_TASK_ID/_MIN/_COUNT (any base).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes on this machine, each loading the models once "
                   "[default: 1]; with --ray, actors [default: as many as the CPUs allow].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="onnxruntime threads per model in each worker [default: 1].")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]",
              help="Run on Ray: no value starts Ray on this machine, auto joins this "
                   "machine's cluster, else the cluster's address (needs the ray extra; "
                   "write it after MANIFEST, or it takes MANIFEST as its address).")
@click.option("--job-cpus", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="CPUs each Ray worker reserves (fractions allowed).")
@click.option("--job-gpus", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="GPUs each Ray worker reserves (fractions allowed).")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --ray: tries again a job that failed for a reason other than its "
                   "input (an internal error, a lost worker).")
@click.option("--merge", "merge_dir", type=click.Path(file_okay=False, exists=True,
                                                      path_type=Path), default=None,
              help="Merge the --json reports (*.jsonl, *.json) of a sharded run in DIR into "
                   "one report; runs no job.")
@reenact_options
@output_options
@click.pass_context
def batch(ctx: click.Context, manifest: Path | None, skip_existing: bool, shard: str | None,
          workers: int | None, threads: int | None, ray_address: str | None,
          job_cpus: float, job_gpus: float, retries: int, merge_dir: Path | None,
          **params: Any) -> None:
    """Run the reenactment jobs of a CSV manifest: in this process, in --workers N
    processes, or on a Ray cluster (--ray).

    Columns: source, driving, out (relative paths are relative to the manifest), plus any
    `f2f reenact` option as an extra column (e.g. res, expression_scale, renderer) that
    overrides the command-line value for that job. Each distinct driving video is tracked
    once and shared by the jobs that use it. Keeps going past failed jobs; exits 1 if any
    job failed.
    """
    from .pipeline.batch import Sequential, parse_shard, read_jobs, run_batch

    reporter = _reporter_of(ctx)
    if merge_dir is not None:
        _merge_reports(ctx, merge_dir)
        return
    if manifest is None:
        raise click.UsageError("Missing argument 'MANIFEST' (or --merge DIR).")
    jobs = read_jobs(manifest)
    known = {p.name: p for p in reenact.params}
    unknown = sorted({k for job in jobs for k in job.options} - set(known))
    if unknown:
        raise InputError(f"{manifest}: unknown option column(s): {', '.join(unknown)}")
    if shard is not None:
        try:
            index, count = parse_shard(shard)
        except ValueError as exc:
            raise click.BadParameter(as_flags(str(exc)), param_hint="--shard") from exc
        jobs = [job for job in jobs if job.index % count == index]

    def options_for(job: Any) -> "ReenactOptions":
        merged = dict(params)
        try:
            for name, value in job.options.items():
                merged[name] = known[name].type_cast_value(ctx, value)
            # a row's face map names files beside the manifest, like its other paths
            return build_reenact_options(merged, manifest.resolve().parent
                                         if "face_map" in job.options else Path())
        except click.BadParameter as exc:
            raise F2FError(f"job {job.index}: {exc.format_message()}") from exc

    def report(result: Any) -> None:
        line = f"job {result.index} {result.status}: {result.out}"
        if result.error:
            result.error = as_flags(result.error)  # also in the JSON line
            line += f" ({result.error})"
        if reporter.json_mode:
            reporter.result(result.to_dict())
        elif result.status == "failed":
            reporter.error(line)
        else:
            reporter.info(line)

    if ray_address is not None:
        from .pipeline.ray_executor import RayPool

        executor: Any = RayPool(ray_address, workers, job_cpus, job_gpus, retries, threads)
    elif workers is not None and workers > 1:
        from .pipeline.workers import LocalPool

        executor = LocalPool(workers, threads)
    else:
        executor = Sequential(reporter)
    with reporter.progress("jobs", len(jobs)) as bar:
        summary = run_batch(jobs, options_for, skip_existing, report, executor, bar)
    data = summary.to_dict()
    reporter.result({"summary": data},
                    f"{summary.jobs} jobs: {summary.ok} ok, {summary.failed} failed, "
                    f"{summary.skipped} skipped; {summary.drivers_tracked} driving videos "
                    f"tracked ({summary.executor}, {summary.workers} workers)")
    if summary.failed:
        ctx.exit(EXIT_FAILURE)


def _merge_reports(ctx: click.Context, directory: Path) -> None:
    """`f2f batch --merge DIR`: one report from the shards' JSON lines."""
    from .pipeline.batch import merge_reports

    reporter = _reporter_of(ctx)
    lines, summary = merge_reports(directory)
    if reporter.json_mode:
        for line in lines:
            reporter.result(line)
    else:
        for line in lines:
            if line["status"] == "failed":
                reporter.error(f"job {line['job']} failed: {line['out']} ({line['error']})")
    reporter.result({"summary": summary},
                    f"{summary['jobs']} jobs from {summary['reports']} reports: "
                    f"{summary['ok']} ok, {summary['failed']} failed, "
                    f"{summary['skipped']} skipped")
    if summary["failed"]:
        ctx.exit(EXIT_FAILURE)


@main.group()
def weights() -> None:
    """Generator weights: import the official release into f2f's format."""


@weights.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("-o", "--output", "--out", "output",
              type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .safetensors file `f2f reenact --weights` takes.")
@click.option("--step", type=int, default=None, help="Checkpoint step [default: the latest].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@output_options
@click.pass_context
def weights_export(ctx: click.Context, run_dir: Path, output: Path, step: int | None,
                   overwrite: bool) -> None:
    """Export the generator of a training run directory."""
    require_torch("`f2f weights export`")
    from .train.checkpoint import export_weights

    result = export_weights(run_dir, output, overwrite, step)
    _reporter_of(ctx).result(result.to_dict(), f"{result.path}: step {result.step}, "
                                               f"{result.resolution}px")


@weights.command("import-official")
@click.argument("render_pth", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("motion_pth", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("-o", "--output", "--out", "output",
              type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .safetensors file to write.")
@click.option("--res", type=click.IntRange(256, 2048), default=512, show_default=True,
              help="Resolution the weights were trained at (recorded in the header).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@output_options
@click.pass_context
def weights_import_official(ctx: click.Context, render_pth: Path, motion_pth: Path,
                            output: Path, res: int, overwrite: bool) -> None:
    """Convert the official Face2FaceRHO RENDER_PTH and MOTION_PTH into one safetensors file.

    The .pth files are read with torch.load(weights_only=True): nothing is unpickled.
    """
    require_torch("`f2f weights import-official`")
    from .model.checkpoints import import_official

    info = import_official(render_pth, motion_pth, output, resolution=res, overwrite=overwrite)
    _reporter_of(ctx).result(info.to_dict(), f"{info.path}: {info.tensors} tensors, "
                                   f"{info.render_params + info.motion_params:,} parameters")


@main.command(short_help="Turn talking-head videos into a training dataset.")
@click.argument("video_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("-o", "--output", "--out", "output",
              type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset directory (created; finished clips are skipped on re-runs).")
@click.option("--res", type=click.IntRange(64, 2048), default=512, show_default=True)
@click.option("--crop-scale", type=click.FloatRange(1.2, 4.0), default=2.0, show_default=True)
@click.option("--image-format", type=click.Choice(["jpg", "png"]), default="jpg",
              show_default=True, help="Frame files: JPEG quality 95, or lossless PNG.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Clips processed in parallel.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Model threads per worker.")
@click.option("--min-found", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Skip clips where a face is found in fewer frames than this share.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None)
@click.option("--frame-step", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--test-fraction", type=click.FloatRange(0, 1), default=0.05, show_default=True)
@click.option("--overwrite", is_flag=True, help="Redo clips that are already prepared.")
@output_options
@click.pass_context
def prepare(ctx: click.Context, video_dir: Path, output: Path, res: int, crop_scale: float,
            image_format: str, workers: int, threads: int | None, min_found: float,
            max_frames: int | None, frame_step: int, test_fraction: float,
            overwrite: bool) -> None:
    """Turn a folder of talking-head videos into a training dataset (crops, keypoints, poses,
    face masks; one identity per clip)."""
    from .train.prepare import PrepareOptions, prepare_dataset

    reporter = _reporter_of(ctx)
    options = PrepareOptions(res=res, crop_scale=crop_scale, image_format=image_format,
                             workers=workers, threads_per_worker=threads, min_found=min_found,
                             max_frames=max_frames, frame_step=frame_step,
                             test_fraction=test_fraction, overwrite=overwrite)

    def show(clip: Any) -> None:
        reason = f": {clip.reason}" if clip.reason else ""
        reporter.info(f"{clip.status:8s} {clip.name} ({clip.found}/{clip.frames} frames){reason}")

    report = prepare_dataset(video_dir, output, options, show)
    data = report.to_dict()
    reporter.result(data, f"{output}: " + ", ".join(
        f"{k} {v}" for k, v in data.items() if isinstance(v, int)))


@main.command()
@click.argument("dataset_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("-o", "--output", "--out", "output",
              type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run directory: config, metrics.csv, samples/, checkpoints/.")
@click.option("--res", type=int, default=None, help="[default: the dataset's resolution]")
@click.option("--batch-size", type=click.IntRange(min=1), default=6, show_default=True,
              help="Per process (per GPU under torchrun).")
@click.option("--iterations", type=click.IntRange(min=1), default=380_000, show_default=True)
@click.option("--decay-start", type=int, default=None,
              help="Iteration where the learning rate starts its linear decay [330/380 of it].")
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--face-weight", type=float, default=4.0, show_default=True,
              help="Loss weight inside the face mask (1 outside).")
@click.option("--init-field-steps", type=int, default=None)
@click.option("--perceptual", type=click.Choice(["efficientnet-lite0", "vgg19"]),
              default="efficientnet-lite0", show_default=True,
              help="Perceptual-loss backbone; vgg19 needs --perceptual-weights.")
@click.option("--perceptual-weights", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="A torchvision VGG-19 state_dict you have.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
              show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=4, show_default=True,
              help="Data-loading processes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--log-every", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--sample-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--keep-checkpoints", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the run's latest checkpoint.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch CPU threads per training process (more is slower on small CPUs).")
@click.option("--init-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start the generator from these weights (fine-tuning).")
@click.option("--export", "export_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the final generator for `f2f reenact --weights`.")
@click.option("--overwrite", is_flag=True)
@click.option("--overfit-one-pair", is_flag=True, hidden=True)
@click.option("--log-data", is_flag=True, hidden=True)
@output_options
@click.pass_context
def train(ctx: click.Context, dataset_dir: Path, output: Path, export_path: Path | None,
          overwrite: bool, face_weight: float, **params: Any) -> None:
    """Train the motion and rendering modules on a prepared dataset.

    One process per GPU with torchrun for several GPUs or nodes:
    `torchrun --nproc_per_node 8 -m f2fcli train DATA -o RUN`.
    """
    require_torch("`f2f train`")
    from .train.checkpoint import export_weights
    from .train.distributed import env_int
    from .train.losses import LossWeights
    from .train.trainer import TrainConfig
    from .train.trainer import train as run_training

    reporter = _reporter_of(ctx)
    config = TrainConfig(dataset_dir=dataset_dir, run_dir=output,
                         weights=LossWeights(face=face_weight), **params)

    def show(step: int, row: dict) -> None:
        reporter.info(f"step {step}: loss_g {row['loss_g']:.4f} rec {row['reconstruction']:.4f} "
                      f"warp {row['warp']:.4f} loss_d {row['loss_d']:.4f} "
                      f"({row['seconds_per_iteration']:.3f} s/it)")

    result = run_training(config, reporter.debug, show).to_dict()
    if env_int("RANK", 0) != 0:
        return
    if export_path is not None:
        result["export"] = export_weights(output, export_path, overwrite).to_dict()
    reporter.result(result, f"{output}: {result}")


@main.command("eval")
@click.argument("dataset_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--weights", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              required=True)
@click.option("--split", type=click.Choice(["test", "train", "all"]), default="test",
              show_default=True)
@click.option("--res", type=int, default=None)
@click.option("--frames-per-clip", type=click.IntRange(min=1), default=None)
@click.option("--max-clips", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="auto: CUDA, then MPS, then the CPU.")
@click.option("--no-akd", is_flag=True, help="Skip the keypoint distance (faster).")
@output_options
@click.pass_context
def evaluate_command(ctx: click.Context, dataset_dir: Path, weights: Path, split: str,
                     res: int | None, frames_per_clip: int | None, max_clips: int | None,
                     batch_size: int, device: str, no_akd: bool) -> None:
    """Self-reenactment metrics on held-out clips: L1, PSNR, SSIM, AKD."""
    require_torch("`f2f eval`")
    from .devices import resolve_device
    from .train.evaluation import EvalOptions, evaluate

    options = EvalOptions(split=split, res=res, frames_per_clip=frames_per_clip,
                          max_clips=max_clips, batch_size=batch_size,
                          device=resolve_device(device),
                          akd=not no_akd)
    data = evaluate(dataset_dir, weights, options).to_dict()
    _reporter_of(ctx).result(data, "\n".join(f"{k:<14} {v}" for k, v in data.items()))


def _resolutions(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter("expected sizes like 256,512", param_hint="--res") from None
    if not values or any(not 256 <= v <= 2048 for v in values):
        raise click.BadParameter("sizes must be within 256..2048", param_hint="--res")
    return values


@main.command(short_help="MACs, latency and memory of the networks.")
@click.option("--res", default="256,512,1024,1440,1536,2048", show_default=True,
              help="Comma-separated output sizes.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="auto: CUDA, then MPS, then the CPU.")
@click.option("--fp16", is_flag=True, help="Half precision (GPU only; refused on CPU).")
@click.option("--bf16", is_flag=True, help="bfloat16 (torch; CPUs with bf16 support, GPUs).")
@click.option("--backend", default="auto", show_default=True,
              help="torch, onnxruntime, or both comma-separated; auto = the faster for the device.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPU threads for torch and onnxruntime.")
@click.option("--budget", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Seconds per size after which fewer runs are timed (at least 3).")
@click.option("--weights", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Generator weights [default: random, timing only].")
@click.option("--macs-only", is_flag=True, help="Count MACs and parameters; no timing.")
@click.option("--pipeline", is_flag=True,
              help="Also time each pipeline step per frame (like the paper's Table 4).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Latency and memory against resolution, as PNG.")
@output_options
@click.pass_context
def bench(ctx: click.Context, res: str, device: str, fp16: bool, bf16: bool, backend: str,
          batch: int, runs: int, warmup: int, threads: int, budget: float, weights: Path | None,
          macs_only: bool, pipeline: bool, csv_path: Path | None, plot_path: Path | None) -> None:
    """MACs, latency and memory of the networks from 256 to 2048 (source encoding cached).

    Sizes that do not fit in memory are reported as such. FP16 needs a GPU; on CPU use --bf16.
    """
    require_torch("`f2f bench`")
    from rich.console import Console

    from .bench.core import BenchConfig, run_bench
    from .bench.figure import plot
    from .bench.pipeline import pipeline_breakdown

    if fp16 and bf16:
        raise click.UsageError("--fp16 and --bf16 exclude each other")
    from .devices import resolve_device

    reporter = _reporter_of(ctx)
    precision = "fp16" if fp16 else "bf16" if bf16 else "fp32"
    device = resolve_device(device)
    reporter.debug(f"device: {device}")
    config = BenchConfig(resolutions=_resolutions(res), device=device, precision=precision,
                         backends=tuple(b.strip() for b in backend.split(",")), batch=batch,
                         warmup=warmup, runs=runs, threads=threads, budget_s=budget,
                         weights=weights, latency=not macs_only)
    config.validate()
    if weights is not None:
        from .model.checkpoints import load_generator

        load_generator(weights)  # an unloadable file: one error line, not a table cell
    elif not macs_only:
        reporter.info("random weights: latency and memory are real, the images are not")
    report = run_bench(config, reporter)
    data = report.to_dict()
    breakdowns = []
    if pipeline:
        breakdowns = [pipeline_breakdown(r, backend=config.backends[0], device=device,
                                         precision=precision, threads=threads,
                                         weights=weights, progress=reporter)
                      for r in config.resolutions]
        data["pipeline"] = [b.to_dict() for b in breakdowns]
    if csv_path is not None:
        from .io.atomic import atomic_output

        with atomic_output(csv_path, overwrite=True) as tmp:
            tmp.write_text(report.to_csv())
    if plot_path is not None:
        plot(report, plot_path)
    if reporter.json_mode:
        reporter.result(data)
    elif reporter.verbosity >= 0:
        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(report.rich_table())
        console.print(report.modules_table())
        for breakdown in breakdowns:
            console.print(breakdown.rich_table())


@main.command("export", short_help="Export the networks as ONNX graphs.")
@click.option("--res", type=click.IntRange(256, 2048), default=512, show_default=True)
@click.option("-o", "--output", "--out", "output",
              type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for encode_source.onnx, drive.onnx and manifest.json.")
@click.option("--weights", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Generator weights (.safetensors).")
@click.option("--random-weights", is_flag=True,
              help="Export random weights (for timing only; flagged in the manifest).")
@click.option("--opset", type=click.IntRange(16, 21), default=17, show_default=True)
@click.option("--no-verify", is_flag=True, help="Skip the onnxruntime-vs-torch check.")
@click.option("--overwrite", is_flag=True)
@output_options
@click.pass_context
def export_command(ctx: click.Context, res: int, output: Path, weights: Path | None,
                   random_weights: bool, opset: int, no_verify: bool, overwrite: bool) -> None:
    """Export the networks as two ONNX graphs (source encoder; per-frame drive)."""
    require_torch("`f2f export`")
    from .export.onnx_export import export_onnx

    if weights is None and not random_weights:
        raise click.UsageError("give --weights FILE, or --random-weights for a timing-only export")
    manifest = export_onnx(output, res, weights, opset, random_weights=random_weights,
                           overwrite=overwrite, verify=not no_verify)
    _reporter_of(ctx).result(manifest, f"{output}: encode_source.onnx, drive.onnx ({res}px)")


@main.group()
def cache() -> None:
    """Manage the source cache ($F2F_CACHE_DIR or the user cache dir)."""


@cache.command("ls")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@output_options
@click.pass_context
def cache_ls(ctx: click.Context, cache_dir: Path | None) -> None:
    """List cached source analyses."""
    from .dirs import default_cache_dir
    from .pipeline.source import SourceCache

    store = SourceCache(cache_dir or default_cache_dir())
    entries = store.entries()
    human = "\n".join(f"{e.size:>10,} B  {e.path.name}  {e.source}" for e in entries)
    _reporter_of(ctx).result({"directory": str(store.directory),
                              "entries": [e.to_dict() for e in entries]},
                             human or f"(empty) {store.directory}")


@cache.command("clear")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@output_options
@click.pass_context
def cache_clear(ctx: click.Context, cache_dir: Path | None) -> None:
    """Delete every cached source analysis."""
    from .dirs import default_cache_dir
    from .pipeline.source import SourceCache

    store = SourceCache(cache_dir or default_cache_dir())
    removed = store.clear()
    _reporter_of(ctx).result({"directory": str(store.directory), "removed": removed},
                             f"removed {removed} entries from {store.directory}")
