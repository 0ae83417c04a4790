"""``uniseg relations`` as a user runs it: the contract commands, JSON output, one-line errors with exit 2."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import yaml

from conftest import run_cli
from relations_fixtures import RIDER_CASE, hand_made
from uniseg.unify import build_union
from uniseg.relations.stats import write_similarity

CASE = {**RIDER_CASE, ("mapillary", "bike lane", "road"): 0.64, ("mapillary", "bike lane", "bike lane"): 0.58}


@pytest.fixture(scope="module")
def cm(registry):
    return build_union(registry.get_many(["cityscapes", "mapillary"]))


@pytest.fixture(scope="module")
def mined(tmp_path_factory, cm):
    """A similarity file as any writer leaves it: plain np.savez, no union.yaml beside it."""
    sim = hand_made(cm, CASE)
    folder = tmp_path_factory.mktemp("mine")
    np.savez(
        folder / "similarity.npz", score=sim.score, cosine=sim.cosine, pixels=sim.pixels,
        datasets=np.array(sim.datasets), classes=np.array(sim.classes), fingerprint=np.array(sim.fingerprint),
    )
    return folder / "similarity.npz"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, mined):
    out = tmp_path_factory.mktemp("rel") / "relations"
    res = run_cli("relations", "labels", "--similarity", str(mined), "--tau", "auto", "--out", str(out), "--format", "json")
    assert res.returncode == 0, res.stderr
    return out, json.loads(res.stdout)


def test_labels_contract(labelled, cm):
    out, data = labelled
    assert (out / "relations.yaml").is_file() and (out / "table.npy").is_file()
    table = np.load(out / "table.npy")
    assert table.dtype == np.int8 and table.shape == (2, cm.num_classes, cm.num_classes)
    # auto tau: the rows whose top class lies outside: bicyclist (rider 0.70), motorcyclist (rider 0.62)
    assert data["tau"]["how"] == "auto" and data["tau"]["rows"] == 2 and data["tau"]["value"] == pytest.approx(0.66)
    assert [(r["primary"], r["secondary"][0]["class"]) for r in data["relations"]] == [("bicyclist", "rider")]  # 0.70 > 0.66
    assert data["filled_in"] == {"rider": ["mapillary"]}  # Mapillary has no rider: the relation teaches it new data
    m = cm.datasets.index("mapillary")
    assert table[m, cm.index_of("bicyclist"), cm.index_of("rider")] == 1
    assert table[m, cm.index_of("bike lane"), cm.index_of("road")] == 0  # 0.64 < tau 0.66
    doc = yaml.safe_load((out / "relations.yaml").read_text())
    assert doc["fingerprint"] == cm.fingerprint and doc["similarity"]["file"] == "similarity.npz"


def test_labels_table_output_and_a_given_tau(tmp_path, mined):
    res = run_cli("relations", "labels", "--similarity", str(mined), "--tau", "0.5", "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    assert "3 relations switched on" in res.stdout and "bike lane" in res.stdout and "(given)" in res.stdout
    # bike lane -> road stays in Mapillary's space; the rider relations give Mapillary a class it lacks
    assert "new data for classes a dataset lacks (null under Null BCE): rider (from mapillary)" in " ".join(res.stdout.split())


def test_labels_with_the_union_named(tmp_path, mined, cm):
    """--union NAMES (the datasets mined over) is accepted; the table is made for that union."""
    res = run_cli("relations", "labels", "--similarity", str(mined), "--union", "cityscapes,mapillary", "--tau", "0.5",
                  "--out", str(tmp_path / "r"), "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["fingerprint"] == cm.fingerprint


def test_labels_with_nothing_switched_on_says_so(tmp_path, cm):
    """auto tau with no class whose top score lies outside its space: tau 1, no relation, no empty table."""
    write_similarity(tmp_path / "m", hand_made(cm))  # every class scores highest on itself
    res = run_cli("relations", "labels", "--similarity", str(tmp_path / "m" / "similarity.npz"), "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    assert "no relation switched on by Eq. 6 (tau = 1.0000, auto)" in res.stdout and "trains as Null BCE" in res.stdout
    assert "┏" not in res.stdout and "--tau" in res.stdout  # no empty table; what would switch relations on
    table = np.load(tmp_path / "r" / "table.npy")
    assert np.array_equal(table == 1, np.broadcast_to(np.eye(cm.num_classes, dtype=bool), table.shape))  # each class on itself only


def test_the_table_trains_cr_bce(labelled, cm):
    """What 'uniseg train --loss cr-bce --relations DIR' builds its loss from."""
    from uniseg.engine.criterion import build_criterion

    loss, fp = build_criterion("cr-bce", cm, str(labelled[0]))
    assert fp == labelled[1]["table_fingerprint"] and type(loss).__name__ == "ClassRelationalBCELoss"


def test_export_graphml_contract(tmp_path, labelled):
    out = tmp_path / "relations.graphml"
    res = run_cli("relations", "export", "--relations", str(labelled[0]), "--format", "graphml", "--out", str(out), "--report", "json")
    assert res.returncode == 0, res.stderr
    g = nx.read_graphml(out, force_multigraph=True)
    info = json.loads(res.stdout)
    assert g.number_of_nodes() == info["nodes"] == 67 and g.number_of_edges() == info["edges"] > 0
    assert g.edges["bicyclist", "rider", "mapillary"]["kind"] == "subset"


def test_show_and_conflicts_json(labelled):
    show = json.loads(run_cli("relations", "show", "rider", "--relations", str(labelled[0]), "--format", "json").stdout)
    assert [r["source"] for r in show["incoming"]["mapillary"]] == ["bicyclist", "motorcyclist"]
    res = run_cli("relations", "conflicts", "--relations", str(labelled[0]), "--format", "json")
    data = json.loads(res.stdout)
    # motorcyclist -> rider (0.62 <= tau 0.66) and rider -> bicyclist / motorcyclist (>= tau / 2 = 0.33)
    assert [(r["source"], r["target"]) for r in data["conflicts"]] == [("motorcyclist", "rider"), ("rider", "bicyclist")]
    human = run_cli("relations", "conflicts", "--relations", str(labelled[0]))
    assert human.returncode == 0 and "motorcyclist" in human.stdout


def test_show_says_when_the_model_hardly_knows_a_class(tmp_path, registry):
    from uniseg.relations.artifact import build_relations, write_relations

    cm = build_union(registry.get_many(["cityscapes", "mapillary"]))
    write_relations(tmp_path, build_relations(hand_made(cm, {("cityscapes", "rider", "rider"): 0.2}), cm, 0.5))
    rider = " ".join(run_cli("relations", "show", "rider", "--relations", str(tmp_path)).stdout.split())
    assert "own score 0.200" in rider and "hardly knows rider" in rider
    road = " ".join(run_cli("relations", "show", "road", "--relations", str(tmp_path)).stdout.split())
    assert "own score 0.800" in road and "hardly knows" not in road


def test_show_defaults_to_the_current_folder(labelled):
    res = run_cli("relations", "show", "bicyclist", cwd=labelled[0])
    assert res.returncode == 0, res.stderr
    assert "rider" in res.stdout and "subset" in res.stdout


def test_plot_and_diff(tmp_path, labelled, mined, cm):
    from matplotlib import colormaps
    from PIL import Image

    def pixels(path, rgb):  # pixels of exactly that colour
        img = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
        return int((img == np.asarray(rgb, dtype=np.uint8)[:3]).all(axis=1).sum())

    res = run_cli("relations", "plot", "--relations", str(labelled[0]), "--out", str(tmp_path / "fig"), "--format", "json")
    assert res.returncode == 0, res.stderr
    assert [p.split("/")[-1] for p in json.loads(res.stdout)["written"]] == ["fig_similarity.png", "fig_graph.png"]
    # the graph draws the one relation auto tau (0.66) switches on, bicyclist -> rider, in the classes' colours;
    # motorcyclist -> rider (0.62) and bike lane -> road (0.64) stay off, so those classes are not drawn
    colour = {n: cm.classes[cm.index_of(n)].colour for n in ("bicyclist", "rider", "motorcyclist", "bike lane", "road")}
    assert [n for n in colour if pixels(tmp_path / "fig_graph.png", colour[n]) > 50] == ["bicyclist", "rider"]
    assert [n for n in colour if pixels(tmp_path / "fig_graph.png", colour[n])] == ["bicyclist", "rider"]
    # the heatmap: every measured class's own-score cell (0.8) in viridis(0.8); a 0..1 colour bar alone is a sliver of that
    heat = tmp_path / "fig_similarity.png"
    assert pixels(heat, colormaps["viridis"](0.8, bytes=True)) > 2000
    assert run_cli("relations", "labels", "--similarity", str(mined), "--tau", "0.5", "--out", str(tmp_path / "b")).returncode == 0
    diff = json.loads(run_cli("relations", "diff", str(labelled[0]), str(tmp_path / "b"), "--format", "json").stdout)
    assert diff["tau"]["b"] == 0.5 and diff["score_changes"] == []
    assert [(r["primary"], r["secondary"]) for r in diff["switched_on"]] == [("bike lane", "road"), ("motorcyclist", "rider")]
    human = run_cli("relations", "diff", str(labelled[0]), str(tmp_path / "b"))
    assert human.returncode == 0 and "2 switched on" in human.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["labels", "--similarity", "{mined}", "--tau", "high", "--out", "{tmp}/x"], "--tau 'high': give 'auto' or a number"),
        (["labels", "--similarity", "{mined}", "--tau", "1.5", "--out", "{tmp}/x"], "give a threshold in [0, 1]"),
        (["labels", "--similarity", "{tmp}/none.npz", "--out", "{tmp}/x"], "no such file"),
        (["labels", "--similarity", "{mined}", "--union", "cityscapes,idd", "--out", "{tmp}/x"], "made for union"),
        (["show", "ridr", "--relations", "{rel}"], "did you mean 'rider'"),
        (["show", "rider", "--relations", "{tmp}"], "no relations.yaml there"),
        (["export", "--relations", "{rel}", "--format", "xml", "--out", "{tmp}/g.xml"], "choose one of graphml"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(tmp_path, mined, labelled, args, needle):
    res = run_cli("relations", *(a.format(mined=mined, tmp=tmp_path, rel=labelled[0]) for a in args))
    assert res.returncode == 2 and needle in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_a_similarity_file_for_another_union_is_refused_at_the_right_place(tmp_path, registry):
    other = build_union(registry.get_many(["cityscapes", "idd"]))
    sim = hand_made(other)
    write_similarity(tmp_path / "m", sim)
    bad = tmp_path / "m" / "similarity.npz"
    with np.load(bad) as npz:
        arrays = dict(npz)
    arrays["fingerprint"] = np.array("0123456789abcdef")
    np.savez(bad, **arrays)
    res = run_cli("relations", "labels", "--similarity", str(bad), "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "the registry's union of cityscapes+idd is" in res.stderr


@pytest.mark.parametrize("command", ["labels", "show", "conflicts", "export", "plot", "diff"])
def test_every_command_has_help(command):
    res = run_cli("relations", command, "--help")
    assert res.returncode == 0 and "Usage" in res.stdout
