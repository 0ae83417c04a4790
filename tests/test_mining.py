"""``uniseg relations mine`` (Eq. 7) on a tiny model trained in-process on the small synthetic world:
the statistics against a direct per-class computation, the CLI contract through the paper's second
stage, resume after Ctrl-C to the same bytes, torchrun with two CPU processes, and the refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli
from engine_fixtures import TRAIN, cosine_and_linear, small_world, tiny_args, tiny_config  # noqa: F401  (fixture)

SHORT = 48  # the 64 x 128 images go in at 48 x 96: the resize path is exercised
ARRAYS = {"score", "cosine", "pixels", "datasets", "classes", "fingerprint"}


@pytest.fixture(scope="module")
def runs(small_world, tmp_path_factory):
    """A cosine-head run (3 iterations) and a linear-head run (1 iteration)."""
    return cosine_and_linear(small_world, tmp_path_factory.mktemp("mining_runs"), 3, 1)


def _mine_args(world, run, out, *names, workers=0):
    return ["relations", "mine", "--checkpoint", str(run), "--datasets", *(f"{n}={world / n}" for n in names or TRAIN),
            "--short-side", str(SHORT), "--workers", str(workers), "--out", str(out)]


def _cli(*args) -> int:
    """``uniseg`` in this process (no torch start-up per call); returns the exit code."""
    from uniseg.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(list(args))
    return stop.value.code


@pytest.fixture(scope="module")
def mined(runs, small_world, tmp_path_factory):
    """``uniseg relations mine`` over the three training datasets, as a user runs it."""
    out = tmp_path_factory.mktemp("mined") / "mine"
    res = run_cli(*_mine_args(small_world, runs / "cosine", out), "--format", "json")
    assert res.returncode == 0, res.stderr
    return out, res


def _interior(label: np.ndarray, r: int) -> np.ndarray:
    """Pixels whose (2r+1)-square neighbourhood inside the image holds one label value, by a plain
    loop over the pixels (fine in a test)."""
    h, w = label.shape
    out = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            win = label[max(0, y - r): y + r + 1, max(0, x - r): x + r + 1]
            out[y, x] = (win == label[y, x]).all()
    return out


def _direct(model, dataset, k: int, interior: int = 0):
    """Eq. 7 written out: per image, the 1/4-scale cosine map upsampled to the label, then per
    ground-truth class (a loop, fine in a test) the mean of sigmoid(20 cos) and of cos, over every
    pixel of the class or (``interior``) over those ``_interior`` keeps."""
    sig, cos_sum, pixels = np.zeros((k, k)), np.zeros((k, k)), np.zeros(k, dtype=np.int64)
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            label = item["label"]
            cos = model(item["image"][None], return_aux=True)["cosine"]
            assert cos.shape[-2:] == (SHORT // 4, 2 * SHORT // 4)  # the map really is at 1/4
            cos = F.interpolate(cos, size=label.shape, mode="bilinear", align_corners=model.align_corners)[0].double()
            keep = torch.from_numpy(_interior(label.numpy(), interior)) if interior else torch.ones_like(label, dtype=torch.bool)
            for c in label.unique().tolist():
                if c == 255:
                    continue
                at = cos[:, (label == c) & keep]  # K x pixels of class c
                sig[c] += torch.sigmoid(20.0 * at).sum(1).numpy()
                cos_sum[c] += at.sum(1).numpy()
            pixels += np.bincount(label[(label != 255) & keep].numpy(), minlength=k)
    n = np.maximum(pixels, 1)[:, None]
    return sig / n, cos_sum / n, pixels


@pytest.mark.parametrize("method,interior", [("index", 0), ("gemm", 0), ("index", 1), ("gemm", 2)])
def test_eq7_matches_a_direct_computation(runs, small_world, registry, method, interior):
    from uniseg.data import EvalTransform, SegDataset
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.mining import mine

    trained = load_trained(runs / "cosine", torch.device("cpu"))
    union, k = trained.union, trained.union.num_classes
    assert trained.model.classifier.scale == 20.0
    res = mine(trained, [("idd", str(small_world / "idd"))], registry, device=torch.device("cpu"), short_side=SHORT, workers=0, method=method,
               interior=interior)
    ds = SegDataset("idd", small_world / "idd", union, split="train", transform=EvalTransform(short_side=SHORT, resize_label=True), registry=registry)
    score, cosine, pixels = _direct(trained.model, ds, k, interior)
    _, _, every = _direct(trained.model, ds, k) if interior else (None, None, pixels)
    np.testing.assert_array_equal(res.all_pixels[union.dataset_index("idd")], every)
    assert res.interior == interior and (not interior or every.sum() > pixels.sum())
    d = union.dataset_index("idd")
    assert pixels.sum() > 0 and (pixels > 0).sum() >= 5  # several classes measured
    np.testing.assert_array_equal(res.pixels[d], pixels)
    np.testing.assert_allclose(res.score[d], score, rtol=0, atol=2e-6)
    np.testing.assert_allclose(res.cosine[d], cosine, rtol=0, atol=2e-6)
    others = [i for i in range(len(union.datasets)) if i != d]
    assert not res.pixels[others].any() and not res.score[others].any()  # datasets not mined: no rows
    assert res.mined == ["idd"] and res.images == {"idd": len(ds)}


def test_scatter_methods_match_float64_bincount_over_chunks_lanes_and_groups(monkeypatch):
    from uniseg.engine import mining

    monkeypatch.setattr(mining, "GEMM_GROUP", 2)  # 5 full GEMM blocks: groups of 2, 2 and 1, then a remainder
    n = 5 * mining.GEMM_BLOCK + 1000  # the scatter: one full chunk and a part
    g = torch.Generator().manual_seed(0)
    values = torch.rand(5, n, generator=g) * 40 - 20
    index = torch.randint(0, 4, (n,), generator=g)  # bin 4 stays empty
    index[: 3 * mining.GEMM_BLOCK] = 2  # long runs of one bin, as real label maps have
    expected = np.stack([np.bincount(index.numpy(), weights=values[r].double().numpy(), minlength=5) for r in range(5)])
    magnitude = np.stack([np.bincount(index.numpy(), weights=values[r].double().abs().numpy(), minlength=5) for r in range(5)])
    for method in ("index", "gemm"):
        got = mining.class_sums(values, index, 5, method)
        assert got.dtype == torch.float64 and got.shape == (5, 5)
        assert (np.abs(got.numpy() - expected) <= 1e-6 * magnitude).all()  # float32 blocks: relative to the summed magnitudes
        assert not got[:, 4].any()
    with pytest.raises(ValueError):
        mining.class_sums(values, index, 5, "loop")


def test_a_two_megapixel_bin_keeps_float64_accuracy():
    """One float32 running sum over a 1080p image's worth of confident pixels is off by 1% (the
    sum outgrows the addend's precision); blocks of pixels keep it to a few 1e-5."""
    from uniseg.engine.mining import class_sums

    n = 1080 * 1920
    values = torch.full((1, n), 0.7)
    exact = n * float(values[0, 0])
    single = float(torch.zeros(1, 1).index_add_(1, torch.zeros(n, dtype=torch.long), values)[0, 0])
    assert abs(single - exact) / exact > 1e-3  # what the blocks avoid
    for method in ("index", "gemm"):
        got = float(class_sums(values, torch.zeros(n, dtype=torch.long), 1, method)[0, 0])
        assert abs(got - exact) / exact < 1e-4, method


