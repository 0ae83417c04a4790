"""Options and helpers every ``uniseg`` command group shares (registry folders, --format, progress)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from uniseg.cli.render import Format, err_console

if TYPE_CHECKING:  # the registry (numpy, yaml) loads when a command needs it, not at start-up
    from uniseg.labelspaces.registry import Registry

RegistryOpt = typer.Option(
    None, "--registry", metavar="DIR", help="Extra folder of <name>.yaml label spaces (repeatable; also UNISEG_REGISTRY)."
)
FormatOpt = typer.Option(Format.table, "--format", "-f", help="Output: a table for people, json/yaml for scripts.")
UnionOpt = typer.Option(..., "--union", "-u", metavar="DIR|NAMES", help="A folder from 'labels union --out', or dataset names (a,b,c).")


def registry_from(dirs: Optional[List[Path]]) -> Registry:
    """The built-in registry plus UNISEG_REGISTRY plus the ``--registry`` folders."""
    from uniseg.labelspaces.registry import Registry

    return Registry.from_dirs(dirs or [])


def union_and_space(union_spec: str, dataset: str, dirs: Optional[List[Path]]):
    """``(union, label space of dataset)`` for a ``--union`` spec (members come checked against the
    union by ``resolve_union``; a non-member, an unseen dataset, is read from the registry)."""
    from uniseg.unify.artifact import resolve_union

    reg = registry_from(dirs)
    uni, spaces = resolve_union(union_spec, reg)
    return uni, spaces.get(dataset) or reg.get(dataset)


def progress_bar(label: str, enabled: bool):
    """A rich progress bar on stderr (hidden for scripts: ``enabled`` is False off a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label + " {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, disable=not enabled, transient=True,
    )
