"""Recorded figures of the built-in models (``facts.json``), so ``uniseg models list/info`` need no torch.

For every registered model the file holds :func:`~uniseg.models.registry.model_info` and the
parameter and MAC counts of :mod:`uniseg.models.complexity` for a ``CLASSES``-way head of either
kind at each of ``SIZES``. They are facts of the architectures, written from the computation by
``python -m uniseg.models.facts`` and recomputed entry by entry by ``tests/test_models_facts.py``;
anything else (another size, class count or model) is counted.
"""

from __future__ import annotations

import contextlib
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Callable, ContextManager, Optional, Sequence

from uniseg.models.complexity import Complexity
from uniseg.models.registry import HEADS

__all__ = ["CLASSES", "FACTS_FILE", "HEADS", "SIZES", "compute_facts", "model_figures", "recorded_complexity", "recorded_info", "write_facts"]

FACTS_FILE = Path(__file__).with_name("facts.json")
CLASSES = 19  # the official releases' Cityscapes head, and `uniseg models`' default
SIZES = ((512, 1024), (1024, 2048))  # the default input size, and the official README's


def _size_key(size: Sequence[int]) -> str:
    return f"{int(size[0])}x{int(size[1])}"


@lru_cache(maxsize=None)
def _load(path: Path = FACTS_FILE) -> dict:
    if not path.is_file():  # a source tree without the file: everything is counted
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("models", {})


def recorded_info(name: str) -> Optional[dict]:
    """``model_info(name)`` as recorded, or None for a model the file does not know."""
    entry = _load().get(name)
    return dict(entry["info"]) if entry else None


def recorded_complexity(name: str, num_classes: int, head: str, size: Sequence[int]) -> Optional[Complexity]:
    """The recorded :class:`Complexity`, or None when (model, classes, head, size) is not recorded."""
    entry = _load().get(name)
    if entry is None or num_classes != CLASSES or head not in entry["params"]:
        return None
    macs = entry["macs"][head].get(_size_key(size))
    if macs is None:
        return None
    return Complexity(int(entry["params"][head]), int(entry["trainable_params"][head]), int(macs), (int(size[0]), int(size[1])))


def compute_facts(names: Optional[Sequence[str]] = None) -> dict:
    """The file's content, computed now (imports torch; a few seconds per model)."""
    import torch

    from uniseg.models.complexity import measure
    from uniseg.models.registry import build_model, list_models, model_info

    models = {}
    for name in names if names is not None else list_models():
        params, trainable, macs = {}, {}, {}
        for head in HEADS:
            with torch.device("meta"):  # shapes only: no weights are allocated
                model = build_model(name, CLASSES, head=head)
            counts = [measure(model, size) for size in SIZES]
            params[head], trainable[head] = counts[0].params, counts[0].trainable_params
            macs[head] = {_size_key(c.size): c.macs for c in counts}
        models[name] = {"info": model_info(name), "params": params, "trainable_params": trainable, "macs": macs}
    return {
        "about": (
            "Figures of the built-in models, written by 'python -m uniseg.models.facts' from "
            "uniseg.models.registry.model_info and uniseg.models.complexity (params; MACs per image, "
            f"official counting) for a {CLASSES}-class head at {', '.join(_size_key(s) for s in SIZES)}; "
            "tests/test_models_facts.py recomputes every entry."
        ),
        "classes": CLASSES,
        "models": models,
    }


def _dumps(doc: dict) -> str:
    """JSON with one line per model field: readable, and diffs show which figure changed."""
    lines = [
        "{",
        f' "about": {json.dumps(doc["about"])},',
        f' "classes": {doc["classes"]},',
        ' "models": {',
    ]
    names = list(doc["models"])
    for i, name in enumerate(names):
        fields = doc["models"][name]
        body = ",\n".join(f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in fields.items())
        lines.append(f"  {json.dumps(name)}: {{\n{body}\n  }}{',' if i < len(names) - 1 else ''}")
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def write_facts(path: Path = FACTS_FILE) -> Path:
    """Recompute and write the file (atomically)."""
    from uniseg.io import atomic_write_text

    atomic_write_text(path, _dumps(compute_facts()))
    _load.cache_clear()
    return path


if __name__ == "__main__":
    print(f"wrote {write_facts()}", file=sys.stderr)


def model_figures(name: str, classes: int, head: str, size: tuple[int, int],
                  counting: Optional[Callable[[str], ContextManager]] = None) -> tuple[dict, Complexity]:
    """``(row, Complexity)``: name, description, params and MACs of ``name`` with a ``classes``-way
    ``head`` at ``size``: the recorded facts where they cover it, else counted on the meta device
    (``counting(message)``: a context shown meanwhile, e.g. a spinner; torch loads here)."""
    info = recorded_info(name)
    c = recorded_complexity(name, classes, head, size)
    if info is None or c is None:
        with (counting or (lambda _m: contextlib.nullcontext()))(f"counting {name}: {classes}-class {head} head at {size[0]}x{size[1]} (loading torch)"):
            from uniseg.models import model_info
            from uniseg.models.complexity import count_model

            info = info if info is not None else model_info(name)
            c = c if c is not None else count_model(name, classes, head, size)
    data = {
        "name": name,
        "family": info["family"],
        "title": info["title"],
        "description": info["description"],
        "params": c.params,
        "trainable_params": c.trainable_params,
        "macs": c.macs,
        "gmacs": round(c.gmacs, 3),
        "size": list(size),
        "classes": classes,
        "head": head,
    }
    for key in ("feature_channels", "stages", "official"):
        if key in info:
            data[key] = info[key]
    return data, c
