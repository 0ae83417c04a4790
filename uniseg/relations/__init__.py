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

_BY_MODULE = {  # submodule: the names it gives the package
    "stats": ("Similarity", "read_similarity", "write_similarity", "similarity_for", "class_own_scores", "KNOWN",),
    "eq6": ("TauChoice", "auto_tau", "multilabel_table", "identity_table",),
    "artifact": ("RelationSet", "Relation", "build_relations", "read_relations", "write_relations", "read_relation_table", "union_for",),
    "graph": ("relation_graph", "conflicts",),
    "diff": ("diff_relations",),
    "edits": ("Edit",),
    "review": ("candidates", "apply_edit",),
}
_EXPORTS = {name: module for module, names in _BY_MODULE.items() for name in names}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
