"""Entry point of the ``uniseg`` console script.

Every error becomes one line on stderr and exit code 2; ``--debug`` (anywhere on the command
line) or ``UNISEG_DEBUG=1`` prints the traceback first (same line, same exit code). Ctrl-C
exits 130.
"""

from __future__ import annotations

import os
import sys

import typer

from uniseg import __version__
from uniseg.errors import Interrupted, UnisegError

app = typer.Typer(
    name="uniseg",
    help="Train one segmentation model on many datasets whose label spaces differ (UniSeg).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"uniseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors (also UNISEG_DEBUG=1)."),
) -> None:
    """uniseg: label spaces, unions, remap tables, models and data for multi-dataset segmentation."""


def _register() -> None:
    """Attach the sub-apps; each imports heavy libraries (torch) only inside its commands."""
    from uniseg.cli import labels

    app.add_typer(labels.app, name="labels")
    app.add_typer(__import__("uniseg.cli.relations", fromlist=["app"]).app, name="relations")
    for module_name, name in (("uniseg.cli.models", "models"), ("uniseg.cli.data", "data")):
        try:
            module = __import__(module_name, fromlist=["app"])
        except ModuleNotFoundError as exc:  # sub-app not written yet
            if exc.name != module_name:
                raise
            continue
        app.add_typer(module.app, name=name)
    from uniseg.cli import demo, evaluate, predict, train
    from uniseg.cli.options import DATASET_EXTRA_ARGS

    app.command("train", context_settings=DATASET_EXTRA_ARGS)(train.train)
    app.command("eval", context_settings=DATASET_EXTRA_ARGS)(evaluate.evaluate)
    app.command("predict")(predict.predict)
    app.command("demo")(demo.demo)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to one line and exit code 2 (``--debug`` adds the traceback only)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("UNISEG_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    try:
        rv = app(args=args, prog_name="uniseg", standalone_mode=False)
    except BrokenPipeError:
        sys.exit(0)
    except (Exception, KeyboardInterrupt) as exc:
        code, line = _outcome(exc, debug)
        if debug:
            import traceback

            traceback.print_exception(exc)
        if line:
            print(line, file=sys.stderr)
        sys.exit(code)
    sys.exit(rv if isinstance(rv, int) else 0)


def _outcome(exc: BaseException, debug: bool) -> tuple[int, str]:
    """Exit code and the one line for stderr ('' when there is nothing to add)."""
    name = type(exc).__name__
    if isinstance(exc, Interrupted):
        return exc.exit_code, str(exc)
    if isinstance(exc, UnisegError):
        return exc.exit_code, f"error: {exc}"
    if isinstance(exc, KeyboardInterrupt) or name == "Abort":
        return 130, "error: interrupted"
    if name == "NoArgsIsHelpError":  # 'uniseg' or a group alone: the help was printed, nothing failed
        return 0, ""
    # click's exceptions (typer vendors click in recent releases): matched by shape, not import
    if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None and name != "ClickException" else ""
        return 2, f"error: {exc.format_message()}{hint}"
    return 2, f"error: {name}: {exc}" + ("" if debug else " (rerun with --debug for a traceback)")


if __name__ == "__main__":
    main()
