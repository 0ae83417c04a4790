"""The engine's pure parts: schedule, key stream, confusion/IoU maths, config records, relation tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uniseg.engine.config import DatasetSpec, TrainConfig, dump_config, read_config
from uniseg.engine.inputs import KeyStream
from uniseg.engine.metrics import confusion, scores
from uniseg.engine.schedule import poly_lr
from uniseg.errors import FingerprintMismatch, UnisegError

from engine_fixtures import write_relation_table


def test_poly_lr_follows_the_papers_schedule():
    assert poly_lr(0.01, 0, 100) == pytest.approx(0.01)
    assert poly_lr(0.01, 50, 100) == pytest.approx(0.01 * 0.5**0.9)
    assert poly_lr(0.01, 99, 100) == pytest.approx(0.01 * 0.01**0.9)
    assert poly_lr(0.01, 100, 100) == 0.0
    assert poly_lr(0.02, 25, 100, power=1.0) == pytest.approx(0.015)


def _keys(stream) -> list[tuple[int, int]]:
    return [tuple(k) for k in stream]


def test_key_stream_resumes_exactly_and_crosses_epochs():
    from uniseg.data.sampler import MultiDatasetSampler

    sampler = MultiDatasetSampler([5, 3], seed=7)
    full = _keys(KeyStream(sampler, 0, 20))  # 2.5 epochs of 8 samples
    assert len(full) == 20
    assert sorted(i for i, _ in full[:8]) == list(range(8))  # each epoch is a permutation
    assert sorted(i for i, _ in full[8:16]) == list(range(8))
    assert full[:8] != full[8:16]  # a new order per epoch
    for start in (1, 7, 8, 13):
        again = MultiDatasetSampler([5, 3], seed=7)
        assert _keys(KeyStream(again, start, 20)) == full[start:]


def test_key_stream_shards_are_disjoint_per_epoch():
    from uniseg.data.sampler import MultiDatasetSampler

    ranks = [_keys(KeyStream(MultiDatasetSampler([6, 4], seed=1, num_replicas=2, rank=r), 0, 5)) for r in (0, 1)]
    assert not {i for i, _ in ranks[0]} & {i for i, _ in ranks[1]}
    assert {i for i, _ in ranks[0]} | {i for i, _ in ranks[1]} == set(range(10))


def test_confusion_counts_pairs_and_skips_ignore():
    pred = torch.tensor([[0, 1, 2], [2, 2, 0]])
    target = torch.tensor([[0, 0, 2], [255, 2, 1]])
    conf = confusion(pred, target, 3)
    expected = [[1, 1, 0], [1, 0, 0], [0, 0, 2]]
    assert conf.tolist() == expected
    with pytest.raises(ValueError):
        confusion(torch.tensor([3]), torch.tensor([0]), 3)


def test_scores_leave_absent_classes_out_unless_asked():
    conf = np.array([[2, 1, 0, 0], [0, 0, 0, 0], [1, 0, 3, 0], [0, 0, 0, 0]])
    s = scores(conf)
    # class 0: 2 / (3 + 3 - 2); class 1: predicted once, never true -> 0; class 2: 3 / (4 + 3 - 3); class 3 absent
    assert s.iou == [pytest.approx(0.5), 0.0, pytest.approx(0.75), None]
    assert s.miou == pytest.approx((0.5 + 0.0 + 0.75) / 3)
    assert s.pixel_accuracy == pytest.approx(5 / 7)
    z = scores(conf, absent_as_zero=True)
    assert z.iou[3] == 0.0 and z.miou == pytest.approx(1.25 / 4)
    only = scores(conf, scored=[0, 2])
    assert only.iou[1] is None and only.miou == pytest.approx(0.625)


def test_config_round_trips_through_yaml(tmp_path):
    cfg = TrainConfig(datasets=[DatasetSpec("cityscapes", "/d/cs"), DatasetSpec("idd", "/d/idd")], crop=(512, 256),
                      scale=(0.75, 1.5), dataset_weights={"idd": 2.0, "cityscapes": 1.0}, lr=0.02)
    (tmp_path / "config.yaml").write_text(dump_config(cfg))
    back = read_config(tmp_path / "config.yaml")
    assert back == cfg
    assert back.base_lr == 0.02
    assert TrainConfig(batch_size=8).base_lr == pytest.approx(0.005)  # 0.01 per 16 images
    assert TrainConfig(batch_size=8, optimizer="adamw").base_lr == pytest.approx(0.0005)  # 0.001 per 16 images
    adamw = cfg.replace(optimizer="adamw", weight_decay=0.01)
    (tmp_path / "adamw.yaml").write_text(dump_config(adamw))
    assert read_config(tmp_path / "adamw.yaml") == adamw


def test_a_run_from_before_a_setting_existed_has_that_settings_default():
    from uniseg.engine.config import recipe_changes

    cfg = TrainConfig(datasets=[DatasetSpec("cityscapes", "/d/cs")])
    old = {k: v for k, v in cfg.to_dict().items() if k != "optimizer"}  # a config.yaml from before --optimizer
    assert recipe_changes(old, cfg.to_dict()) == []
    assert recipe_changes(old, cfg.replace(optimizer="adamw").to_dict()) == ["optimizer"]


def test_config_refuses_unknown_keys_and_bad_values(tmp_path):
    (tmp_path / "c.yaml").write_text("format: uniseg.train/v1\nbatch_sise: 4\n")
    with pytest.raises(UnisegError, match="batch_sise.*did you mean 'batch_size'"):
        read_config(tmp_path / "c.yaml")
    base = TrainConfig(datasets=[DatasetSpec("cityscapes", "/d")])
    with pytest.raises(UnisegError, match="--loss"):
        base.replace(loss="focal").validate()
    with pytest.raises(UnisegError, match="needs --relations"):
        base.replace(loss="cr-bce").validate()
    with pytest.raises(UnisegError, match=r"--weight-decay -0.1: must be >= 0"):
        base.replace(weight_decay=-0.1).validate()
    with pytest.raises(UnisegError, match=r"momentum 1.0: must be in \[0, 1\)"):
        base.replace(momentum=1.0).validate()
    with pytest.raises(UnisegError, match="--optimizer 'adam': choose one of sgd, adamw"):
        base.replace(optimizer="adam").validate()
    with pytest.raises(UnisegError, match="--batch-size must be >= 1"):
        base.replace(batch_size=0).validate()
    with pytest.raises(UnisegError, match="twice"):
        base.replace(datasets=[DatasetSpec("idd", "/a"), DatasetSpec("idd", "/b")]).validate()


@pytest.mark.parametrize(
    "line, expected",
    [
        ("batch_size: abc", "batch_size: malformed value 'abc' (expected an integer)"),
        ("iterations: 1.5", "iterations: malformed value 1.5 (expected an integer)"),
        ("flip: yes", "flip: malformed value True (expected a number)"),  # YAML 1.1 reads yes as true
        ("model: 3", "model: malformed value 3 (expected a string)"),
        ("dataset_weights: 3", "dataset_weights: malformed value 3"),
        ("dataset_weights: {idd: lots}", "dataset_weights: malformed value"),
        ("channels_last: 1", "channels_last: malformed value 1 (expected true or false)"),
        ("datasets: cityscapes", "datasets: malformed value 'cityscapes'"),
    ],
)
def test_config_values_of_the_wrong_type_are_refused_on_reading(line, expected, tmp_path):
    (tmp_path / "c.yaml").write_text(f"format: uniseg.train/v1\n{line}\n")
    with pytest.raises(UnisegError) as err:
        read_config(tmp_path / "c.yaml")
    assert expected in str(err.value) and str(tmp_path / "c.yaml") in str(err.value)


def test_config_reads_yaml_number_spellings(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nweight_decay: 0\ncrop: [512, 1024]\nscale: [1, 2]\nchannels_last: null\n")
    cfg = read_config(tmp_path / "c.yaml")
    assert cfg.lr == 0.001 and cfg.weight_decay == 0.0 and cfg.crop == (512, 1024) and cfg.scale == (1.0, 2.0)
    assert cfg.channels_last is None


def test_config_union_is_a_folder_or_a_list_of_names(tmp_path, registry):
    from uniseg.engine.trainer import resolve_run_union
    from uniseg.errors import ConfigError
    from uniseg.unify.artifact import open_union, write_union_artifact

    base = TrainConfig(datasets=[DatasetSpec("cityscapes", "/d/cs")])
    names = base.replace(union=["cityscapes", "idd"])
    (tmp_path / "config.yaml").write_text(dump_config(names))
    assert "union: [cityscapes, idd]" in (tmp_path / "config.yaml").read_text()
    assert read_config(tmp_path / "config.yaml").union == ["cityscapes", "idd"]
    union = resolve_run_union(names, registry)
    assert union.datasets == ("cityscapes", "idd")
    folder_union, spaces = open_union(["idd", "cityscapes"], registry)
    write_union_artifact(folder_union, list(spaces.values()), tmp_path / "u")
    assert resolve_run_union(base.replace(union=str(tmp_path / "u")), registry).datasets == ("idd", "cityscapes")
    assert resolve_run_union(base, registry).datasets == ("cityscapes",)  # no union: the training datasets'
    with pytest.raises(UnisegError, match="'cityscapes' is not in the union \\(idd\\)"):
        resolve_run_union(base.replace(union=["idd"]), registry)
    with pytest.raises(ConfigError, match="union"):
        TrainConfig.from_dict({"union": 3})


def test_relation_table_is_reordered_to_the_union_and_refused_for_another(tmp_path, registry):
    from uniseg.relations.eq6 import identity_table
    from uniseg.unify import build_union
    from uniseg.relations.artifact import check_table, read_relation_table

    union = build_union(registry.get_many(["cityscapes", "mapillary"]))
    valid = torch.from_numpy(union.null_mask())
    table = identity_table(valid)
    r, b = union.index_of("rider"), union.index_of("bicyclist")
    table[1, b, r] = 1  # Mapillary's bicyclist -> rider
    reversed_rows = table[::-1].copy()
    write_relation_table(tmp_path / "rel", union, reversed_rows, ["mapillary", "cityscapes"])
    rt = read_relation_table(tmp_path / "rel")
    got = rt.for_union(union)
    assert got[1, b, r] == 1 and np.array_equal(got, table)
    check_table(got, union.null_mask(), union.datasets)

    other = build_union(registry.get_many(["cityscapes", "idd"]))
    with pytest.raises(FingerprintMismatch, match="another|not"):
        rt.for_union(other)
    # a table that does not match its YAML is refused
    np.save(tmp_path / "rel" / "table.npy", table)
    with pytest.raises(FingerprintMismatch, match="do not belong together"):
        read_relation_table(tmp_path / "rel" / "relations.yaml")


def test_check_table_rejects_tables_that_break_eq6(registry):
    from uniseg.relations.eq6 import identity_table
    from uniseg.unify import build_union
    from uniseg.relations.artifact import check_table

    union = build_union(registry.get_many(["cityscapes", "mapillary"]))
    mask = union.null_mask()
    table = identity_table(torch.from_numpy(mask))
    road = union.index_of("road")
    bad = table.copy()
    bad[0, road, road] = 0
    with pytest.raises(UnisegError, match="own target"):
        check_table(bad, mask)
    bad = table.copy()
    outside = int(np.flatnonzero(~mask[0])[0])
    bad[0, road, outside] = 0
    with pytest.raises(UnisegError, match="outside its label space"):
        check_table(bad, mask)


def test_confusion_is_the_same_for_uint8_label_images_and_int64_tensors():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 6, (40, 50)).astype(np.uint8)
    target[rng.random(target.shape) < 0.2] = 255
    target[rng.random(target.shape) < 0.05] = 6  # values past the classes are skipped too
    target[rng.random(target.shape) < 0.05] = 254
    pred = rng.integers(0, 6, (40, 50)).astype(np.uint8)
    a = confusion(torch.from_numpy(pred), torch.from_numpy(target), 6)
    b = confusion(torch.from_numpy(pred).long(), torch.from_numpy(target).long(), 6)
    expected = np.zeros((6, 6), np.int64)
    for t, p in zip(target.ravel(), pred.ravel()):  # the definition, pixel by pixel
        if t < 6:
            expected[t, p] += 1
    assert a.tolist() == b.tolist() == expected.tolist()
    # an ignore index inside the classes, and the widest 8-bit case (256 classes: codes up to 65535)
    c = confusion(torch.from_numpy(pred), torch.from_numpy(target), 6, ignore_index=2)
    assert c[2].sum() == 0 and c[[0, 1, 3, 4, 5]].tolist() == expected[[0, 1, 3, 4, 5]].tolist()
    wide_t = rng.integers(0, 256, (40, 50)).astype(np.uint8)
    wide_p = rng.integers(0, 256, (40, 50)).astype(np.uint8)
    wide = confusion(torch.from_numpy(wide_p), torch.from_numpy(wide_t), 256, ignore_index=-1)
    assert wide.sum() == wide_t.size and wide[255].sum() == (wide_t == 255).sum()
    assert wide[int(wide_t[0, 0]), int(wide_p[0, 0])] >= 1


def test_sliding_windows_cover_the_image_and_average_overlaps():
    """With a per-pixel network the windowed logits must equal the whole-image ones, whatever the tiling."""
    from uniseg.engine.inference import InferenceSettings, _starts, network_logits

    assert _starts(100, 40, 26) == [0, 26, 52, 60]  # every stride, the last window flush with the end
    assert _starts(40, 40, 26) == [0]
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 5, kernel_size=1)
    image = torch.randn(1, 3, 70, 150)
    whole = network_logits(net, image, InferenceSettings(window=0))
    tiled = network_logits(net, image, InferenceSettings(window=32, overlap=0.5))
    assert tiled.shape == whole.shape == (1, 5, 70, 150)
    assert torch.allclose(tiled, whole, atol=1e-6)
    # a network that sees its input's size: each pixel gets the mean of the windows covering it
    class WindowSize(torch.nn.Module):
        def forward(self, x):
            return torch.full((1, 1, *x.shape[-2:]), float(x.shape[-1]))

    out = network_logits(WindowSize(), torch.zeros(1, 3, 32, 80), InferenceSettings(window=32, overlap=0.5))
    assert out.shape == (1, 1, 32, 80) and torch.all(out == 32)  # 32-wide windows only, no smaller edge tile


def test_infer_height_resizes_only_the_network_input():
    from uniseg.engine.inference import InferenceSettings, predict_channels

    seen = []

    class Probe(torch.nn.Module):
        align_corners = False

        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return torch.stack([x[:, 0], -x[:, 0]], 1)

    image = torch.randn(1, 3, 40, 100)
    winner, logits = predict_channels(Probe(), image, (40, 100), None, InferenceSettings(infer_height=20, window=0))
    assert seen == [(20, 50)] and winner.shape == (40, 100) and logits.shape == (1, 2, 40, 100)
