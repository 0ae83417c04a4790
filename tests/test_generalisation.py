"""Label-space generalisation on the synthetic world's fine truth: the world writes its truth, the
two scores on hand-made arrays, and ``uniseg eval --fine-truth`` against a recount from the PNGs
``uniseg predict --multilabel`` writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from engine_fixtures import TRAIN, small_world, tiny_config  # noqa: F401  (fixture)

# union classes and fine classes of the hand-made case
ROAD, LANE, RIDER, BICYCLIST = range(4)
F_ROAD, F_LANE, F_BICYCLIST = range(3)


def _case():
    """Six pixels of a Cityscapes-like set (road and rider in its space; lane marking and bicyclist
    outside), their fine truth and normalised scores; the expected figures are worked out by hand
    in the comments."""
    contains = np.array([
        [True, False, False, False],  # fine road: in road
        [True, True, False, False],  # fine lane marking: in road and in lane marking
        [False, False, True, True],  # fine bicyclist: in rider and in bicyclist
    ])
    fine = torch.tensor([[F_ROAD, F_ROAD, F_LANE, F_LANE, F_BICYCLIST, F_BICYCLIST]])
    s = torch.full((4, 1, 6), 0.05)
    s[ROAD, 0, :4] = 0.9
    s[LANE, 0, 1] = 0.7  # p1: lane marking fires on road: a false positive
    s[LANE, 0, 2] = 0.8  # p2: lane marking fires on lane marking: a hit (and road fires too: consistent)
    s[LANE, 0, 3] = 0.3  # p3: only the coarse class (road) fires on a lane marking: a miss, not consistent
    s[RIDER, 0, 4], s[BICYCLIST, 0, 4] = 0.8, 0.2  # p4: rider fires, bicyclist (outside) does not
    s[RIDER, 0, 5], s[BICYCLIST, 0, 5], s[LANE, 0, 5] = 0.1, 0.6, 0.7  # p5: the top outside class is lane marking
    outside = np.array([False, True, False, True])
    return contains, fine, s, outside


def test_the_two_scores_on_a_hand_made_case():
    from uniseg.engine import generalisation as gen

    contains, fine, s, outside = _case()
    sums = gen.FineSums.zeros(4, 3, torch.device("cpu"))
    gen.add_image(sums, s, fine, torch.from_numpy(contains), torch.from_numpy(gen.container_index(contains)),
                  torch.from_numpy(outside), 0.5)
    got = gen.fine_scores(sums, ["road", "lane marking", "rider", "bicyclist"], ["road", "lane marking", "bicyclist"],
                          contains, outside, 0.5, "sigmoid")
    # lane marking: predicted at p1, p2, p5 (3), true at p2, p3 (2), both at p2: IoU 1 / (3 + 2 - 1)
    assert got.outside["lane marking"] == {"iou": 0.25, "truth_pixels": 2, "predicted_pixels": 3}
    # bicyclist: true at p4, p5, never the Figure-4 prediction (p4 under the threshold, p5 lane marking wins)
    assert got.outside["bicyclist"] == {"iou": 0.0, "truth_pixels": 2, "predicted_pixels": 0}
    assert set(got.outside) == {"lane marking", "bicyclist"}  # in-space classes are not outside-space scores
    assert got.outside_mean == 0.125
    # consistency: fine lane marking (road + lane marking) all fire at p2 only; fine bicyclist never;
    # fine road has one container and is not a multi-label pixel
    assert got.consistency["lane marking"] == {"share": 0.5, "pixels": 2, "classes": ["road", "lane marking"]}
    assert got.consistency["bicyclist"]["share"] == 0.0 and "road" not in got.consistency
    assert got.consistency_mean == 0.25
    doc = got.to_dict()
    assert doc["outside_space"]["mean"] == 0.125 and doc["consistency"]["mean"] == 0.25


def test_an_outside_class_without_truth_in_the_set_is_not_scored_and_images_add_up():
    from uniseg.engine import generalisation as gen

    contains, fine, s, outside = _case()
    keep = fine != F_BICYCLIST  # a set without bicyclists: its bicyclist score would say nothing
    fine2 = torch.where(keep, fine, torch.full_like(fine, F_ROAD))
    sums = gen.FineSums.zeros(4, 3, torch.device("cpu"))
    args = (torch.from_numpy(contains), torch.from_numpy(gen.container_index(contains)), torch.from_numpy(outside), 0.5)
    gen.add_image(sums, s, fine2, *args)
    gen.add_image(sums, s, fine, *args)  # two images: the counts add
    got = gen.fine_scores(sums, ["road", "lane marking", "rider", "bicyclist"], ["road", "lane marking", "bicyclist"],
                          contains, outside, 0.5, "sigmoid")
    assert got.outside["bicyclist"]["truth_pixels"] == 2 and got.outside["lane marking"]["truth_pixels"] == 4
    one = gen.FineSums.zeros(4, 3, torch.device("cpu"))
    gen.add_image(one, s, fine2, *args)
    alone = gen.fine_scores(one, ["road", "lane marking", "rider", "bicyclist"], ["road", "lane marking", "bicyclist"],
                            contains, outside, 0.5, "sigmoid")
    assert "bicyclist" not in alone.outside


def test_the_threshold_sweep_and_the_threshold_the_labelled_classes_choose():
    """At each grid threshold the same scores as a run at that threshold, and the in-space IoU of
    ``score > t`` against the set's own labels (worked out by hand below)."""
    from uniseg.engine import generalisation as gen

    contains, fine, s, outside = _case()
    names, fines = ["road", "lane marking", "rider", "bicyclist"], ["road", "lane marking", "bicyclist"]
    args = (torch.from_numpy(contains), torch.from_numpy(gen.container_index(contains)), torch.from_numpy(outside))
    # the set's own labels in union indices: p0-p3 road (a lane marking is road here), p4 p5 rider
    label = torch.tensor([[ROAD, ROAD, ROAD, ROAD, RIDER, RIDER]])
    grid = (0.05, 0.1, 0.5)
    sums = gen.FineSums.zeros(4, 3, torch.device("cpu"), len(grid))
    gen.add_image(sums, s, fine, *args, 0.5, label, grid)
    got = gen.fine_scores(sums, names, fines, contains, outside, 0.5, "sigmoid", grid)
    for t in grid:  # each grid point equals a run at that threshold
        alone = gen.FineSums.zeros(4, 3, torch.device("cpu"), len(grid))
        gen.add_image(alone, s, fine, *args, t, None, grid)
        at_t = gen.fine_scores(alone, names, fines, contains, outside, t, "sigmoid", grid)
        assert gen.at_threshold(got.sweep, "outside_space", t) == at_t.outside_mean
        assert gen.at_threshold(got.sweep, "consistency", t) == at_t.consistency_mean
        assert at_t.sweep["in_space_iou"] == [None, None, None]  # scored without the labels
    # road: scores 0.9 on p0-p3 and 0.05 elsewhere, IoU 1 at every threshold; rider: 0.8 on p4, 0.1 on p5,
    # 0.05 elsewhere: both rider pixels above 0.05 (IoU 1), p4 alone above 0.1 and 0.5 (IoU 1/2)
    assert got.sweep["in_space_iou"] == [1.0, 0.75, 0.75]
    assert gen.calibrated_threshold([got.sweep]) == 0.05
    assert got.sweep["outside_per_class"]["lane marking"][2] == got.outside["lane marking"]["iou"] == 0.25
    # two sets: the mean over them decides; on a tie the lower threshold
    other = dict(got.sweep, in_space_iou=[0.0, 0.5, 0.5])
    assert gen.calibrated_threshold([got.sweep, other]) == 0.1
    assert gen.calibrated_threshold([dict(got.sweep, in_space_iou=[None, None, None])]) is None


