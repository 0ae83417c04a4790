"""``uniseg relations review`` (issue A part 2): the switched-on relations and the near misses, one per
line; accept / reject / add into a new folder whose relations.yaml records where each relation came
from, and whose table.npy trains C-R BCE; diff, graph and replay of a review; the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from inprocess import cli
from conftest import run_cli
from relations_fixtures import RIDER_CASE, hand_made
from uniseg.relations.stats import write_similarity
from uniseg.unify import build_union

# auto tau = (0.70 + 0.62) / 2 = 0.66: bicyclist -> rider on; motorcyclist -> rider (0.62) and
# bike lane -> road (0.64) within 0.1 below the bar; road -> sidewalk (0.63) close too, but no
# label conflict can explain it (Cityscapes labels both): no near miss under the conflict rule
CASE = {**RIDER_CASE, ("mapillary", "bike lane", "road"): 0.64, ("mapillary", "bike lane", "bike lane"): 0.58,
        ("mapillary", "road", "sidewalk"): 0.63, ("mapillary", "road", "road"): 0.6}
DATE = ["--date", "2024-05-01"]


def _cli(capsys, *args) -> tuple[int, str, str]:
    """``uniseg`` in this process (``inprocess.cli``): (exit code, stdout, stderr)."""
    res = cli(capsys, *args)
    return res.returncode, res.stdout, res.stderr


@pytest.fixture(scope="module")
def cm(registry):
    return build_union(registry.get_many(["cityscapes", "mapillary"]))


@pytest.fixture()
def mined(tmp_path, cm):
    """A relations folder as 'uniseg relations labels' writes it (auto tau, the conflict rule)."""
    from uniseg.relations.artifact import build_relations, write_relations
    from uniseg.relations.stats import read_similarity

    write_similarity(tmp_path / "mine", hand_made(cm, CASE))
    sim = read_similarity(tmp_path / "mine")
    write_relations(tmp_path / "rel", build_relations(sim, cm, None, source=str(tmp_path / "mine" / "similarity.npz")))
    return tmp_path / "rel"


def _doc(folder):
    return yaml.safe_load((folder / "relations.yaml").read_text())


def test_review_lists_the_relations_on_and_the_near_misses(mined, capsys):
    code, out, err = _cli(capsys, "relations", "review", "--relations", mined, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    rows = [(r["status"], r["dataset"], r["primary"], r["secondary"]) for r in data["candidates"]]
    assert rows == [("on", "mapillary", "bicyclist", "rider"), ("near miss", "mapillary", "bike lane", "road"),
                    ("near miss", "mapillary", "motorcyclist", "rider")]
    first = data["candidates"][0]
    assert first["id"] == 1 and first["score"] == 0.7 and first["bar"] == pytest.approx(0.66) and first["pixels"] == 1000
    assert first["kind"] == "subset" and first["source"] == "mined" and not first["in_space"]
    near = data["candidates"][1]
    assert near["gap"] == pytest.approx(0.64 - 0.66) and near["in_space"] and near["kind"] == ""
    assert data["counts"] == {"on": 1, "near miss": 2, "rejected": 0} and data["reviewed"] is False
    code, out, _ = _cli(capsys, "relations", "review", "--relations", mined, "--margin", "0.03", "--format", "json")
    assert [r["primary"] for r in json.loads(out)["candidates"]] == ["bicyclist", "bike lane"]  # motorcyclist -> rider: 0.04 below
    code, out, _ = _cli(capsys, "relations", "review", "--relations", mined)
    flat = " ".join(out.split())
    assert code == 0 and "1 relations on, 2 near misses, 0 rejected by hand" in flat and "near miss" in flat


def test_reject_accept_add_write_a_new_folder_that_records_each_edit(mined, tmp_path, capsys, cm):
    from uniseg.engine.criterion import build_criterion

    before = {p.name: p.read_bytes() for p in mined.iterdir()}
    new = tmp_path / "reviewed"
    code, out, err = _cli(capsys, "relations", "review", "reject", "bicyclist", "rider", "--relations", mined, "--out", new,
                          "--note", "a bicyclist is no rider here", *DATE, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["edit"] == {"action": "reject", "dataset": "mapillary", "primary": "bicyclist", "secondary": "rider",
                                       "note": "a bicyclist is no rider here", "date": "2024-05-01"}
    assert {p.name: p.read_bytes() for p in mined.iterdir()} == before  # the mined folder is never edited
    # further edits go into the reviewed folder itself
    assert _cli(capsys, "relations", "review", "accept", "motorcyclist", "rider", "--relations", new, "--out", new, "--kind", "overlap", *DATE)[0] == 0
    code, out, err = _cli(capsys, "relations", "review", "add", "bike lane", "road", "--dataset", "mapillary", "--relations", new,
                          "--out", new, "--kind", "subset", "--note", "Table A-1", "--date", "2024-05-02")
    assert code == 0, err
    assert "added mapillary: bike lane -> road" in " ".join(out.split())

    doc = _doc(new)
    sec = {(r["primary"], s["class"]): s for r in doc["relations"] for s in r["secondary"]}
    assert sec[("motorcyclist", "rider")] == {"class": "rider", "score": 0.62, "in_space": False, "source": "mined", "reviewed": "accept",
                                              "kind": "overlap", "note": "", "date": "2024-05-01"}
    assert sec[("bike lane", "road")]["source"] == "added" and sec[("bike lane", "road")]["note"] == "Table A-1"
    assert doc["rejected"] == [{"primary": "bicyclist", "dataset": "mapillary", "secondary": "rider", "score": 0.7, "in_space": False,
                                "source": "rejected", "reviewed": "reject", "note": "a bicyclist is no rider here", "date": "2024-05-01"}]
    assert [e["action"] for e in doc["review"]["edits"]] == ["reject", "accept", "add"]
    assert doc["review"]["from"]["relations"] == str(mined) and doc["review"]["from"]["document_fingerprint"] == _doc(mined)["document_fingerprint"]
    assert {k: doc["counts"][k] for k in ("relations", "added", "accepted", "rejected")} == {"relations": 2, "added": 1, "accepted": 1, "rejected": 1}

    table = np.load(new / "table.npy")
    m = cm.datasets.index("mapillary")
    assert table[m, cm.index_of("bicyclist"), cm.index_of("rider")] == -1  # rider is outside Mapillary's space: null again
    assert table[m, cm.index_of("motorcyclist"), cm.index_of("rider")] == 1
    assert table[m, cm.index_of("bike lane"), cm.index_of("road")] == 1
    loss, fp = build_criterion("cr-bce", cm, str(new))  # what 'uniseg train --loss cr-bce --relations NEW' reads
    assert fp == doc["table_fingerprint"]

    # relations diff shows the review; the graph commands show the kinds typed by hand
    code, out, _ = _cli(capsys, "relations", "diff", mined, new, "--format", "json")
    d = json.loads(out)
    assert [(r["primary"], r["by_hand"]["action"]) for r in d["switched_on"]] == [("bike lane", "add"), ("motorcyclist", "accept")]
    assert [(r["primary"], r["by_hand"]["note"]) for r in d["switched_off"]] == [("bicyclist", "a bicyclist is no rider here")]
    assert len(d["review"]) == 3 and not d["unchanged"]
    code, out, _ = _cli(capsys, "relations", "show", "rider", "--relations", new, "--format", "json")
    incoming = {r["source"]: r for r in json.loads(out)["incoming"]["mapillary"]}
    assert incoming["motorcyclist"]["kind"] == "overlap" and incoming["motorcyclist"]["on"]
    assert incoming["bicyclist"]["kind"] == "conflict" and not incoming["bicyclist"]["on"]
    code, out, _ = _cli(capsys, "relations", "show", "bike lane", "--relations", new, "--format", "json")
    road = next(r for r in json.loads(out)["outgoing"]["mapillary"] if r["target"] == "road")
    assert road["origin"] == "added" and road["kind"] == "subset"
    code, out, _ = _cli(capsys, "relations", "review", "--relations", new, "--format", "json")
    assert [(r["status"], r["primary"]) for r in json.loads(out)["candidates"]] == [("rejected", "bicyclist"), ("on", "bike lane"), ("on", "motorcyclist")]


def test_the_date_is_pinned_by_source_date_epoch_and_the_same_review_gives_the_same_bytes(mined, tmp_path):
    runs = []
    for name in ("a", "b"):
        res = run_cli("relations", "review", "reject", "bicyclist", "rider", "--relations", str(mined), "--out", str(tmp_path / name),
                      env={"SOURCE_DATE_EPOCH": "86400"})
        assert res.returncode == 0, res.stderr
        runs.append((tmp_path / name / "relations.yaml").read_text())
    assert runs[0] == runs[1] and "date: '1970-01-02'" in runs[0]


def test_a_review_is_replayed_on_relations_mined_again_and_refused_for_another_union(mined, tmp_path, capsys, registry):
    from uniseg.relations.artifact import build_relations, read_relations, write_relations
    from uniseg.relations.stats import read_similarity

    new = tmp_path / "reviewed"
    assert _cli(capsys, "relations", "review", "reject", "bicyclist", "rider", "--relations", mined, "--out", new, *DATE)[0] == 0
    sim = read_similarity(mined)  # mined again with another tau: bicyclist -> rider, motorcyclist -> rider, bike lane -> road on
    write_relations(tmp_path / "again", build_relations(sim, read_relations(mined).union, 0.5, source="again"))
    code, out, err = _cli(capsys, "relations", "review", "apply", "--review", new, "--relations", tmp_path / "again", "--out", tmp_path / "again-reviewed",
                          "--format", "json")
    assert code == 0, err
    assert [(r["primary"], r["secondary"][0]["class"]) for r in _doc(tmp_path / "again-reviewed")["relations"]] == [
        ("bike lane", "road"), ("motorcyclist", "rider")]
    other = build_union(registry.get_many(["cityscapes", "idd"]))
    write_relations(tmp_path / "idd", build_relations(hand_made(other), other, 0.5))
    code, _, err = _cli(capsys, "relations", "review", "apply", "--review", new, "--relations", tmp_path / "idd", "--out", tmp_path / "x")
    assert code == 2 and "reviewed for union" in err and "review the relations of this union afresh" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_an_old_relations_file_without_review_fields_is_reviewed(mined, tmp_path, capsys):
    """The contract: a relations.yaml from before review fields and document fingerprints loads and reviews."""
    import re

    text = (mined / "relations.yaml").read_text()
    (mined / "relations.yaml").write_text(re.sub(r"document_fingerprint: \w+\n", "", text))
    code, _, err = _cli(capsys, "relations", "review", "reject", "bicyclist", "rider", "--relations", mined, "--out", tmp_path / "r", *DATE)
    assert code == 0, err
    assert "document_fingerprint" in _doc(tmp_path / "r") and _doc(tmp_path / "r")["counts"]["rejected"] == 1


@pytest.mark.parametrize(
    "args,needle",
    [
        (["reject", "bicyclist", "ridr", "--dataset", "mapillary"], "secondary class 'ridr' is not in this union; did you mean 'rider'?"),
        (["reject", "bicyclist", "rider", "--dataset", "idd"], "dataset 'idd' is not one of these relations' datasets"),
        (["reject", "motorcyclist", "rider", "--dataset", "mapillary"], "not switched on, nothing to reject"),
        (["reject", "motorcyclist", "rider"], "no dataset has this relation switched on"),
        (["add", "bicyclist", "rider", "--dataset", "mapillary"], "already switched on; 'accept' it"),
        (["add", "rider", "road", "--dataset", "mapillary"], "'rider' is not a class of mapillary's label space"),
        (["add", "road", "road", "--dataset", "mapillary"], "a class always trains itself"),
        (["accept", "road", "sidewalk", "--dataset", "mapillary"], "neither switched on nor a near miss"),
        (["add", "road", "curb", "--dataset", "mapillary", "--kind", "sibling"], "--kind 'sibling': choose subset, equivalent, overlap"),
        (["add", "road", "curb", "--dataset", "mapillary", "--date", "1st May"], "--date '1st May': give YYYY-MM-DD"),
        (["add", "road", "curb", "--dataset", "mapillary", "--date", "2024-02-30"], "no such day"),
    ],
)
def test_bad_edits_are_one_line_errors_with_exit_2(mined, tmp_path, capsys, args, needle):
    code, _, err = _cli(capsys, "relations", "review", *args, "--relations", mined, "--out", tmp_path / "new")
    assert code == 2 and needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "new").exists()


def test_the_mined_folder_is_never_edited_in_place_nor_other_relations_replaced(mined, tmp_path, capsys):
    code, _, err = _cli(capsys, "relations", "review", "reject", "bicyclist", "rider", "--relations", mined, "--out", mined)
    assert code == 2 and "a review never edits them in place: give --out NEW" in err
    code, _, err = _cli(capsys, "relations", "review", "add", "road", "curb", "--dataset", "mapillary", "--relations", mined,
                        "--out", tmp_path / "r1", *DATE)
    assert code == 0, err
    code, _, err = _cli(capsys, "relations", "review", "reject", "bicyclist", "rider", "--relations", mined, "--out", tmp_path / "r1")
    assert code == 2 and "holds other relations" in err and "--replace" in err  # r1 holds another review
    assert _cli(capsys, "relations", "review", "reject", "bicyclist", "rider", "--relations", mined, "--out", tmp_path / "r1", "--replace")[0] == 0


@pytest.mark.parametrize("command", [[], ["accept"], ["reject"], ["add"], ["apply"]])
def test_every_review_command_has_help(command):
    res = run_cli("relations", "review", *command, "--help")
    assert res.returncode == 0 and "Usage" in res.stdout and "--format" in res.stdout


# ---------------------------------------------------------------------------- on mined relations


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A cosine-head model trained 2 steps on the synthetic world's Cityscapes + IDD."""
    from engine_fixtures import tiny_config
    from uniseg.data.synth import synthesize
    from uniseg.engine.config import DatasetSpec
    from uniseg.engine.trainer import train

    base = tmp_path_factory.mktemp("review_world")
    synthesize(base / "world", images=6, size=(64, 128), seed=5, datasets=["cityscapes", "idd"])
    cfg = tiny_config(base / "world", datasets=[DatasetSpec(n, str(base / "world" / n)) for n in ("cityscapes", "idd")], iterations=2)
    train(cfg, base / "run")
    return base


