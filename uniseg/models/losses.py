"""The three multi-dataset segmentation losses of UniSeg (Kim et al., ECCV 2022), pure PyTorch.

Every loss is called as ``loss(logits, target, dataset_index)``:

- ``logits``: ``B x K x H x W`` over the K unified classes (float32, float16 or bfloat16);
- ``target``: ``B x H x W`` unified class indices, ``ignore_index`` (255) = no label;
- ``dataset_index``: the dataset of each sample (batches mix datasets): a ``B`` integer tensor,
  a list or numpy array of ``B`` ints, or one int for the whole batch (anything else, floats or
  another length, is a ``ValueError``);

and returns a float32 scalar (float64 for float64 logits). This file depends on torch only, so
it can be copied into any training codebase.

- :class:`UnifiedCrossEntropy` -- Eq. 1, softmax cross-entropy over all K classes (the baseline).
- :class:`NullBCELoss` -- Eq. 4, per-class BCE over the sample's own label space only; classes
  outside it get no loss and exactly zero gradient.
- :class:`ClassRelationalBCELoss` -- Eq. 8, Null BCE whose target row for ground truth g of
  dataset d is the multi-label row ``table[d, g]`` (1 = positive, 0 = negative, -1 = null).

How the BCE losses are computed, and what they cost
----------------------------------------------------
Per valid pixel p of dataset d with ground truth g, BCE-with-logits in its stable softplus form::

    loss_p = sum_{c defined} softplus(x_c) - sum_{c positive} x_c

For Null BCE the defined classes are d's label space (plus g itself, which is always a positive)
and the only positive is g, so no K-wide target is ever built: the loss is a channel-weighted sum
of ``softplus(x)`` minus the logit gathered at g. Class-relational BCE adds, per (d, g) row, the
few classes where the relation table differs from that Null-BCE row ("corrections", at most
``R`` per row, e.g. bicyclist -> rider); they are gathered by index (``R x H x W`` per sample).
A table whose rows differ in many places (``R > max(4, K // 16)``) falls back to gathering
int8 rows chunk by chunk.

Both run in a custom autograd function that saves only its inputs and works one sample at a
time: the forward sums ``softplus(x)`` in bands of rows of about ``chunk_elements`` logits (4 MiB
of float32 on CPU, 64 MiB on GPUs), the backward recomputes ``sigmoid(x)`` the same way and
writes it straight into the gradient; the per-pixel terms (the ground-truth logit, the R
corrections) are gathered by index. Memory beyond the logits and the gradient that any loss must
return is one chunk, 12 bytes per pixel of the batch (int64 ground truth, float32 pixel weights)
and about ``24 + 24 R`` bytes per pixel of one sample: 320 MiB peak in all for
``8 x 70 x 256 x 512`` float32 logits (280 MiB of it the gradient), against 840 MiB for
``F.cross_entropy`` and 1.2-1.8 GiB for the straightforward "float one-hot, ``one_hot @ table``,
masked BCE" implementation (``benchmarks/bench_losses.py``). float16/bfloat16 logits are upcast
one chunk at a time and per-class sums accumulate in float64, so any finite logits give a
finite loss and gradient.

Checks: shapes and dtypes always; target values (each in ``0..K-1`` or ``ignore_index``) and
dataset indices once per call, one pass over the targets — all three losses raise the same
``ValueError`` for a class index outside the union (``check_targets=False`` skips the pass).

Non-finite logits are not checked (that would cost a pass over the logits) and never hidden: a
NaN or +inf logit anywhere — a valid pixel, an ignored pixel, a class outside the sample's label
space — makes the loss or its gradient NaN/inf. -inf is a probability of exactly 0: the loss stays
finite unless it is the ground-truth logit (the loss is then +inf). Test
``torch.isfinite(loss)`` before stepping (AMP's ``GradScaler`` skips such steps by itself).

Reductions: ``"mean"`` (default) divides the batch sum by the number of valid pixels, as the
authors' code did; ``"sum"`` returns the batch sum; ``"class_mean"`` averages each class's terms
over the pixels where that class enters the loss, then averages over the classes that do. A batch
with no valid pixel gives a loss of 0 and a zero gradient, never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "IGNORE_INDEX",
    "REDUCTIONS",
    "ClassRelationalBCELoss",
    "NullBCELoss",
    "UnifiedCrossEntropy",
    "class_relational_bce_loss",
    "null_bce_loss",
    "unified_cross_entropy",
]

IGNORE_INDEX = 255
DatasetIndex = Union[Tensor, Sequence[int], int]  # also a numpy array of ints
REDUCTIONS = ("mean", "sum", "class_mean")
CPU_CHUNK_ELEMENTS = 1 << 20  # logits per chunk on CPU: 4 MiB of float32 temporaries, cache-friendly
GPU_CHUNK_ELEMENTS = 1 << 24  # on accelerators: fewer, larger kernels (64 MiB of temporaries)


def default_chunk_elements(device: torch.device) -> int:
    """Chunk size used when ``chunk_elements`` is None: small on CPU (cache), large elsewhere (launch overhead)."""
    return CPU_CHUNK_ELEMENTS if device.type == "cpu" else GPU_CHUNK_ELEMENTS


# --------------------------------------------------------------------------------------------
# input checks (shapes always; values once per call, a single pass over the targets)
# --------------------------------------------------------------------------------------------


def _as_dataset_index(dataset_index: object, batch: int, device: torch.device) -> Tensor:
    """``dataset_index`` as a ``B`` long tensor on ``device``: from a tensor, a list/tuple/numpy array
    of ints, or one int for every sample; anything else is a ``ValueError`` saying what was given."""
    value = dataset_index
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"dataset_index must be a tensor, a list or array of ints, or an int; got {type(dataset_index).__name__}"
            ) from None
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise ValueError(f"dataset_index must be integer, got {value.dtype}")
    if value.dim() == 0:
        value = value.expand(batch)  # one dataset for the whole batch
    if value.shape != (batch,):
        raise ValueError(f"dataset_index must have shape ({batch},) (one dataset per sample), got {tuple(value.shape)}")
    return value.to(device=device, dtype=torch.long)


def _check_inputs(logits: Tensor, target: Tensor, dataset_index: Optional[Tensor], num_datasets: Optional[int], ignore_index: int, check_values: bool) -> None:
    if logits.dim() != 4:
        raise ValueError(f"logits must be B x K x H x W, got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be floating point, got {logits.dtype}")
    b, k, h, w = logits.shape
    if target.shape != (b, h, w):
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}: expected {(b, h, w)} "
            "(upsample the logits to the label size first)"
        )
    if target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got {target.dtype}")
    if not check_values:
        return
    bad = (target != ignore_index) & ((target < 0) | (target >= k))
    if bool(bad.any()):
        value = int(target[bad][0])
        raise ValueError(f"target holds class index {value}, outside 0..{k - 1} and not ignore_index={ignore_index}")
    if dataset_index is not None and num_datasets is not None and b > 0:
        lo, hi = int(dataset_index.min()), int(dataset_index.max())
        if lo < 0 or hi >= num_datasets:
            raise ValueError(f"dataset_index holds {lo if lo < 0 else hi}, outside 0..{num_datasets - 1} (the datasets of the mask/table)")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")


# --------------------------------------------------------------------------------------------
# cross-entropy (Eq. 1)
# --------------------------------------------------------------------------------------------


def unified_cross_entropy(logits: Tensor, target: Tensor, *, ignore_index: int = IGNORE_INDEX, reduction: str = "mean",
                          check_targets: bool = True) -> Tensor:
    """Softmax cross-entropy over all K unified classes (Eq. 1); ``"mean"`` is over valid pixels.

    float16/bfloat16 logits are upcast to float32 first (as autocast does for cross-entropy),
    which keeps log-softmax finite for any finite logits. A target outside ``0..K-1`` (and not
    ``ignore_index``) is the same ``ValueError`` as in the BCE losses.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"UnifiedCrossEntropy reduction must be 'mean' or 'sum'; got {reduction!r}")
    _check_inputs(logits, target, None, None, ignore_index, check_targets)
    x = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
    total = F.cross_entropy(x, target.long(), ignore_index=ignore_index, reduction="sum")
    if reduction == "sum":
        return total
    valid = (target != ignore_index).sum()
    return total / valid.clamp(min=1).to(total.dtype)


