"""The three losses against the paper: closed-form gradients (Appendix F), the gradient conflict
of Eq. 2-3, relation rows (Eq. 6/8), reductions, ignore pixels, half precision, memory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from uniseg.models.losses import (
    ClassRelationalBCELoss,
    NullBCELoss,
    UnifiedCrossEntropy,
    class_relational_bce_loss,
    null_bce_loss,
    unified_cross_entropy,
)

IGN = 255


def identity(valid: torch.Tensor) -> torch.Tensor:
    """The Null-BCE table of Eq. 6 (``uniseg.relations.eq6.identity_table``) as a tensor."""
    from uniseg.relations.eq6 import identity_table

    return torch.from_numpy(identity_table(valid.numpy()))


def _batch(seed: int, b: int = 3, k: int = 6, h: int = 5, w: int = 7, d: int = 3, ignore_frac: float = 0.2, dtype=torch.float64):
    """Random logits, a D x K mask (every dataset owns classes 0 and 1), in-space targets with some ignore pixels."""
    g = torch.Generator().manual_seed(seed)
    valid = torch.rand(d, k, generator=g) < 0.5
    valid[:, :2] = True
    ds = torch.randint(0, d, (b,), generator=g)
    target = torch.empty(b, h, w, dtype=torch.long)
    for i in range(b):
        own = valid[ds[i]].nonzero().flatten()
        target[i] = own[torch.randint(0, len(own), (h, w), generator=g)]
    target[torch.rand(b, h, w, generator=g) < ignore_frac] = IGN
    logits = (torch.randn(b, k, h, w, generator=g) * 3).to(dtype).requires_grad_()
    return logits, target, ds, valid


def _reference_bce(logits, target, ds, table, reduction="mean"):
    """The straightforward implementation: K-wide rows from the table, masked BCE-with-logits."""
    m = target != IGN
    g = torch.where(m, target, 0)
    rows = table[ds[:, None, None], g].permute(0, 3, 1, 2)  # B x K x H x W
    defined = (rows != -1) & m[:, None]
    positive = (rows == 1).to(logits.dtype)
    terms = F.binary_cross_entropy_with_logits(logits, positive, reduction="none") * defined
    if reduction == "sum":
        return terms.sum()
    if reduction == "mean":
        return terms.sum() / m.sum().clamp(min=1)
    per_class = terms.sum((0, 2, 3))
    count = defined.sum((0, 2, 3))
    active = count > 0
    return (per_class[active] / count[active]).mean() if active.any() else terms.sum() * 0


def _reference_ce(logits, target):
    """Softmax cross-entropy written out, -log softmax(x)_y = (top - x_y) + log sum exp(x - top) with top the
    pixel's largest logit (exact for logits of any size), averaged over valid pixels."""
    m = target != IGN
    own = logits.gather(1, torch.where(m, target, 0)[:, None])[:, 0]
    top = logits.detach().amax(dim=1, keepdim=True)
    per_pixel = (top[:, 0] - own) + torch.log(torch.exp(logits - top).sum(dim=1))
    return (per_pixel * m).sum() / m.sum().clamp(min=1)


def _grad(loss_value, x):
    (g,) = torch.autograd.grad(loss_value, x)
    return g


# ---------------------------------------------------------------------------------------------
# Appendix F: closed-form gradients
# ---------------------------------------------------------------------------------------------


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_valid_pixels():
    x, t, ds, _ = _batch(0)
    loss = UnifiedCrossEntropy()(x, t, ds)
    grad = _grad(loss, x)
    m = t != IGN
    n = m.sum()
    p = torch.exp(x.detach() - torch.logsumexp(x.detach(), dim=1, keepdim=True))  # softmax, written out
    y = torch.zeros_like(p)
    y.scatter_(1, torch.where(m, t, 0)[:, None], 1.0)
    expected = (p - y) * m[:, None] / n
    assert torch.allclose(grad, expected, atol=1e-12, rtol=1e-9)
    assert torch.equal(grad * (~m[:, None]), torch.zeros_like(grad))
    # and the value is -log P(y) averaged over valid pixels (Eq. a-10)
    assert torch.isclose(loss, -(torch.log(p) * y * m[:, None]).sum() / n)


