"""Options and helpers every ``uniseg`` command group shares (registry folders, --format, progress),
and the one parser of each user string the commands take (``--union DIR|NAMES``, ``HxW`` sizes,
``NAME=ROOT``): the library below takes typed values."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from uniseg.cli.render import Format, err_console
from uniseg.errors import UnisegError
from uniseg.names import require_unique

if TYPE_CHECKING:  # the registry (numpy, yaml) loads when a command needs it, not at start-up
    from uniseg.labelspaces.registry import Registry
    from uniseg.labelspaces.schema import LabelSpace
    from uniseg.unify.union import UnionSpace

RegistryOpt = typer.Option(
    None, "--registry", metavar="DIR", help="Extra folder of <name>.yaml label spaces (repeatable; also UNISEG_REGISTRY)."
)
FormatOpt = typer.Option(Format.table, "--format", "-f", help="Output: a table for people, json/yaml for scripts.")
UnionOpt = typer.Option(..., "--union", "-u", metavar="DIR|NAMES", help="A folder from 'labels union --out', or dataset names (a,b,c).")


def registry_from(dirs: Optional[List[Path]]) -> Registry:
    """The built-in registry plus UNISEG_REGISTRY plus the ``--registry`` folders."""
    from uniseg.labelspaces.registry import Registry

    return Registry.from_dirs(dirs or [])


_NAME_SEPARATORS = re.compile(r"[,+\s]+")


def split_names(text: str) -> list[str]:
    """``"a,b"`` / ``"a+b"`` / ``"a b"`` -> ``["a", "b"]``."""
    return [n for n in _NAME_SEPARATORS.split(text) if n]


def union_source(text: str, registry: Registry) -> Path | list[str]:
    """The ``--union DIR|NAMES`` value: a folder holding ``union.yaml`` (or that file), else dataset
    names (``a,b`` / ``a+b``). Registered names win over a same-named folder without ``union.yaml``
    (users keep dataset roots such as ./cityscapes beside their commands); a value with a path
    separator or a leading '.' that names nothing is reported as a missing folder."""
    from uniseg.unify.artifact import UNION_FILE

    path = Path(text)
    names = split_names(text)
    if (path.is_dir() and (path / UNION_FILE).exists()) or (path.is_file() and path.name == UNION_FILE):
        return path
    if path.is_dir() and not all(n in registry for n in names):
        raise UnisegError(f"--union {text}: no {UNION_FILE} in this folder (write one with 'uniseg labels union NAME... --out DIR')")
    if ("/" in text or os.sep in text or text.startswith(".")) and not path.exists():
        raise UnisegError(f"--union {text}: no such folder (give a folder written by 'uniseg labels union --out' or dataset names)")
    if not names:
        raise UnisegError(f"--union {text!r}: give a folder written by 'uniseg labels union --out' or dataset names (a,b,c)")
    return names


def union_setting(text: str, registry: Registry) -> str | list[str]:
    """``--union DIR|NAMES`` as a run's config records it: the folder (a string) or the names (a list)."""
    source = union_source(text, registry)
    return str(source) if isinstance(source, Path) else source


def classes_from(classes: Optional[int], union: Optional[str], default: int) -> int:
    """The head's class count from ``--classes K`` or ``--union DIR|NAMES`` (one of them), else ``default``."""
    if classes is not None and union is not None:
        raise UnisegError("give --classes or --union, not both (--union sets K to the union's size)")
    if union is not None:
        return parse_union(union, registry_from(None))[0].num_classes
    if classes is None:
        return default
    if classes < 1:
        raise UnisegError(f"--classes {classes}: the number of classes must be at least 1")
    return classes


def parse_union(text: str, registry: Registry) -> tuple[UnionSpace, dict[str, LabelSpace]]:
    """``(union, label spaces of its datasets)`` for a ``--union DIR|NAMES`` value."""
    from uniseg.unify.artifact import open_union

    return open_union(union_source(text, registry), registry)


def union_and_space(union_spec: str, dataset: str, dirs: Optional[List[Path]]):
    """``(union, label space of dataset)`` for a ``--union`` value (members come checked against the
    union; a non-member, an unseen dataset, is read from the registry)."""
    reg = registry_from(dirs)
    uni, spaces = parse_union(union_spec, reg)
    return uni, spaces.get(dataset) or reg.get(dataset)