class UnifiedCrossEntropy(nn.Module):
    """Eq. 1 baseline: softmax CE over the whole union; ``dataset_index`` is accepted and unused."""

    def __init__(self, ignore_index: int = IGNORE_INDEX, reduction: str = "mean", *, check_targets: bool = True) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"UnifiedCrossEntropy reduction must be 'mean' or 'sum'; got {reduction!r}")
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.check_targets = check_targets

    def forward(self, logits: Tensor, target: Tensor, dataset_index: Optional[DatasetIndex] = None) -> Tensor:
        if dataset_index is not None and logits.dim() == 4:
            _as_dataset_index(dataset_index, logits.shape[0], logits.device)  # validated like the BCE losses', then unused
        return unified_cross_entropy(logits, target, ignore_index=self.ignore_index, reduction=self.reduction,
                                     check_targets=self.check_targets)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"


# --------------------------------------------------------------------------------------------
# relation tables: the Null-BCE base row plus sparse corrections
# --------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What the chunked kernels read: the base space, the corrections and the defined mask."""

    valid: Tensor  # D x K bool: the Null-BCE base row (plus g itself)
    defined: Tensor  # D x K x K bool: class c enters the loss for ground truth g of dataset d
    corr_cls: Tensor  # D x K x R long: classes where row (d, g) differs from the base row
    corr_def: Tensor  # D x K x R float32: -1/0/+1 change of "defined" for those classes
    corr_pos: Tensor  # D x K x R float32: -1/0/+1 change of "positive"
    table_t: Optional[Tensor]  # D x K x K int8, transposed (d, c, g), for the dense fallback

    @property
    def num_corrections(self) -> int:
        return int(self.corr_cls.shape[-1])


