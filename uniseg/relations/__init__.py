"""The relation stage of UniSeg: from a trained model's statistics to the multi-label table.

The pipeline, one module a step (the accumulation pass over a model is ``uniseg.engine.mining``):

* ``stats``    Eq. 7: the class-similarity statistics, ``similarity.npz`` / ``.csv``, own scores
* ``eq6``      Eq. 6: the multi-label table, the automatic tau, the identity (Null-BCE) table
* ``artifact`` the relations folder: ``relations.yaml`` + ``table.npy`` (what ``--loss cr-bce`` reads)
* ``edits``    hand edits of a table (accept / reject / add) and how they replay
* ``review``   ``uniseg relations review``: the candidates (switched on, near misses) and one edit at a time
* ``graph``    the asymmetric relation graph (networkx): subset / equivalent / overlap, conflicts
* ``diff``     what changed between two relation artifacts
* ``plots``    the similarity heatmap and the relation drawing (PNG)
* ``scoring``  a relation set against known relations (the synthetic world's planted ones)

Names are imported lazily: ``import uniseg.relations`` costs nothing until one is used.
"""

from __future__ import annotations

from uniseg._lazy import lazy_exports

_EXPORTS = {
    "Similarity": "stats",
    "read_similarity": "stats",
    "write_similarity": "stats",
    "similarity_for": "stats",
    "class_own_scores": "stats",
    "KNOWN": "stats",
    "TauChoice": "eq6",
    "auto_tau": "eq6",
    "multilabel_table": "eq6",
    "identity_table": "eq6",
    "RelationSet": "artifact",
    "Relation": "artifact",
    "build_relations": "artifact",
    "read_relations": "artifact",
    "write_relations": "artifact",
    "read_relation_table": "artifact",
    "union_for": "artifact",
    "relation_graph": "graph",
    "conflicts": "graph",
    "diff_relations": "diff",
    "Edit": "edits",
    "candidates": "review",
    "apply_edit": "review",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
