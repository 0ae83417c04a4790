"""The relation artifact (relations.yaml + table.npy), the relation graph, its exports, diff and plots."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import yaml

from relations_fixtures import OWN, RIDER_CASE, hand_made
from uniseg.errors import FingerprintMismatch, UnisegError
from uniseg.unify import build_union
from uniseg.relations.graph import EDGE_COLUMNS, class_relations, conflicts, export_graph, relation_graph
from uniseg.relations.diff import diff_relations
from uniseg.relations.artifact import build_relations, read_relation_table, read_relations, write_relations
from uniseg.relations.stats import write_similarity

CASE = {
    **RIDER_CASE,
    # in-space subset (Table A-1: bike lane -> road, both Mapillary classes)
    ("mapillary", "bike lane", "road"): 0.66, ("mapillary", "bike lane", "bike lane"): 0.58,
    # equivalent: Mapillary's on rails -> train and Cityscapes' train -> on rails
    ("mapillary", "on rails", "train"): 0.72, ("mapillary", "on rails", "on rails"): 0.56,
    ("cityscapes", "train", "on rails"): 0.81, ("cityscapes", "train", "train"): 0.64,
    # a null above tau held back by its own class: a conflict "left off by own score"
    ("cityscapes", "road", "lane marking - general"): 0.70, ("cityscapes", "road", "road"): 0.75,
    # two classes of one space the model confuses: similar (in both datasets: parallel edges)
    ("mapillary", "road", "sidewalk"): 0.20, ("cityscapes", "road", "sidewalk"): 0.25,
    # a conflict held back by tau (its own class scores lower than tau)
    ("mapillary", "other rider", "rider"): 0.46, ("mapillary", "other rider", "other rider"): 0.40,
    # below the floor: not in the graph
    ("mapillary", "sidewalk", "curb"): 0.09,
}
TAU = 0.5


@pytest.fixture(scope="module")
def cm(registry):
    return build_union(registry.get_many(["cityscapes", "mapillary"]))


@pytest.fixture(scope="module")
def rs(cm):
    return build_relations(hand_made(cm, CASE), cm, TAU)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, cm):
    """A relations folder written from a similarity file on disk (as 'relations labels' does)."""
    root = tmp_path_factory.mktemp("rel")
    write_similarity(root / "mine", hand_made(cm, CASE))
    from uniseg.relations.stats import read_similarity

    sim = read_similarity(root / "mine" / "similarity.npz")
    write_relations(root / "out", build_relations(sim, cm, TAU, source="mine/similarity.npz"))
    return root / "out"


@pytest.fixture(scope="module")
def graph(rs):
    return relation_graph(rs)


def _edge(g, u, v, dataset):
    return g.edges[u, v, dataset]


# ---------------------------------------------------------------------------- the artifact


def test_relations_yaml_reads_like_table_a1(folder, cm):
    doc = yaml.safe_load((folder / "relations.yaml").read_text())
    assert doc["format"] == "uniseg.relations/v1" and doc["fingerprint"] == cm.fingerprint
    assert doc["datasets"] == ["cityscapes", "mapillary"]
    assert {k: v for k, v in doc["tau"].items() if k != "note"} == {"value": 0.5, "how": "given", "rows": 0}
    assert "given" in doc["tau"]["note"] and "0.5" in doc["tau"]["note"]  # the sentence for people names how and what
    assert doc["similarity"]["source"] == "mine/similarity.npz" and doc["union"] == "union.yaml"
    got = [(r["primary"], r["dataset"], [(s["class"], s["score"], s["in_space"]) for s in r["secondary"]]) for r in doc["relations"]]
    assert got == [  # sorted by primary class, then dataset
        ("bicyclist", "mapillary", [("rider", 0.7, False)]),
        ("bike lane", "mapillary", [("road", 0.66, True)]),
        ("motorcyclist", "mapillary", [("rider", 0.62, False)]),
        ("on rails", "mapillary", [("train", 0.72, False)]),
        ("train", "cityscapes", [("on rails", 0.81, False)]),
    ]
    assert doc["counts"] == {"relations": 5, "outside_space": 4, "in_space": 1, "measured_classes": 84}
    assert sorted(p.name for p in folder.iterdir()) == ["relations.yaml", "similarity.csv", "similarity.npz", "table.npy", "union.yaml"]


def test_filled_in_names_the_classes_relations_teach_where_a_dataset_lacks_them(rs):
    # bicyclist/motorcyclist -> rider and on rails -> train give Mapillary classes it lacks (null under
    # Null BCE), train -> on rails gives Cityscapes one; bike lane -> road stays inside Mapillary's space
    assert rs.filled_in() == {"on rails": ["cityscapes"], "rider": ["mapillary"], "train": ["mapillary"]}
    assert ("mapillary", "bike lane", "road") in {(r.dataset, r.primary, r.secondary) for r in rs.relations()}


def test_the_table_is_what_cr_bce_reads(folder, cm, rs):
    rt = read_relation_table(folder)  # the reader 'uniseg train --loss cr-bce' uses
    assert np.array_equal(rt.for_union(cm), rs.table) and rt.table.dtype == np.int8
    back = read_relations(folder)
    assert np.array_equal(back.table, rs.table) and back.tau.tau == TAU and back.union.fingerprint == cm.fingerprint


def test_same_inputs_give_the_same_bytes(tmp_path, cm):
    sim = hand_made(cm, CASE)
    for name in ("a", "b"):
        write_relations(tmp_path / name, build_relations(sim, cm, None, source="x/similarity.npz"))
    for f in ("relations.yaml", "table.npy", "union.yaml", "similarity.npz", "similarity.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    write_relations(tmp_path / "a", build_relations(sim, cm, 0.3, source="x/similarity.npz"))
    assert (tmp_path / "a" / "relations.yaml").read_bytes() != (tmp_path / "b" / "relations.yaml").read_bytes()


def test_edited_or_mismatched_artifacts_are_refused(tmp_path, folder, cm, registry):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    sim = hand_made(cm, {**CASE, ("mapillary", "road", "sidewalk"): 0.3})
    write_similarity(copy, sim)
    with pytest.raises(FingerprintMismatch, match="similarity fingerprint .* do not belong together"):
        read_relations(copy)
    other = build_union(registry.get_many(["cityscapes", "idd"]))
    with pytest.raises(FingerprintMismatch, match="holds artifacts of union"):
        write_relations(folder, build_relations(hand_made(other), other, TAU))
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "table.npy").write_bytes((folder / "table.npy").read_bytes())
    doc = yaml.safe_load((folder / "relations.yaml").read_text())
    (bare / "relations.yaml").write_text(yaml.safe_dump({k: doc[k] for k in ("format", "fingerprint", "datasets", "table_fingerprint")}))
    assert read_relation_table(bare).fingerprint == doc["table_fingerprint"]  # the minimal format stays readable
    with pytest.raises(UnisegError, match="missing key 'union'"):
        read_relations(bare)


# ---------------------------------------------------------------------------- the graph


def test_nodes_carry_members_and_colours(graph, cm):
    assert graph.number_of_nodes() == cm.num_classes
    rider = graph.nodes["rider"]
    r, g, b = cm.classes[cm.index_of("rider")].colour
    assert rider["colour"] == f"#{r:02x}{g:02x}{b:02x}" and rider["datasets"] == "cityscapes"
    assert rider["members"] == "cityscapes: rider" and rider["pixels"] == 1000
    assert graph.nodes["road"]["members"] == "cityscapes: road; mapillary: Road" and graph.nodes["road"]["pixels"] == 2000
    assert rider["own_score"] == pytest.approx(OWN)  # every class of the hand-made case scores OWN on its own pixels


def test_class_own_scores_weigh_the_datasets_that_label_a_class_by_its_pixels():
    from uniseg.relations.stats import class_own_scores

    score = np.zeros((2, 3, 3))
    score[0, 0, 0], score[1, 0, 0] = 0.9, 0.3  # class 0 labelled by both datasets
    score[0, 1, 1], score[1, 1, 1] = 0.6, 0.99  # class 1: dataset 1 does not label it (its 0.99 never counts)
    pixels = np.array([[100, 10, 0], [300, 50, 0]])  # class 2 has no pixels anywhere
    valid = np.array([[True, True, True], [True, False, True]])
    got = class_own_scores(score, pixels, valid)
    np.testing.assert_allclose(got, [(0.9 * 100 + 0.3 * 300) / 400, 0.6, 0.0])


def test_edge_kinds(graph):
    e = _edge(graph, "bicyclist", "rider", "mapillary")
    assert (e["kind"], e["on"], e["score"], e["own_score"], e["in_space"], e["pixels"]) == ("subset", True, 0.7, 0.55, False, 1000)
    assert _edge(graph, "bike lane", "road", "mapillary")["kind"] == "subset" and _edge(graph, "bike lane", "road", "mapillary")["in_space"]
    assert _edge(graph, "on rails", "train", "mapillary")["kind"] == "equivalent"
    assert _edge(graph, "train", "on rails", "cityscapes")["kind"] == "equivalent"
    # rider -> bicyclist: 0.45 >= tau / 2 across spaces, left off -> conflict; motorcyclist 0.30 too
    assert _edge(graph, "rider", "bicyclist", "cityscapes")["kind"] == "conflict"
    assert _edge(graph, "rider", "motorcyclist", "cityscapes")["kind"] == "conflict"
    assert _edge(graph, "road", "lane marking - general", "cityscapes")["kind"] == "conflict"
    assert _edge(graph, "road", "sidewalk", "mapillary")["kind"] == "similar"  # same space: not a conflict
    assert _edge(graph, "road", "sidewalk", "cityscapes")["score"] == 0.25 and graph.number_of_edges("road", "sidewalk") == 2
    assert not graph.has_edge("sidewalk", "curb")  # 0.09 < floor 0.1
    kinds = sorted(d["kind"] for _, _, d in graph.edges(data=True))
    assert kinds == ["conflict"] * 4 + ["equivalent"] * 2 + ["similar"] * 2 + ["subset"] * 3


def test_a_confident_model_gives_a_graph_without_edges(cm):
    quiet = build_relations(hand_made(cm), cm, TAU)  # every class 0.8 on itself, 0.02 elsewhere
    assert quiet.relations() == [] and relation_graph(quiet).number_of_edges() == 0


def test_a_lower_floor_keeps_weaker_edges(rs):
    assert relation_graph(rs, floor=0.05).has_edge("sidewalk", "curb")
    assert relation_graph(rs, floor=0.05).number_of_edges() == 12


def test_conflicts_are_ranked_with_the_reason(graph):
    rows = conflicts(graph)
    assert [(r["source"], r["target"]) for r in rows] == [
        ("road", "lane marking - general"), ("other rider", "rider"), ("rider", "bicyclist"), ("rider", "motorcyclist"),
    ]
    assert rows[0]["left_off_by"] == "own score" and rows[0]["needs"] == 0.75  # 0.70 > tau but <= s(road)
    assert rows[1]["left_off_by"] == "tau" and rows[1]["needs"] == 0.5  # 0.46 <= tau; s(other rider) 0.40 is lower
    assert rows[2]["left_off_by"] == "own score" and rows[2]["needs"] == 0.8  # s(rider) 0.80 is the higher bar
    assert rows[2]["reverse_on"] == ["mapillary"] and rows[3]["reverse_on"] == ["mapillary"] and rows[1]["reverse_on"] == []
    assert len(conflicts(graph, top=1)) == 1


def test_class_relations_per_dataset(graph):
    info = class_relations(graph, "rider", top=1)
    assert list(info["outgoing"]) == ["cityscapes"] and [r["target"] for r in info["outgoing"]["cityscapes"]] == ["bicyclist"]
    assert [r["source"] for r in info["incoming"]["mapillary"]] == ["bicyclist"]  # strongest of bicyclist 0.70, motorcyclist 0.62
    with pytest.raises(UnisegError, match="did you mean 'rider'"):
        class_relations(graph, "ridr")


# ---------------------------------------------------------------------------- exports, read back


def _as_bool(v):
    return v if isinstance(v, bool) else str(v).strip('"') == "True"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydot's parser on new pyparsing releases
@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json", "dot"])
def test_every_graph_format_reads_back(tmp_path, graph, fmt):
    path = export_graph(graph, fmt, tmp_path / f"g.{fmt}")
    if fmt == "graphml":
        back = nx.read_graphml(path, force_multigraph=True)
    elif fmt == "gexf":
        back = nx.read_gexf(path)
    elif fmt == "json":
        back = nx.node_link_graph(json.loads(path.read_text()), edges="edges")
    else:
        back = nx.nx_pydot.read_dot(path)
    assert back.is_directed() and back.is_multigraph()
    assert back.number_of_nodes() == graph.number_of_nodes() and back.number_of_edges() == graph.number_of_edges()
    edges = {(u, v, str(d["dataset"]).strip('"')): d for u, v, d in back.edges(data=True)}
    e = edges[("bicyclist", "rider", "mapillary")]
    assert float(str(e["score"]).strip('"')) == 0.7 and _as_bool(e["on"]) and str(e["kind"]).strip('"') == "subset"
    assert not _as_bool(edges[("rider", "bicyclist", "cityscapes")]["on"])
    node = back.nodes["traffic sign (back)"] if fmt != "gexf" else next(d for _, d in back.nodes(data=True) if d["label"] == "traffic sign (back)")
    assert str(node["members"]).strip('"') == "mapillary: Traffic Sign (Back)"
    if fmt == "gexf":
        rider = next(d for _, d in back.nodes(data=True) if d["label"] == "rider")
        colour = graph.nodes["rider"]["colour"]
        assert (rider["viz"]["color"]["r"], rider["viz"]["color"]["g"], rider["viz"]["color"]["b"]) == tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def test_csv_export_reads_in_pandas(tmp_path, graph):
    import pandas as pd

    frame = pd.read_csv(export_graph(graph, "csv", tmp_path / "edges.csv"))
    assert list(frame.columns) == EDGE_COLUMNS and len(frame) == graph.number_of_edges()
    row = frame[(frame.source == "on rails") & (frame.target == "train")].iloc[0]
    assert row.dataset == "mapillary" and row.kind == "equivalent" and bool(row.on) and row.score == 0.72


def test_export_refuses_a_folder_and_unknown_formats(tmp_path, graph):
    with pytest.raises(UnisegError, match="is a folder"):
        export_graph(graph, "graphml", tmp_path)
    with pytest.raises(UnisegError, match="choose one of graphml"):
        export_graph(graph, "xml", tmp_path / "g.xml")


# ---------------------------------------------------------------------------- diff and plots


def test_diff_reports_tau_relations_and_scores(cm, rs):
    same = diff_relations(rs, rs)
    assert same.unchanged and same.same_union and not same.score_changes
    changed = {**CASE, ("mapillary", "bicyclist", "rider"): 0.40, ("cityscapes", "rider", "bicyclist"): 0.60}
    b = build_relations(hand_made(cm, changed), cm, 0.65)
    d = diff_relations(rs, b)
    assert d.tau["a"] == 0.5 and d.tau["b"] == 0.65 and not d.unchanged
    assert [(r["dataset"], r["primary"], r["secondary"]) for r in d.switched_off] == [("mapillary", "bicyclist", "rider"), ("mapillary", "motorcyclist", "rider")]
    assert d.switched_off[0]["score_a"] == 0.7 and d.switched_off[0]["score_b"] == 0.4
    assert d.switched_on == []  # rider -> bicyclist 0.60 < s(rider) 0.80; motorcyclist -> rider 0.62 < tau 0.65
    assert [(r["class"], r["other_class"], r["change"]) for r in d.score_changes] == [
        ("bicyclist", "rider", pytest.approx(-0.30)), ("rider", "bicyclist", pytest.approx(0.15)),
    ]
    assert d.to_dict()["unchanged"] is False


def test_diff_across_unions_compares_shared_names(cm, rs, registry):
    three = build_union(registry.get_many(["cityscapes", "idd", "mapillary"]))
    b = build_relations(hand_made(three, CASE), three, TAU)
    d = diff_relations(rs, b)
    assert not d.same_union and d.only_in_b["datasets"] == ["idd"] and "rider" not in d.only_in_b["classes"]
    assert not d.switched_on and not d.switched_off and not d.score_changes


def _pixels(path, rgb) -> int:
    """Pixels of exactly the colour ``rgb`` in a PNG."""
    from PIL import Image

    img = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    return int((img == np.asarray(rgb, dtype=np.uint8)[:3]).all(axis=1).sum())


def test_plots_are_pngs_showing_the_data(tmp_path, rs, cm):
    """The pictures follow the data: a relation set whose "bike lane -> road" score drops from 0.66 to
    0.30 (below tau: that relation goes) draws neither class in the graph and moves the heatmap cell
    from viridis(0.66) to viridis(0.30); the relations left are drawn in their classes' colours;
    a set with no relation draws no class at all."""
    from matplotlib import colormaps

    from uniseg.relations.plots import plot_relations

    heat, drawing = plot_relations(rs, tmp_path / "rel")
    assert (heat.name, drawing.name) == ("rel_similarity.png", "rel_graph.png")
    fewer = build_relations(hand_made(cm, {**CASE, ("mapillary", "bike lane", "road"): 0.30}), cm, TAU)
    assert len(fewer.relations()) == len(rs.relations()) - 1
    heat_b, drawing_b = plot_relations(fewer, tmp_path / "fewer")
    empty = build_relations(hand_made(cm), cm, TAU)
    assert [p.name for p in plot_relations(empty, tmp_path)] == ["relations_similarity.png", "relations_graph.png"]

    def colour(name):
        return cm.classes[cm.index_of(name)].colour

    # the graph: each class of a switched-on relation is a disc in the class's colour (sidewalk, car: in no relation)
    drawn = ["bicyclist", "rider", "motorcyclist", "on rails", "train"]
    for name in drawn:
        assert _pixels(drawing, colour(name)) > 50 and _pixels(drawing_b, colour(name)) > 50, name
        assert _pixels(tmp_path / "relations_graph.png", colour(name)) == 0, name
    for name in ("bike lane", "road"):
        assert _pixels(drawing, colour(name)) > 50 and _pixels(drawing_b, colour(name)) == 0, name
    for name in ("sidewalk", "car"):
        assert _pixels(drawing, colour(name)) == 0, name
    # the heatmap: cells in the viridis colour of their score (0..1); one cell changed between the two sets
    viridis = colormaps["viridis"]
    was, now = viridis(0.66, bytes=True), viridis(0.30, bytes=True)
    assert _pixels(heat, was) - _pixels(heat_b, was) > 20
    assert _pixels(heat_b, now) - _pixels(heat, now) > 20


def test_the_union_comes_from_beside_the_file_or_the_registry(tmp_path, cm, registry):
    from uniseg.unify.artifact import write_union_artifact
    from uniseg.relations.artifact import union_for
    from uniseg.relations.stats import read_similarity

    write_similarity(tmp_path / "m", hand_made(cm, CASE))
    sim = read_similarity(tmp_path / "m")
    assert union_for(sim).fingerprint == cm.fingerprint  # the registry's union of its datasets
    assert union_for(sim, registry).fingerprint == cm.fingerprint
    other = build_union(registry.get_many(["cityscapes", "idd"]))
    write_union_artifact(other, registry.get_many(["cityscapes", "idd"]), tmp_path / "m")
    assert union_for(sim).fingerprint == other.fingerprint  # union.yaml beside the file wins ...
    with pytest.raises(FingerprintMismatch, match="made for union"):
        build_relations(sim, union_for(sim), TAU)  # ... and a mismatch is caught


def test_labels_into_the_mining_folder_keeps_its_similarity_file(tmp_path, cm):
    from uniseg.relations.stats import read_similarity

    sim = hand_made(cm, CASE)
    np.savez(tmp_path / "similarity.npz", score=sim.score, cosine=sim.cosine, pixels=sim.pixels,
             datasets=np.array(sim.datasets), classes=np.array(sim.classes), fingerprint=np.array(sim.fingerprint))
    before = (tmp_path / "similarity.npz").read_bytes()
    on_disk = read_similarity(tmp_path / "similarity.npz")
    written = write_relations(tmp_path, build_relations(on_disk, cm, TAU))
    assert (tmp_path / "similarity.npz").read_bytes() == before and tmp_path / "similarity.csv" not in written
    assert np.array_equal(read_relations(tmp_path).table, build_relations(sim, cm, TAU).table)
