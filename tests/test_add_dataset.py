"""Adding a dataset to a trained model (issue A part 3): ``train --init OLD.pt`` over a union that
differs from the checkpoint's carries the classifier over by class name, and ``labels union
--compare OLD`` says what the new union changes."""

from __future__ import annotations

import json

import pytest
import torch

from inprocess import cli
from conftest import run_cli
from engine_fixtures import TRAIN, cosine_and_linear, small_world, tiny_args, tiny_config, write_relation_table  # noqa: F401  (fixture)

OLD = ("cityscapes", "idd")  # the lab's first model; TRAIN adds mapillary


def _two(world, **changes):
    from uniseg.engine.config import DatasetSpec

    return tiny_config(world, datasets=[DatasetSpec(n, str(world / n)) for n in OLD], **changes)


@pytest.fixture(scope="module")
def old_runs(small_world, tmp_path_factory):
    """A cosine-head and a linear-head model trained a few steps on Cityscapes + IDD."""
    from uniseg.engine.config import DatasetSpec

    return cosine_and_linear(small_world, tmp_path_factory.mktemp("two_datasets"), 2, 2,
                             datasets=[DatasetSpec(n, str(small_world / n)) for n in OLD])


@pytest.mark.parametrize("head", ["cosine", "linear"])
def test_a_model_extended_with_a_dataset_scores_every_old_class_as_the_old_model(old_runs, small_world, registry, head):
    """Before any training step, on the same input, the new model's logit of every class of the old
    union equals the old model's, bit for bit; the classes Mapillary brings are new rows."""
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.trainer import build_network, resolve_run_union

    old = load_trained(old_runs / head / "last.pt")
    cfg = tiny_config(small_world, init=str(old_runs / head / "last.pt"), head=head)
    union = resolve_run_union(cfg, registry)
    assert union.datasets == TRAIN and union.fingerprint != old.union.fingerprint
    model, notes = build_network(cfg, union)
    model.eval()
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        before, after = old.model(x), model(x)
    assert before.shape[1] == old.union.num_classes == 28 and after.shape[1] == union.num_classes == 70
    for c in old.union.classes:  # every class the old union had, wherever the new union sorts it
        assert torch.equal(after[:, union.index_of(c.name)], before[:, c.index]), c.name
    new_rows = [union.index_of(n) for n in union.names if old.union.index_of(n) is None]
    assert len(new_rows) == 42 and not torch.equal(after[:, new_rows], torch.zeros_like(after[:, new_rows]))
    note = " ".join(notes)
    assert "classifier carried over by class name for 28 of its 28 classes" in note
    assert "42 new, initialised afresh: banner, barrier" in note and "dropped" not in note


def test_dropped_classes_are_reported_and_the_backbone_is_kept(old_runs, small_world, registry):
    """Cityscapes + IDD -> Cityscapes + Mapillary: IDD's own classes are dropped, and named."""
    from uniseg.engine.config import DatasetSpec
    from uniseg.engine.trainer import build_network, resolve_run_union

    cfg = tiny_config(small_world, datasets=[DatasetSpec(n, str(small_world / n)) for n in ("cityscapes", "mapillary")],
                      init=str(old_runs / "cosine" / "last.pt"))
    model, notes = build_network(cfg, resolve_run_union(cfg, registry))
    old = torch.load(old_runs / "cosine" / "last.pt", weights_only=True)["model"]
    assert torch.equal(model.state_dict()["conv1.weight"], old["conv1.weight"])
    assert "3 dropped (this union lacks them): autorickshaw, obs-str-bar-fallback, vehicle fallback" in " ".join(notes)


def test_the_same_union_loads_as_before(old_runs, small_world, registry):
    """The contract: --init with the checkpoint's own union keeps every weight, with the note it always had."""
    from uniseg.engine.trainer import build_network, resolve_run_union

    cfg = _two(small_world, init=str(old_runs / "cosine" / "last.pt"))
    model, notes = build_network(cfg, resolve_run_union(cfg, registry))
    old = torch.load(old_runs / "cosine" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(v, old[k]) for k, v in model.state_dict().items())
    assert notes == [f"initialised from {old_runs / 'cosine' / 'last.pt'} (iteration 2)"]


def test_cli_trains_the_extended_model_and_refuses_the_old_unions_relations(old_runs, small_world, tmp_path, registry, capsys):
    from uniseg.cli.main import main
    from uniseg.relations.eq6 import identity_table
    from uniseg.unify import build_union

    init = str(old_runs / "cosine" / "last.pt")
    res = run_cli(*tiny_args(small_world, tmp_path / "three", iterations=1, extra=("--init", init, "--quiet")))
    assert res.returncode == 0, res.stderr
    assert "classifier carried over by class name for 28 of its 28 classes" in " ".join(res.stderr.split())
    assert torch.load(tmp_path / "three" / "last.pt", weights_only=True)["model_spec"]["num_classes"] == 70

    old_union = build_union(registry.get_many(list(OLD)))
    write_relation_table(tmp_path / "rel", old_union, identity_table(old_union.null_mask()))
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # in this process: refused before any work
        main(tiny_args(small_world, tmp_path / "cr", iterations=1, extra=("--init", init, "--loss", "cr-bce", "--relations", str(tmp_path / "rel"))))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert "relations made for union" in err and "mine again for this one" in err
    assert not (tmp_path / "cr" / "last.pt").exists()


# ---------------------------------------------------------------------------- labels union --compare


