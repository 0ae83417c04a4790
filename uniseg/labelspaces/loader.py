"""Load and validate one label-space YAML file into a ``LabelSpace``.

Every problem is reported as ``file:line: key: what is wrong (how to fix)``: unknown keys,
wrong types, duplicate names or ids, an id mapping to two classes, ids out of range, colours
that collide in a colour-decoded encoding, references to classes that do not exist.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable

from uniseg.errors import ConfigError
from uniseg.labelspaces.schema import (
    ClassDef,
    Encoding,
    LabelSource,
    LabelSpace,
    Layout,
    RawValue,
    Split,
)
from uniseg.yamlio import LineMap, LineSeq, read_yaml

class _Ctx:
    """Error reporting for one file: ``ctx.fail(node, key, message)``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: Any, key: str | None, message: str, *, at_key: Any = None) -> ConfigError:
        line = None
        if isinstance(node, LineMap):
            line = node.key_lines.get(at_key if at_key is not None else (key.rsplit(".", 1)[-1] if key else None), node.line)
        elif isinstance(node, LineSeq):
            line = node.line
        return ConfigError(self.path, message, line=line, key=key)

    def mapping(self, node: Any, key: str, allowed: dict[str, bool], parent: Any = None, at_key: Any = None) -> LineMap:
        """Check ``node`` is a mapping with only ``allowed`` keys ({key: required})."""
        if not isinstance(node, dict):
            raise self.fail(parent if parent is not None else node, key, f"expected a mapping, got {_kind(node)}", at_key=at_key)
        for k in node:
            if k not in allowed:
                close = difflib.get_close_matches(str(k), list(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
                raise self.fail(node, f"{key}.{k}" if key else str(k), f"unknown key ({hint})", at_key=k)
        for k, required in allowed.items():
            if required and k not in node:
                raise self.fail(node, key or None, f"missing required key {k!r}", at_key=None)
        return node

    def typed(self, node: LineMap, key: str, path: str, check: Callable[[Any], bool], what: str, default: Any = None) -> Any:
        if key not in node:
            return default
        value = node[key]
        if not check(value):
            raise self.fail(node, f"{path}.{key}" if path else key, f"expected {what}, got {_kind(value)} {value!r}", at_key=key)
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_rgb(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 3 and all(_is_int(x) and 0 <= x <= 255 for x in v)


def _is_scalar_text(v: Any) -> bool:
    return isinstance(v, (str, int, float)) and not isinstance(v, bool)


_TOP = {
    "name": True,
    "title": False,
    "version": False,
    "homepage": False,
    "license": False,
    "description": False,
    "classes": True,
    "encodings": True,
    "layouts": False,
}
_CLASS = {"name": True, "unified": False, "colour": True, "description": False}
_ENCODING = {"kind": False, "description": False, "bits": False, "values": True}
_ROW = {"id": False, "colour": False, "name": False, "class": True}
_LAYOUT = {"description": False, "image": True, "labels": True, "splits": True}
_SOURCE = {"encoding": True, "pattern": True, "format": False}
_SPLIT = {"dir": False, "size": False, "labelled": False}


def load_labelspace(path: str | Path) -> LabelSpace:
    """Read and fully validate one registry file."""
    path = Path(path)
    doc = read_yaml(path)
    ctx = _Ctx(path)
    if doc is None:
        raise ConfigError(path, "empty file (expected a mapping with name, classes, encodings)")
    top = ctx.mapping(doc, "", _TOP)
    name = ctx.typed(top, "name", "", _is_str, "a non-empty string")
    if name != name.strip() or name.lower() != name or " " in name:
        raise ctx.fail(top, "name", f"registry names are lower-case without spaces, got {name!r}")
    if path.suffix in (".yaml", ".yml") and path.stem != name:
        raise ctx.fail(top, "name", f"{name!r} differs from the file name {path.stem!r} (rename one to match)")
    meta = {k: str(ctx.typed(top, k, "", _is_scalar_text, "a string", "")) for k in ("title", "version", "homepage", "license", "description")}

    classes = _load_classes(ctx, top)
    encodings = _load_encodings(ctx, top, classes)
    layouts = _load_layouts(ctx, top, encodings)
    return LabelSpace(
        name=name,
        title=meta["title"] or name,
        classes=tuple(classes),
        encodings=encodings,
        layouts=layouts,
        version=meta["version"],
        homepage=meta["homepage"],
        license=meta["license"],
        description=meta["description"],
        source=path,
    )


def _load_classes(ctx: _Ctx, top: LineMap) -> list[ClassDef]:
    rows = top["classes"]
    if not isinstance(rows, list) or not rows:
        raise ctx.fail(top, "classes", "expected a non-empty list of classes in training order", at_key="classes")
    classes: list[ClassDef] = []
    seen: dict[str, int] = {}
    seen_unified: dict[str, int] = {}
    for i, row in enumerate(rows):
        where = f"classes[{i}]"
        row = ctx.mapping(row, where, _CLASS, parent=rows)
        cname = ctx.typed(row, "name", where, _is_scalar_text, "a string")
        cname = str(cname)
        unified = str(ctx.typed(row, "unified", where, _is_scalar_text, "a string", cname.lower()))
        colour = ctx.typed(row, "colour", where, _is_rgb, "[r, g, b] with 0-255 integers")
        desc = str(ctx.typed(row, "description", where, _is_scalar_text, "a string", ""))
        if cname in seen:
            raise ctx.fail(row, f"{where}.name", f"duplicate class name {cname!r} (also classes[{seen[cname]}])", at_key="name")
        if unified in seen_unified:
            raise ctx.fail(
                row, f"{where}.unified", f"duplicate unified name {unified!r} (also classes[{seen_unified[unified]}]); "
                "two classes of one dataset cannot merge", at_key="unified" if "unified" in row else "name"
            )
        seen[cname] = i
        seen_unified[unified] = i
        classes.append(ClassDef(index=i, name=cname, unified=unified, colour=tuple(colour), description=desc))
    if len(classes) > 255:
        raise ctx.fail(top, "classes", f"{len(classes)} classes; at most 255 fit 8-bit labels with 255 = ignore", at_key="classes")
    return classes


def _load_encodings(ctx: _Ctx, top: LineMap, classes: list[ClassDef]) -> dict[str, Encoding]:
    node = top["encodings"]
    if not isinstance(node, dict) or not node:
        raise ctx.fail(top, "encodings", "expected a mapping of encoding name -> encoding", at_key="encodings")
    by_name = {c.name: c.index for c in classes}
    out: dict[str, Encoding] = {}
    for ename, enc in node.items():
        where = f"encodings.{ename}"
        if not _is_str(ename):
            raise ctx.fail(node, "encodings", f"encoding names are strings, got {ename!r}", at_key=ename)
        enc = ctx.mapping(enc, where, _ENCODING, parent=node, at_key=ename)
        kind = ctx.typed(enc, "kind", where, lambda v: v in ("index", "rgb"), "'index' or 'rgb'", "index")
        bits = ctx.typed(enc, "bits", where, lambda v: v in (8, 16), "8 or 16", 8)
        if kind == "rgb" and "bits" in enc:
            raise ctx.fail(enc, f"{where}.bits", "bits applies to index encodings only", at_key="bits")
        desc = str(ctx.typed(enc, "description", where, _is_scalar_text, "a string", ""))
        rows = enc["values"]
        if not isinstance(rows, list) or not rows:
            raise ctx.fail(enc, f"{where}.values", "expected a non-empty list of {id|colour, name, class} rows", at_key="values")
        values: list[RawValue] = []
        seen: dict[Any, int] = {}
        for j, row in enumerate(rows):
            rwhere = f"{where}.values[{j}]"
            row = ctx.mapping(row, rwhere, _ROW, parent=rows)
            if kind == "index":
                if "colour" in row:
                    raise ctx.fail(row, f"{rwhere}.colour", "index encodings list ids, not colours (kind: rgb decodes by colour)", at_key="colour")
                if "id" not in row:
                    raise ctx.fail(row, rwhere, "missing required key 'id'")
                raw = ctx.typed(row, "id", rwhere, _is_int, "an integer")
                if not 0 <= raw < (1 << bits):
                    raise ctx.fail(row, f"{rwhere}.id", f"id {raw} out of range 0-{(1 << bits) - 1} for {bits}-bit labels", at_key="id")
                key: Any = raw
            else:
                if "id" in row:
                    raise ctx.fail(row, f"{rwhere}.id", "rgb encodings list colours, not ids", at_key="id")
                if "colour" not in row:
                    raise ctx.fail(row, rwhere, "missing required key 'colour'")
                key = tuple(ctx.typed(row, "colour", rwhere, _is_rgb, "[r, g, b] with 0-255 integers"))
            cls_name = row["class"]
            if cls_name is None:
                cls = None
            else:
                if not _is_scalar_text(cls_name):
                    raise ctx.fail(row, f"{rwhere}.class", f"expected a class name or null (void), got {_kind(cls_name)}", at_key="class")
                cls_name = str(cls_name)
                if cls_name not in by_name:
                    close = difflib.get_close_matches(cls_name, list(by_name), n=1)
                    hint = f"did you mean {close[0]!r}?" if close else "use an official name from classes, or null for void"
                    raise ctx.fail(row, f"{rwhere}.class", f"unknown class {cls_name!r} ({hint})", at_key="class")
                cls = by_name[cls_name]
            raw_name = str(ctx.typed(row, "name", rwhere, _is_scalar_text, "a string", cls_name if cls_name is not None else ""))
            if not raw_name:
                raise ctx.fail(row, rwhere, "void rows need a name (what the dataset calls this value)")
            if key in seen:
                what = "colour" if kind == "rgb" else "id"
                shown = list(key) if kind == "rgb" else key
                raise ctx.fail(
                    row, f"{rwhere}.{what}",
                    f"{what} {shown} is listed twice (also values[{seen[key]}]); a raw value maps to one class",
                    at_key=what,
                )
            seen[key] = j
            values.append(RawValue(value=key, name=raw_name, cls=cls))
        covered = {v.cls for v in values}
        missing = [c.name for c in classes if c.index not in covered]
        if missing:
            raise ctx.fail(enc, f"{where}.values", f"classes with no raw value in this encoding: {', '.join(missing)}", at_key="values")
        out[ename] = Encoding(name=ename, kind=kind, values=tuple(values), description=desc, bits=bits)
    return out


def _load_layouts(ctx: _Ctx, top: LineMap, encodings: dict[str, Encoding]) -> dict[str, Layout]:
    node = top.get("layouts")
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ctx.fail(top, "layouts", "expected a mapping of layout name -> layout", at_key="layouts")
    out: dict[str, Layout] = {}
    for lname, lay in node.items():
        where = f"layouts.{lname}"
        lay = ctx.mapping(lay, where, _LAYOUT, parent=node, at_key=lname)
        image = ctx.typed(lay, "image", where, _is_str, "a path pattern")
        desc = str(ctx.typed(lay, "description", where, _is_scalar_text, "a string", ""))
        splits_node = lay["splits"]
        if not isinstance(splits_node, dict) or not splits_node:
            raise ctx.fail(lay, f"{where}.splits", "expected a mapping of split name -> {dir, size, labelled}", at_key="splits")
        splits: dict[str, Split] = {}
        for sname, sp in splits_node.items():
            swhere = f"{where}.splits.{sname}"
            sp = ctx.mapping(sp if sp is not None else LineMap(), swhere, _SPLIT, parent=splits_node, at_key=sname)
            sdir = str(ctx.typed(sp, "dir", swhere, lambda v: isinstance(v, str), "a folder name", str(sname)))
            size = ctx.typed(sp, "size", swhere, lambda v: _is_int(v) and v >= 0, "a non-negative integer", None)
            labelled = ctx.typed(sp, "labelled", swhere, lambda v: isinstance(v, bool), "true or false", True)
            splits[str(sname)] = Split(name=str(sname), dir=sdir, size=size, labelled=labelled)
        image_fields = Layout.fields(image)
        if len(set(image_fields)) != len(image_fields):
            raise ctx.fail(lay, f"{where}.image", "a field appears twice in the pattern", at_key="image")
        if "{split}" not in image and len(splits) > 1:
            raise ctx.fail(lay, f"{where}.image", "several splits but the pattern has no {split} folder", at_key="image")
        labels_node = lay["labels"]
        if not isinstance(labels_node, dict) or not labels_node:
            raise ctx.fail(lay, f"{where}.labels", "expected a mapping of source name -> pattern or {encoding, pattern, format}", at_key="labels")
        sources: list[LabelSource] = []
        for src_name, src in labels_node.items():
            lwhere = f"{where}.labels.{src_name}"
            if isinstance(src, str):
                enc_name, pattern, fmt = str(src_name), src, "png"
            else:
                src = ctx.mapping(src, lwhere, _SOURCE, parent=labels_node, at_key=src_name)
                enc_name = ctx.typed(src, "encoding", lwhere, _is_str, "an encoding name")
                pattern = ctx.typed(src, "pattern", lwhere, _is_str, "a path pattern")
                fmt = ctx.typed(src, "format", lwhere, lambda v: v in ("png", "polygons"), "'png' or 'polygons'", "png")
            if enc_name not in encodings:
                raise ctx.fail(
                    labels_node, lwhere, f"names encoding {enc_name!r}, which is not defined (encodings: {', '.join(encodings)})",
                    at_key=src_name,
                )
            extra = set(Layout.fields(pattern)) - set(image_fields)
            if extra:
                raise ctx.fail(labels_node, lwhere, f"label pattern uses fields {sorted(extra)} that the image pattern lacks", at_key=src_name)
            sources.append(LabelSource(name=str(src_name), encoding=enc_name, pattern=pattern, format=fmt))
        out[str(lname)] = Layout(name=str(lname), image=image, labels=tuple(sources), splits=splits, description=desc)
    return out