def test_null_bce_gradient_is_sigmoid_minus_y_in_space_and_exactly_zero_on_null_classes():
    x, t, ds, valid = _batch(1)
    loss = NullBCELoss(valid)(x, t, ds)
    grad = _grad(loss, x)
    m = t != IGN
    n = m.sum()
    q = 1.0 / (1.0 + torch.exp(-x.detach()))
    y = torch.zeros_like(q)
    y.scatter_(1, torch.where(m, t, 0)[:, None], 1.0)
    in_space = valid[ds][:, :, None, None]
    expected = (q - y) * in_space * m[:, None] / n
    assert torch.allclose(grad, expected, atol=1e-12, rtol=1e-9)
    null = (~in_space).expand_as(grad)
    assert null.any()
    assert torch.equal(grad[null], torch.zeros_like(grad[null]))  # exactly zero, not just small
    # value: Eq. 4 summed over the dataset's own classes
    bce = -(y * torch.log(q) + (1 - y) * torch.log(1 - q)) * in_space * m[:, None]
    assert torch.isclose(loss, bce.sum() / n)


def test_gradient_conflict_example_of_eq_2_3():
    """The same pixel twice: dataset 0 calls it k ("rider"), dataset 1 lacks k and calls it j."""
    k, j = 0, 1
    valid = torch.tensor([[True, False, True], [False, True, True]])  # d0: rider, road; d1: motorcyclist, road
    logits = torch.tensor([2.0, 1.0, -1.0], dtype=torch.float64).view(1, 3, 1, 1).repeat(2, 1, 1, 1).requires_grad_()
    target = torch.tensor([k, j]).view(2, 1, 1)
    ds = torch.tensor([0, 1])

    g_ce = _grad(UnifiedCrossEntropy(reduction="sum")(logits, target, ds), logits)[:, :, 0, 0]
    p = torch.softmax(logits.detach()[0, :, 0, 0], 0)
    assert g_ce[0, k] < 0 < g_ce[1, k]  # opposite signs on the conflicting class (Eq. 3)
    assert torch.allclose(g_ce[:, k], torch.stack([p[k] - 1, p[k]]))

    g_bce = _grad(NullBCELoss(valid, reduction="sum")(logits, target, ds), logits)[:, :, 0, 0]
    q = torch.sigmoid(logits.detach()[0, :, 0, 0])
    assert g_bce[1, k] == 0.0 and g_bce[0, j] == 0.0  # no loss on the other dataset's class
    assert torch.isclose(g_bce[:, k].sum(), q[k] - 1)  # a single term remains (Eq. 5)
    assert torch.isclose(g_bce[1, j], q[j] - 1)


# ---------------------------------------------------------------------------------------------
# ignore pixels, mixed batches, reductions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ["ce", "null", "cr"])
def test_ignore_pixels_contribute_nothing(make):
    x, t, ds, valid = _batch(2, ignore_frac=0.3)
    loss_fn = {"ce": UnifiedCrossEntropy(), "null": NullBCELoss(valid), "cr": ClassRelationalBCELoss(identity(valid))}[make]
    ignored = (t == IGN)[:, None].expand_as(x)
    base = loss_fn(x, t, ds)
    x2 = x.detach().clone()
    x2[ignored] = 1e4 * torch.randn(int(ignored.sum()), dtype=x2.dtype)  # anything at ignored pixels
    x2.requires_grad_()
    other = loss_fn(x2, t, ds)
    assert torch.equal(base, other)
    g = _grad(other, x2)
    assert torch.equal(g[ignored], torch.zeros_like(g[ignored]))


@pytest.mark.parametrize("make", ["ce", "null", "cr"])
def test_all_ignore_batch_gives_zero_loss_and_zero_gradient(make):
    x, t, ds, valid = _batch(3, dtype=torch.float32)
    t = torch.full_like(t, IGN)
    loss_fn = {"ce": UnifiedCrossEntropy(), "null": NullBCELoss(valid, reduction="class_mean"), "cr": ClassRelationalBCELoss(identity(valid))}[make]
    loss = loss_fn(x, t, ds)
    assert loss.item() == 0.0 and not torch.isnan(loss)
    loss.backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros_like(x.grad))