def test_softmax_and_the_papers_thresholds():
    from uniseg.engine.generalisation import PAPER_THRESHOLDS, normalised_scores, outside_prediction

    assert PAPER_THRESHOLDS == {"sigmoid": 0.5, "softmax": 0.1}  # the paper, Sec. 4 (Figure 4)
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [-1.0, 3.0]])  # K=3 x 2 pixels
    sm = normalised_scores(logits, "softmax")
    assert torch.allclose(sm.sum(0), torch.ones(2)) and torch.allclose(normalised_scores(logits, "sigmoid"), torch.sigmoid(logits))
    # class 0 in the space; outside 1 and 2: pixel 0 top outside is class 1 (e^0 / (e^2 + 1 + e^-1) = 0.11 > 0.1)
    pred = outside_prediction(sm, torch.tensor([False, True, True]), 0.1)
    assert pred.tolist() == [1, 2]
    assert outside_prediction(sm, torch.tensor([False, True, True]), 0.12).tolist() == [3, 2]  # 3 = none


def test_fine_truth_extents_and_the_finest_class():
    from uniseg.data.synth.truth import containment, finest_of

    doc = {"fine_classes": ["unlabeled", "road", "lane marking", "terrain", "bicyclist"], "datasets": {
        "cityscapes": {"classes": {"road": {"unified": "road", "fine": ["road", "lane marking"]},
                                   "terrain": {"unified": "terrain", "fine": ["terrain"]},
                                   "rider": {"unified": "rider", "fine": ["bicyclist"]}}},
        "mapillary": {"classes": {"Road": {"unified": "road", "fine": ["road"]},
                                  "Lane Marking - General": {"unified": "lane marking - general", "fine": ["lane marking"]},
                                  "Terrain": {"unified": "terrain", "fine": ["terrain"]},
                                  "Bicyclist": {"unified": "bicyclist", "fine": ["bicyclist"]}}},
        "idd": {"classes": {"non-drivable fallback": {"unified": "rail track", "fine": ["terrain"]}}},
    }}
    classes = ["bicyclist", "lane marking - general", "rail track", "rider", "road", "terrain"]
    counts = containment(doc, ["cityscapes", "mapillary", "idd"], classes)
    assert counts[2].tolist() == [0, 1, 0, 0, 1, 0]  # lane marking: Mapillary's class, and road in Cityscapes
    assert counts[3].tolist() == [0, 0, 1, 0, 0, 2]
    finest = finest_of(counts)
    # lane marking: 'lane marking - general' holds 1 fine class, road 2; terrain: a tie of one-class extents,
    # and two datasets write it 'terrain', one 'rail track'; bicyclist: a tie, broken by union order
    assert [None if k is None else classes[k] for k in finest] == [None, "road", "lane marking - general", "terrain", "bicyclist"]
    with pytest.raises(Exception, match="not in the synthetic world"):
        containment(doc, ["bdd"], classes)


