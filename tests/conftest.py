"""Shared test helpers: the reference facts (../shared/reference) and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    assert REFERENCE.is_dir(), f"reference facts missing: {REFERENCE} (CI clones the repo with shared/ beside it)"
    return REFERENCE


@pytest.fixture(scope="session")
def authors(reference_dir) -> dict:
    return json.loads((reference_dir / "authors_tables.json").read_text())


@pytest.fixture(scope="session")
def taxonomies(reference_dir) -> str:
    return (reference_dir / "taxonomies.md").read_text()


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