def test_mixed_dataset_batch_equals_pixel_weighted_per_sample_losses():
    x, t, ds, valid = _batch(4, b=4, d=3)
    ds = torch.tensor([0, 2, 1, 2])
    for i in range(4):  # re-draw targets inside each sample's own space
        own = valid[ds[i]].nonzero().flatten()
        t[i] = torch.where(t[i] == IGN, IGN, own[t[i] % len(own)])
    loss = NullBCELoss(valid)
    total = loss(x, t, ds)
    per = [null_bce_loss(x[i : i + 1], t[i : i + 1], ds[i : i + 1], valid, reduction="sum") for i in range(4)]
    n = (t != IGN).sum()
    assert torch.allclose(total, sum(per) / n, rtol=1e-12)
    # the dataset index matters: the same pixels read as another dataset give another loss
    assert not torch.allclose(total, loss(x, t, torch.tensor([0, 0, 0, 0])))


def test_class_mean_reduction_by_hand():
    """K=3, one dataset owning classes 0 and 1: class c's terms averaged over its pixels, then over classes."""
    valid = torch.tensor([[True, True, False]])
    x = torch.tensor([[0.5, -1.0], [2.0, 0.0], [3.0, 3.0]], dtype=torch.float64).T.reshape(1, 2, 3).permute(0, 2, 1)[..., None]
    # pixels: p0 logits (0.5, 2.0, 3.0) gt 0; p1 logits (-1.0, 0.0, 3.0) gt 1
    x = x.contiguous().requires_grad_()
    t = torch.tensor([[[0], [1]]])
    sp = lambda v: torch.log1p(torch.exp(torch.tensor(v, dtype=torch.float64)))  # noqa: E731
    class0 = (sp(-0.5) + sp(-1.0)) / 2  # positive at p0, negative at p1
    class1 = (sp(2.0) + sp(-0.0)) / 2  # negative at p0, positive at p1
    expected = (class0 + class1) / 2  # class 2 is null for this dataset: not averaged in
    got = NullBCELoss(valid, reduction="class_mean")(x, t, torch.tensor([0]))
    assert torch.isclose(got, expected)


# ---------------------------------------------------------------------------------------------
# class-relational BCE (Eq. 6 / 8)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "class_mean"])
def test_identity_table_gives_exactly_null_bce(reduction):
    x, t, ds, valid = _batch(5, dtype=torch.float32)
    a = NullBCELoss(valid, reduction=reduction)(x, t, ds)
    ga = _grad(a, x)
    cr = ClassRelationalBCELoss(identity(valid), reduction=reduction)
    assert cr.num_corrections == 0 and torch.equal(cr.valid, valid)  # the space is read off the table
    b = cr(x, t, ds)
    gb = _grad(b, x)
    assert torch.equal(a, b) and torch.equal(ga, gb)


def test_on_relation_outside_the_space_joins_as_a_positive():
    """Mapillary-like dataset 1 lacks "rider" (0); its "motorcyclist" (1) rows switch rider on."""
    valid = torch.tensor([[True, False, True], [False, True, True]])
    table = identity(valid)
    table[1, 1, 0] = 1  # (d=1, g=motorcyclist) -> rider = 1
    x = torch.tensor([0.3, 1.2, -0.7], dtype=torch.float64).view(1, 3, 1, 1).requires_grad_()
    t = torch.tensor([[[1]]])
    ds = torch.tensor([1])
    loss = ClassRelationalBCELoss(table, valid=valid)(x, t, ds)
    q = torch.sigmoid(x.detach()).flatten()
    expected = -torch.log(q[0]) - torch.log(q[1]) - torch.log(1 - q[2])
    assert torch.isclose(loss, expected)
    g = _grad(loss, x).flatten()
    assert torch.allclose(g, torch.stack([q[0] - 1, q[1] - 1, q[2]]))
    g_null = _grad(NullBCELoss(valid)(x, t, ds), x).flatten()
    assert g_null[0] == 0.0  # Null BCE leaves rider alone


