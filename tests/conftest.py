"""Shared test helpers: the official facts (tests/data, each file naming its source) and a CLI runner.

Tests read nothing outside the repository: a plain clone passes on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Under pytest-xdist (the README's `make test` runs one worker per core) each worker gets its share
# of the cores: torch's default of every core per process would make the workers fight over them.
# Set before torch is imported here or in a command a test starts (they inherit the environment).
def _cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = max(1, _cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(_threads))

MAX_WORKERS = 8  # each worker imports torch and builds its own small worlds: ~0.6 GB apiece


def pytest_xdist_auto_num_workers(config) -> int | None:
    """``-n auto``: one worker per core, at most :data:`MAX_WORKERS` (the suite has ~65 files;
    more workers would only add start-up time and memory on a large machine). xdist's own
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist reads it
    return max(1, min(MAX_WORKERS, _cores()))


# The longest files, longest first: under `--dist loadfile` a worker takes a whole file, and
# starting with these keeps one worker from finishing a long file alone at the end (on 2 cores,
# 2026-12-07: 3:57 against 4:03). Only the order changes, never what runs.
LONGEST_FIRST = ("test_train.py", "test_demo.py", "test_bad_files.py", "test_torchrun_faults.py", "test_eval_predict.py",
                 "test_readme.py", "test_models_facts.py", "test_memory_guard.py", "test_mining.py")


def pytest_collection_modifyitems(session, config, items) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order


REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def read_data(name: str) -> dict:
    """A JSON file of ``tests/data``."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_reaches_children():
    """Tests send Ctrl-C (SIGINT) to the commands they start. A test run started in the background
    of a non-interactive shell (``pytest &``) has SIGINT ignored, and an ignored signal stays ignored
    in every child, so those commands would run on. Handle it again in this process: a handled
    signal is reset to its default in a child, as in a run from a terminal."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``tests/data``: official ids, names and colours, the authors' tables, the official HRNet facts."""
    return DATA


@pytest.fixture(scope="session")
def authors() -> dict:
    """The UniSeg authors' tables: ``categories``, ``unions``, ``label2train``, ``to_combined``."""
    return read_data("authors_tables.json")


@pytest.fixture(scope="session")
def taxonomies() -> dict:
    """The official label lists per dataset (Cityscapes, IDD, Mapillary Vistas v1.2, CamVid)."""
    return {
        "cityscapes": read_data("cityscapes_labels.json"),
        "idd": read_data("idd_labels.json"),
        "mapillary": read_data("mapillary_vistas_v1.2.json"),
        "camvid": read_data("camvid.json"),
    }


@pytest.fixture(scope="session")
def hrnet_official() -> dict:
    """``{model: {"params": int, "keys": {state-dict key: shape}}}`` of the official HRNetV2 segmenters."""
    from hrnet_reference import expand_state_dict_rows

    doc = read_data("hrnet_official_state_dicts.json")
    return {
        name: {"params": entry["params"], "keys": expand_state_dict_rows(entry["modules"])}
        for name, entry in doc.items()
        if isinstance(entry, dict) and "modules" in entry
    }


@pytest.fixture(scope="session")
def registry():
    from uniseg.labelspaces import Registry

    return Registry.from_dirs(use_env=False)


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``uniseg`` in a subprocess, exactly as a user would (exit codes, stderr)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("UNISEG_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "uniseg.cli.main", *args], capture_output=True, text=True, env=full_env, cwd=cwd
    )


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (what a start-up imports, without this process's modules)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
