"""PNG pictures of a relation set: the similarity heatmap and a drawing of the switched-on relations.

matplotlib is imported inside the functions and used through its object API on the Agg canvas
(no pyplot, no global backend switch), so importing this module is free and nothing needs a display.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from uniseg.io import atomic_write_bytes
from uniseg.relations.graph import KINDS, edge_kinds
from uniseg.relations.artifact import RelationSet

_KIND_COLOUR = {"subset": "black", "equivalent": "tab:blue", "overlap": "tab:green"}


def _save(fig, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
    return path


def column_order(rs: RelationSet) -> np.ndarray:
    """Unified classes grouped by the first dataset (file order) whose space holds them."""
    first = np.argmax(rs.valid, axis=0)  # every union class belongs to some dataset
    return np.lexsort((np.arange(rs.valid.shape[1]), first))


def similarity_heatmap(rs: RelationSet, path: str | Path) -> Path:
    """Rows: each dataset's measured classes (grouped by dataset); columns: unified classes
    grouped by dataset; colour s_{d,c}(c'). White squares: switched on; red: conflicts."""
    from matplotlib.figure import Figure

    sim = rs.similarity
    rows = np.argwhere(rs.valid & sim.measured)  # (d, c), grouped by dataset in file order
    cols = column_order(rs)
    k = len(cols)
    fig = Figure(figsize=(2.5 + 0.13 * k, 2.0 + 0.13 * max(len(rows), 1)))
    ax = fig.add_axes((0.18, 0.14, 0.74, 0.8)) if len(rows) else fig.add_subplot()
    if not len(rows):
        ax.text(0.5, 0.5, "no class has pixels in any dataset", ha="center", va="center")
        ax.set_axis_off()
        return _save(fig, Path(path))
    grid = sim.score[rows[:, 0], rows[:, 1]][:, cols]
    im = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.03, label="s_d,c(c')")
    _, kind = edge_kinds(rs)
    picked = kind[rows[:, 0], rows[:, 1]][:, cols]  # R x K
    for name, colour in (("subset", "white"), ("equivalent", "white"), ("overlap", "white"), ("conflict", "red")):
        r, c = np.nonzero(picked == KINDS.index(name))
        ax.scatter(c, r, marker="s", s=28, facecolors="none", edgecolors=colour, linewidths=0.9)
    ax.set_xticks(range(k), [sim.classes[i] for i in cols], rotation=90, fontsize=6)
    ax.set_yticks(range(len(rows)), [sim.classes[c] for _, c in rows], fontsize=6)
    starts = np.flatnonzero(np.r_[True, rows[1:, 0] != rows[:-1, 0]])
    for s, e in zip(starts, [*starts[1:], len(rows)]):
        if s:
            ax.axhline(s - 0.5, color="white", linewidth=1.2)
        ax.text(1.005, (s + e - 1) / 2, sim.datasets[rows[s, 0]], transform=ax.get_yaxis_transform(), rotation=-90,
                ha="left", va="center", fontsize=8, fontweight="bold")
    firsts = np.argmax(rs.valid, axis=0)[cols]
    bounds = np.flatnonzero(firsts[1:] != firsts[:-1]) + 1
    for b in bounds:
        ax.axvline(b - 0.5, color="white", linewidth=1.2)
    for s, e in zip([0, *bounds], [*bounds, k]):
        ax.text((s + e - 1) / 2, 1.005, sim.datasets[firsts[s]], transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8, fontweight="bold")
    ax.set_title(f"Class similarity (Eq. 7), tau = {rs.tau.tau:.3f} ({rs.tau.how}); squares: switched on (white), conflict (red)",
                 fontsize=9, pad=18)
    return _save(fig, Path(path))


