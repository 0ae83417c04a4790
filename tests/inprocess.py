"""``uniseg`` run in this process, as ``conftest.run_cli`` runs it in a subprocess: the same exit
codes and stderr lines, without importing torch again for every call (a test of several commands
stays within seconds), and with the test's patches (faults) in force."""

from __future__ import annotations

import subprocess

import pytest


def cli(capsys, *args: str) -> subprocess.CompletedProcess:
    """``uniseg ARGS`` through :func:`uniseg.cli.main.main`; ``capsys`` collects its output."""
    from uniseg.cli.main import main

    capsys.readouterr()  # what came before is not this command's
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["uniseg", *map(str, args)], int(stop.value.code or 0), out, err)
