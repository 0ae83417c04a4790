"""YAML files read with line numbers: every uniseg YAML (label spaces, configs, relations, the
synthetic world's files) goes through :func:`read_yaml`, so an error names ``file:line``.

Mappings come back as :class:`LineMap` (a dict that knows its line and each key's line) and
sequences as :class:`LineSeq`; a key given twice in one mapping is an error, not a silent overwrite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from uniseg.errors import ConfigError

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineMap(dict):
    """A dict that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict


class LineSeq(list):
    line: int = 0


class _LineLoader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader that records line numbers and refuses duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineMap:
    loader.flatten_mapping(node)
    out = LineMap()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise ConfigError(loader.name, f"unhashable mapping key {key!r}", line=line) from None
        if key in out:
            raise ConfigError(
                loader.name, "duplicate key (each key may appear once per mapping)", line=line, key=str(key)
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineSeq:
    out = LineSeq(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def read_yaml(path: Path) -> Any:
    """Parse YAML with line tracking; syntax errors become a ``ConfigError`` with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text (is this a YAML file?)") from None
    loader = _LineLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(path, f"invalid YAML: {exc.problem or exc.context}", line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


