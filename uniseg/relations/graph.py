"""The class-relation graph: a networkx ``MultiDiGraph`` over the unified classes.

Why a multigraph: each dataset measures c -> c' on its own pixels, so each (c, c', dataset) is
an edge of its own (key = dataset) with plain scalar attributes that GraphML, GEXF, DOT, JSON
and CSV all carry; Gephi and Cytoscape show the parallel edges.

Edge c -> c' for dataset d (c in d's space with pixels in d, c' != c): ``score`` s_{d,c}(c'),
``cosine``, ``own_score`` s_{d,c}(c), ``pixels`` (of c in d), ``on`` (Eq. 6 switched c' on),
``in_space`` (c' in d's space) and ``kind``:

- ``subset``: switched on, and c' -> c is switched on in no dataset (every c is also a c');
- ``equivalent``: switched on, and c' -> c is switched on too (in any dataset);
- ``conflict``: not switched on, c' outside d's space (another dataset's class), and the model
  confuses them strongly: s_{d,c}(c') >= tau / 2 (``CONFLICT_FRACTION`` x tau);
- ``similar``: the rest at or above the floor (e.g. two classes of one space that look alike);
- ``overlap`` (and ``subset`` / ``equivalent``) as a person typed a switched-on relation in
  ``uniseg relations review`` (the Missing Link paper's typed edges): a reviewed kind wins.

``origin`` says where a switched-on edge came from: ``mined`` (Eq. 6, or a mined pair a person
accepted) or ``added`` by hand; edges not switched on are ``mined`` measurements.

Edges below ``EDGE_FLOOR`` (0.1) that Eq. 6 did not switch on are left out, so the graph stays
readable. Nodes carry ``label``, ``index``, ``colour`` (#rrggbb), ``datasets`` (comma-separated),
``members`` ("dataset: official name; ..."), ``pixels`` (over all datasets) and ``own_score``
(``uniseg.relations.stats.class_own_scores``: s_{d,c}(c) over the datasets that label c, weighted
by their pixels; under ``KNOWN`` = 0.5 the model hardly knows the class).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from uniseg.errors import UnisegError
from uniseg.relations.stats import class_own_scores

if TYPE_CHECKING:  # networkx is imported by the functions that build graphs
    import networkx as nx

    from uniseg.relations.artifact import RelationSet

EDGE_FLOOR = 0.1
CONFLICT_FRACTION = 0.5
KINDS = ("subset", "equivalent", "conflict", "similar", "overlap")
EDGE_COLUMNS = ["source", "target", "dataset", "kind", "on", "score", "own_score", "cosine", "pixels", "in_space", "weight", "origin"]
EXPORT_FORMATS = {
    "graphml": "GraphML (Gephi, Cytoscape, yEd; networkx.read_graphml)",
    "gexf": "GEXF 1.2 with node colours (Gephi; networkx.read_gexf)",
    "json": "node-link JSON (networkx.node_link_graph, d3)",
    "dot": "Graphviz DOT, nodes filled with class colours (dot -Tpng)",
    "csv": "edge list with a header (pandas.read_csv)",
}


def hex_colour(rgb) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def conflict_threshold(tau: float) -> float:
    """The score at or above which a cross-space edge Eq. 6 left off counts as a conflict."""
    return CONFLICT_FRACTION * float(tau)


def edge_kinds(rs: "RelationSet", floor: float = EDGE_FLOOR) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, kind)``: ``D x K x K`` bool edges in the graph and their kind index into ``KINDS``
    (-1 where not kept). Pure array maths over the relation set."""
    sim, valid = rs.similarity, rs.valid
    on = rs.switched_on
    k = on.shape[1]
    off_diag = ~np.eye(k, dtype=bool)[None]
    measured = (valid & sim.measured)[:, :, None]
    on_any = on.any(axis=0)  # K x K: c -> c' switched on in some dataset
    reverse = np.broadcast_to(on_any.T[None], on.shape)
    conflict = ~on & ~valid[:, None, :] & (sim.score >= conflict_threshold(rs.tau.tau))
    keep = measured & off_diag & (on | (sim.score >= floor))
    kind = np.full(on.shape, -1, dtype=np.int8)
    kind[keep] = KINDS.index("similar")
    kind[keep & conflict] = KINDS.index("conflict")
    kind[keep & on & ~reverse] = KINDS.index("subset")
    kind[keep & on & reverse] = KINDS.index("equivalent")
    for (d, c, c2), typed in rs.hand_kinds().items():  # a person's kind wins (relations review --kind)
        if keep[d, c, c2]:
            kind[d, c, c2] = KINDS.index(typed)
    return keep, kind


