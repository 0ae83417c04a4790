"""Label-space registry: one YAML file per dataset taxonomy, loaded into validated records."""

from uniseg.labelspaces.loader import load_labelspace
from uniseg.labelspaces.registry import BUILTIN_DIR, ENV_VAR, Registry, default_registry, get_labelspace
from uniseg.labelspaces.schema import (
    IGNORE,
    ClassDef,
    Encoding,
    LabelSource,
    LabelSpace,
    Layout,
    RawValue,
    Split,
    compile_pattern,
)

__all__ = [
    "BUILTIN_DIR",
    "ENV_VAR",
    "IGNORE",
    "ClassDef",
    "Encoding",
    "LabelSource",
    "LabelSpace",
    "Layout",
    "RawValue",
    "Registry",
    "Split",
    "compile_pattern",
    "default_registry",
    "get_labelspace",
    "load_labelspace",
]