def test_cli_writes_the_contract_and_the_second_stage_trains_from_it(mined, runs, small_world, tmp_path):
    import json

    import yaml

    out, res = mined
    doc = json.loads(res.stdout)
    assert [r["dataset"] for r in doc["datasets"]] == list(TRAIN) and doc["not_mined"] == []
    with np.load(out / "similarity.npz", allow_pickle=False) as npz:
        assert set(npz.files) == ARRAYS | {"all_pixels", "interior"}  # the default: interior pixels (radius 1 for HRNet)
        a = {name: npz[name] for name in npz.files}
    assert int(a["interior"]) == 1 and doc["interior"] == 1
    assert (a["all_pixels"] >= a["pixels"]).all() and a["all_pixels"].sum() > a["pixels"].sum() > 0
    ckpt = torch.load(runs / "cosine" / "last.pt", weights_only=True)
    d, k = len(TRAIN), ckpt["model_spec"]["num_classes"]
    assert a["score"].shape == a["cosine"].shape == (d, k, k) and a["score"].dtype == np.float64
    assert a["pixels"].shape == (d, k) and a["pixels"].dtype == np.int64
    assert a["datasets"].tolist() == list(TRAIN) and a["classes"].tolist() == [c["name"] for c in ckpt["union"]["classes"]]
    assert str(a["fingerprint"]) == ckpt["union_fingerprint"]
    assert ((a["score"] >= 0) & (a["score"] <= 1)).all() and ((a["cosine"] >= -1) & (a["cosine"] <= 1)).all()
    # 64 x 128 images at short side 48: 48 x 96 labelled pixels each, less the ignored ones
    assert 0 < a["all_pixels"].sum() <= sum(r["images"] for r in doc["datasets"]) * SHORT * 2 * SHORT
    assert yaml.safe_load((out / "union.yaml").read_text())["fingerprint"] == ckpt["union_fingerprint"]
    header = (out / "similarity.csv").read_text().splitlines()[0]
    assert header == "dataset,class,other_class,score,cosine,pixels"
    assert not list(out.glob(".mining-state*"))  # partial sums cleared once written

    rel = tmp_path / "rel"  # the paper's second stage, in this process (no torch start-up per command)
    assert _cli("relations", "labels", "--similarity", str(out / "similarity.npz"), "--tau", "auto", "--out", str(rel)) == 0
    assert (rel / "relations.yaml").is_file() and np.load(rel / "table.npy").shape == (d, k, k)
    stage2 = tmp_path / "stage2"
    args = tiny_args(small_world, stage2, iterations=2, extra=("--loss", "cr-bce", "--relations", str(rel / "relations.yaml"),
                                                               "--init", str(runs / "cosine" / "last.pt"), "--quiet"))
    assert _cli(*args) == 0
    last = torch.load(stage2 / "last.pt", weights_only=True)
    assert last["iteration"] == 2 and last["config"]["loss"] == "cr-bce" and last["relations_fingerprint"] is not None


