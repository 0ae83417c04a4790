"""``--help`` of every group and command of the ``uniseg`` app, rendered in-process.

The commands are read from the app itself, so a command added later is covered without editing
this file. Each help must exit 0, name the command's usage line, carry its docstring's first
line and list every option the command declares.
"""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from uniseg.cli.main import app

RUNNER = CliRunner()
WIDE = {"COLUMNS": "240", "TERMINAL_WIDTH": "240"}  # no option name cut by a narrow terminal


def _commands() -> list[tuple[tuple[str, ...], object]]:
    """``(path, click command)`` for the root, every group and every command, depth first."""
    out = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        out.append((path, cmd))
        if hasattr(cmd, "list_commands"):  # a group (lazy groups list their commands too)
            ctx = typer.Context(cmd, info_name=" ".join(("uniseg", *path)))
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), (*path, name))

    walk(typer.main.get_command(app), ())
    return out


COMMANDS = _commands()


def _flat(text: str) -> str:
    """Whitespace and box lines folded; a word click broke at its hyphen ("multi-\nlabel") joined again."""
    return re.sub(r"-\s+", "-", re.sub(r"[\s│|]+", " ", text)).strip()


def test_the_app_has_the_documented_commands():
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"labels list", "labels union", "labels remap", "data check", "data prepare", "data synth",
            "models list", "train", "eval", "predict"} <= paths


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "uniseg" for p, _ in COMMANDS])
def test_help(path, command):
    res = RUNNER.invoke(app, [*path, "--help"], env=WIDE, prog_name="uniseg")
    assert res.exit_code == 0, res.output
    text = _flat(res.output)
    assert _flat(f"Usage: uniseg {' '.join(path)}") in text
    first = _flat((command.help or "").split("\n\n")[0])
    assert first and first in text, (first, res.output)
    for param in command.params:
        longest = max(getattr(param, "opts", []) + getattr(param, "secondary_opts", []), key=len, default="")
        if longest.startswith("--") and not getattr(param, "hidden", False):
            assert longest in res.output, (longest, res.output)


def test_a_short_flag_means_one_thing_in_every_command():
    """``-d`` is ``--datasets`` wherever it exists, never ``--dataset`` elsewhere: one long option per letter."""
    meaning: dict[str, dict[str, list[str]]] = {}
    for path, command in COMMANDS:
        for param in getattr(command, "params", []):
            if getattr(param, "param_type_name", "") != "option":
                continue
            names = param.opts + param.secondary_opts
            long = next((o for o in param.opts if o.startswith("--")), names[0])
            for short in (o for o in names if not o.startswith("--")):
                meaning.setdefault(short, {}).setdefault(long, []).append(" ".join(path))
    clashes = {s: m for s, m in meaning.items() if len(m) > 1}
    assert not clashes, clashes
    assert meaning["-d"].keys() == {"--datasets"} and meaning["-o"].keys() == {"--out"}  # the walk saw the commands
