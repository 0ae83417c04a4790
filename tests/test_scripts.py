"""The scripts beside the package (``benchmarks/``, ``tools/``) run nowhere in the suite, so a name
moved inside ``uniseg`` would break them unseen (``bench_hrnet.py`` once imported a parser that had
moved). Every ``uniseg`` import they make, at module level or inside a function, must resolve, and
so must every one of the package's own deferred imports."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("tools/*.py")])
PACKAGE = sorted((ROOT / "uniseg").rglob("*.py"))


def _uniseg_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) of every ``import uniseg...`` / ``from uniseg... import name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "uniseg":
            found += [(node.lineno, node.module, a.name) for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "uniseg"]
    return found


def _unresolved(path: Path, root: Path = ROOT) -> list[str]:
    bad = []
    for line, module, name in _uniseg_imports(path):
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            bad.append(f"{path.relative_to(root)}:{line}: import {module} ({exc})")
            continue
        if name is not None and not hasattr(mod, name):
            try:  # a submodule imported by name (from uniseg.models import hrnet)
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                bad.append(f"{path.relative_to(root)}:{line}: from {module} import {name}")
    return bad


def test_there_are_scripts_to_check():
    assert {p.name for p in SCRIPTS} >= {"bench_hrnet.py", "bench_mine.py", "mining_variants.py", "readme_figure.py"}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_uniseg_import_of_a_script_resolves(path):
    assert _unresolved(path) == []


def test_every_deferred_import_inside_the_package_resolves():
    bad = [b for p in PACKAGE for b in _unresolved(p)]
    assert bad == []


def test_the_check_sees_a_moved_name(tmp_path):
    script = tmp_path / "old.py"
    script.write_text("def main():\n    from uniseg.cli.models import parse_size\n    from uniseg.cli.options import parse_hw\n")
    assert _unresolved(script, tmp_path) == ["old.py:2: from uniseg.cli.models import parse_size"]


def test_the_gpu_demo_script_parses_and_names_a_plan_the_demo_has():
    """``tools/gpu_demo.sh`` is run on a lent GPU machine only (never here): bash must parse it,
    and the plan it runs by default must be one ``uniseg demo --plan`` takes."""
    import re
    import subprocess

    from uniseg.engine.demo.plan import PLANS

    script = ROOT / "tools" / "gpu_demo.sh"
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    default = re.search(r'plan=\$\{PLAN:-([a-z]+)\}', script.read_text()).group(1)
    assert default == "gpu" and default in PLANS