def test_interior_off_writes_the_papers_plain_mean_file(mined, runs, small_world, tmp_path):
    """``--interior off``: the six arrays of the paper's file (no interior fields), each class's
    mean over every labelled pixel: its pixel counts are the interior run's ``all_pixels``."""
    from uniseg.relations.stats import read_similarity

    inner, _ = mined
    out = tmp_path / "plain"
    assert _cli(*_mine_args(small_world, runs / "cosine", out), "--interior", "off", "--format", "json") == 0
    with np.load(out / "similarity.npz", allow_pickle=False) as npz:
        assert set(npz.files) == ARRAYS
    plain, interior = read_similarity(out), read_similarity(inner)
    assert plain.interior == 0 and plain.all_pixels is None
    np.testing.assert_array_equal(plain.pixels, interior.all_pixels)
    assert not np.array_equal(plain.score, interior.score)  # the borders moved the means


def test_ctrl_c_keeps_partial_sums_and_the_rerun_gives_the_same_bytes(mined, runs, small_world, tmp_path, monkeypatch, capsys):
    from uniseg.engine import mining

    whole, res = mined
    first = __import__("json").loads(res.stdout)["datasets"][0]["images"]
    assert first < 10  # the Ctrl-C below falls inside the second dataset
    out = tmp_path / "cut"
    args = _mine_args(small_world, runs / "cosine", out, workers=1)
    real_add, calls = mining.MiningSums.add, {"n": 0}

    def add_then_ctrl_c(self, *a, **kw):
        real_add(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] == 10:  # inside the second dataset
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(mining.MiningSums, "add", add_then_ctrl_c)
    assert _cli(*args) == 130
    err = capsys.readouterr().err
    assert "interrupted after 10 images" in err and "rerun the same command to resume" in err and err.count("\n") == 1
    assert not (out / "similarity.npz").exists()
    state = torch.load(out / ".mining-state.pt", weights_only=True)
    assert state["done"] == {TRAIN[0]: first, TRAIN[1]: 10 - first} and int(state["pixels"].sum()) > 0

    monkeypatch.setattr(mining.MiningSums, "add", real_add)
    assert _cli(*args, "--format", "json") == 0
    assert '"resumed_images": 10' in capsys.readouterr().out
    for name in ("similarity.npz", "similarity.csv", "union.yaml"):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    assert not (out / ".mining-state.pt").exists()