def packed_layout(g, seed: int = 0) -> dict:
    """Node positions: each connected group laid out on its own (spring layout, radius growing
    with its size), the groups packed in rows, largest first, so no group shrinks to a dot."""
    import networkx as nx

    comps = sorted((sorted(c) for c in nx.weakly_connected_components(g)), key=lambda c: (-len(c), c[0]))
    radius = [0.5 * np.sqrt(len(c)) for c in comps]
    row_width = max(max(radius) * 2.0, 1.3 * np.sqrt(sum((2 * r + 0.6) ** 2 for r in radius)))
    pos, x, y, row_h = {}, 0.0, 0.0, 0.0
    for comp, r in zip(comps, radius):
        cell = 2 * r + 0.6
        if x and x + cell > row_width:
            x, y, row_h = 0.0, y - row_h, 0.0
        sub = nx.spring_layout(g.subgraph(comp).to_undirected(), seed=seed, scale=r) if len(comp) > 1 else {comp[0]: np.zeros(2)}
        for v, p in sub.items():
            pos[v] = np.asarray(p) + (x + cell / 2, y - cell / 2)
        x, row_h = x + cell, max(row_h, cell)
    return pos


def relations_drawing(rs: RelationSet, path: str | Path, seed: int = 0) -> Path:
    """The switched-on relations as arrows primary -> secondary (one per pair, labelled with its
    datasets and highest score), nodes in their class colours; subset black, equivalent blue."""
    import networkx as nx
    from matplotlib.figure import Figure

    sim = rs.similarity
    _, kind = edge_kinds(rs)
    pairs: dict[tuple[str, str], dict] = {}
    for d, c, c2 in np.argwhere(rs.switched_on):
        e = pairs.setdefault((sim.classes[c], sim.classes[c2]), {"datasets": [], "score": 0.0, "kind": KINDS[kind[d, c, c2]]})
        e["datasets"].append(sim.datasets[d])
        e["score"] = max(e["score"], float(sim.score[d, c, c2]))
    g = nx.DiGraph()
    g.add_edges_from((u, v, e) for (u, v), e in sorted(pairs.items()))
    n = g.number_of_nodes()
    side = min(16.0, 5.0 + 0.35 * n)
    fig = Figure(figsize=(side, side * 0.75))
    ax = fig.add_subplot()
    ax.set_axis_off()
    title = f"Relations switched on by Eq. 6: {len(pairs)} pairs, tau = {rs.tau.tau:.3f} ({rs.tau.how})"
    ax.set_title(title, fontsize=10)
    if not n:
        ax.text(0.5, 0.5, "no relation is switched on", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, Path(path))
    pos = packed_layout(g, seed)
    colours = {c.name: np.array(c.colour) / 255.0 for c in rs.union.classes}
    for u, v, e in g.edges(data=True):
        bend = 0.15 if g.has_edge(v, u) else 0.0
        ax.annotate("", xy=pos[v], xytext=pos[u], arrowprops=dict(
            arrowstyle="-|>", color=_KIND_COLOUR.get(e["kind"], "black"), shrinkA=11, shrinkB=11, linewidth=1.0,
            connectionstyle=f"arc3,rad={bend}"))
        mid = (np.asarray(pos[u]) + np.asarray(pos[v])) / 2
        ax.text(mid[0], mid[1], f"{','.join(e['datasets'])} {e['score']:.2f}", fontsize=6, ha="center", va="center",
                color="dimgray", bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    nodes = list(g.nodes)
    xy = np.array([pos[v] for v in nodes])
    ax.scatter(xy[:, 0], xy[:, 1], s=180, c=[colours[v] for v in nodes], edgecolors="black", linewidths=0.8, zorder=3)
    for v, (x, y) in zip(nodes, xy):
        ax.text(x + 0.06, y + 0.06, v, fontsize=8, ha="left", va="bottom", zorder=4)
    ax.set_aspect("equal")
    ax.margins(0.12)
    return _save(fig, Path(path))


def plot_relations(rs: RelationSet, prefix: str | Path) -> list[Path]:
    """``PREFIX_similarity.png`` and ``PREFIX_graph.png`` (a folder as PREFIX: DIR/relations_*.png)."""
    p = Path(prefix)
    stem = p / "relations" if p.is_dir() else p
    return [
        similarity_heatmap(rs, stem.with_name(stem.name + "_similarity.png")),
        relations_drawing(rs, stem.with_name(stem.name + "_graph.png")),
    ]
