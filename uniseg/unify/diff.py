"""Compare two label spaces: shared classes, classes only in one, and name collisions."""

from __future__ import annotations

from dataclasses import dataclass, field

from uniseg.labelspaces.schema import LabelSpace


@dataclass
class LabelSpaceDiff:
    a: str
    b: str
    shared: list[dict] = field(default_factory=list)  # {unified, a, b}: merge in a union
    only_a: list[dict] = field(default_factory=list)  # {unified, name}
    only_b: list[dict] = field(default_factory=list)
    collisions: list[dict] = field(default_factory=list)  # {kind, ...}: names that mislead

    def to_dict(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "shared": self.shared,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "collisions": self.collisions,
        }


def diff_labelspaces(a: LabelSpace, b: LabelSpace) -> LabelSpaceDiff:
    """Classes merge on unified names. A collision is an official name both spaces use for
    classes that do NOT merge, or a merge of classes whose official names differ."""
    ua = {c.unified: c for c in a.classes}
    ub = {c.unified: c for c in b.classes}
    out = LabelSpaceDiff(a.name, b.name)
    for u in sorted(ua.keys() & ub.keys()):
        out.shared.append({"unified": u, "a": ua[u].name, "b": ub[u].name})
        if ua[u].name.lower() != ub[u].name.lower():
            out.collisions.append(
                {"kind": "merged under another name", "unified": u, "a": ua[u].name, "b": ub[u].name}
            )
    out.only_a = [{"unified": u, "name": ua[u].name} for u in sorted(ua.keys() - ub.keys())]
    out.only_b = [{"unified": u, "name": ub[u].name} for u in sorted(ub.keys() - ua.keys())]
    na = {c.name.lower(): c for c in a.classes}
    nb = {c.name.lower(): c for c in b.classes}
    for n in sorted(na.keys() & nb.keys()):
        if na[n].unified != nb[n].unified:
            out.collisions.append(
                {"kind": "same name, not merged", "name": n, "a_unified": na[n].unified, "b_unified": nb[n].unified}
            )
    # a raw name of one space that is a class of the other but maps elsewhere (e.g. IDD raw 'parking')
    for x, y, label in ((a, b, "a"), (b, a, "b")):
        y_names = {c.unified for c in y.classes}
        for enc in x.encodings.values():
            for v in enc.values:
                raw = v.name.lower()
                if v.cls is None or raw not in y_names:
                    continue
                target = x.classes[v.cls].unified
                if target != raw:
                    out.collisions.append(
                        {
                            "kind": "raw label folded into another class",
                            "side": label,
                            "encoding": enc.name,
                            "raw_name": v.name,
                            "folded_into": target,
                        }
                    )
    return out
