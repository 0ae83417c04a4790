"""The ``uniseg`` entry point: bare invocation, ``--debug`` and Ctrl-C (issue 9, item 9)."""

from __future__ import annotations

import pytest

import fixtures_layouts as fx
from conftest import run_cli
from uniseg.cli.main import main


@pytest.mark.parametrize("args", [[], ["data"], ["labels"]])
def test_no_arguments_prints_help_and_no_error_line(args):
    res = run_cli(*args)
    assert res.returncode == 0 and "Usage" in res.stdout
    assert res.stderr == ""


def test_debug_adds_the_traceback_and_keeps_exit_code_2():
    plain = run_cli("labels", "show", "nope")
    debug = run_cli("--debug", "labels", "show", "nope")
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip() != ""
    usage = run_cli("--debug", "labels", "show")  # a usage error too
    assert usage.returncode == 2 and usage.stderr.strip().splitlines()[-1].startswith("error: Missing argument")


def _interrupt(*_a, **_k):
    raise KeyboardInterrupt


@pytest.mark.parametrize("target,argv", [
    ("uniseg.unify.remap.remap_paths", ["labels", "remap", "--dataset", "kitti", "--union", "kitti", "{root}/training/semantic", "--out", "{out}"]),
    ("uniseg.data.cache.prepare_cache", ["data", "prepare", "--union", "kitti", "--dataset", "kitti", "--root", "{root}", "--out", "{out}"]),
])
def test_ctrl_c_in_remap_and_prepare_says_how_to_resume(tmp_path, monkeypatch, capsys, target, argv):
    fx.make_kitti(tmp_path / "kitti", n=1, test=0)
    monkeypatch.setattr(target, _interrupt)
    with pytest.raises(SystemExit) as exit_:
        main([a.format(root=tmp_path / "kitti", out=tmp_path / "out") for a in argv])
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip() == "interrupted — rerun the same command to resume"
