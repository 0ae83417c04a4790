"""``uniseg models export``: a checkpoint as ``model.safetensors`` + ``config.json``, taken back as a checkpoint by
eval, predict, relations mine and train --init (same logits, same outputs), its union fingerprint checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine_fixtures import small_world, tiny_config  # noqa: F401  (fixture)
from uniseg.errors import FingerprintMismatch, UnisegError


@pytest.fixture(scope="module")
def run(small_world, tmp_path_factory):
    """A two-iteration run of the tiny HRNet (cosine head) over the small world's three datasets."""
    from uniseg.engine.trainer import train

    out = tmp_path_factory.mktemp("export") / "run"
    train(tiny_config(small_world, iterations=2, val_split="none"), out)
    return out


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    from uniseg.engine.export import export_checkpoint

    return export_checkpoint(run / "last.pt", tmp_path_factory.mktemp("exported") / "w")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``uniseg ARGS`` in this process (exit code, stdout, stderr), as the console script runs it."""
    from uniseg.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(list(args))
    cap = capsys.readouterr()
    return int(done.value.code or 0), cap.out, cap.err


def test_export_writes_safetensors_and_a_config_and_gives_the_same_logits(run, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import load_file

    from uniseg.engine.checkpoint import load_trained

    code, out, err = cli(capsys, "models", "export", "--checkpoint", str(run / "last.pt"), "--out", str(tmp_path / "w"), "--format", "json")
    assert code == 0, err
    record = json.loads(out)
    folder = tmp_path / "w"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]  # no lock or temp files
    assert record["weights"] == str(folder / "model.safetensors") and record["variant"] == "hrnet_tiny"

    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format"] == "uniseg.export/v1"
    assert (cfg["variant"], cfg["head"], cfg["num_classes"]) == ("hrnet_tiny", "cosine", 70)
    assert cfg["align_corners"] == ckpt["model_spec"]["align_corners"] and cfg["cosine_scale"] == ckpt["model_spec"]["cosine_scale"]
    assert cfg["union_fingerprint"] == ckpt["union_fingerprint"] and cfg["datasets"] == ckpt["union"]["datasets"]
    assert [c["name"] for c in cfg["classes"]] == [c["name"] for c in ckpt["union"]["classes"]]  # union order
    assert [c["colour"] for c in cfg["classes"]] == [list(c["colour"]) for c in ckpt["union"]["classes"]]
    assert cfg["iteration"] == 2 and cfg["activation"] == "sigmoid"
    # the recipe, with no path of this machine: each root, file and folder by its last component
    recipe = ckpt["config"]
    assert {k: v for k, v in cfg["recipe"].items() if k != "datasets"} == {k: v for k, v in recipe.items() if k != "datasets"}
    assert cfg["recipe"]["datasets"] == [{"name": d["name"], "root": Path(d["root"]).name} for d in recipe["datasets"]]
    assert all(Path(d["root"]).is_absolute() for d in recipe["datasets"])  # the test means something
    assert str(tmp_path.parent) not in (folder / "config.json").read_text() and cfg["source"] == "last.pt"

    tensors = load_file(str(folder / "model.safetensors"))  # plain safetensors reads it
    assert tensors.keys() == ckpt["model"].keys() and all(torch.equal(tensors[k], v) for k, v in ckpt["model"].items())
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        assert fh.metadata()["union_fingerprint"] == cfg["union_fingerprint"]

    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = load_trained(run / "last.pt").model(x)
        for path in (folder, folder / "model.safetensors", folder / "config.json"):
            trained = load_trained(path)
            assert trained.path == str(folder) and trained.iteration == 2 and trained.activation == "sigmoid"
            assert trained.union.fingerprint == ckpt["union_fingerprint"]
            assert torch.equal(trained.model(x), want)

    code, out, err = cli(capsys, "models", "export", "-c", str(run), "-o", str(folder))  # a run folder; the table; over the old export
    assert code == 0, err
    assert out.startswith("Exported") and "hrnet_tiny, cosine head, 70 classes" in out


def test_eval_predict_and_mining_read_the_export_as_the_checkpoint(run, exported, small_world, tmp_path, capsys):
    def both(*args: str) -> list[dict]:
        outs = []
        for ckpt in (run / "last.pt", exported.folder):
            code, out, err = cli(capsys, *[a.replace("CKPT", str(ckpt)) for a in args], "--format", "json")
            assert code == 0, err
            outs.append(json.loads(out))
        return outs

    a, b = both("eval", "--checkpoint", "CKPT", "--datasets", f"kitti={small_world / 'kitti'}", "--workers", "0")
    assert b[0]["checkpoint"] == str(exported.folder) and b[0]["iteration"] == 2
    assert [{**d, "checkpoint": None} for d in a] == [{**d, "checkpoint": None} for d in b]  # every score the same

    images = small_world / "camvid"
    pngs = []
    for i, ckpt in enumerate((run / "last.pt", exported.folder)):
        code, _, err = cli(capsys, "predict", str(images), "--checkpoint", str(ckpt), "--label-space", "camvid", "--out", str(tmp_path / f"p{i}"))
        assert code == 0, err
        pngs.append({p.relative_to(tmp_path / f"p{i}"): p.read_bytes() for p in sorted((tmp_path / f"p{i}").rglob("*.png"))})
    assert pngs[0] and pngs[0] == pngs[1]

    sims = []
    for i, ckpt in enumerate((run / "last.pt", exported.folder)):
        code, _, err = cli(capsys, "relations", "mine", "--checkpoint", str(ckpt), "--datasets", f"idd={small_world / 'idd'}",
                           "--out", str(tmp_path / f"m{i}"), "--short-side", "0", "--workers", "0", "--format", "json")
        assert code == 0, err
        with np.load(tmp_path / f"m{i}" / "similarity.npz") as z:
            sims.append({k: z[k] for k in z.files})
    assert sims[0].keys() == sims[1].keys() and all(np.array_equal(sims[0][k], sims[1][k]) for k in sims[0])


def test_train_init_takes_the_export_folder(run, exported, small_world):
    from uniseg.engine.trainer import build_network, resolve_run_union
    from uniseg.labelspaces import default_registry

    cfg = tiny_config(small_world, init=str(exported.folder))
    model, notes = build_network(cfg, resolve_run_union(cfg, default_registry()))
    want = torch.load(run / "last.pt", map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in want.items())
    assert any(f"initialised from {exported.folder} (iteration 2)" in n for n in notes)
    # another union: the backbone and the classifier rows of the classes both unions hold carry over by name
    other = tiny_config(small_world, init=str(exported.folder), union=["cityscapes", "idd", "mapillary", "bdd"])
    wider, notes = build_network(other, resolve_run_union(other, default_registry()))
    assert any("classifier" in n for n in notes)
    backbone = [k for k in want if not k.startswith("last_layer.3.")]
    assert backbone and all(torch.equal(wider.state_dict()[k], want[k]) for k in backbone)


def test_an_edited_or_mixed_export_is_refused(exported, tmp_path):
    from uniseg.engine.checkpoint import load_trained, read_checkpoint

    edited = tmp_path / "edited"
    shutil.copytree(exported.folder, edited)
    cfg = json.loads((edited / "config.json").read_text())
    cfg["classes"][0]["name"] = "not-" + cfg["classes"][0]["name"]
    (edited / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FingerprintMismatch, match="does not match its fingerprint"):
        load_trained(edited)

    mixed = tmp_path / "mixed"
    shutil.copytree(exported.folder, mixed)
    cfg = json.loads((mixed / "config.json").read_text())
    cfg["union_fingerprint"] = "0123456789abcdef"
    (mixed / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FingerprintMismatch, match="keep model.safetensors and config.json of one export together"):
        read_checkpoint(mixed)

    foreign = tmp_path / "timm"
    foreign.mkdir()
    shutil.copy(exported.weights, foreign / "model.safetensors")
    (foreign / "config.json").write_text(json.dumps({"architecture": "hrnet_w18_small_v2", "num_classes": 1000}))
    with pytest.raises(UnisegError, match=r"config\.json: not a uniseg export .*'uniseg train --pretrained'"):
        read_checkpoint(foreign)
    (foreign / "config.json").unlink()
    with pytest.raises(UnisegError, match="no best.pt or last.pt in this folder, nor model.safetensors and config.json"):
        read_checkpoint(foreign)
    with pytest.raises(UnisegError, match="no config.json beside it"):
        read_checkpoint(foreign / "model.safetensors")

    broken = tmp_path / "broken"
    shutil.copytree(exported.folder, broken)
    cfg = json.loads((broken / "config.json").read_text())
    del cfg["head"]
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnisegError, match=r"config\.json: head: missing"):
        read_checkpoint(broken)


def test_export_errors_are_one_line(run, tmp_path, capsys):
    code, _, err = cli(capsys, "models", "export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x"))
    assert code == 2 and err.count("\n") == 1 and "nope.pt' not found" in err
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "config.json").write_text("{}")
    code, _, err = cli(capsys, "models", "export", "--checkpoint", str(run / "last.pt"), "--out", str(tmp_path / "hub"))
    assert code == 2 and err.count("\n") == 1 and "holds a config.json that is not a uniseg export" in err
    assert sorted(p.name for p in (tmp_path / "hub").iterdir()) == ["config.json"]
    (tmp_path / "file").write_text("")
    code, _, err = cli(capsys, "models", "export", "--checkpoint", str(run / "last.pt"), "--out", str(tmp_path / "file"))
    assert code == 2 and err.count("\n") == 1 and "is a file, not a folder" in err


def test_a_shared_recipe_names_files_and_folders_by_their_last_component():
    from uniseg.engine.export import shareable_recipe

    recipe = {"datasets": [{"name": "cityscapes", "root": "/home/ana/data/cityscapes/"}, {"name": "idd", "root": "rel/idd_prep"}],
              "union": "/home/ana/unions/cbim", "relations": "/home/ana/runs/mine/relations.yaml",
              "pretrained": "/home/ana/weights/hrnet_w18.pth", "init": None, "lr": 0.01, "crop": [713, 713]}
    shared = shareable_recipe(recipe)
    assert shared == {"datasets": [{"name": "cityscapes", "root": "cityscapes"}, {"name": "idd", "root": "idd_prep"}],
                      "union": "cbim", "relations": "relations.yaml", "pretrained": "hrnet_w18.pth", "init": None,
                      "lr": 0.01, "crop": [713, 713]}
    assert recipe["union"] == "/home/ana/unions/cbim"  # the run's own record is not touched
    assert shareable_recipe({"union": ["cityscapes", "idd"]})["union"] == ["cityscapes", "idd"]  # names, not a folder
