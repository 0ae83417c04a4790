"""Every Python block of the README runs as written, in order, on the synthetic world.

The README's examples assume what its Quick start makes: the synthetic world in ``world/``
(``uniseg data synth --out world``) and the union folder ``runs/union``
(``uniseg labels union cityscapes bdd idd mapillary --out runs/union``). The test makes both
(smaller images, fewer datasets) in a scratch folder and runs the blocks there, one namespace
for all, as a reader pasting them into one session would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory):
    from uniseg.data.synth import synthesize
    from uniseg.labelspaces import default_registry
    from uniseg.unify import build_union
    from uniseg.unify.artifact import write_union_artifact

    folder = tmp_path_factory.mktemp("readme")
    synthesize(folder / "world", images=6, size=(96, 192), seed=0,
               datasets=["cityscapes", "bdd", "idd", "mapillary", "kitti"])
    reg = default_registry()
    spaces = reg.get_many(["cityscapes", "bdd", "idd", "mapillary"])
    write_union_artifact(build_union(spaces), spaces, folder / "runs" / "union")
    return folder


def test_the_readme_has_python_examples():
    assert len(python_blocks()) >= 6


def test_every_python_block_runs_as_written(readme_folder, monkeypatch):
    monkeypatch.chdir(readme_folder)
    namespace: dict = {"__name__": "__readme__"}
    for i, code in enumerate(python_blocks(), start=1):
        try:
            exec(compile(code, f"README.md python block {i}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"README python block {i} failed: {type(exc).__name__}: {exc}\n{code}")
    # the figures the README states in comments
    union = namespace["union"]
    assert (union.num_classes, union.fingerprint) == (70, "d5179084b312d0f7")
    text = README.read_text(encoding="utf-8")
    assert "union.num_classes, union.fingerprint        # 70, 'd5179084b312d0f7'" in text