def _as_valid(valid: Tensor) -> Tensor:
    valid = torch.as_tensor(valid)
    if valid.dim() != 2:
        raise ValueError(f"valid must be a D x K bool mask (datasets x unified classes), got shape {tuple(valid.shape)}")
    if valid.dtype != torch.bool:
        if valid.is_floating_point() or not bool(((valid == 0) | (valid == 1)).all()):
            raise ValueError("valid must be a D x K bool mask (True where the class is in the dataset's label space)")
        valid = valid.bool()
    return valid


def _as_table(table: Tensor) -> Tensor:
    table = torch.as_tensor(table)
    if table.dim() != 3 or table.shape[1] != table.shape[2]:
        raise ValueError(f"table must be D x K x K (dataset, ground truth, class), got shape {tuple(table.shape)}")
    if table.is_floating_point() or table.dtype == torch.bool:
        raise ValueError(f"table must be an integer tensor of 1 / 0 / -1 (null), got {table.dtype}")
    bad = (table != 1) & (table != 0) & (table != -1)
    if bool(bad.any()):
        d, g, c = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"table[{d}, {g}, {c}] = {int(table[d, g, c])}: entries must be 1 (positive), 0 (negative) or -1 (null)")
    return table.to(torch.int8)


def _build_plan(table: Tensor, valid: Tensor, dense_threshold: Optional[int]) -> _Plan:
    """Split ``table`` into the Null-BCE base (``valid``) and per-row corrections."""
    d, k, _ = table.shape
    eye = torch.eye(k, dtype=torch.bool)
    defined = table != -1
    positive = table == 1
    base_def = valid[:, None, :] | eye
    base_pos = eye.expand(d, k, k)
    ddef = defined.to(torch.int8) - base_def.to(torch.int8)
    dpos = positive.to(torch.int8) - base_pos.to(torch.int8)
    diff = (ddef != 0) | (dpos != 0)
    r = int(diff.sum(-1).max()) if diff.numel() else 0
    threshold = max(4, k // 16) if dense_threshold is None else dense_threshold
    if r > threshold:
        empty = torch.zeros(d, k, 0)
        return _Plan(valid, defined, empty.long(), empty, empty, table.transpose(1, 2).contiguous())
    order = torch.argsort(diff.to(torch.int8), dim=-1, descending=True, stable=True)[..., :r]
    return _Plan(
        valid=valid,
        defined=defined,
        corr_cls=order.long(),
        corr_def=ddef.gather(-1, order).float(),
        corr_pos=dpos.gather(-1, order).float(),
        table_t=None,
    )


def _null_plan(valid: Tensor) -> _Plan:
    d, k = valid.shape
    eye = torch.eye(k, dtype=torch.bool)
    empty = torch.zeros(d, k, 0)
    return _Plan(valid, valid[:, None, :] | eye, empty.long(), empty, empty, None)


# --------------------------------------------------------------------------------------------
# the chunked kernel
# --------------------------------------------------------------------------------------------


def _compute(x: Tensor) -> Tensor:
    """float16/bfloat16 -> float32 (chunk-sized copy); float32/float64 unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _row_chunks(logits: Tensor, chunk_elements: int):
    """Yield ``(h0, h1)``: bands of rows of one sample holding about ``chunk_elements`` logits."""
    _, k, h, w = logits.shape
    rows = max(1, min(h, chunk_elements // max(1, k * w)))
    for h0 in range(0, h, rows):
        yield h0, min(h, h0 + rows)


def _class_weights(plan: _Plan, target: Tensor, dataset_index: Tensor, ignore_index: int, reduction: str) -> Tensor:
    """Per-class factor omega_c (float64, K) so that loss = sum_c omega_c * S_c."""
    k = plan.valid.shape[1]
    mask = target != ignore_index
    if reduction == "sum":
        return torch.ones(k, dtype=torch.float64, device=target.device)
    if reduction == "mean":
        n = mask.sum().to(torch.float64).clamp(min=1)
        return torch.ones(k, dtype=torch.float64, device=target.device) / n
    # class_mean: n_c = number of pixels where class c enters the loss
    b = target.shape[0]
    g = torch.where(mask, target, 0).long().reshape(b, -1)
    hist = torch.zeros(b, k, dtype=torch.float64, device=target.device)
    hist.scatter_add_(1, g, mask.reshape(b, -1).to(torch.float64))
    n_c = torch.einsum("bg,bgc->c", hist, plan.defined[dataset_index].to(torch.float64))
    active = n_c > 0
    return torch.where(active, 1.0 / (n_c.clamp(min=1) * active.sum().clamp(min=1)), 0.0)


def _pixels(target: Tensor, ignore_index: int, cdt: torch.dtype) -> tuple[Tensor, Tensor]:
    """(valid-pixel weights as ``cdt``, ground truth with ignore pixels pointed at class 0)."""
    m = target != ignore_index
    return m.to(cdt), torch.where(m, target, 0).long()


def _corrections(plan: _Plan, d: Tensor, g: Tensor, cdt: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """For one sample of dataset ``d`` (0-dim) and ground truth ``g`` (H x W): the R classes where
    each pixel's row differs from Null BCE and the -1/0/+1 changes of "defined" and "positive"
    there, each ``R x H x W``."""
    r = plan.num_corrections
    rid = (d * plan.valid.shape[1] + g).reshape(-1)  # flat index of the pixel's (d, g) row

    def look(table: Tensor) -> Tensor:
        return table.reshape(-1, r).index_select(0, rid).t().reshape(r, *g.shape)

    return look(plan.corr_cls), look(plan.corr_def).to(cdt), look(plan.corr_pos).to(cdt)


def _forward_sums(logits: Tensor, target: Tensor, dataset_index: Tensor, plan: _Plan, ignore_index: int, chunk_elements: int) -> Tensor:
    """Per-class loss sums S_c over the batch (float64, K), one sample at a time.

    K-wide work (softplus) runs in bands of rows; the ground-truth and correction terms, which
    touch one or R logits per pixel, run once per sample by index.
    """
    k = logits.shape[1]
    cdt = torch.float64 if logits.dtype == torch.float64 else torch.float32
    mf, g = _pixels(target, ignore_index, cdt)  # B x H x W
    sums = torch.zeros(k, dtype=torch.float64, device=logits.device)
    valid_c = plan.valid.to(cdt)
    for b in range(logits.shape[0]):
        d = dataset_index[b]  # 0-dim tensor: indexing with it needs no host sync
        xb, mb, gb = logits[b], mf[b], g[b]
        if plan.table_t is not None:  # dense fallback: int8 rows of the table, chunk by chunk
            for h0, h1 in _row_chunks(logits, chunk_elements):
                x = _compute(xb[:, h0:h1])
                rows = plan.table_t[d][:, gb[h0:h1]]  # K x h x W int8
                sp = F.softplus(x).mul_(rows != -1)
                pos = torch.where(rows == 1, x, 0.0)
                sums += (sp.mul_(mb[h0:h1]).sum((1, 2)) - pos.mul_(mb[h0:h1]).sum((1, 2))).double()
            continue
        acc = torch.zeros(k, dtype=cdt, device=logits.device)
        for h0, h1 in _row_chunks(logits, chunk_elements):
            sp = F.softplus(_compute(xb[:, h0:h1]))  # K x h x W, the only K-wide temporary
            acc += sp.reshape(k, -1) @ mb[h0:h1].reshape(-1)
        sums += (valid_c[d] * acc).double()
        xg = xb.gather(0, gb[None])[0].to(cdt)  # the ground-truth logit of each pixel
        outside = ~torch.take(plan.valid[d], gb)  # a ground truth the mask omits is still a positive
        src = mb * (torch.where(outside, F.softplus(xg), 0.0) - xg)
        sums.index_add_(0, gb.flatten(), src.flatten().double())
        if plan.num_corrections:
            idx, dd, dp = _corrections(plan, d, gb, cdt)
            xc = xb.gather(0, idx).to(cdt)
            src = (dd * F.softplus(xc) - dp * xc) * mb
            sums.index_add_(0, idx.flatten(), src.flatten().double())
    return sums


def _backward_grad(logits: Tensor, target: Tensor, dataset_index: Tensor, plan: _Plan, omega: Tensor, ignore_index: int, chunk_elements: int) -> Tensor:
    """dL/dlogits = omega_c * (sigmoid(x_c) * defined - positive) on valid pixels, 0 elsewhere."""
    grad = torch.empty_like(logits)
    cdt = torch.float64 if logits.dtype == torch.float64 else torch.float32
    mf, g = _pixels(target, ignore_index, cdt)
    omega_c = omega.to(cdt)
    coef_valid = omega_c * plan.valid.to(cdt)  # D x K
    direct = logits.dtype == cdt  # write sigmoid straight into the gradient, no chunk copy
    for b in range(logits.shape[0]):
        d = dataset_index[b]
        xb, mb, gb, out = logits[b], mf[b], g[b], grad[b]
        if plan.table_t is not None:
            for h0, h1 in _row_chunks(logits, chunk_elements):
                rows = plan.table_t[d][:, gb[h0:h1]]
                s = torch.sigmoid(_compute(xb[:, h0:h1]))
                s.mul_(rows != -1).sub_((rows == 1).to(cdt)).mul_(mb[h0:h1]).mul_(omega_c[:, None, None])
                out[:, h0:h1] = s
            continue
        coef = coef_valid[d][:, None, None]
        for h0, h1 in _row_chunks(logits, chunk_elements):
            x = xb[:, h0:h1]
            s = torch.sigmoid(x, out=out[:, h0:h1]) if direct else torch.sigmoid(x.float())
            s.mul_(coef).mul_(mb[h0:h1])  # exactly 0 outside the space and at ignore pixels
            if not direct:
                out[:, h0:h1] = s
        xg = xb.gather(0, gb[None])[0].to(cdt)
        outside = ~torch.take(plan.valid[d], gb)
        src = torch.take(omega_c, gb) * mb * (torch.where(outside, torch.sigmoid(xg), 0.0) - 1.0)
        out.scatter_add_(0, gb[None], src[None].to(out.dtype))
        if plan.num_corrections:
            idx, dd, dp = _corrections(plan, d, gb, cdt)
            xc = xb.gather(0, idx).to(cdt)
            src = torch.take(omega_c, idx) * mb * (dd * torch.sigmoid(xc) - dp)
            out.scatter_add_(0, idx, src.to(out.dtype))
    return grad


class _RelationalBCE(torch.autograd.Function):
    """Chunked BCE over defined classes; saves only its inputs, recomputes sigmoid in backward."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, dataset_index: Tensor, plan: _Plan, ignore_index: int, reduction: str, chunk_elements: int) -> Tensor:  # type: ignore[override]
        with torch.autocast(device_type=logits.device.type, enabled=False):
            omega = _class_weights(plan, target, dataset_index, ignore_index, reduction)
            sums = _forward_sums(logits.detach(), target, dataset_index, plan, ignore_index, chunk_elements)
            loss = (omega * sums).sum().to(torch.float64 if logits.dtype == torch.float64 else torch.float32)
        ctx.save_for_backward(logits, target, dataset_index, omega)
        ctx.plan, ctx.ignore_index, ctx.chunk_elements = plan, ignore_index, chunk_elements
        return loss

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        logits, target, dataset_index, omega = ctx.saved_tensors
        grad = None
        if ctx.needs_input_grad[0]:
            with torch.autocast(device_type=logits.device.type, enabled=False):
                grad = _backward_grad(logits.detach(), target, dataset_index, ctx.plan, omega * grad_output.double(), ctx.ignore_index, ctx.chunk_elements)
        return grad, None, None, None, None, None, None


def _run(logits: Tensor, target: Tensor, dataset_index: DatasetIndex, plan: _Plan, ignore_index: int, reduction: str, chunk_elements: Optional[int], check_values: bool) -> Tensor:
    _check_reduction(reduction)
    if chunk_elements is None:
        chunk_elements = default_chunk_elements(logits.device)
    if logits.dim() == 4:
        dataset_index = _as_dataset_index(dataset_index, logits.shape[0], logits.device)
    _check_inputs(logits, target, dataset_index, plan.valid.shape[0], ignore_index, check_values)
    k = logits.shape[1]
    if plan.valid.shape[1] != k:
        raise ValueError(f"logits have {k} classes but the mask/table has {plan.valid.shape[1]} (build it from the same union)")
    if logits.numel() == 0:
        return logits.sum().float() * 0.0
    return _RelationalBCE.apply(logits, target, dataset_index, plan, ignore_index, reduction, chunk_elements)


def null_bce_loss(
    logits: Tensor,
    target: Tensor,
    dataset_index: DatasetIndex,
    valid: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    reduction: str = "mean",
    chunk_elements: Optional[int] = None,
) -> Tensor:
    """Null BCE (Eq. 4): BCE over the classes of each sample's dataset space only (``valid``: D x K)."""
    valid = _as_valid(valid).to(logits.device)
    return _run(logits, target, dataset_index, _null_plan(valid), ignore_index, reduction, chunk_elements, True)


def class_relational_bce_loss(
    logits: Tensor,
    target: Tensor,
    dataset_index: DatasetIndex,
    table: Tensor,
    *,
    valid: Optional[Tensor] = None,
    ignore_index: int = IGNORE_INDEX,
    reduction: str = "mean",
    chunk_elements: Optional[int] = None,
) -> Tensor:
    """Class-relational BCE (Eq. 8) with the multi-label rows of ``table`` (D x K x K of 1/0/-1)."""
    table = _as_table(table)
    valid = _infer_valid(table) if valid is None else _as_valid(valid)
    plan = _build_plan(table.cpu(), valid.cpu(), None)
    plan = _plan_to(plan, logits.device)
    return _run(logits, target, dataset_index, plan, ignore_index, reduction, chunk_elements, True)


def _infer_valid(table: Tensor) -> Tensor:
    """d's label space from its table: a class some row of d marks 0 (only in-space classes are 0 in Eq. 6)."""
    return (table == 0).any(dim=1)


def _plan_to(plan: _Plan, device: torch.device) -> _Plan:
    return _Plan(*(None if t is None else t.to(device) for t in (plan.valid, plan.defined, plan.corr_cls, plan.corr_def, plan.corr_pos, plan.table_t)))


# --------------------------------------------------------------------------------------------
# modules (the contract): masks and tables are buffers, so .to(device) moves them
# --------------------------------------------------------------------------------------------


class _BCEBase(nn.Module):
    valid: Tensor
    defined: Tensor
    corr_cls: Tensor
    corr_def: Tensor
    corr_pos: Tensor

    def __init__(self, ignore_index: int, reduction: str, chunk_elements: Optional[int], check_targets: bool) -> None:
        super().__init__()
        _check_reduction(reduction)
        if chunk_elements is not None and chunk_elements < 1:
            raise ValueError(f"chunk_elements must be positive, got {chunk_elements}")
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.chunk_elements = chunk_elements
        self.check_targets = check_targets

    def _register_plan(self, plan: _Plan) -> None:
        self.register_buffer("valid", plan.valid, persistent=False)
        self.register_buffer("defined", plan.defined, persistent=False)
        self.register_buffer("corr_cls", plan.corr_cls, persistent=False)
        self.register_buffer("corr_def", plan.corr_def, persistent=False)
        self.register_buffer("corr_pos", plan.corr_pos, persistent=False)
        self.register_buffer("table_t", plan.table_t, persistent=False)

    def _plan(self) -> _Plan:
        return _Plan(self.valid, self.defined, self.corr_cls, self.corr_def, self.corr_pos, self.table_t)

    @property
    def num_datasets(self) -> int:
        return int(self.valid.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.valid.shape[1])

    def forward(self, logits: Tensor, target: Tensor, dataset_index: DatasetIndex) -> Tensor:
        return _run(logits, target, dataset_index, self._plan(), self.ignore_index, self.reduction, self.chunk_elements, self.check_targets)

    def extra_repr(self) -> str:
        return f"datasets={self.num_datasets}, classes={self.num_classes}, ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class NullBCELoss(_BCEBase):
    """Eq. 4: per pixel, BCE-with-logits summed over the classes of that sample's dataset only.

    ``valid`` is the union's ``D x K`` bool mask (``union.null_mask()``). Classes outside a
    sample's space get no loss and exactly zero gradient; the ground-truth class is always a
    positive. See the module docstring for reductions and memory.
    """

    def __init__(
        self,
        valid: Tensor,
        ignore_index: int = IGNORE_INDEX,
        reduction: str = "mean",
        *,
        chunk_elements: Optional[int] = None,
        check_targets: bool = True,
    ) -> None:
        super().__init__(ignore_index, reduction, chunk_elements, check_targets)
        self._register_plan(_null_plan(_as_valid(valid)))


class ClassRelationalBCELoss(_BCEBase):
    """Eq. 8: Null BCE whose target row for ground truth g of dataset d is ``table[d, g]``.

    ``table`` is ``D x K x K`` integer: 1 positive, 0 negative, -1 null (no loss). A class
    outside d's space that the table switches on joins the loss as a positive. With
    :func:`uniseg.relations.eq6.identity_table` it is Null BCE exactly. ``valid`` (D x K) names the base
    label spaces; by default it is read off the table (classes some row of d marks 0).
    """

    table: Tensor

    def __init__(
        self,
        table: Tensor,
        ignore_index: int = IGNORE_INDEX,
        reduction: str = "mean",
        *,
        valid: Optional[Tensor] = None,
        chunk_elements: Optional[int] = None,
        check_targets: bool = True,
        dense_threshold: Optional[int] = None,
    ) -> None:
        super().__init__(ignore_index, reduction, chunk_elements, check_targets)
        table = _as_table(table)
        valid = _infer_valid(table) if valid is None else _as_valid(valid)
        if valid.shape != table.shape[:2]:
            raise ValueError(f"valid has shape {tuple(valid.shape)} but the table is {tuple(table.shape)}: expected {tuple(table.shape[:2])}")
        self.register_buffer("table", table)
        self._register_plan(_build_plan(table, valid, dense_threshold))

    @property
    def num_corrections(self) -> int:
        """Largest number of classes in which a row of the table differs from its Null-BCE row."""
        return int(self.corr_cls.shape[-1])

    @property
    def strategy(self) -> str:
        """``"sparse"`` (index-gathered corrections) or ``"dense"`` (int8 rows per chunk)."""
        return "dense" if self.table_t is not None else "sparse"