def progress_bar(label: str, enabled: bool):
    """A rich progress bar on stderr (hidden for scripts: ``enabled`` is False off a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label + " {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, disable=not enabled, transient=True,
    )


DatasetsOpt = typer.Option(
    None, "--datasets", "-d", metavar="NAME=ROOT...",
    help="Datasets as NAME=ROOT (a raw root in its real layout, or a 'data prepare' cache); several after one flag, or the flag repeated.",
)
DeviceOpt = typer.Option(None, "--device", help="auto (a GPU when there is one), cpu, cuda or cuda:N.")
ON_BAD_FILE_HELP = ("A sample file that cannot be read (truncated, a label of another size than its image...): error = stop "
                    "with exit 2 naming it, skip = leave it out and list it at the end (docs/faults.md).")


def on_bad_file_option(default: Optional[str] = "error"):
    """``--on-bad-file error|skip`` (``default`` None: "not given", for flags a resumed run may change)."""
    return typer.Option(default, "--on-bad-file", metavar="error|skip", help=ON_BAD_FILE_HELP, callback=_check_on_bad_file)


def _check_on_bad_file(value: Optional[str]) -> Optional[str]:
    from uniseg.data.faults import check_policy

    return value if value is None else check_policy(value)


OnBadFileOpt = on_bad_file_option()
DATASET_EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": False}


def parse_datasets(values: Optional[List[str]], extra: Optional[List[str]] = None) -> list[tuple[str, str]]:
    """``NAME=ROOT`` strings (also comma-separated, and the extra words after ``--datasets``) -> pairs."""
    items: list[tuple[str, str]] = []
    for raw in [*(values or []), *(extra or [])]:
        for part in (p for p in raw.split(",") if p.strip()):
            name, sep, root = part.partition("=")
            if not sep or not name.strip() or not root.strip():
                raise UnisegError(f"--datasets {part!r}: expected NAME=ROOT, e.g. cityscapes=/data/cityscapes")
            items.append((name.strip(), root.strip()))
    require_unique(n for n, _ in items)
    return items


_HW = re.compile(r"^\s*(\d+)\s*(?:[xX×*,]\s*(\d+))?\s*$")


def parse_hw(text: str, flag: str) -> tuple[int, int]:
    """``"713x713"`` -> (713, 713); ``"713"`` -> (713, 713); else a one-line error naming ``flag``."""
    m = _HW.match(text or "")
    if not m:
        raise UnisegError(f"{flag} {text!r} is not HxW; give height x width in pixels, e.g. {flag} 512x1024")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) is not None else h
    if h < 1 or w < 1:
        raise UnisegError(f"{flag} {text!r}: height and width must be positive, e.g. {flag} 512x1024")
    if h > 16384 or w > 16384:
        raise UnisegError(f"{flag} {text!r}: larger than 16384 pixels on a side; give a realistic size, e.g. {flag} 1024x2048")
    return h, w


def _auto_or_number(text: str, flag: str, what: str, example: str) -> Optional[float]:
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise UnisegError(f"{flag} {text!r}: give 'auto' or {what}, e.g. {flag} {example}") from None


def progress_by_name(bar, scale: int = 1):
    """``progress(name, done, total)`` for a rich ``bar``: one task per name (a dataset), made on its
    first report; ``scale`` multiplies the counts (a process's share under torchrun)."""
    tasks: dict[str, int] = {}

    def progress(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=total * scale)
        bar.update(tasks[name], completed=done * scale, total=total * scale)

    return progress


def parse_threshold(text: str, flag: str = "--threshold") -> Optional[float]:
    """``auto`` -> None (the paper's Figure-4 threshold for the model's activation); a number in (0, 1) -> it."""
    value = _auto_or_number(text, flag, "a score in (0, 1)", "0.5")
    if value is not None and not 0.0 < value < 1.0:
        raise UnisegError(f"{flag} {text}: a score in (0, 1), or 'auto'")
    return value


def parse_tau(text: str, flag: str = "--tau") -> Optional[float]:
    """``auto`` -> None (the paper's automatic tau); a number in [0, 1] -> that threshold (Eq. 6)."""
    value = _auto_or_number(text, flag, "a number in [0, 1]", "0.48")
    if value is not None and not 0.0 <= value <= 1.0:
        raise UnisegError(f"{flag} {text}: scores lie in [0, 1]; give a threshold in [0, 1] or 'auto'")
    return value


def parse_scale(text: str, flag: str = "--scale") -> tuple[float, float]:
    """``"0.5-2"`` -> (0.5, 2.0); ``"1"`` -> (1.0, 1.0): the random scale range of training."""
    lo, sep, hi = text.partition("-")
    try:
        return (float(lo), float(hi)) if sep else (float(lo), float(lo))
    except ValueError:
        raise UnisegError(f"{flag} {text!r}: give LOW-HIGH, e.g. {flag} 0.5-2") from None


def parse_dataset_weights(text: str, flag: str = "--dataset-weights") -> str | dict[str, float]:
    """``natural`` | ``balanced`` | ``NAME=W,NAME=W`` (each W >= 0) -> what the sampler takes."""
    if text in ("natural", "balanced"):
        return text
    out: dict[str, float] = {}
    for part in (p for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise UnisegError(f"{flag} {text!r}: natural, balanced or NAME=W,NAME=W (e.g. {flag} cityscapes=1,mapillary=2)")
        if not weight >= 0.0 or weight == float("inf"):
            raise UnisegError(f"{flag} {part.strip()}: a weight is a finite number >= 0 (e.g. {flag} cityscapes=1,mapillary=2)")
        out[name.strip()] = weight
    return out