def _mine_and_review(capsys, run, datasets, out):
    """mine -> labels (a fixed tau, so the mined table is not empty) -> review: add the strongest
    near miss, or else the strongest pair of a measured row; returns the review's candidates."""
    code, _, err = _cli(capsys, "relations", "mine", "--checkpoint", run, "--datasets", *datasets, "--short-side", "0",
                        "--workers", "0", "--out", out / "mine", "--format", "json")
    assert code == 0, err
    code, _, err = _cli(capsys, "relations", "labels", "--similarity", out / "mine" / "similarity.npz", "--tau", "0.3",
                        "--rule", "paper", "--out", out / "rel", "--format", "json")
    assert code == 0, err
    code, listing, err = _cli(capsys, "relations", "review", "--relations", out / "rel", "--margin", "1", "--format", "json")
    assert code == 0, err
    rows = json.loads(listing)["candidates"]
    near = [r for r in rows if r["status"] == "near miss"]
    assert near, rows
    pick = max(near, key=lambda r: r["score"])
    code, _, err = _cli(capsys, "relations", "review", "accept", pick["primary"], pick["secondary"], "--dataset", pick["dataset"],
                        "--margin", "1", "--relations", out / "rel", "--out", out / "reviewed", *DATE, "--format", "json")
    assert code == 0, err
    code, listing, _ = _cli(capsys, "relations", "review", "--relations", out / "reviewed", "--margin", "1", "--format", "json")
    again = {(r["dataset"], r["primary"], r["secondary"]): r for r in json.loads(listing)["candidates"]}
    assert again[(pick["dataset"], pick["primary"], pick["secondary"])]["status"] == "on"
    code, _, err = _cli(capsys, "relations", "conflicts", "--relations", out / "reviewed", "--format", "json")
    assert code == 0, err
    return pick


def test_review_on_relations_mined_from_the_synthetic_world(small_run, capsys):
    world = small_run / "world"
    _mine_and_review(capsys, small_run / "run", [f"{n}={world / n}" for n in ("cityscapes", "idd")], small_run / "synthetic")


def test_review_on_relations_mined_from_the_real_layout_fixtures(small_run, tmp_path, capsys):
    """The same model mined over Cityscapes and IDD copies in their real on-disk layouts."""
    import fixtures_layouts as fx

    fx.make_cityscapes(tmp_path / "cs", per_city=2)
    fx.make_idd(tmp_path / "idd", counts={"train": 3, "val": 1})
    _mine_and_review(capsys, small_run / "run", [f"cityscapes={tmp_path / 'cs'}", f"idd={tmp_path / 'idd'}"], tmp_path)