@pytest.mark.parametrize("strategy", ["sparse", "dense"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "class_mean"])
def test_relational_bce_matches_the_straightforward_implementation(strategy, reduction):
    x, t, ds, valid = _batch(6, k=7)
    g = torch.Generator().manual_seed(7)
    table = identity(valid)
    flips = torch.rand(table.shape, generator=g) < 0.15
    table[flips] = torch.randint(-1, 2, (int(flips.sum()),), generator=g, dtype=torch.int8)
    cr = ClassRelationalBCELoss(table, reduction=reduction, valid=valid, dense_threshold=0 if strategy == "dense" else 100, chunk_elements=40)
    assert cr.strategy == strategy
    got = cr(x, t, ds)
    want = _reference_bce(x, t, ds, table.long(), reduction)
    assert torch.allclose(got, want, rtol=1e-10)
    assert torch.allclose(_grad(got, x), _grad(want, x), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    b=st.integers(1, 3),
    k=st.integers(2, 9),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    chunk=st.sampled_from([1, 5, 64, 1 << 20]),
    reduction=st.sampled_from(["mean", "sum", "class_mean"]),
)
def test_property_any_table_any_shape_matches_reference(seed, b, k, h, w, chunk, reduction):
    x, t, ds, _ = _batch(seed, b=b, k=k, h=h, w=w, d=2)
    g = torch.Generator().manual_seed(seed + 1)
    table = torch.randint(-1, 2, (2, k, k), generator=g)  # arbitrary rows, even null ground truths
    t = torch.where(t == IGN, IGN, t % k)
    got = class_relational_bce_loss(x, t, ds, table, reduction=reduction, chunk_elements=chunk)
    want = _reference_bce(x, t, ds, table, reduction)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)
    assert torch.allclose(_grad(got, x), _grad(want, x), atol=1e-12)


def test_ground_truth_outside_the_mask_is_still_a_positive():
    valid = torch.tensor([[True, True, False]])
    x = torch.tensor([0.2, -0.4, 1.5], dtype=torch.float64).view(1, 3, 1, 1).requires_grad_()
    t = torch.tensor([[[2]]])
    loss = NullBCELoss(valid)(x, t, torch.tensor([0]))
    q = torch.sigmoid(x.detach()).flatten()
    assert torch.isclose(loss, -torch.log(1 - q[0]) - torch.log(1 - q[1]) - torch.log(q[2]))


# ---------------------------------------------------------------------------------------------
# precision, devices, inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,magnitude", [(torch.float16, 6.0e4), (torch.bfloat16, 1.0e30)])
@pytest.mark.parametrize("make", ["ce", "null", "cr"])
def test_half_precision_logits_of_huge_magnitude_stay_finite(dtype, magnitude, make):
    x, t, ds, valid = _batch(8, dtype=torch.float32)
    xh = (torch.sign(x.detach()) * magnitude).to(dtype).requires_grad_()
    loss_fn = {"ce": UnifiedCrossEntropy(), "null": NullBCELoss(valid), "cr": ClassRelationalBCELoss(identity(valid))}[make]
    loss = loss_fn(xh, t, ds)
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and loss > 0
    (g,) = torch.autograd.grad(loss, xh)
    assert g.dtype == dtype and torch.isfinite(g).all()
    # against the written-out loss in float64 on the very same (rounded) logits, and its autograd gradient
    x64 = xh.detach().double().requires_grad_()
    ref = _reference_ce(x64, t) if make == "ce" else _reference_bce(x64, t, ds, identity(valid))
    (g64,) = torch.autograd.grad(ref, x64)
    assert torch.allclose(loss.double(), ref, rtol=1e-5, atol=0)
    step = 2.0 ** -(10 if dtype == torch.float16 else 7)  # the dtype's relative rounding (eps)
    assert torch.allclose(g.double(), g64, rtol=step, atol=step * g64.abs().max().item())


def test_channels_last_logits_give_the_same_loss_and_gradient():
    x, t, ds, valid = _batch(14, b=2, k=6, h=8, w=9, dtype=torch.float32)
    table = identity(valid)
    table[1, 1, 4] = 1
    for loss_fn in (NullBCELoss(valid, chunk_elements=50), ClassRelationalBCELoss(table, chunk_elements=50)):
        xc = x.detach().to(memory_format=torch.channels_last).requires_grad_()
        a, b = loss_fn(x, t, ds), loss_fn(xc, t, ds)
        ga, gb = _grad(a, x), _grad(b, xc)
        assert torch.allclose(a, b, rtol=1e-6) and torch.allclose(ga, gb, atol=1e-7)


