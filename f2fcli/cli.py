"""The `f2f` command line: parses options, calls the library, prints results."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable

import click

from . import __version__
from .console import Reporter
from .errors import EXIT_FAILURE, EXIT_INTERRUPTED, F2FError


@dataclass
class OutputSettings:
    json_mode: bool = False
    verbosity: int = 0

    def reporter(self) -> Reporter:
        return Reporter(verbosity=self.verbosity, json_mode=self.json_mode)


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


class F2FGroup(click.Group):
    """Turns library errors into one-line messages and documented exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except F2FError as exc:
            _reporter_of(ctx).error(str(exc))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            _reporter_of(ctx).error("interrupted")
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
            reporter = _reporter_of(ctx)
            if reporter.verbosity >= 1:
                traceback.print_exc()
            reporter.error(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)")
            ctx.exit(EXIT_FAILURE)


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


@main.command()
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
                        help="x264/x265 speed preset (ultrafast ... veryslow).")(func)
    func = click.option("--crf", type=int, default=None,
                        help="Quality (lower is better); default 18 x264, 22 x265, 32 VP9.")(func)
    func = click.option("--codec", default="libx264", show_default=True,
                        type=click.Choice(["libx264", "libx265", "libvpx-vp9", "png"]),
                        help="Video codec; png writes a directory of PNG frames.")(func)
    return func


@main.command()
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
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
@encoder_options
@output_options
@click.pass_context
def track(ctx: click.Context, video: Path, output: Path | None, preview: Path | None,
          face_index: int, face_box: str | None, smooth: str | None, no_smooth: bool,
          threads: int | None, overwrite: bool, codec: str, crf: int | None,
          preset: str) -> None:
    """Track the face in VIDEO and fit the 3D face model to every frame.

    Writes a track file (pose, expression, 72 keypoints per frame; identity per video)
    that `f2f reenact --driving` accepts instead of a video.
    """
    from .io.atomic import check_output_path
    from .io.video import VideoReader
    from .io.writer import EncoderSettings
    from .tracking.preview import write_preview
    from .tracking.track import save_track
    from .tracking.tracker import FaceSelection
    from .tracking.video_track import DEFAULT_SMOOTHING, TrackOptions, smoothing_from_sigmas
    from .tracking.video_track import track_video

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
    settings = EncoderSettings(codec, crf, preset)
    check_output_path(output, overwrite)
    if preview is not None:
        settings.validate_for(preview)
        check_output_path(preview, overwrite)

    reporter = _reporter_of(ctx)
    reader = VideoReader(video)
    options = TrackOptions(FaceSelection(face_index, box), smoothing, threads)
    with reporter.progress("tracking", reader.info.frame_count) as bar:
        result, stats = track_video(video, options, bar.advance, reader=reader)
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


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
