"""Each relation artifact is checked against what made it (issue B): mining never orphans a table,
'relations labels' never replaces other relations silently, the demo never trains on relations it
did not make, and a hand edit of relations.yaml (tau, the relations list) is refused."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import yaml

from inprocess import cli
from relations_fixtures import RIDER_CASE, hand_made
from uniseg.relations.stats import write_similarity
from uniseg.unify import build_union

# auto tau 0.66 switches on bicyclist -> rider; road -> sidewalk (0.7) only under the paper's rule
# (Cityscapes labels both: no label conflict explains it), so the rule decides the table
CASE = {**RIDER_CASE, ("mapillary", "bike lane", "road"): 0.64, ("mapillary", "bike lane", "bike lane"): 0.58,
        ("cityscapes", "road", "lane marking - general"): 0.40, ("mapillary", "road", "sidewalk"): 0.7, ("mapillary", "road", "road"): 0.6}
TWO = ("cityscapes", "idd")


def _cli(capsys, *args) -> tuple[int, str, str]:
    """``uniseg`` in this process (``inprocess.cli``): (exit code, stdout, stderr)."""
    res = cli(capsys, *args)
    return res.returncode, res.stdout, res.stderr


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture(scope="module")
def cm(registry):
    return build_union(registry.get_many(["cityscapes", "mapillary"]))


@pytest.fixture()
def labelled(tmp_path, cm, capsys):
    """'relations labels --tau auto' over a similarity file, as a user runs it."""
    write_similarity(tmp_path / "mine", hand_made(cm, CASE))
    code, _, err = _cli(capsys, "relations", "labels", "--similarity", tmp_path / "mine" / "similarity.npz", "--out", tmp_path / "rel")
    assert code == 0, err
    return tmp_path / "rel"


# ---------------------------------------------------------------------------- hand edits of relations.yaml


def _edit(folder, old: str, new: str) -> None:
    text = (folder / "relations.yaml").read_text()
    assert old in text, old
    (folder / "relations.yaml").write_text(text.replace(old, new, 1))


def _strip_document_fingerprint(folder) -> None:
    """relations.yaml as uniseg wrote it before document fingerprints."""
    text = (folder / "relations.yaml").read_text()
    (folder / "relations.yaml").write_text(re.sub(r"document_fingerprint: \w+\n", "", text))


def test_an_edited_tau_is_refused(labelled, capsys):
    code, _, err = _cli(capsys, "relations", "conflicts", "--relations", labelled)
    assert code == 0, err
    tau = yaml.safe_load((labelled / "relations.yaml").read_text())["tau"]["value"]
    _edit(labelled, f"value: {tau!r}", "value: 0.3")
    for command in (["conflicts"], ["show", "rider"], ["export", "--format", "csv", "--out", labelled / "g.csv"], ["review"]):
        code, _, err = _cli(capsys, "relations", *command, "--relations", labelled)
        assert code == 2 and "tau.value: 0.3, but the automatic tau of similarity.npz is" in err and _one_line(err), (command, err)


def test_an_edited_given_tau_is_refused_by_the_document_fingerprint(tmp_path, cm, capsys):
    """A given tau whose edit leaves the table as it was: only the fingerprint over the whole file tells."""
    from uniseg.engine.criterion import build_criterion
    from uniseg.errors import FingerprintMismatch

    write_similarity(tmp_path / "mine", hand_made(cm, CASE))
    code, _, err = _cli(capsys, "relations", "labels", "--similarity", tmp_path / "mine" / "similarity.npz", "--tau", "0.5", "--out", tmp_path / "rel")
    assert code == 0, err
    _edit(tmp_path / "rel", "value: 0.5", "value: 0.45")  # no score lies between: the same table, other conflicts
    code, _, err = _cli(capsys, "relations", "conflicts", "--relations", tmp_path / "rel")
    assert code == 2 and "edited by hand" in err and "uniseg relations review" in err and _one_line(err), err
    with pytest.raises(FingerprintMismatch, match="edited by hand"):  # and 'uniseg train --loss cr-bce' refuses it too
        build_criterion("cr-bce", cm, str(tmp_path / "rel"))


@pytest.mark.parametrize("strip", [False, True], ids=["current", "before-document-fingerprints"])
@pytest.mark.parametrize(
    "old,new,needle",
    [
        ("class: rider", "class: ridr", "relations[0].secondary[0].class: class 'ridr' is not in the union"),
        ("score: 0.7,", "score: 1.51,", "relations[0].secondary[0].score: 1.51, but similarity.npz gives mapillary: bicyclist -> rider the score 0.7"),
        ("dataset: mapillary", "dataset: idd", "relations[0].dataset: dataset 'idd' is not one of cityscapes, mapillary"),
        ("rule: {name: conflict", "rule: {name: paper", "give another table than table.npy"),
    ],
)
def test_an_edited_relations_list_or_rule_is_refused_naming_the_key(labelled, capsys, strip, old, new, needle):
    if strip:
        _strip_document_fingerprint(labelled)
    _edit(labelled, old, new)
    code, _, err = _cli(capsys, "relations", "show", "rider", "--relations", labelled)
    assert code == 2 and needle in err and _one_line(err), err
    assert "relations.yaml:" in err  # file and line


def test_a_relations_file_from_before_document_fingerprints_still_loads(labelled, capsys, cm):
    from uniseg.engine.criterion import build_criterion

    _strip_document_fingerprint(labelled)
    code, out, err = _cli(capsys, "relations", "conflicts", "--relations", labelled, "--format", "json")
    assert code == 0, err
    build_criterion("cr-bce", cm, str(labelled))


# ---------------------------------------------------------------------------- relations labels --out over other relations


def test_labels_never_replaces_other_relations_silently(labelled, capsys):
    sim = labelled.parent / "mine" / "similarity.npz"
    before = (labelled / "table.npy").read_bytes()
    code, _, err = _cli(capsys, "relations", "labels", "--similarity", sim, "--tau", "0.5", "--out", labelled)
    assert code == 2 and "holds other relations (tau 0.6600 (auto), 1 relations) than these (tau 0.5000, given" in err and _one_line(err), err
    assert (labelled / "table.npy").read_bytes() == before
    assert _cli(capsys, "relations", "labels", "--similarity", sim, "--out", labelled)[0] == 0  # the same inputs again: fine
    assert _cli(capsys, "relations", "labels", "--similarity", sim, "--tau", "0.5", "--out", labelled, "--replace")[0] == 0
    assert (labelled / "table.npy").read_bytes() != before


def test_labels_never_replaces_another_similarity_file(tmp_path, cm, capsys):
    write_similarity(tmp_path / "a", hand_made(cm, CASE))
    write_similarity(tmp_path / "b", hand_made(cm, RIDER_CASE))
    code, _, err = _cli(capsys, "relations", "labels", "--similarity", tmp_path / "a" / "similarity.npz", "--out", tmp_path / "b")
    assert code == 2 and "holds a similarity.npz other than" in err and _one_line(err), err
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "similarity.npz")["score"], hand_made(cm, RIDER_CASE).score)


# ---------------------------------------------------------------------------- mining over a relations folder


@pytest.fixture(scope="module")
def world_run(tmp_path_factory):
    """A synthetic world of Cityscapes + IDD and a cosine-head model trained 2 steps on it."""
    from engine_fixtures import tiny_config
    from uniseg.data.synth import synthesize
    from uniseg.engine.config import DatasetSpec
    from uniseg.engine.trainer import train

    base = tmp_path_factory.mktemp("artifacts_world")
    synthesize(base / "world", images=6, size=(64, 128), seed=11, datasets=list(TWO))
    train(tiny_config(base / "world", datasets=[DatasetSpec(n, str(base / "world" / n)) for n in TWO], iterations=2), base / "run")
    return base


def _mine(capsys, base, out, *extra):
    return _cli(capsys, "relations", "mine", "--checkpoint", base / "run" / "last.pt", "--datasets",
                *(f"{n}={base / 'world' / n}" for n in TWO), "--short-side", "0", "--workers", "0", "--out", out, *extra)


def test_mining_never_replaces_the_similarity_of_a_relations_table(world_run, tmp_path, capsys):
    folder = tmp_path / "m"
    code, _, err = _mine(capsys, world_run, folder, "--interior", "off")
    assert code == 0, err
    code, _, err = _cli(capsys, "relations", "labels", "--similarity", folder / "similarity.npz", "--tau", "0.3", "--out", folder)
    assert code == 0, err
    before = (folder / "similarity.npz").read_bytes()
    code, _, err = _mine(capsys, world_run, folder)  # interior pixels: other statistics
    assert code == 2 and "holds relations.yaml, made from its similarity.npz" in err and _one_line(err), err
    assert (folder / "similarity.npz").read_bytes() == before
    code, _, err = _cli(capsys, "relations", "show", "road", "--relations", folder)
    assert code == 0, err


# ---------------------------------------------------------------------------- the demo reuses only its own artifacts


def _demo_folder(world_run, tmp_path):
    out = tmp_path / "demo"
    (out / "runs" / "null-bce").mkdir(parents=True)
    shutil.copy(world_run / "run" / "last.pt", out / "runs" / "null-bce" / "last.pt")
    return out


def _mine_and_label(world_run, out):
    import torch

    from uniseg.engine.demo import DemoEvents, _mine_and_label as step
    from uniseg.engine.demo.plan import PLANS
    from dataclasses import replace
    from uniseg.labelspaces import default_registry

    steps: list[str] = []
    plan = replace(PLANS["quick"], train=TWO)
    sim, rs = step(out, world_run / "world", plan, default_registry(), DemoEvents(step=steps.append), torch.device("cpu"), 0)
    return sim, rs, steps


def test_the_demo_mines_once_then_reuses_its_own_statistics_and_table(world_run, tmp_path):
    out = _demo_folder(world_run, tmp_path)
    sim, rs, steps = _mine_and_label(world_run, out)
    assert len(steps) == 2 and steps[0].startswith("mining relations") and (out / "mining.json").is_file()
    again, rs2, steps = _mine_and_label(world_run, out)
    assert steps == [] and again.content_fingerprint == sim.content_fingerprint and np.array_equal(rs2.table, rs.table)


def test_the_demo_refuses_statistics_another_command_left_in_its_folder(world_run, tmp_path, registry):
    """A similarity.npz and relations.yaml written by another command: the demo used to skip mining and
    train C-R BCE on them, reporting their precision as mined."""
    from uniseg.errors import UnisegError
    from uniseg.relations.artifact import build_relations, write_relations

    out = _demo_folder(world_run, tmp_path)
    union = build_union(registry.get_many(list(TWO)))
    sim = hand_made(union, {("idd", "road", "sidewalk"): 0.9})
    write_relations(out, build_relations(sim, union, None, rule="conflict"))
    with pytest.raises(UnisegError, match=r"similarity.npz was not mined by this demo's Null-BCE model \(no mining.json"):
        _mine_and_label(world_run, out)


def test_the_demo_refuses_a_table_it_did_not_make(world_run, tmp_path, capsys):
    """The statistics are the demo model's own (mined by 'relations mine' with it), but the table was
    made with a fixed tau by 'relations labels': refused, never trained on."""
    from uniseg.errors import UnisegError

    out = _demo_folder(world_run, tmp_path)
    code, _, err = _cli(capsys, "relations", "mine", "--checkpoint", out / "runs" / "null-bce" / "last.pt", "--datasets",
                        *(f"{n}={world_run / 'world' / n}" for n in TWO), "--short-side", "0", "--workers", "0", "--out", out)
    assert code == 0, err
    code, _, err = _cli(capsys, "relations", "labels", "--similarity", out / "similarity.npz", "--tau", "0.3", "--out", out)
    assert code == 0, err
    with pytest.raises(UnisegError, match=r"relations.yaml is not the table this demo makes .* tau 0.3000 \(given\)"):
        _mine_and_label(world_run, out)
