"""Entry point of the ``uniseg`` console script.

Every error becomes one line on stderr and exit code 2; ``--debug`` (anywhere on the command
line) or ``UNISEG_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

from uniseg import __version__
from uniseg.errors import UnisegError

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
    from uniseg.cli import evaluate, predict, train
    from uniseg.cli.options import DATASET_EXTRA_ARGS

    app.command("train", context_settings=DATASET_EXTRA_ARGS)(train.train)
    app.command("eval", context_settings=DATASET_EXTRA_ARGS)(evaluate.evaluate)
    app.command("predict")(predict.predict)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to one line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("UNISEG_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    try:
        rv = app(args=args, prog_name="uniseg", standalone_mode=False)
    except UnisegError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        # click's exceptions (typer vendors click in recent releases): matched by shape, not import
        if type(exc).__name__ == "Abort":
            print("error: interrupted", file=sys.stderr)
            sys.exit(130)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code") and not debug:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None and type(exc).__name__ != "ClickException" else ""
            print(f"error: {exc.format_message()}{hint}", file=sys.stderr)
            sys.exit(2)
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", file=sys.stderr)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
