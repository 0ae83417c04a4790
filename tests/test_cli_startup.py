"""Lazy sub-commands of ``uniseg`` (uniseg/cli/main.py COMMANDS): help without imports, dispatch,
typo suggestions and plain-function commands (every command's ``--help``: test_cli_help.py)."""

from __future__ import annotations

import textwrap

import pytest
from conftest import run_python

from uniseg.cli import main as cli_main
from uniseg.cli.main import COMMANDS, Command, main


def _run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_root_help_lists_every_command_without_importing_any():
    code = (
        "import sys\nfrom uniseg.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('uniseg.cli.') and m not in ('uniseg.cli.main',))\n"
        "heavy = sorted(m for m in ('numpy', 'yaml', 'torch', 'pydantic', 'uniseg.labelspaces') if m in sys.modules)\n"
        "print(loaded, heavy, file=sys.stderr)\n"
    )
    res = run_python(code)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == "[] []"
    for name, row in COMMANDS.items():
        assert f"  {name}  " in res.stdout and row.help.split()[0] in res.stdout


def test_a_sub_command_loads_and_runs(capsys):
    code, out, err = _run(capsys, "labels", "list", "--format", "json")
    assert code == 0 and '"cityscapes"' in out and err == ""


def test_a_typo_still_gets_a_suggestion(capsys):
    code, out, err = _run(capsys, "lables", "list")
    assert code == 2 and "No such command 'lables'" in err and "Did you mean 'labels'?" in err


def test_a_plain_function_becomes_one_command(capsys, tmp_path, monkeypatch):
    (tmp_path / "hello_cmd.py").write_text(textwrap.dedent('''
        import typer

        def hello(ctx: typer.Context, name: str = typer.Option("world", "--name", help="Who to greet.")) -> None:
            """Say hello."""
            print(f"hello {name}", *ctx.args)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli_main.COMMANDS, "hello", Command("hello_cmd:hello", "Say hello.", {"allow_extra_args": True}))
    assert _run(capsys, "hello", "--name", "uniseg")[:2] == (0, "hello uniseg\n")
    assert _run(capsys, "hello", "--name", "uniseg", "and", "more")[:2] == (0, "hello uniseg and more\n")  # context settings
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "hello" in out and "Say hello." in out
    code, out, _ = _run(capsys, "hello", "--help")
    assert code == 0 and "--name" in out and "Who to greet." in out
