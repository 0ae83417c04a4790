"""A trained model as a shareable folder: ``model.safetensors`` plus a small ``config.json``, and back.

``uniseg models export`` writes the folder from a checkpoint (the weights alone: no optimiser,
no generator states); ``uniseg eval`` / ``predict`` / ``relations mine`` and ``train --init``
read it wherever they take a checkpoint (:func:`uniseg.engine.checkpoint.read_checkpoint`).
``config.json`` (format ``uniseg.export/v1``) says what rebuilds and reads the network::

    variant, head, num_classes, align_corners, cosine_scale   the network
    datasets, classes                                        the union, classes in union order with colours and members
    union_fingerprint, relations_fingerprint                 what it was trained for
    loss, activation, recipe, iteration, source              how it was trained (no local path: the
                                                             recipe's folders and files, and source, by
                                                             their last component)

The union is checked against its fingerprint on reading, as for a ``.pt``, and the safetensors
header repeats variant and fingerprint, so weights and a ``config.json`` of two exports never mix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

from uniseg.errors import FingerprintMismatch, UnisegError

__all__ = ["CONFIG_FILE", "EXPORT_FORMAT", "ExportResult", "dump_config_json", "export_checkpoint", "export_document", "is_export", "read_export"]

EXPORT_FORMAT = "uniseg.export/v1"
CONFIG_FILE = "config.json"
_SPEC_KEYS = ("head", "num_classes", "align_corners", "cosine_scale")


@dataclass(frozen=True)
class ExportResult:
    """What ``export_checkpoint`` wrote."""

    folder: Path
    weights: Path
    config: Path
    document: dict  # the config.json document
    tensors: int


def export_document(doc: Mapping[str, Any]) -> dict:
    """The ``config.json`` document of a checkpoint read by ``read_checkpoint``."""
    from uniseg import __version__

    spec = doc["model_spec"]
    recipe = shareable_recipe(doc.get("config") or {})
    loss = str(recipe.get("loss", "ce"))
    union = doc["union"]
    return {
        "format": EXPORT_FORMAT,
        "variant": str(spec["name"]),
        **{k: spec[k] for k in _SPEC_KEYS},
        "union_fingerprint": str(doc["union_fingerprint"]),
        "relations_fingerprint": doc.get("relations_fingerprint"),
        "datasets": list(union["datasets"]),
        "classes": [
            {"index": int(c.get("index", i)), "name": str(c["name"]), "colour": [int(v) for v in c["colour"]],
             "members": {str(d): list(n) for d, n in dict(c["members"]).items()}}
            for i, c in enumerate(union["classes"])
        ],
        "loss": loss,
        "activation": "softmax" if loss == "ce" else "sigmoid",
        "iteration": int(doc.get("iteration", 0)),
        "recipe": recipe,
        "source": _last_part(str(doc.get("path", ""))),
        "uniseg_version": __version__,
    }


#: Recipe settings that hold a path on the training machine (``datasets`` holds one per dataset).
_PATH_SETTINGS = ("relations", "pretrained", "init")


def _last_part(path: str) -> str:
    """The last component of a path (``/data/cs/`` -> ``cs``), or the text as given."""
    return Path(path.rstrip("/\\")).name or path


def shareable_recipe(recipe: Mapping[str, Any]) -> dict:
    """The run's settings with every local path cut to its last component (dataset roots, the
    union folder, relations, pretrained and init files): an export is shared, and the folders of
    the machine it was trained on say nothing to whoever loads it (and should not travel)."""
    out = dict(recipe)
    if isinstance(out.get("datasets"), list):
        out["datasets"] = [{**d, "root": _last_part(str(d["root"]))} if isinstance(d, Mapping) and d.get("root") else d
                           for d in out["datasets"]]
    if isinstance(out.get("union"), str):
        out["union"] = _last_part(out["union"])
    for key in _PATH_SETTINGS:
        if isinstance(out.get(key), str) and out[key]:
            out[key] = _last_part(out[key])
    return out


def export_checkpoint(checkpoint: Union[str, Path], out: Union[str, Path]) -> ExportResult:
    """Write ``out/model.safetensors`` and ``out/config.json`` from a uniseg checkpoint (file or run folder).

    An ``out`` that holds another tool's ``config.json`` is refused; an earlier export there is replaced.
    """
    from uniseg.engine.checkpoint import checkpoint_union, read_checkpoint
    from uniseg.io import atomic_write_text, check_output_path
    from uniseg.models.weightfiles import SAFETENSORS_FILE, write_safetensors

    doc = read_checkpoint(checkpoint)
    checkpoint_union(doc)  # an edited union record is refused here, not by whoever loads the export
    folder = check_output_path(out, what="--out")
    config_path = folder / CONFIG_FILE
    if config_path.is_file() and not _is_export_config(config_path):
        raise UnisegError(f"--out {folder}: holds a {CONFIG_FILE} that is not a uniseg export; choose another folder")
    document = export_document(doc)
    meta = {"format": "pt", "uniseg": EXPORT_FORMAT, "variant": document["variant"], "union_fingerprint": document["union_fingerprint"]}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        weights = write_safetensors(folder / SAFETENSORS_FILE, doc["model"], meta)
        atomic_write_text(config_path, dump_config_json(document))
    except OSError as exc:
        raise UnisegError(f"--out {folder}: cannot write there ({(exc.strerror or type(exc).__name__).lower()}); choose a folder you can write to") from None
    return ExportResult(folder, weights, config_path, document, len(doc["model"]))


def dump_config_json(document: Mapping[str, Any]) -> str:
    """``config.json`` text: a key per line, a class per line, the recipe indented (readable, and small for 200 classes)."""
    parts = []
    for key, value in document.items():
        if key == "classes":
            rows = ",\n".join("    " + json.dumps(c, ensure_ascii=False) for c in value)
            text = f"[\n{rows}\n  ]" if rows else "[]"
        elif isinstance(value, Mapping) and value:
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        else:
            text = json.dumps(value, ensure_ascii=False)
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _is_export_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == EXPORT_FORMAT


def is_export(path: Union[str, Path]) -> bool:
    """Whether ``path`` is an export: its folder, its ``config.json`` or a ``.safetensors`` file (beside a ``config.json``)."""
    p = Path(path).expanduser()
    folder = p if p.is_dir() else p.parent
    if p.is_file() and p.name != CONFIG_FILE and p.suffix != ".safetensors":
        return False
    return (folder / CONFIG_FILE).is_file() and (p.is_file() or _has_weights(folder))


def _has_weights(folder: Path) -> bool:
    from uniseg.models.weightfiles import SAFETENSORS_FILE

    return (folder / SAFETENSORS_FILE).is_file()


def read_export(path: Union[str, Path]) -> dict:
    """An export read as ``read_checkpoint`` reads a ``.pt`` (keys ``model``, ``model_spec``, ``union``,
    ``union_fingerprint``, ``config``, ``iteration``, ``path``); a damaged or mixed folder is a one-line error."""
    from uniseg.models.weightfiles import SAFETENSORS_FILE, read_safetensors

    p = Path(path).expanduser()
    folder = p if p.is_dir() else p.parent
    weights = p if p.suffix == ".safetensors" else folder / SAFETENSORS_FILE
    config_path = folder / CONFIG_FILE
    cfg = _read_config(config_path)
    tensors, meta = read_safetensors(weights, "checkpoint")
    for key in ("variant", "union_fingerprint"):
        if key in meta and meta[key] != str(cfg[key]):
            raise FingerprintMismatch(
                f"{weights}: weights of {key} {meta[key]}, but {config_path} says {cfg[key]}; "
                "keep model.safetensors and config.json of one export together"
            )
    return {
        "format": EXPORT_FORMAT,
        "model": tensors,
        "model_spec": {"name": str(cfg["variant"]), **{k: cfg[k] for k in _SPEC_KEYS}},
        "union": {"datasets": list(cfg["datasets"]), "classes": list(cfg["classes"]), "fingerprint": cfg["union_fingerprint"]},
        "union_fingerprint": str(cfg["union_fingerprint"]),
        "relations_fingerprint": cfg.get("relations_fingerprint"),
        "config": dict(cfg.get("recipe") or {}),
        "iteration": int(cfg.get("iteration", 0)),
        "path": str(folder),
    }


def _read_config(path: Path) -> dict:
    """``config.json`` of an export, its keys checked (a missing or malformed one is named)."""
    from uniseg.errors import ConfigError

    if not path.is_file():
        raise UnisegError(f"{path}: not found; an export folder holds model.safetensors and config.json ('uniseg models export')")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(path, f"not readable JSON ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != EXPORT_FORMAT:
        raise ConfigError(path, f"not a uniseg export (no format {EXPORT_FORMAT!r}); write one with 'uniseg models export' "
                          "(ImageNet weights, timm's included, go to 'uniseg train --pretrained')")
    for key in ("variant", *_SPEC_KEYS, "union_fingerprint", "datasets", "classes"):
        if key not in cfg:
            raise ConfigError(path, "missing (written by another tool?)", key=key)
    if not isinstance(cfg["classes"], list) or not all(isinstance(c, dict) and {"name", "colour", "members"} <= set(c) for c in cfg["classes"]):
        raise ConfigError(path, "expected a list of {name, colour, members}", key="classes")
    return cfg
