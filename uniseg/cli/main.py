"""Entry point of the ``uniseg`` console script.

Every error becomes one line on stderr and exit code 2; ``--debug`` (anywhere on the command
line) or ``UNISEG_DEBUG=1`` prints the traceback first (same line, same exit code). Ctrl-C
exits 130.

Sub-commands load lazily, so ``uniseg --help`` and ``uniseg labels list`` import only what they
use. To add one, add a row to :data:`COMMANDS`::

    "train": Command("uniseg.cli.train:train", "Train a model on several datasets.",
                     context_settings={"allow_extra_args": True}),

The target is a ``typer.Typer`` (a command group, e.g. ``uniseg labels ...``) or a plain function
(a single command, e.g. ``uniseg train ...``; typer reads its signature, ``context_settings`` go
to click as with ``app.command(...)``). Its module is imported when the command runs (or when a
typo needs suggestions); ``uniseg --help`` lists the table's one-line help. Keep heavy imports
(torch) inside the command functions.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NamedTuple, Optional

import typer
from typer.core import TyperGroup

from uniseg import __version__
from uniseg.errors import Interrupted, UnisegError

class Command(NamedTuple):
    """A lazily loaded sub-command: ``"module:attribute"`` and its line in ``uniseg --help``."""

    target: str
    help: str
    context_settings: Optional[dict] = None  # for a plain-function command, as app.command(...) takes them


#: The sub-commands, in the order ``uniseg --help`` lists them.
COMMANDS: dict[str, Command] = {
    "labels": Command("uniseg.cli.labels:app", "Label spaces, unions, remap tables and exports."),
    "models": Command("uniseg.cli.models:app", "Segmentation networks, their parameters and MACs; export a trained one (safetensors)."),
    "data": Command("uniseg.cli.data:app", "Dataset roots: check, prepare caches, synthesise a road world."),
    "train": Command("uniseg.cli.train:train", "Train one model on several datasets over their union (CE, Null BCE, C-R BCE).",
                     context_settings={"allow_extra_args": True, "ignore_unknown_options": False}),
    "eval": Command("uniseg.cli.evaluate:evaluate", "Score a checkpoint on datasets (seen or unseen) in their own label spaces.",
                    context_settings={"allow_extra_args": True, "ignore_unknown_options": False}),
    "predict": Command("uniseg.cli.predict:predict", "Write label PNGs for images in a label space (and Figure 4's multi-label view)."),
    "relations": Command("uniseg.cli.relations:app", "Class relations: mining, the multi-label table (Eq. 6), the relation graph."),
    "demo": Command("uniseg.cli.demo:demo", "The UniSeg method end to end on the synthetic road world (the paper's Table 1)."),
}

# Plain click help: typer's rich help panels import rich's markdown and traceback machinery,
# which doubles the time of ``uniseg --help`` (benchmarks/bench_startup.py).
HELP_MARKUP = None


def _load(name: str):
    """The click command behind ``COMMANDS[name]``: a typer app as a group, a function as one command."""
    row = COMMANDS[name]
    module_name, _, attr = row.target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if isinstance(obj, typer.Typer):
        obj.rich_markup_mode = HELP_MARKUP  # as if added with add_typer: the root decides how help looks
        cmd = typer.main.get_group(obj)
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode=HELP_MARKUP)
        single.command(name, context_settings=row.context_settings)(obj)
        cmd = typer.main.get_command(single)
    cmd.help = cmd.help or row.help
    return cmd


class LazyGroup(TyperGroup):
    """A typer group whose :data:`COMMANDS` are imported on first use, not at start-up."""

    def list_commands(self, ctx) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx, cmd_name: str):
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(_load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx, args):
        if args and args[0] not in COMMANDS and args[0] not in self.commands:
            for name in COMMANDS:  # a typo: load every command so that typer's suggestions see them all
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx, formatter) -> None:
        """The commands section of ``--help``: the table's one-line help, so nothing is imported for it."""
        rows = []
        for name in self.list_commands(ctx):
            if name in COMMANDS:
                rows.append((name, COMMANDS[name].help))
            elif not self.commands[name].hidden:
                rows.append((name, self.commands[name].get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="uniseg",
    cls=LazyGroup,
    help="Train one segmentation model on many datasets whose label spaces differ (UniSeg).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=HELP_MARKUP,
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


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to one line and exit code 2 (``--debug`` adds the traceback only)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("UNISEG_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    try:
        rv = app(args=args, prog_name="uniseg", standalone_mode=False)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # 'uniseg' or a group alone: its help, on stdout, exit 0
            print(exc.format_message())  # type: ignore[attr-defined]
            sys.exit(0)
        _fail(exc, debug)
    except KeyboardInterrupt as exc:
        _fail(exc, debug)
    sys.exit(rv if isinstance(rv, int) else 0)


def _fail(exc: BaseException, debug: bool) -> None:
    """One line on stderr (after the traceback with ``--debug``) and the exit code."""
    code, line = _outcome(exc, debug)
    if debug:
        import traceback

        traceback.print_exception(exc)
    if line:  # one write: under torchrun every process may say its line at the same moment
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    sys.exit(code)


def _outcome(exc: BaseException, debug: bool) -> tuple[int, str]:
    """Exit code and the one line for stderr ('' when there is nothing to add)."""
    name = type(exc).__name__
    if isinstance(exc, Interrupted):
        return exc.exit_code, str(exc)
    if isinstance(exc, UnisegError):
        return exc.exit_code, f"error: {exc}"
    if isinstance(exc, KeyboardInterrupt) or name == "Abort":
        return 130, "error: interrupted"
    # click's exceptions (typer vendors click in recent releases): matched by shape, not import
    if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None and name != "ClickException" else ""
        return 2, f"error: {exc.format_message()}{hint}"
    return 2, f"error: {name}: {exc}" + ("" if debug else " (rerun with --debug for a traceback)")


if __name__ == "__main__":
    main()
