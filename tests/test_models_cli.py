"""``uniseg models list`` / ``info``: figures, formats and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import run_cli, run_python
from uniseg.cli.main import main


def _run(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process (torch is already imported, so this is fast); exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture(scope="module")
def official(reference_dir) -> dict:
    return json.loads((reference_dir / "hrnet_official_state_dicts.json").read_text())


def test_info_json_has_the_official_parameter_count(capsys, official):
    code, out, _ = _run(capsys, "models", "info", "hrnet_w48", "--classes", "19", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["params"] == official["hrnet_w48"]["params"]
    assert data["size"] == [512, 1024] and data["classes"] == 19 and data["head"] == "linear"
    assert data["name"] == "hrnet_w48" and data["macs"] > 0


def test_info_size_changes_macs_and_matches_the_official_figure(capsys):
    code, out, _ = _run(capsys, "models", "info", "hrnet_w18_small_v2", "--size", "1024x2048", "-f", "json")
    big = json.loads(out)
    _, out, _ = _run(capsys, "models", "info", "hrnet_w18_small_v2", "-f", "json")
    small = json.loads(out)
    assert code == 0 and big["size"] == [1024, 2048]
    assert round(big["official_gflops"], 1) == 71.6  # the official README's figure
    assert big["macs"] == pytest.approx(4 * small["macs"], rel=0.01)  # MACs scale with pixels


def test_cosine_head_drops_the_bias_and_union_sets_the_classes(capsys):
    _, out, _ = _run(capsys, "models", "info", "hrnet_tiny", "--classes", "70", "-f", "json")
    linear = json.loads(out)
    _, out, _ = _run(capsys, "models", "info", "hrnet_tiny", "--union", "cityscapes,bdd,idd,mapillary", "--head", "cosine", "-f", "yaml")
    cosine = yaml.safe_load(out)
    assert cosine["classes"] == 70 and cosine["head"] == "cosine"
    assert linear["params"] - cosine["params"] == 70


def test_list_json_names_every_model_with_its_figures(capsys, official):
    code, out, _ = _run(capsys, "models", "list", "--format", "json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0
    assert set(rows) == {"hrnet_w18_small_v1", "hrnet_w18_small_v2", "hrnet_w18", "hrnet_w48", "hrnet_tiny"}
    for name in ("hrnet_w18_small_v1", "hrnet_w18_small_v2", "hrnet_w48"):
        assert rows[name]["params"] == official[name]["params"]
    assert rows["hrnet_tiny"]["macs"] < rows["hrnet_w18_small_v1"]["macs"] < rows["hrnet_w48"]["macs"]


def test_table_output_for_people(capsys):
    code, out, _ = _run(capsys, "models", "info", "hrnet_w18_small_v1")
    assert code == 0 and "1,540,819" in out and "512x1024" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["info", "hrnet_w18_smal"], "unknown model 'hrnet_w18_smal' (did you mean hrnet_w18_small_v2"),
        (["info", "hrnet_tiny", "--size", "512by1024"], "--size '512by1024' is not HxW"),
        (["info", "hrnet_tiny", "--size", "0x10"], "must be positive"),
        (["info", "hrnet_tiny", "--classes", "0"], "--classes 0"),
        (["info", "hrnet_tiny", "--classes", "3", "--union", "cityscapes,bdd"], "not both"),
        (["list", "--size", "x"], "--size 'x' is not HxW"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(capsys, args, message):
    code, out, err = _run(capsys, "models", *args)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert "Traceback" not in err and out == ""


def test_real_process_exit_code_and_no_traceback():
    res = run_cli("models", "info", "hrnet_w4")
    assert res.returncode == 2 and "did you mean" in res.stderr and "Traceback" not in res.stderr


def test_cli_modules_do_not_import_torch():
    code = "import sys, uniseg.cli.main; assert 'torch' not in sys.modules, 'torch imported at CLI start-up'"
    res = run_python(code)
    assert res.returncode == 0, res.stderr


def _imports_torch(*args: str) -> tuple[bool, str]:
    """Run the CLI in a fresh interpreter: (was torch imported, stdout)."""
    code = (
        "import sys\nfrom uniseg.cli.main import main\n"
        f"try:\n    main({list(args)!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n"
    )
    res = run_python(code)
    assert res.returncode == 0, res.stderr
    *before, marker = res.stderr.splitlines()
    assert before == [], before  # nothing else on stderr: no spinner in a pipe
    return marker == "TORCH", res.stdout


def test_builtin_figures_at_the_default_and_official_sizes_need_no_torch():
    for args in (["models", "list"], ["models", "info", "hrnet_w48", "-f", "json"], ["models", "info", "hrnet_w18_small_v2", "--size", "1024x2048", "--head", "cosine"]):
        torch, out = _imports_torch(*args)
        assert not torch, args
        assert out


def test_other_class_counts_are_counted_and_agree_with_the_recorded_figures(capsys):
    """K classes instead of 19 changes only the head: (K - 19) x (C + 1) parameters for the linear
    head (C = 120 feature channels of hrnet_tiny), and (K - 19) x C x 128 x 256 MACs at 512x1024."""
    torch, out = _imports_torch("models", "info", "hrnet_tiny", "--classes", "70", "-f", "json")
    assert torch  # not recorded: counted
    counted = json.loads(out)
    _, out, err = _run(capsys, "models", "info", "hrnet_tiny", "-f", "json")
    recorded = json.loads(out)
    assert err == "" and recorded["feature_channels"] == 120
    assert counted["params"] - recorded["params"] == 51 * 121
    assert counted["macs"] - recorded["macs"] == 51 * 120 * 128 * 256


def test_a_spinner_while_counting_on_a_terminal():
    """(In a pipe there is none: see the test above, whose stderr stays empty.)"""
    args = [sys.executable, "-m", "uniseg.cli.main", "models", "info", "hrnet_tiny", "--classes", "7", "-f", "json"]
    env = {k: v for k, v in os.environ.items() if k != "UNISEG_DEBUG"}
    tty = subprocess.run(args, capture_output=True, text=True, env={**env, "FORCE_COLOR": "1"})  # rich: a terminal
    assert tty.returncode == 0 and json.loads(tty.stdout)["classes"] == 7
    assert "counting hrnet_tiny: 7-class linear head at 512x1024" in tty.stderr
