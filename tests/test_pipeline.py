"""End to end: synthetic world -> union -> multi-dataset loader -> HRNet -> the UniSeg losses.

``uniseg.engine.trainer`` runs exactly this loop; the test proves today's pieces plug together
without glue: the sampler's keys reach the datasets through a DataLoader, the labels arrive
in unified ids with their dataset index, the union's Null-BCE mask drives the loss, and the
gradient the model's logits receive is zero on every class outside each sample's label space.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uniseg.data import MultiDataset, MultiDatasetSampler, SegDataset, TrainTransform
from uniseg.data.synth import synthesize
from uniseg.models import build_model
from uniseg.models.losses import ClassRelationalBCELoss, NullBCELoss, UnifiedCrossEntropy
from uniseg.relations.eq6 import identity_table
from uniseg.unify.artifact import open_union

TRAIN = ["cityscapes", "bdd", "idd", "mapillary"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, registry):
    out = tmp_path_factory.mktemp("world")
    synthesize(out, images=6, size=(64, 128), seed=5, datasets=TRAIN, registry=registry)
    union, _ = open_union(TRAIN, registry)
    return out, union


def _batches(world, registry, workers: int):
    out, union = world
    tf = TrainTransform(crop=48, short_side=64, scale=(0.75, 1.25))
    members = [SegDataset(name, out / name, union, split="train", transform=tf, registry=registry) for name in union.datasets]
    multi = MultiDataset(members)
    sampler = MultiDatasetSampler(multi, weights="balanced", num_samples=8, seed=3)
    return list(torch.utils.data.DataLoader(multi, batch_size=4, sampler=sampler, num_workers=workers))


def test_one_training_step_over_the_union(world, registry):
    _, union = world
    batches = _batches(world, registry, workers=0)
    assert len(batches) == 2
    for batch in batches:
        assert batch["image"].shape == (4, 3, 48, 48) and batch["image"].dtype == torch.float32
        assert batch["label"].shape == (4, 48, 48) and batch["label"].dtype == torch.int64
        labels = batch["label"]
        assert bool(((labels < union.num_classes) | (labels == 255)).all())
        # every label a sample carries lies in its own dataset's label space
        valid = torch.from_numpy(union.null_mask())
        for y, d in zip(labels, batch["dataset_index"]):
            ids = y[y != 255].unique()
            assert bool(valid[int(d), ids].all()), (union.datasets[int(d)], ids.tolist())
    assert {int(d) for b in batches for d in b["dataset_index"]} == set(range(len(union.datasets)))

    torch.manual_seed(0)
    model = build_model("hrnet_tiny", num_classes=union.num_classes, head="cosine")
    valid = torch.from_numpy(union.null_mask())
    batch = batches[0]
    logits = model(batch["image"])
    assert logits.shape == (4, union.num_classes, 48, 48)
    logits.retain_grad()
    loss = NullBCELoss(valid)(logits, batch["label"], batch["dataset_index"])
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    for b, d in enumerate(batch["dataset_index"].tolist()):
        outside = ~valid[d]
        assert bool((logits.grad[b, outside] == 0).all())
        assert bool((logits.grad[b, valid[d]] != 0).any())
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_losses_agree_on_the_batch_and_workers_do_not_change_it(world, registry):
    _, union = world
    a = _batches(world, registry, workers=0)
    b = _batches(world, registry, workers=2)
    for x, y in zip(a, b):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])
        assert torch.equal(x["dataset_index"], y["dataset_index"])

    valid = torch.from_numpy(union.null_mask())
    batch = a[1]
    torch.manual_seed(1)
    logits = torch.randn(4, union.num_classes, 48, 48, dtype=torch.float64)
    null = NullBCELoss(valid)(logits, batch["label"], batch["dataset_index"])
    rel = ClassRelationalBCELoss(identity_table(valid), valid=valid)(logits, batch["label"], batch["dataset_index"])
    assert torch.allclose(null, rel, rtol=0, atol=1e-12)
    # Null BCE recomputed straight from its definition (Eq. 4) on the real batch
    y, d = batch["label"], batch["dataset_index"]
    keep = y != 255
    onehot = torch.zeros_like(logits).scatter_(1, torch.where(keep, y, 0)[:, None], 1.0)
    per = torch.nn.functional.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    per = per * valid[d][:, :, None, None] * keep[:, None]
    assert torch.allclose(null, per.sum() / keep.sum(), rtol=1e-12)
    ce = UnifiedCrossEntropy()(logits, y, d)
    ref = torch.nn.functional.cross_entropy(logits, y, ignore_index=255)
    assert torch.allclose(ce, ref)
    assert np.isfinite(ce.item())
