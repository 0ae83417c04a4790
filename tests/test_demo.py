"""``uniseg demo --quick``: the whole method on the synthetic world, its contract files, and resuming."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from conftest import run_cli


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "d"
    res = run_cli("demo", "--quick", "--out", str(out), "--quiet", "--workers", "0")
    assert res.returncode == 0, res.stderr
    return out, res


def test_quick_demo_leaves_the_contract_files(quick_demo):
    out, res = quick_demo
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "relations.yaml").is_file() and (out / "table.npy").is_file() and (out / "similarity.npz").is_file()
    assert set(summary["methods"]) == {"ce", "null-bce", "null-bce-stage2", "cr-bce", "cr-bce-planted"}
    for m in summary["methods"].values():
        assert set(m["unseen"]) == {"kitti", "wilddash", "camvid"}
        assert all(0.0 <= v <= 1.0 for v in m["unseen"].values())
        assert m["mean"] == pytest.approx(sum(m["unseen"].values()) / 3)
    assert 0.0 <= summary["precision"] <= 1.0 and 0.0 <= summary["recall"] <= 1.0
    assert 0.0 <= summary["relations"]["own_score"]["classes"] <= 1.0 and 0.0 <= summary["relations"]["own_score"]["pixels"] <= 1.0
    rel = summary["relations"]
    assert {m["why"] for m in rel["missed"]} <= {"not learned", "not enough support", "no conflict", "below tau", "primary higher"}
    hits = sum(m["planted"] for m in rel["mined"])
    assert rel["learned"]["found"] <= hits and rel["learned"]["expected"] - rel["learned"]["found"] <= len(rel["missed"])
    for method in ("ce", "null-bce", "null-bce-stage2", "cr-bce", "cr-bce-planted"):
        assert (out / "runs" / method / "last.pt").is_file()
        for name in ("kitti", "wilddash", "camvid"):
            doc = json.loads((out / "eval" / method / f"{name}.json").read_text())
            assert doc["miou"] == pytest.approx(summary["methods"][method]["unseen"][name])
    # label-space generalisation: {method: {dataset: mean}} over the training val splits and the unseen sets
    sets = ["cityscapes", "bdd", "idd", "mapillary", "kitti", "wilddash", "camvid"]
    assert summary["evaluated"] == sets
    from uniseg.engine.generalisation import GRID, at_threshold, calibrated_threshold

    for key in ("outside_space", "consistency"):
        assert set(summary[key]) == set(summary["methods"])
        for method, row in summary[key].items():
            assert list(row) == sets
            docs = {name: json.loads((out / "eval" / method / f"{name}.json").read_text()) for name in sets}
            chosen = summary["thresholds"]["calibrated"][method]
            assert chosen == calibrated_threshold([docs[n]["threshold_sweep"] for n in sets[:4]]) and chosen in GRID
            for name, value in row.items():  # at the model's own threshold; at the paper's beside it
                assert value == at_threshold(docs[name]["threshold_sweep"], key, chosen) and (value is None or 0.0 <= value <= 1.0)
                assert summary[f"{key}_paper"][method][name] == docs[name][key]["mean"]
            assert all(docs[n]["threshold_sweep"]["in_space_iou"][0] is not None for n in sets[:4])  # trained on: calibrated there
            assert all(docs[n]["threshold_sweep"]["in_space_iou"] == [None] * len(GRID) for n in sets[4:])  # unseen: not
    ce_doc = json.loads((out / "eval" / "ce" / "cityscapes.json").read_text())
    assert ce_doc["outside_space"]["threshold"] == 0.1 and ce_doc["outside_space"]["activation"] == "softmax"
    assert "lane marking - general" in ce_doc["outside_space"]["per_class"]  # outside Cityscapes, drawn in its images
    assert json.loads((out / "eval" / "null-bce" / "cityscapes.json").read_text())["consistency"]["threshold"] == 0.5
    assert summary["mining"] == {"interior": 1, "rule": "conflict", "min_support": 50}
    index = (out / "README.md").read_text()
    assert "Unseen-dataset mIoU" in index and "Outside-space IoU (%)" in index and "Multi-label consistency (%)" in index
    for m in rel["mined"]:  # every mined relation is listed in the index
        assert f"| {m['dataset']} | {m['primary']} -> {m['secondary']} | {m['score']:.2f} |" in index
    assert ("Missed planted relations:" in index) == bool(rel["missed"])
    # the unseen classes relations can act on: each names a class the table fills in, scored by every method
    filled = summary["filled_in"]
    assert set(filled["classes"]) == {"mined", "planted"} and filled["classes"]["planted"] and filled["unseen"]
    # IDD writes terrain as 'non-drivable fallback' (mapping.yaml): the planted IDD relation fills in
    # KITTI's and WildDash's terrain; CamVid's classes are all labelled by every training dataset but one
    # (its Bicyclist: Mapillary only), and no planted relation leads to bicyclist
    rows = {(r["dataset"], r["class"]): r for r in filled["unseen"]}
    assert rows[("kitti", "terrain")]["by"]["planted"] == ["idd"] and rows[("wilddash", "terrain")]["by"]["planted"] == ["idd"]
    assert not any(d == "camvid" for d, _ in rows)
    for row in filled["unseen"]:
        per_class = json.loads((out / "eval" / "cr-bce" / f"{row['dataset']}.json").read_text())["per_class"]
        assert row["iou"]["cr-bce"] == per_class[row["class"]] and set(row["iou"]) == set(summary["methods"])
        assert f"| {row['dataset']} | {row['class']} |" in index
    words = " ".join(res.stdout.split())
    assert "UniSeg (C-R BCE)" in res.stdout and "precision" in res.stdout and "the model knows" in words
    assert "C-R BCE (planted)" in res.stdout
    said = ", ".join(f"{r['dataset']} {r['class']} ({', '.join(t for t in ('mined', 'planted') if r['by'][t])})" for r in filled["unseen"])
    assert "relations can teach from data Null BCE leaves out: " + said in words and "kitti terrain (" in said


def test_the_second_stage_starts_from_null_bce_with_the_mined_table(quick_demo):
    import torch

    out, _ = quick_demo
    cr = torch.load(out / "runs" / "cr-bce" / "last.pt", map_location="cpu", weights_only=True)
    assert cr["config"]["loss"] == "cr-bce" and cr["config"]["init"].endswith("null-bce/last.pt")
    assert cr["relations_fingerprint"] is not None
    # the control: the same second stage without relations (same init, iterations and seed)
    control = torch.load(out / "runs" / "null-bce-stage2" / "last.pt", map_location="cpu", weights_only=True)
    assert control["config"]["loss"] == "null-bce" and control["config"]["init"] == cr["config"]["init"]
    assert control["config"]["relations"] is None and control["relations_fingerprint"] is None
    assert control["iteration"] == cr["iteration"] and control["config"]["seed"] == cr["config"]["seed"]
    ce = torch.load(out / "runs" / "ce" / "last.pt", map_location="cpu", weights_only=True)
    assert ce["config"]["loss"] == "ce"


def test_the_reference_run_trains_on_exactly_the_planted_relations(quick_demo):
    import numpy as np
    import torch
    import yaml

    from uniseg.data.synth.planted import expected_relations, read_planted
    from uniseg.engine.demo import PLANS
    from uniseg.relations.artifact import read_relations

    out, _ = quick_demo
    oracle = read_relations(out / "planted")
    mined = read_relations(out)
    assert oracle.union.fingerprint == mined.union.fingerprint and oracle.tau.how == "planted"
    expected = expected_relations(read_planted(out / "world" / "planted_relations.yaml"), PLANS["quick"].train)
    assert {(r.dataset, r.primary, r.secondary) for r in oracle.relations()} == set(expected)
    # apart from the switched-on entries, the same table as Eq. 6's
    same = ~(oracle.switched_on | mined.switched_on)
    assert np.array_equal(oracle.table[same], mined.table[same])
    doc = yaml.safe_load((out / "planted" / "relations.yaml").read_text())
    run = torch.load(out / "runs" / "cr-bce-planted" / "last.pt", map_location="cpu", weights_only=True)
    cr = torch.load(out / "runs" / "cr-bce" / "last.pt", map_location="cpu", weights_only=True)
    assert run["config"]["relations"] == str(out / "planted" / "relations.yaml") and run["config"]["loss"] == "cr-bce"
    assert run["relations_fingerprint"] == doc["table_fingerprint"] != cr["relations_fingerprint"]
    assert run["config"]["init"] == cr["config"]["init"] and run["iteration"] == cr["iteration"]


def test_planted_table_swaps_the_mined_relations_for_the_planted_ones():
    import numpy as np

    from uniseg.relations.scoring import planted_table
    from uniseg.errors import UnisegError

    datasets, classes = ("cityscapes", "mapillary"), ("road", "rider", "bicyclist", "lane marking - general")
    valid = np.array([[True, True, False, False], [True, False, True, True]])
    table = np.broadcast_to(np.where(valid[:, None, :], 0, -1).astype(np.int8), (2, 4, 4)).copy()
    table[:, np.arange(4), np.arange(4)] = 1
    table[0, 1, 2] = 1  # mined, not planted: rider -> bicyclist (out of Cityscapes' space: back to null)
    table[1, 3, 0] = 1  # mined and planted: marking -> road
    table[1, 2, 3] = 1  # mined, not planted, in Mapillary's space: back to 0
    got = planted_table(table, valid, {("mapillary", "bicyclist", "rider"): 5, ("mapillary", "lane marking - general", "road"): 9},
                        datasets, classes)
    want = np.broadcast_to(np.where(valid[:, None, :], 0, -1).astype(np.int8), (2, 4, 4)).copy()
    want[:, np.arange(4), np.arange(4)] = 1
    want[1, 2, 1] = 1
    want[1, 3, 0] = 1
    assert np.array_equal(got, want) and got.dtype == np.int8
    assert table[0, 1, 2] == 1  # the input is left as it was
    with pytest.raises(UnisegError, match="planted relation idd: curb -> sidewalk"):
        planted_table(table, valid, {("idd", "curb", "sidewalk"): 3}, datasets, classes)


def test_both_first_stage_runs_start_from_the_same_pretrained_backbone(quick_demo):
    import torch

    out, _ = quick_demo
    pre = torch.load(out / "runs" / "pretrain" / "last.pt", map_location="cpu", weights_only=True)
    # the stand-in for ImageNet weights: CE on Mapillary alone, so it has Mapillary's 65 classes only
    assert pre["config"]["loss"] == "ce" and [d["name"] for d in pre["config"]["datasets"]] == ["mapillary"]
    assert pre["model"]["last_layer.3.weight"].shape[0] == 65
    for method in ("ce", "null-bce"):
        doc = torch.load(out / "runs" / method / "last.pt", map_location="cpu", weights_only=True)
        assert doc["config"]["pretrained"] == str(out / "runs" / "pretrain" / "last.pt")
        assert [d["name"] for d in doc["config"]["datasets"]] == ["cityscapes", "bdd", "idd", "mapillary"]


def test_rerunning_the_demo_resumes_without_redoing_anything(quick_demo):
    out, _ = quick_demo
    before = (out / "summary.json").read_bytes()
    res = run_cli("demo", "--quick", "--out", str(out), "--quiet", "--workers", "0")
    assert res.returncode == 0, res.stderr
    assert "training" not in res.stderr and "mining" not in res.stderr
    assert (out / "summary.json").read_bytes() == before
    res = run_cli("demo", "--quick", "--seed", "5", "--out", str(out))
    assert res.returncode == 2 and "another plan or seed" in res.stderr


def test_every_trained_run_beats_the_untrained_network(quick_demo):
    """The quick plan trains: every compared run scores at least 5 points of mean unseen mIoU above
    the same network untrained (measured 2026-12-07 on 2 CPU cores: the untrained network, CE or
    cosine head, seeds 0-2, scores 0.0-1.5%; the quick demo's five runs 9.8-14.7%)."""
    import torch

    from uniseg.engine.demo.plan import PLANS, RUN, train_config
    from uniseg.engine.evaluate import evaluate_set
    from uniseg.engine.inputs import eval_set
    from uniseg.engine.trainer import build_network, resolve_run_union
    from uniseg.labelspaces import default_registry

    out, _ = quick_demo
    summary = json.loads((out / "summary.json").read_text())
    plan, reg = PLANS["quick"], default_registry()
    untrained = []
    for run in ("ce", "null-bce"):  # the linear and the cosine head, as the demo builds them, no weights loaded
        cfg = train_config(plan, out / "world", RUN[run], 0, 0, "cpu", out).replace(pretrained=None)
        union = resolve_run_union(cfg, reg)
        model, _ = build_network(cfg, union)
        scores = [evaluate_set(model.eval(), eval_set(n, out / "world" / n, union, reg), device=torch.device("cpu"), workers=0).miou
                  for n in plan.unseen]
        untrained.append(sum(scores) / len(scores))
    for method, row in summary["methods"].items():
        assert row["mean"] >= max(untrained) + 0.05, (method, row["mean"], untrained)


def test_a_demo_from_before_the_reference_run_gains_it_on_a_rerun(quick_demo):
    """A demo folder from before the reference run (no planted/, no runs/cr-bce-planted): a rerun adds
    just that run, and gives the same bytes as a demo that had it from the start. (Runs record their
    paths, so this works on the module's folder itself, and leaves it as it was.)"""
    import shutil

    out, _ = quick_demo
    before = {name: (out / name).read_bytes() for name in ("summary.json", "README.md", "planted/table.npy")}
    for gone in ("planted", "runs/cr-bce-planted", "eval/cr-bce-planted"):
        shutil.rmtree(out / gone)
    res = run_cli("demo", "--quick", "--out", str(out), "--quiet", "--workers", "0")
    assert res.returncode == 0, res.stderr
    steps = [line for line in res.stderr.splitlines() if line.startswith("> ")]
    assert len(steps) == 3 and "planted relations as a table" in steps[0] and "C-R BCE (planted)" in steps[1]
    assert "evaluating C-R BCE (planted)" in steps[2]
    assert {name: (out / name).read_bytes() for name in before} == before


def test_a_rerun_with_another_seed_never_reuses_an_earlier_demos_runs(quick_demo):
    """Before its summary.json exists, an interrupted demo is only its runs: each is checked on reuse."""
    from uniseg.engine.demo import PLANS, _earlier_run, train_config
    from uniseg.errors import UnisegError

    out, _ = quick_demo
    cfg = train_config(PLANS["quick"], out / "world", "ce", 0, 0, "auto", out)
    assert _earlier_run(out / "runs" / "ce", cfg, out)["iteration"] == cfg.iterations
    assert _earlier_run(out / "runs" / "ce", cfg.replace(workers=2, device="cpu"), out) is not None
    with pytest.raises(UnisegError, match="another seed"):
        _earlier_run(out / "runs" / "ce", cfg.replace(seed=5), out)
    # a run of a demo from before the pretraining run (trained from scratch) is not taken for one
    with pytest.raises(UnisegError, match="another pretrained"):
        _earlier_run(out / "runs" / "ce", cfg.replace(pretrained=None), out)


def test_expected_relations_need_support_and_a_trained_holder():
    from uniseg.data.synth.planted import expected_relations

    doc = {"relations": [
        {"dataset": "mapillary", "primary": "bicyclist", "secondary": "rider", "holds_in": ["cityscapes"], "pixels": 40},
        {"dataset": "mapillary", "primary": "caravan", "secondary": "car", "holds_in": ["kitti"], "pixels": 9},  # holder unseen
        {"dataset": "idd", "primary": "parking", "secondary": "road", "holds_in": ["bdd"], "pixels": 0},  # no support
        {"dataset": "camvid", "primary": "bicyclist", "secondary": "rider", "holds_in": ["cityscapes"], "pixels": 5},  # not trained
    ]}
    assert expected_relations(doc, ["cityscapes", "idd", "mapillary", "bdd"]) == {("mapillary", "bicyclist", "rider"): 40}


def test_planted_score_counts_hits_misses_and_false_relations(tmp_path):
    from uniseg.relations.scoring import planted_score

    expected = {("mapillary", "bicyclist", "rider"): 40, ("mapillary", "lane marking - general", "road"): 90}
    rel = lambda d, p, s: SimpleNamespace(dataset=d, primary=p, secondary=s, score=0.6)  # noqa: E731
    rs = SimpleNamespace(relations=lambda: [rel("mapillary", "bicyclist", "rider"), rel("cityscapes", "rider", "bicyclist")],
                         tau=SimpleNamespace(tau=0.45, how="auto"))
    got = planted_score(rs, expected)
    assert got["precision"] == 0.5 and got["recall"] == 0.5
    assert [m["planted"] for m in got["mined"]] == [False, True]
    assert got["missed"] == [{"dataset": "mapillary", "primary": "lane marking - general", "secondary": "road", "pixels": 90}]


def test_own_scores_average_the_diagonal_over_rows_with_pixels():
    import numpy as np

    from uniseg.relations.stats import mean_own_scores as own_scores

    score = np.zeros((2, 3, 3))
    score[0, 0, 0], score[0, 1, 1], score[0, 2, 2] = 0.8, 0.2, 0.9  # class 2 of dataset 0 has no pixels
    score[1, 0, 0] = 0.5
    score[0, 1, 0] = 0.7  # off the diagonal: never counted
    pixels = np.array([[3, 1, 0], [0, 0, 0]])
    pixels[1, 0] = 4
    got = own_scores(score, pixels)
    assert got["classes"] == pytest.approx((0.8 + 0.2 + 0.5) / 3)
    assert got["pixels"] == pytest.approx((0.8 * 3 + 0.2 * 1 + 0.5 * 4) / 8)
    assert own_scores(score, np.zeros((2, 3), dtype=int)) == {"classes": 0.0, "pixels": 0.0}


def test_why_missed_tells_an_unlearned_class_from_the_rule():
    import numpy as np

    from uniseg.relations.scoring import why_missed
    from uniseg.relations.stats import KNOWN

    datasets, classes = ("cityscapes", "mapillary"), ("road", "rider", "bicyclist", "lane marking - general")
    score = np.zeros((2, 4, 4))
    score[0, 0, 0], score[0, 1, 1] = 0.9, KNOWN - 0.01  # road known in Cityscapes, rider just not
    score[1, 2, 1], score[1, 2, 2] = 0.45, 0.05  # bicyclist -> rider: rider was never learned
    score[1, 3, 0], score[1, 3, 3] = 0.30, 0.02  # marking -> road: road learned, 0.30 under tau
    score[1, 0, 0] = 0.2  # road in Mapillary too, scored low: (0.9 + 0.2) / 2 = 0.55 over equal pixels, known
    pixels = np.ones((2, 4), dtype=np.int64)
    valid = np.array([[True, True, False, False], [True, False, True, True]])
    planted = {"tau": 0.4, "mined": [
        {"dataset": "mapillary", "primary": "crosswalk", "secondary": "road", "score": 0.7, "planted": True},
        {"dataset": "mapillary", "primary": "pole", "secondary": "building", "score": 0.5, "planted": False},
    ], "missed": [
        {"dataset": "mapillary", "primary": "bicyclist", "secondary": "rider", "pixels": 1},
        {"dataset": "mapillary", "primary": "lane marking - general", "secondary": "road", "pixels": 1},
    ]}
    classes = (*classes, "crosswalk", "pole", "building")
    score = np.pad(score, ((0, 0), (0, 3), (0, 3)))
    pixels, valid = np.pad(pixels, ((0, 0), (0, 3))), np.pad(valid, ((0, 0), (0, 3)))
    got = why_missed(planted, score, pixels, valid, datasets, classes)
    assert [(m["why"], m["score"], m["own"]) for m in got["missed"]] == [("not learned", 0.45, 0.05), ("below tau", 0.3, 0.02)]
    assert got["learned"] == {"expected": 2, "found": 1, "recall": 0.5}  # the hit leads to road (learned), and so does one miss
    planted["tau"] = 0.2  # above tau now, but no higher than the marking's own score
    score[1, 3, 3] = 0.30
    assert why_missed(planted, score, pixels, valid, datasets, classes)["missed"][1]["why"] == "primary higher"


def test_an_interrupted_demo_says_to_rerun_the_demo(tmp_path, monkeypatch):
    from uniseg.engine import demo as demo_mod
    from uniseg.engine import trainer as trainer_mod
    from uniseg.engine.trainer import TrainingInterrupted

    def interrupted(cfg, run, **_):
        raise TrainingInterrupted(f"interrupted at iteration 3/40: wrote {run}/last.pt; resume with: uniseg train --resume {run}")

    monkeypatch.setattr(trainer_mod, "train", interrupted)
    cfg = demo_mod.train_config(demo_mod.PLANS["quick"], tmp_path / "world", "ce", 0, 0, "cpu", tmp_path)
    with pytest.raises(TrainingInterrupted) as err:
        demo_mod._train(cfg, tmp_path / "runs" / "ce", tmp_path, None, demo_mod.DemoEvents(), "the CE baseline")
    msg = str(err.value)
    assert msg.startswith("interrupted at iteration 3/40 of the CE baseline") and "rerun the same 'uniseg demo' command" in msg
    assert "uniseg train --resume" not in msg and err.value.exit_code == 130


def test_every_plan_is_a_valid_recipe_and_the_gpu_plans_network_takes_its_crop(tmp_path):
    """No plan fails at its first run for a setting: each run's recipe passes the checks
    ``uniseg train`` makes, and the gpu plan (never run in CI: no GPU) builds its network, which
    takes a batch of the plan's crop forward and backward to a full-size output on the CPU."""
    import torch

    from uniseg.engine.demo.plan import PLANS, RUNS, iterations, train_config
    from uniseg.models.registry import build_model

    for plan in PLANS.values():
        assert plan.crop[0] <= plan.size[0] and plan.crop[1] <= plan.size[1], plan.name
        for run in RUNS:
            cfg = train_config(plan, tmp_path / "world", run, 0, plan.workers, "auto", tmp_path)
            cfg.validate()
            assert cfg.iterations == iterations(plan, run) > 0 and cfg.model == plan.model
    gpu = PLANS["gpu"]
    assert gpu.model == "hrnet_w18_small_v2"  # the network
    torch.manual_seed(0)
    model = build_model(gpu.model, num_classes=70, head="cosine").train()
    logits = model(torch.randn(2, 3, *gpu.crop))
    assert logits.shape == (2, 70, *gpu.crop)
    logits.float().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_the_long_plan_is_the_full_plan_with_four_times_the_first_stage():
    """docs/demo.md reports the long plan as the full one (same world, model and crop) with the
    first stage at 2000 iterations and the second at 800: a change to either plan that breaks this
    makes that section's comparison wrong."""
    from dataclasses import asdict

    from uniseg.engine.demo.plan import PLANS

    full, long = asdict(PLANS["full"]), asdict(PLANS["long"])
    differ = {k for k in full if full[k] != long[k]}
    assert differ == {"name", "stage1_iterations", "stage2_iterations"}
    assert (long["stage1_iterations"], long["stage2_iterations"]) == (4 * full["stage1_iterations"], 4 * full["stage2_iterations"])