def test_union_compare_against_a_checkpoint_and_a_union_folder(old_runs, tmp_path):
    res = run_cli("labels", "union", *TRAIN, "--compare", str(old_runs / "cosine" / "last.pt"), "--format", "json")
    assert res.returncode == 0, res.stderr
    c = json.loads(res.stdout)["compare"]
    assert c["kind"] == "checkpoint" and c["old"]["datasets"] == list(OLD) and not c["same"]
    assert c["datasets"] == {"added": ["mapillary"], "dropped": [], "kept": list(OLD)}
    assert len(c["classes"]["added"]) == 42 and c["classes"]["dropped"] == [] and c["classes"]["kept"] == 28
    assert c["merged"] == c["split"] == c["renamed"] == []
    assert {"class": "road", "datasets": ["mapillary"]} in c["gained_members"]
    tables = {(r["dataset"], r["encoding"]): r for r in c["remap_tables"]}
    assert tables[("mapillary", "ids")]["status"] == "new"
    # Cityscapes' trainIds: 19 classes, each shifted by the classes Mapillary adds before it, none to another class
    assert tables[("cityscapes", "labelTrainIds")] == {"dataset": "cityscapes", "encoding": "labelTrainIds", "status": "changed",
                                                        "values": 20, "moved": 19, "reclassed": 0}
    human = run_cli("labels", "union", *TRAIN, "--compare", str(old_runs / "cosine"))  # the run folder: its union.yaml
    assert human.returncode == 0, human.stderr
    flat = " ".join(human.stdout.split())
    assert "Against union" in flat and "classes added 42" in flat and "datasets added 1 mapillary" in flat

    assert run_cli("labels", "union", *OLD, "--out", str(tmp_path / "u")).returncode == 0
    same = json.loads(run_cli("labels", "union", *OLD, "--compare", str(tmp_path / "u"), "--format", "json").stdout)["compare"]
    assert same["same"] and all(r["status"] == "unchanged" for r in same["remap_tables"])


def test_union_compare_finds_merged_and_split_classes(tmp_path, registry):
    """A label space whose classes were regrouped: two classes merged into one, one split in two."""
    from uniseg.unify import build_union
    from uniseg.unify.compare import compare_unions
    from uniseg.unify.union import UnionSpace, UnifiedClass

    old = build_union(registry.get_many(["cityscapes"]))
    by = {c.name: c for c in old.classes}
    # the new union: car and truck under one name; person's members split between two classes
    classes = [c for n, c in by.items() if n not in ("car", "truck", "person")]
    classes.append(UnifiedClass(0, "motor vehicle", (1, 2, 3), {"cityscapes": ("car", "truck")}))
    new = UnionSpace(("cityscapes",), tuple(UnifiedClass(i, c.name, c.colour, c.members) for i, c in enumerate(
        sorted(classes + [UnifiedClass(0, "person", (4, 5, 6), {"cityscapes": ("person",)})], key=lambda c: c.name))))
    c = compare_unions(old, new, registry)
    assert c["merged"] == [{"class": "motor vehicle", "from": ["car", "truck"]}]
    assert c["classes"]["added"] == ["motor vehicle"] and c["classes"]["dropped"] == ["car", "truck"]
    split_old = UnionSpace(("cityscapes",), tuple(UnifiedClass(i, c.name, c.colour, c.members) for i, c in enumerate(new.classes)))
    back = compare_unions(split_old, old, registry)
    assert back["split"] == [{"class": "motor vehicle", "into": ["car", "truck"]}]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["labels", "union", "cityscapes", "--compare", "{tmp}/nothing"], "--compare {tmp}/nothing: no such file or folder"),
        (["labels", "union", "cityscapes", "--compare", "{tmp}/junk.pt"], "neither a union (no union.yaml) nor a checkpoint"),
    ],
)
def test_compare_errors_are_one_line_with_exit_2(tmp_path, args, needle, capsys):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    res = cli(capsys, *(a.format(tmp=tmp_path) for a in args))
    assert res.returncode == 2 and needle.format(tmp=tmp_path) in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_adding_mapillary_on_the_real_layout_fixtures(tmp_path, capsys):
    """The same from the CLI on Cityscapes, IDD and Mapillary copies in their real on-disk layouts."""
    import fixtures_layouts as fx
    from uniseg.cli.main import main

    fx.make_cityscapes(tmp_path / "cs", per_city=2)
    fx.make_idd(tmp_path / "idd", counts={"train": 4, "val": 1})
    fx.make_mapillary(tmp_path / "map", counts={"training": 4, "validation": 1})
    roots = {"cityscapes": tmp_path / "cs", "idd": tmp_path / "idd", "mapillary": tmp_path / "map"}

    def train(names, out, *extra):
        args = ["train", "--datasets", *(f"{n}={roots[n]}" for n in names), "--model", "hrnet_tiny", "--iterations", "1",
                "--batch-size", "4", "--crop", "32x32", "--short-side", "32", "--workers", "0", "--out", str(out), "--quiet", *extra]
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            main(args)
        return stop.value.code, capsys.readouterr()

    code, out = train(OLD, tmp_path / "old")
    assert code == 0, out.err
    code, out = train(TRAIN, tmp_path / "new", "--init", str(tmp_path / "old" / "last.pt"), "--format", "json")
    assert code == 0, out.err
    assert "classifier carried over by class name for 28 of its 28 classes; 42 new" in " ".join(out.err.split())
    assert json.loads(out.out)["iteration"] == 1