def test_the_world_writes_its_fine_truth_beside_the_datasets(small_world):
    """Every label file has its fine truth, which encodes back to the very label (the mapping of
    mapping.yaml), no reader of the real layout picks it up, and the file names it."""
    from uniseg.data.synth import PLANTED_FILE, encode_label, load_mapping
    from uniseg.data.synth.planted import read_planted
    from uniseg.data.synth.truth import fine_path
    from uniseg.data.layout import discover
    from uniseg.labelspaces import default_registry

    doc = read_planted(small_world / PLANTED_FILE)
    assert doc["fine_truth"]["folder"] == "fine" and len(doc["fingerprint"]) == 16
    assert doc["fine_truth"]["finest"]["lane marking"] == "lane marking - general"
    reg = default_registry()
    space = reg.get("cityscapes")
    found = discover(space, small_world / "cityscapes")
    samples = [r for sf in found.split_files(None) for r in sf.samples]
    assert samples and all("fine" not in str(r.image).split("/") for r in samples)
    lut = load_mapping(space).lut()
    for r in samples:
        fine = np.array(Image.open(fine_path(small_world, "cityscapes", r.label)))
        assert fine.dtype == np.uint8 and fine.max() < len(doc["fine_classes"])
        assert np.array_equal(np.array(encode_label(fine, load_mapping(space), lut)), np.array(Image.open(small_world / "cityscapes" / r.label)))
    assert all(d["digest"] for d in doc["datasets"].values())


def test_the_world_fingerprint_follows_what_was_drawn(tmp_path):
    from uniseg.data.synth import synthesize
    from uniseg.data.synth.planted import read_planted

    prints = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        synthesize(tmp_path / name, images=2, size=(32, 64), seed=seed, datasets=["cityscapes"])
        prints.append(read_planted(tmp_path / name / "planted_relations.yaml")["fingerprint"])
    assert prints[0] == prints[1] != prints[2]