def relation_graph(rs: "RelationSet", floor: float = EDGE_FLOOR) -> "nx.MultiDiGraph":
    """The relation graph of a relation set (see the module docstring for every attribute)."""
    import networkx as nx

    sim, union = rs.similarity, rs.union
    g = nx.MultiDiGraph(
        fingerprint=union.fingerprint, datasets=",".join(sim.datasets), tau=float(rs.tau.tau), tau_how=rs.tau.how,
        floor=float(floor), conflict_at=conflict_threshold(rs.tau.tau),
    )
    totals = sim.pixels.sum(axis=0)
    own_score = class_own_scores(sim.score, sim.pixels, rs.valid)
    for c in union.classes:
        g.add_node(
            c.name, label=c.name, index=int(c.index), colour=hex_colour(c.colour), datasets=",".join(c.members),
            members="; ".join(f"{d}: {' | '.join(n)}" for d, n in c.members.items()), pixels=int(totals[c.index]),
            own_score=round(float(own_score[c.index]), 6),
        )
    keep, kind = edge_kinds(rs, floor)
    added = {(r.dataset, r.primary, r.secondary) for r in rs.relations() if r.source == "added"} if rs.reviewed else set()
    for d, c, c2 in np.argwhere(keep):
        s = float(sim.score[d, c, c2])
        g.add_edge(
            sim.classes[c], sim.classes[c2], key=sim.datasets[d], dataset=sim.datasets[d], kind=KINDS[kind[d, c, c2]],
            on=bool(rs.table[d, c, c2] == 1), score=s, own_score=float(sim.score[d, c, c]), cosine=float(sim.cosine[d, c, c2]),
            pixels=int(sim.pixels[d, c]), in_space=bool(rs.valid[d, c2]), weight=s,
            origin="added" if (sim.datasets[d], sim.classes[c], sim.classes[c2]) in added else "mined",
        )
    return g


def _edge_row(u: str, v: str, data: dict) -> dict:
    return {"source": u, "target": v, **{k: data[k] for k in EDGE_COLUMNS[2:]}}


