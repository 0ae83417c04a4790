"""Output helpers shared by every command: a rich table for people, JSON/YAML for scripts."""

from __future__ import annotations

import enum
import json
import sys
from typing import Any, Callable

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


class Format(str, enum.Enum):
    """``--format`` choices; every command supports table and json, most yaml too."""

    table = "table"
    json = "json"
    yaml = "yaml"


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)


def dump_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def emit(data: Any, fmt: Format, table: Callable[[], Any] | None = None) -> None:
    """Print ``data`` as JSON/YAML on stdout, or render ``table()`` (a rich renderable) for people."""
    if fmt == Format.json:
        sys.stdout.write(dump_json(data) + "\n")
    elif fmt == Format.yaml:
        sys.stdout.write(dump_yaml(data))
    elif table is not None:
        console.print(table())
    else:
        sys.stdout.write(dump_json(data) + "\n")


def swatch(rgb, numbers: bool = True) -> str:
    """Rich markup for a colour: a coloured block (``numbers``: and its values) where colour shows;
    just the values where it cannot (a pipe, a file, ``NO_COLOR``, a dumb terminal)."""
    r, g, b = (int(v) for v in rgb)
    values = f"{r},{g},{b}"
    if console.color_system is None:
        return values
    block = f"[on rgb({r},{g},{b})]    [/]"
    return f"{block} {values}" if numbers else block


def middle_cut(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters: the end of a file name tells files apart."""
    if len(text) <= width:
        return text
    head = max(1, (width - 1) // 4)
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]