@pytest.fixture(scope="module")
def checkpoint(small_world, tmp_path_factory):
    """A tiny cosine-head run whose 'lane marking - general' weight is set to its 'road' weight: a
    model that calls every pixel it takes for road a lane marking as well, so the Figure-4
    prediction of lane marking (outside Cityscapes) fires on road-like pixels, lane markings included."""
    from uniseg.engine.trainer import train

    out = tmp_path_factory.mktemp("fine_run") / "run"
    last = train(tiny_config(small_world, iterations=20, lr=0.05), out).last
    doc = torch.load(last, map_location="cpu", weights_only=True)
    names = [c["name"] for c in doc["union"]["classes"]]
    w = doc["model"]["last_layer.3.weight"]
    w[names.index("lane marking - general")] = w[names.index("road")]
    torch.save(doc, out / "road_is_lane.pt")
    return out / "road_is_lane.pt"


def test_eval_fine_truth_recounts_from_the_predicted_pngs(checkpoint, small_world, tmp_path):
    """The outside-space IoU of ``eval --fine-truth`` equals a plain recount from ``predict
    --multilabel``'s ``_outside.png`` files and the world's fine PNGs (same threshold)."""
    from uniseg.data.synth.planted import read_planted
    from uniseg.data.synth.truth import containment

    src = small_world / "cityscapes" / "leftImg8bit" / "val"
    thr = "0.05"  # the tiny model scores road 0.04 at its median pixel
    res = run_cli("predict", "--checkpoint", str(checkpoint), "--label-space", "cityscapes", "--multilabel", "--threshold", thr,
                  "--out", str(tmp_path / "p"), str(src), "--format", "json")
    assert res.returncode == 0, res.stderr
    res = run_cli("eval", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={small_world / 'cityscapes'}", "--split", "val",
                  "--fine-truth", str(small_world), "--threshold", thr, "--out", str(tmp_path / "e"), "--workers", "0", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "e" / "cityscapes.json").read_text())
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    classes = [c["name"] for c in ckpt["union"]["classes"]]
    planted = read_planted(small_world / "planted_relations.yaml")
    contains = containment(planted, list(TRAIN), classes) > 0
    tp, pred, truth = np.zeros(len(classes)), np.zeros(len(classes)), np.zeros(len(classes))
    for img in sorted(src.rglob("*.png")):
        rel = img.relative_to(src)
        outside = np.array(Image.open((tmp_path / "p" / rel).with_name(img.stem + "_outside.png")))
        label = f"gtFine/val/{rel.parent}/{img.stem.replace('_leftImg8bit', '')}_gtFine_labelIds.png"
        fine = np.array(Image.open(small_world / "fine" / "cityscapes" / label))
        for k in range(len(classes)):  # a loop over classes: fine in a test
            p, t = outside == k, contains[fine, k]
            tp[k] += (p & t).sum()
            pred[k] += p.sum()
            truth[k] += t.sum()
    per_class = doc["outside_space"]["per_class"]
    assert per_class and doc["outside_space"]["threshold"] == 0.05
    assert 0.0 < per_class["lane marking - general"]["iou"] < 1.0
    for name, v in per_class.items():
        k = classes.index(name)
        assert (v["truth_pixels"], v["predicted_pixels"]) == (truth[k], pred[k]), name
        assert v["iou"] == pytest.approx(tp[k] / (pred[k] + truth[k] - tp[k]), abs=1e-12), name
    from uniseg.engine.checkpoint import checkpoint_union, read_checkpoint

    space = checkpoint_union(read_checkpoint(checkpoint)).null_mask(["cityscapes"])[0]
    assert set(per_class) == {classes[k] for k in range(len(classes)) if truth[k] > 0 and not space[k]}
    assert "lane marking - general" in per_class and "road" not in per_class
    summary = (tmp_path / "e" / "summary.csv").read_text().splitlines()
    assert summary[0].endswith("outside_space_iou,consistency")


def test_eval_fine_truth_refuses_a_folder_that_is_no_world(checkpoint, small_world, tmp_path):
    res = run_cli("eval", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={small_world / 'cityscapes'}",
                  "--fine-truth", str(tmp_path), "--workers", "0")
    assert res.returncode == 2 and "planted_relations.yaml" in res.stderr and res.stderr.count("\n") == 1
    res = run_cli("eval", "--checkpoint", str(checkpoint), "--datasets", f"cityscapes={small_world / 'cityscapes'}",
                  "--fine-truth", str(small_world), "--threshold", "1.5", "--workers", "0")
    assert res.returncode == 2 and "--threshold" in res.stderr