def class_relations(g: "nx.MultiDiGraph", name: str, top: int = 5) -> dict:
    """Strongest outgoing (``name`` -> c') and incoming (c -> ``name``) edges per dataset."""
    if name not in g:
        import difflib

        close = difflib.get_close_matches(name, list(g.nodes), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "see 'uniseg labels union' for the class names"
        raise UnisegError(f"class {name!r} is not in this union ({hint})")

    def grouped(edges) -> dict[str, list[dict]]:
        per: dict[str, list[dict]] = {}
        for u, v, data in edges:
            per.setdefault(data["dataset"], []).append(_edge_row(u, v, data))
        order = g.graph["datasets"].split(",")
        return {
            d: sorted(per[d], key=lambda r: (-r["score"], r["source"], r["target"]))[:top]
            for d in sorted(per, key=order.index)
        }

    node = dict(g.nodes[name])
    return {
        "class": name, **{k: node[k] for k in ("index", "colour", "datasets", "members", "pixels", "own_score")},
        "tau": g.graph["tau"], "floor": g.graph["floor"],
        "outgoing": grouped(g.out_edges(name, data=True)),
        "incoming": grouped(g.in_edges(name, data=True)),
    }


def conflicts(g: "nx.MultiDiGraph", top: int | None = None) -> list[dict]:
    """Conflict edges ranked by score (strongest first), each with the bar it missed
    (``needs`` = max(tau, own score), ``left_off_by`` the larger of the two) and the datasets
    where the opposite direction is switched on."""
    tau = g.graph["tau"]
    rows = []
    for u, v, data in g.edges(data=True):
        if data["kind"] != "conflict":
            continue
        row = _edge_row(u, v, data)
        # Eq. 6 needs s(c') > max(tau, s(c)): name the larger of the two, the bar this edge missed
        row["left_off_by"] = "own score" if data["own_score"] >= tau else "tau"
        row["needs"] = max(tau, data["own_score"])
        row["reverse_on"] = sorted(e["dataset"] for _, t, e in g.out_edges(v, data=True) if t == u and e["on"])
        rows.append(row)
    rows.sort(key=lambda r: (-r["score"], r["dataset"], r["source"], r["target"]))
    return rows if top is None else rows[:top]


def _styled_for_dot(g: "nx.MultiDiGraph") -> "nx.MultiDiGraph":
    """A copy with Graphviz display attributes (filled class colours, edge labels, dashed conflicts)."""
    h = g.copy()
    style = {"subset": ("black", "solid"), "equivalent": ("blue", "bold"), "conflict": ("red", "dashed"), "similar": ("gray60", "dotted"),
             "overlap": ("darkgreen", "solid")}
    for _, data in h.nodes(data=True):
        data.update(style="filled", fillcolor=data["colour"])
    for _, _, data in h.edges(data=True):
        colour, line = style[data["kind"]]
        data.update(color=colour, style=line, label=f"{data['dataset']} {data['score']:.2f}")
    return h


def _with_gexf_colours(g: "nx.MultiDiGraph") -> "nx.MultiDiGraph":
    h = g.copy()
    for _, data in h.nodes(data=True):
        c = data["colour"]
        data["viz"] = {"color": {"r": int(c[1:3], 16), "g": int(c[3:5], 16), "b": int(c[5:7], 16), "a": 1.0}}
    return h


def export_graph(g: "nx.MultiDiGraph", fmt: str, out: str | Path) -> Path:
    """Write ``g`` as ``fmt`` (one of ``EXPORT_FORMATS``) to ``out``, atomically."""
    import json

    import networkx as nx

    from uniseg.io import atomic_open, atomic_write_text

    if fmt not in EXPORT_FORMATS:
        raise UnisegError(f"--format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise UnisegError(f"--out {out}: is a folder; give a file name, e.g. {out / ('relations.' + fmt)}")
    if fmt == "graphml":
        with atomic_open(out, "wb") as fh:
            nx.write_graphml(g, fh)
    elif fmt == "gexf":
        with atomic_open(out, "wb") as fh:
            nx.write_gexf(_with_gexf_colours(g), fh)
    elif fmt == "json":
        atomic_write_text(out, json.dumps(nx.node_link_data(g, edges="edges"), indent=1, ensure_ascii=False) + "\n")
    elif fmt == "dot":
        try:
            text = nx.nx_pydot.to_pydot(_styled_for_dot(g)).to_string()
        except ImportError:
            raise UnisegError("--format dot needs pydot (pip install pydot)") from None
        except ValueError as exc:  # a class name pydot cannot quote (a ':' in it)
            raise UnisegError(f"--format dot: {exc}") from None
        atomic_write_text(out, text)
    else:
        import pandas as pd

        frame = pd.DataFrame([_edge_row(u, v, d) for u, v, d in g.edges(data=True)], columns=EDGE_COLUMNS)
        atomic_write_text(out, frame.to_csv(index=False, lineterminator="\n"))
    return out