def test_half_precision_matches_a_float64_reference_on_ordinary_logits():
    x, t, ds, valid = _batch(9, dtype=torch.float32)
    for dtype in (torch.bfloat16, torch.float16):
        xh = x.detach().to(dtype)
        a = NullBCELoss(valid)(xh, t, ds)
        ref = _reference_bce(xh.double(), t, ds, identity(valid))  # written out, float64, on the same rounded logits
        assert a.dtype == torch.float32 and torch.allclose(a.double(), ref, rtol=1e-6, atol=0), dtype


def test_autocast_does_not_lower_the_loss_precision():
    """Under CPU autocast (bfloat16) the loss still computes and accumulates in float32."""
    x, t, ds, valid = _batch(13, b=2, k=8, h=16, w=16, dtype=torch.float32)
    table = identity(valid)
    table[0, 0, 3] = 1
    for loss_fn in (NullBCELoss(valid), ClassRelationalBCELoss(table)):
        plain = loss_fn(x, t, ds)
        (g_plain,) = torch.autograd.grad(plain, x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = loss_fn(x, t, ds)
        (g_auto,) = torch.autograd.grad(auto, x)
        assert auto.dtype == torch.float32 and torch.equal(auto, plain) and torch.equal(g_auto, g_plain)


def test_forward_never_allocates_a_tensor_as_large_as_the_logits():
    """No float one-hot / K-wide target: forward temporaries are chunk-sized; backward only makes the gradient."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.sizes = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            flat = list(args) + list((kwargs or {}).values())
            seen = {a.untyped_storage().data_ptr() for a in flat if isinstance(a, torch.Tensor)}
            for o in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(o, torch.Tensor) and o.untyped_storage().data_ptr() not in seen:  # new memory, not a view
                    self.sizes.append(o.numel())
            return out

    x, t, ds, valid = _batch(10, b=4, k=12, h=16, w=16, dtype=torch.float32)
    table = identity(valid)
    table[0, 0, 2] = 1
    for loss_fn in (NullBCELoss(valid, chunk_elements=12 * 16 * 4), ClassRelationalBCELoss(table, chunk_elements=12 * 16 * 4)):
        x.grad = None
        with Largest() as fwd:
            loss = loss_fn(x, t, ds)
        with Largest() as bwd:
            loss.backward()
        assert max(fwd.sizes) <= max(t.numel(), 12 * 16 * 4)  # target-sized masks or one chunk; nothing K-wide
        assert sum(s >= x.numel() for s in bwd.sizes) == 1  # the gradient itself


def test_masks_and_tables_are_buffers_that_follow_to():
    valid = torch.tensor([[True, False], [True, True]])
    nb = NullBCELoss(valid)
    assert {n for n, _ in nb.named_buffers()} >= {"valid"}
    cr = ClassRelationalBCELoss(identity(valid))
    assert "table" in cr.state_dict()
    assert cr.to("meta").table.device.type == "meta"


def test_numpy_mask_from_the_union_is_accepted():
    import numpy as np

    x, t, ds, valid = _batch(11)
    a = NullBCELoss(valid.numpy().astype(np.bool_))(x, t, ds)
    assert torch.equal(a, NullBCELoss(valid)(x, t, ds))


@pytest.mark.parametrize(
    "case,match",
    [
        ("target_shape", "does not match logits"),
        ("target_range", "class index 9"),
        ("dataset_range", "dataset_index holds 5"),
        ("classes", "mask/table has"),
        ("reduction", "reduction must be one of"),
    ],
)
def test_bad_inputs_raise_clear_errors(case, match):
    x, t, ds, valid = _batch(12)
    kwargs = {}
    if case == "target_shape":
        t = t[:, :-1]
    elif case == "target_range":
        t[0, 0, 0] = 9
    elif case == "dataset_range":
        ds = ds.clone()
        ds[0] = 5
    elif case == "classes":
        valid = valid[:, :-1]
    elif case == "reduction":
        kwargs["reduction"] = "avg"
    with pytest.raises(ValueError, match=match):
        NullBCELoss(valid, **kwargs)(x, t, ds)


@pytest.mark.parametrize(
    "table,match",
    [
        (torch.zeros(2, 3, 4, dtype=torch.int8), "D x K x K"),
        (torch.full((1, 3, 3), 2), "entries must be 1"),
        (torch.zeros(1, 3, 3), "integer tensor"),
    ],
)
def test_bad_tables_raise(table, match):
    with pytest.raises(ValueError, match=match):
        ClassRelationalBCELoss(table)


# -- Python API inputs (issue 9, item 8) ---------------------------------------------------------


def _three(valid):
    return {
        "ce": UnifiedCrossEntropy(),
        "null": NullBCELoss(valid),
        "relational": ClassRelationalBCELoss(identity(valid)),
    }


@pytest.mark.parametrize("bad", [6, 254, -1])
def test_out_of_range_targets_are_the_same_value_error_in_all_three(bad):
    x, t, ds, valid = _batch(21)
    t[1, 2, 3] = bad
    for name, loss in _three(valid).items():
        with pytest.raises(ValueError, match=rf"target holds class index {bad}, outside 0\.\.5 and not ignore_index=255"):
            loss(x, t, ds)
    with pytest.raises(ValueError, match="outside 0..5"):
        unified_cross_entropy(x, t)


@pytest.mark.parametrize("make", [list, tuple, lambda ds: ds.numpy(), lambda ds: ds.numpy().astype("int32")])
def test_dataset_index_as_list_or_numpy_array_gives_the_same_loss(make):
    x, t, ds, valid = _batch(22)
    for name, loss in _three(valid).items():
        want = loss(x, t, ds)
        got = loss(x, t, make(ds.tolist()) if make in (list, tuple) else make(ds))
        assert torch.equal(got, want), name


def test_dataset_index_as_one_int_means_every_sample():
    x, t, ds, valid = _batch(23)
    t[:] = 0  # class 0 is in every dataset's space
    for name, loss in _three(valid).items():
        assert torch.equal(loss(x, t, 1), loss(x, t, torch.ones(3, dtype=torch.long))), name


@pytest.mark.parametrize("value,match", [
    ([0.0, 1.0, 2.0], "must be integer, got torch.float"),
    ([True, False, True], "must be integer, got torch.bool"),
    ([0, 1], r"must have shape \(3,\)"),
    ("cityscapes", "must be a tensor, a list or array of ints, or an int; got str"),
    ([0, 1, 7], "dataset_index holds 7"),
])
def test_bad_dataset_index_fails_clearly(value, match):
    x, t, ds, valid = _batch(24)
    for name, loss in _three(valid).items():
        if name == "ce" and "holds 7" in match:
            continue  # the baseline has no per-dataset table to index
        with pytest.raises(ValueError, match=match):
            loss(x, t, value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["ground truth", "other class", "class outside the space", "ignored pixel"])
def test_nan_and_inf_logits_are_never_hidden(value, where):
    valid = torch.tensor([[True, True, True, False]])
    t = torch.tensor([[[0, 1], [2, IGN]]])
    c, i, j = {"ground truth": (0, 0, 0), "other class": (1, 0, 0), "class outside the space": (3, 0, 0),
               "ignored pixel": (1, 1, 1)}[where]
    for name, loss in _three(valid).items():
        x = torch.zeros(1, 4, 2, 2)
        x[0, c, i, j] = value
        x.requires_grad_()
        out = loss(x, t, [0])
        out.backward()
        assert not (torch.isfinite(out) and torch.isfinite(x.grad).all()), (name, where)


def test_minus_inf_logits_are_probability_zero():
    valid = torch.tensor([[True, True, True, False]])
    t = torch.tensor([[[0, 1], [2, IGN]]])
    for name, loss in _three(valid).items():
        x = torch.zeros(1, 4, 2, 2)
        x[0, 1, 0, 0] = float("-inf")  # not the ground truth there: finite
        x.requires_grad_()
        out = loss(x, t, [0])
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(x.grad).all(), name
        x = torch.zeros(1, 4, 2, 2)
        x[0, 0, 0, 0] = float("-inf")  # the ground truth's logit: the loss is +inf
        assert loss(x, t, [0]).item() == float("inf"), name