def test_partial_sums_of_another_pass_are_not_resumed(runs, small_world, registry, tmp_path):
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.mining import _save_state, mine, run_key, MiningSums

    trained = load_trained(runs / "cosine", torch.device("cpu"))
    pairs = [("cityscapes", str(small_world / "cityscapes"))]
    poisoned = MiningSums.zeros(3, trained.union.num_classes, torch.device("cpu"))
    poisoned.pixels += 10**6
    _save_state(tmp_path / ".mining-state.pt", "0" * 16, poisoned, {"cityscapes": 3})  # another key
    res = mine(trained, pairs, registry, device=torch.device("cpu"), short_side=SHORT, workers=0, state_dir=tmp_path)
    assert res.resumed == 0 and res.pixels.sum() < 10**6
    from uniseg.data import SegDataset

    ds = [("cityscapes", SegDataset("cityscapes", small_world / "cityscapes", trained.union, registry=registry))]
    assert run_key(trained, ds, ["train"], SHORT, 1) != run_key(trained, ds, ["train"], SHORT, 2)  # the share depends on it
    assert run_key(trained, ds, ["train"], SHORT, 1) != run_key(trained, ds, ["train"], 0, 1)


def test_torchrun_two_cpu_processes_give_the_one_process_statistics(mined, runs, small_world, tmp_path):
    whole, _ = mined
    out = tmp_path / "ddp"
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    env.pop("UNISEG_DEBUG", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "uniseg",
           *_mine_args(small_world, runs / "cosine", out)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("Eq. 7 over") == 1  # rank 0 alone speaks
    one, two = np.load(whole / "similarity.npz"), np.load(out / "similarity.npz")
    np.testing.assert_array_equal(two["pixels"], one["pixels"])
    np.testing.assert_allclose(two["score"], one["score"], rtol=0, atol=1e-6)  # OMP_NUM_THREADS=1 there: float32 convolutions round differently
    np.testing.assert_allclose(two["cosine"], one["cosine"], rtol=0, atol=1e-6)
    assert not list(out.glob(".mining-state*"))


@pytest.mark.parametrize(
    "case, message",
    [
        ("linear", "needs a cosine-classifier model, this one has a linear head"),
        ("unseen", "--datasets kitti: not a training dataset of"),
        ("twice", "--datasets names 'idd' twice"),
        ("other_union", "holds artifacts of union"),
        ("split", "no labelled split 'trian'"),
    ],
)
def test_refusals_are_one_line_with_exit_2(runs, small_world, tmp_path, capsys, case, message):
    out = tmp_path / "out"
    args = {
        "linear": _mine_args(small_world, runs / "linear", out),
        "unseen": _mine_args(small_world, runs / "cosine", out, "idd", "kitti"),
        "twice": _mine_args(small_world, runs / "cosine", out, "idd", "idd"),
        "other_union": _mine_args(small_world, runs / "cosine", out),
        "split": [*_mine_args(small_world, runs / "cosine", out), "--split", "trian"],
    }[case]
    if case == "other_union":
        assert _cli("labels", "union", "cityscapes", "bdd", "--out", str(out)) == 0
        capsys.readouterr()
    assert _cli(*args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (out / "similarity.npz").exists() if case == "other_union" else not out.exists()  # refused before writing
