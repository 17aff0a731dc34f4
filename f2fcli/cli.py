"""The `f2f` command line: parses options, calls the library, prints results."""

from __future__ import annotations

import sys
import traceback
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


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
