"""Relation mining (the paper's Eq. 7): how strongly each unified class fires on each dataset's classes.

One pass over the training datasets in eval mode, without augmentation, with a cosine-classifier
model. For every dataset d and ground-truth class c of d, over all pixels labelled c:

    score[d, c, c']  = mean of sigmoid(t * cos(feature, w_c'))   (the paper's s_{d,c}(c'), in [0, 1])
    cosine[d, c, c'] = mean of cos(feature, w_c')                 (what the authors' code stored)
    pixels[d, c]     = number of those pixels

With ``interior`` = r > 0 the sums run over *interior* pixels only: those whose (2r+1) x (2r+1)
neighbourhood holds one label value (each class mask eroded by r; the image border does not
erode). The network predicts at output stride 4 and upsamples, so near a class border its logits
carry the neighbour's features: a thin class (a pole, a lane marking, a rider) then takes its
Eq. 7 row from its surroundings (pole -> building) rather than from itself. ``pixels`` then counts
interior pixels and ``all_pixels`` every pixel; a class with too few interior pixels has not enough
support for Eq. 6 (``uniseg.relations.artifact``). ``interior=0`` is the paper's plain mean.

Images go in at ``short_side`` and labels are NEAREST-resized to the same size, so the model's
logits (t x cosine, bilinearly upsampled from 1/4 by the network itself) already sit on the label
grid: no second resize. Per image, a scatter-add over pixels per statistic (never a loop over
classes), float32 over blocks of pixels, float64 beyond. Under torchrun each process takes every
world_size-th image and the totals are all-reduced; rank 0 writes; the processes vote once per
image, so a bad file or a stop request met by one stops all together (:func:`in_step`). Long
passes resume: partial sums go to ``state_dir`` every ``save_every`` images and on Ctrl-C, and a
rerun with the same inputs goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from uniseg.engine.checkpoint import TrainedModel
from uniseg.errors import Interrupted, UnisegError
from uniseg.io import atomic_open
from uniseg.labelspaces.registry import Registry
from uniseg.labelspaces.schema import IGNORE
from uniseg.names import require_unique
from uniseg.relations.stats import own_scores
from uniseg.unify.union import UnionSpace

STATE = ".mining-state{}.pt"
STATE_FORMAT = "uniseg.mining-state/v1"
CHUNK = 1 << 14  # pixels per scatter-add; its float32 partial sums are added in float64
LANES = 4  # interleaved accumulators per bin in the scatter: each float32 sum covers CHUNK / LANES pixels
GEMM_BLOCK = CHUNK // LANES  # pixels per float32 sum of the GEMM path, the same 4096
GEMM_GROUP = 128  # blocks per batched GEMM (one-hot of 128 x 4096 pixels x 71 bins: 149 MB of float32)


def class_sums(values: torch.Tensor, index: torch.Tensor, bins: int, method: Optional[str] = None) -> torch.Tensor:
    """``K x bins`` float64: column b sums the columns of ``values`` (``K x N`` float32) whose ``index`` is b.

    Each float32 running sum covers at most 4096 pixels and those sums are added in float64 (one
    float32 sum over a 2-megapixel image drifts by 1%, blocks by < 1e-4; tests/test_mining.py).
    ``index`` (CPU default): ``index_add_``, deterministic on CPU, into :data:`LANES` interleaved
    copies of the bins: neighbouring pixels mostly share a class, and adds to one address would
    wait on each other (2x faster on real label maps, measured). ``gemm`` (CUDA default):
    ``values @ one_hot(index)`` batched over blocks, deterministic where CUDA's atomic
    ``index_add_`` is not.
    """
    return class_sums_many([values], index, bins, method)[0]


def class_sums_many(values: Sequence[torch.Tensor], index: torch.Tensor, bins: int, method: Optional[str] = None) -> list[torch.Tensor]:
    """:func:`class_sums` of several ``K x N`` tensors over one ``index``: the lane offsets (index)
    or the one-hot blocks (gemm) are built once and serve them all."""
    first = values[0]
    method = method or ("gemm" if first.is_cuda else "index")
    if method not in ("index", "gemm"):
        raise ValueError(f"method must be 'index' or 'gemm', got {method!r}")
    k, n = first.shape
    totals = [torch.zeros(v.shape[0], bins, dtype=torch.float64, device=first.device) for v in values]
    if method == "index":
        lanes = (torch.arange(min(n, CHUNK), device=first.device) % LANES) * bins
        for start in range(0, n, CHUNK):
            ix = index[start : start + CHUNK]
            ix = ix + lanes[: ix.numel()]
            for v, total in zip(values, totals):
                part = torch.zeros(v.shape[0], LANES * bins, dtype=v.dtype, device=v.device)
                part.index_add_(1, ix, v[:, start : start + CHUNK])
                total += part.view(v.shape[0], LANES, bins).sum(1)
        return totals
    full = n // GEMM_BLOCK
    for g0 in range(0, full, GEMM_GROUP):  # (G, K, block) @ (G, block, bins): one launch per group and tensor
        g1 = min(full, g0 + GEMM_GROUP)
        hot = _one_hot(index[g0 * GEMM_BLOCK : g1 * GEMM_BLOCK].view(g1 - g0, GEMM_BLOCK), bins, first.dtype)
        for v, total in zip(values, totals):
            blocks = v[:, g0 * GEMM_BLOCK : g1 * GEMM_BLOCK].reshape(v.shape[0], g1 - g0, GEMM_BLOCK).transpose(0, 1)
            total += torch.bmm(blocks, hot).sum(0, dtype=torch.float64)
    if full * GEMM_BLOCK < n:
        hot = _one_hot(index[full * GEMM_BLOCK :], bins, first.dtype)
        for v, total in zip(values, totals):
            total += v[:, full * GEMM_BLOCK :] @ hot
    return totals


def _one_hot(index: torch.Tensor, bins: int, dtype: torch.dtype) -> torch.Tensor:
    """``index.shape + (bins,)`` of 0/1 in ``dtype``, written straight in it (``F.one_hot`` builds int64 first)."""
    hot = torch.zeros(*index.shape, bins, dtype=dtype, device=index.device)
    return hot.scatter_(-1, index.unsqueeze(-1), 1)


def interior_mask(target: torch.Tensor, radius: int) -> torch.Tensor:
    """``H x W`` bool: pixels whose (2 radius + 1)-square neighbourhood (clipped at the image
    border) holds one label value only: every class mask eroded by ``radius`` at once, by a
    separable max and min filter over the label map (no loop over classes)."""
    if radius <= 0:
        return torch.ones(target.shape[-2:], dtype=torch.bool, device=target.device)
    lab = target.reshape(1, 1, *target.shape[-2:]).float()  # label values are small integers: exact
    k = 2 * int(radius) + 1

    def pooled(x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(x, (1, k), stride=1, padding=(0, radius))
        return F.max_pool2d(x, (k, 1), stride=1, padding=(radius, 0))

    return (pooled(lab) == -pooled(-lab))[0, 0]


def interior_radius(model, interior: str | int) -> int:
    """The erosion radius for ``--interior``: ``off`` 0, a number of pixels, or ``auto``: a quarter
    of the model's output stride, at least 1 (HRNet, stride 4: 1 pixel, the border pixels whose
    upsampled logits blend the neighbouring class). Measured on the demo (3 seeds, docs/demo.md),
    radius 1 raised precision the most; 2 and 4 (the full stride) left the thin classes without
    interior pixels and lost more true relations than false ones."""
    if isinstance(interior, int) and not isinstance(interior, bool):
        value = interior
    else:
        text = str(interior).strip().lower()
        if text == "off":
            return 0
        if text == "auto":
            return max(1, int(getattr(model, "output_stride", 4)) // 4)
        try:
            value = int(text)
        except ValueError:
            raise UnisegError(f"--interior {interior!r}: give auto, off or a number of pixels (e.g. --interior 2)") from None
    if not 0 <= value <= 64:
        raise UnisegError(f"--interior {interior}: a number of pixels in 0..64 (0 = off), or auto")
    return value


@dataclass
class MiningSums:
    """Running sums of one pass: ``D x K x K`` sigmoid and cosine sums, ``D x K`` pixel counts
    (the pixels summed over, and every labelled pixel: they differ with ``interior``)."""

    sig: torch.Tensor
    cos: torch.Tensor
    pixels: torch.Tensor
    all_pixels: torch.Tensor
    interior: int = 0  # erosion radius (0: every pixel, the paper's plain mean)
    _scratch: Optional[torch.Tensor] = field(default=None, repr=False, compare=False)  # sigmoid buffer, reused

    def _buffer(self, like: torch.Tensor) -> torch.Tensor:
        """A ``like``-shaped float32 buffer kept between images: a fresh K x H x W allocation per
        image costs page faults (on CPU, more than the sigmoid itself)."""
        n = like.numel()
        if self._scratch is None or self._scratch.numel() < n or self._scratch.device != like.device:
            self._scratch = torch.empty(n, dtype=torch.float32, device=like.device)
        return self._scratch[:n].view(like.shape)

    @classmethod
    def zeros(cls, d: int, k: int, device: torch.device, interior: int = 0) -> "MiningSums":
        return cls(torch.zeros(d, k, k, dtype=torch.float64, device=device), torch.zeros(d, k, k, dtype=torch.float64, device=device),
                   torch.zeros(d, k, dtype=torch.int64, device=device), torch.zeros(d, k, dtype=torch.int64, device=device), int(interior))

    def add(self, d: int, logits: torch.Tensor, target: torch.Tensor, scale: float, method: Optional[str] = None) -> None:
        """Accumulate one image of dataset row ``d``: ``logits`` (K x H x W, t x cosine at the label
        size) against ``target`` (H x W unified ids, 255 = ignore).

        Ignored pixels go to a spare bin K that is dropped. The logit sums divided by t are the
        cosine sums (the upsampling is linear), so no cosine map is resampled or stored; the
        sigmoid goes into a buffer kept between images.
        """
        k = logits.shape[0]
        flat = target.reshape(-1)
        spare = torch.full_like(flat, k)
        idx = torch.where(flat == IGNORE, spare, flat)
        if self.interior:
            self.all_pixels[d] += torch.bincount(idx, minlength=k + 1)[:k]
            idx = torch.where(interior_mask(target, self.interior).reshape(-1), idx, spare)
        values = logits.reshape(k, -1).float()
        logit_sum, sig_sum = class_sums_many([values, torch.sigmoid(values, out=self._buffer(values))], idx, k + 1, method)
        self.cos[d] += logit_sum[:, :k].t() / scale
        self.sig[d] += sig_sum[:, :k].t()
        counted = torch.bincount(idx, minlength=k + 1)[:k]
        self.pixels[d] += counted
        if not self.interior:
            self.all_pixels[d] += counted

    def all_reduce(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        for t in (self.sig, self.cos, self.pixels, self.all_pixels):
            reduce(t)

    def means(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(score, cosine, pixels)`` as numpy: means over pixels (0 where a class has none)."""
        n = self.pixels.double().clamp(min=1)[..., None]
        return (self.sig / n).cpu().numpy(), (self.cos / n).cpu().numpy(), self.pixels.cpu().numpy()


def logits_at(model, image: torch.Tensor, size: Sequence[int], autocast=None) -> torch.Tensor:
    """``K x H x W`` float32 logits (t x cosine) of one ``1 x 3 x h x w`` image at ``size``
    (the network's own output when ``size`` is the input size, else resampled like the logits)."""
    from uniseg.engine.inference import to_size

    with autocast if autocast is not None else contextlib.nullcontext():
        logits = model(image)
    return to_size(logits.float(), size, bool(model.align_corners))[0]


def check_minable(trained: TrainedModel, names: Sequence[str]) -> None:
    """Refuse a model without a cosine classifier, and datasets it was not trained on (or given twice)."""
    head = trained.spec.get("head")
    if head != "cosine" or not hasattr(trained.model.classifier, "cosine"):
        raise UnisegError(f"{trained.path}: relation mining needs a cosine-classifier model, this one has a {head} head (train one with --head cosine)")
    union = trained.union
    require_unique(names)
    for n in names:
        if n not in union.datasets:
            raise UnisegError(f"--datasets {n}: not a training dataset of {trained.path} ({', '.join(union.datasets)}); mine the datasets it was trained on")


def _weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())  # the buffer itself, no copy
    return h.hexdigest()


def run_key(trained: TrainedModel, sets: Sequence[tuple[str, object]], split: Sequence[str], short_side: int, world_size: int, autocast=None,
            interior: int = 0) -> str:
    """What partial sums belong to: the weights, the datasets' image lists, split, resolution,
    precision, the interior radius and the number of processes (each process's share of the
    images depends on it)."""
    images = {name: hashlib.sha256("\n".join(ds.images).encode()).hexdigest() for name, ds in sets}
    parts = [_weights_digest(trained.model), trained.union.fingerprint, images, list(split), short_side, world_size,
             str(getattr(autocast, "fast_dtype", None))]
    blob = json.dumps(parts + ([int(interior)] if interior else []))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class MiningResult:
    """Eq. 7 statistics over the union's datasets (rows of datasets not mined have no pixels)."""

    score: np.ndarray
    cosine: np.ndarray
    pixels: np.ndarray
    datasets: list[str]
    classes: list[str]
    fingerprint: str
    images: dict[str, int]  # images of each mined dataset (all processes)
    resumed: int = 0  # images taken from saved partial sums (over every process)
    mined: list[str] = field(default_factory=list)
    all_pixels: Optional[np.ndarray] = None  # D x K every labelled pixel (``pixels``: those summed over)
    interior: int = 0  # erosion radius the sums were taken with (0: plain mean)
    bad_files: list[dict] = field(default_factory=list)  # --on-bad-file skip: {file, error} left out (every process's)

    def similarity(self, union: UnionSpace):
        """The :class:`~uniseg.relations.stats.Similarity` of this pass over ``union``."""
        from uniseg.relations.stats import similarity_for

        return similarity_for(union, self.score, self.cosine, self.pixels, self.datasets,
                              all_pixels=self.all_pixels if self.interior else None, interior=self.interior)


def summary(result: MiningResult, union: UnionSpace) -> list[dict]:
    """Per mined dataset: images, labelled pixels, classes seen, mean own score s_{d,c}(c) and the
    strongest score of a class outside its label space (the kind of pair Eq. 6 may switch on)."""
    valid = union.null_mask(result.datasets)
    rows = []
    for name in result.mined:
        d = result.datasets.index(name)
        seen = result.pixels[d] > 0
        own = own_scores(result.score)[d][seen]
        outside = np.where(seen[:, None] & ~valid[d][None, :], result.score[d], -1.0)
        c, c2 = np.unravel_index(int(np.argmax(outside)), outside.shape)
        top = None if outside[c, c2] < 0 else {"class": result.classes[c], "other_class": result.classes[c2], "score": float(outside[c, c2])}
        rows.append({"dataset": name, "images": result.images[name], "pixels": int(result.pixels[d].sum()),
                     "classes_seen": int(seen.sum()), "classes": int(valid[d].sum()),
                     "mean_own_score": float(own.mean()) if own.size else None, "top_outside": top})
    return rows


def _state_path(state_dir: Optional[Path], rank: int, world_size: int) -> Optional[Path]:
    return None if state_dir is None else Path(state_dir) / STATE.format(f".rank{rank}" if world_size > 1 else "")


def key_in_background(*args, **kwargs) -> Callable[[], str]:
    """:func:`run_key` computed in a thread while the pass runs (hashing a large network's weights
    takes a noticeable part of a second; sha256 releases the GIL); the returned call waits for it."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="uniseg-mining-key")
    future = pool.submit(run_key, *args, **kwargs)
    pool.shutdown(wait=False)  # the thread ends with its one task
    return future.result


def _load_state(path: Optional[Path], key: Callable[[], str], device: torch.device) -> Optional[tuple[MiningSums, dict[str, int], list]]:
    """Saved partial sums for the pass ``key()`` names, the images done per dataset and the bad files
    left out so far (None when there are none, or they belong to another pass)."""
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a foreign or broken file: start over (it is overwritten at the next save)
        return None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or state.get("key") != key():
        return None
    all_pixels = state.get("all_pixels", state["pixels"])
    return MiningSums(state["sig"].to(device), state["cos"].to(device), state["pixels"].to(device), all_pixels.to(device),
                      int(state.get("interior", 0))), dict(state["done"]), [tuple(b) for b in state.get("bad_files", [])]


def _save_state(path: Path, key: str, sums: MiningSums, done: dict[str, int], bad_files=()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # a process on another machine may see no DIR yet
    with atomic_open(path, "wb") as fh:
        torch.save({"format": STATE_FORMAT, "key": key, "sig": sums.sig.cpu(), "cos": sums.cos.cpu(),
                    "pixels": sums.pixels.cpu(), "all_pixels": sums.all_pixels.cpu(), "interior": sums.interior, "done": dict(done),
                    "bad_files": [[b.file, b.error] for b in bad_files]}, fh)


def clear_state(state_dir: Path) -> None:
    """Remove every process's partial sums (after the statistics are written)."""
    for p in Path(state_dir).glob(STATE.format("*")):
        p.unlink(missing_ok=True)


def open_sets(trained: TrainedModel, datasets: Sequence[tuple[str, str]], registry: Registry, split: Sequence[str] = ("train",),
              short_side: int = 1080) -> list[tuple[str, object]]:
    """``(name, SegDataset)`` per NAME, ROOT pair, after :func:`check_minable`: images at
    ``short_side`` (0 = native), labels NEAREST-resized to them. Bad roots or splits fail here."""
    from uniseg.data import EvalTransform, SegDataset

    from uniseg.engine.inputs import check_labelled_splits

    check_minable(trained, [n for n, _ in datasets])
    for name, root in datasets:  # worded as eval words it
        check_labelled_splits(name, root, registry.get(name), list(split))
    tf = EvalTransform(short_side=short_side or None, resize_label=True)
    return [(name, SegDataset(name, root, trained.union, split=list(split), transform=tf, registry=registry)) for name, root in datasets]


def mine(
    trained: TrainedModel,
    datasets: Sequence[tuple[str, str]],
    registry: Registry,
    *,
    device: torch.device,
    split: Sequence[str] = ("train",),
    short_side: int = 1080,
    workers: int = 2,
    autocast=None,
    rank: int = 0,
    world_size: int = 1,
    all_reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    state_dir: Optional[Path] = None,
    save_every: int = 200,
    progress: Optional[Callable[[str, int, int], None]] = None,
    method: Optional[str] = None,
    sets: Optional[Sequence[tuple[str, object]]] = None,
    interior: int | str = "auto",
    on_bad_file: str = "error",
) -> MiningResult:
    """Accumulate Eq. 7 over ``datasets`` (NAME, ROOT pairs of the model's training datasets).

    With ``state_dir`` the pass is resumable: Ctrl-C (SIGINT/SIGTERM) finishes the current image,
    saves this process's sums and raises :class:`~uniseg.errors.Interrupted`. ``progress(name,
    done, total)`` counts this process's images. ``method``: see :func:`class_sums`. ``sets``:
    the datasets as :func:`open_sets` opened them for these arguments (opened here by default).
    ``interior``: the erosion radius in pixels, or ``auto``/``off`` (:func:`interior_radius`; 0 =
    every pixel, the paper's plain mean; ``auto``, the default as on the command line: 1 for HRNet).
    ``on_bad_file``: ``error`` raises ``BadFileError`` at an image that cannot be read (the sums so
    far are saved first, with ``state_dir``), ``skip`` leaves it out and lists it.
    """
    from uniseg.data.faults import BadFile, BadFileError, BadFiles, SampleStream
    from uniseg.engine.inputs import sample_loader
    from uniseg.stopping import StopRequest

    sets = sets if sets is not None else open_sets(trained, datasets, registry, split, short_side)
    model, union = trained.model.eval(), trained.union
    interior = interior_radius(model, interior)
    scale = float(model.classifier.scale)
    state_path = _state_path(state_dir, rank, world_size)
    key = key_in_background(trained, sets, split, short_side, world_size, autocast, interior) if state_path is not None else None
    loaded = _load_state(state_path, key, device)
    sums, done, bad_before = loaded if loaded is not None else (MiningSums.zeros(len(union.datasets), union.num_classes, device, interior), {}, [])
    bad = BadFiles(on_bad_file, [BadFile(*b) for b in bad_before])  # with what an earlier run of the pass left out
    resumed = sum(done.values())
    fresh = 0
    lockstep = all_reduce if world_size > 1 else None  # the processes vote per image (in_step)

    def stopped():
        _save_state(state_path, key(), sums, done, bad.files)
        raise Interrupted(f"interrupted after {sum(done.values())} images; partial sums in {state_path.parent} — rerun the same command to resume")
    with (StopRequest() if state_path is not None else contextlib.nullcontext()) as stop, torch.no_grad():
        for name, ds in sets:
            d = union.dataset_index(name)
            share = list(range(rank, len(ds), world_size))
            start = done.get(name, 0)
            if progress is not None:
                progress(name, start, len(share))
            loader = sample_loader(ds, on_bad_file=on_bad_file, indices=share[start:], workers=workers, batch_size=None,
                                   pin_memory=device.type == "cuda")
            nb = device.type == "cuda"
            with SampleStream(loader, bad) as items:
                try:
                    for item in in_step(items, stop, lockstep):
                        if item is None:  # every process was asked to stop
                            stopped()
                        i = start + items.consumed  # positions in the share, images left out included
                        target = item["label"].to(device, non_blocking=nb)
                        image = item["image"].unsqueeze(0).to(device, non_blocking=nb)
                        sums.add(d, logits_at(model, image, target.shape[-2:], autocast), target, scale, method)
                        done[name] = i
                        fresh += 1
                        if progress is not None:
                            progress(name, i, len(share))
                        if lockstep is None and stop is not None and stop.requested:
                            stopped()
                        if state_path is not None and i % save_every == 0:
                            _save_state(state_path, key(), sums, done, bad.files)
                except BadFileError as exc:
                    if state_path is None or (not fresh and lockstep is None):
                        raise  # (under torchrun every process saves: the folder rank 0 made is then never left empty for it to remove)
                    _save_state(state_path, key(), sums, done, bad.files)  # the images before it are not mined again
                    raise BadFileError(f"{exc}; the partial sums are kept in {state_path.parent}: once the file is fixed, "
                                       "the same command goes on from there", bad=exc.bad) from None
                done[name] = start + items.consumed  # images left out at the end of the share count as done
    if state_path is not None and fresh:
        _save_state(state_path, key(), sums, done, bad.files)  # before the all-reduce: another process may still be stopped
    bad_files = bad.to_list()
    if all_reduce is not None:
        from uniseg.engine.runtime import gather_records

        sums.all_reduce(all_reduce)
        resumed = int(all_reduce(torch.tensor([resumed], dtype=torch.int64)).item())  # the report speaks for every process
        bad_files = gather_records(bad_files, all_reduce, rank, world_size)
    score, cosine, pixels = sums.means()
    return MiningResult(score, cosine, pixels, list(union.datasets), union.names, union.fingerprint,
                        {name: len(ds) for name, ds in sets}, resumed, [name for name, _ in sets],
                        sums.all_pixels.cpu().numpy(), int(interior), bad_files)


def in_step(items, stop, all_reduce: Optional[Callable[[torch.Tensor], torch.Tensor]]):
    """``items``, and under torchrun (``all_reduce`` given) one vote of every process per item
    until all are through their shares (which differ in length): if any process met a bad file,
    all raise ``BadFileError`` at once (the others saying that another process met one); if any
    was asked to stop, all yield ``None`` once and the caller stops. Without the votes a process
    that leaves would leave the others waiting in the final all-reduce. The votes are a CPU
    integer tensor (gloo, also beside nccl)."""
    from uniseg.data.faults import BadFileError

    if all_reduce is None:
        yield from items
        return
    running = True
    while True:
        item, met = None, None
        if running:
            try:
                item = next(items)
            except StopIteration:
                running = False
            except BadFileError as exc:
                met = exc
        asked = stop is not None and stop.requested
        votes = all_reduce(torch.tensor([int(met is not None), int(asked), int(item is not None)], dtype=torch.int32))
        if votes[0] > 0:
            raise met or BadFileError("another process met a bad file (its own line names it)")
        if votes[1] > 0:
            yield None
            return
        if item is not None:
            yield item
        elif votes[2] == 0:
            return


def mine_to_folder(
    trained: TrainedModel,
    datasets: Sequence[tuple[str, str]],
    registry: Registry,
    out: Path,
    *,
    device: torch.device,
    split: Sequence[str] = ("train",),
    short_side: int = 1080,
    workers: int = 2,
    interior: int | str = "auto",
    autocast=None,
    rank: int = 0,
    world_size: int = 1,
    all_reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    barrier: Optional[Callable[[], None]] = None,
    progress: Optional[Callable[[str, int, int], None]] = None,
    sets: Optional[Sequence[tuple[str, object]]] = None,
    on_bad_file: str = "error",
) -> tuple[MiningResult, list[Path]]:
    """The mining pass as ``uniseg relations mine`` and the demo run it: refuse an ``out`` holding
    another union's artifacts or a relations table made from its ``similarity.npz`` (mining would
    orphan it), mine resumably (partial sums in ``out``), then write ``union.yaml``,
    ``similarity.npz``, ``similarity.csv`` and the record of what mined them (``mining.json``:
    :func:`mining_record`) there (rank 0) and clear the partial sums. Returns the result and the
    files written (none on other ranks)."""
    from uniseg.io import atomic_write_text, output_folder
    from uniseg.unify.artifact import UNION_FILE, dump_union_yaml
    from uniseg.relations.artifact import check_folder_union, check_no_relations
    from uniseg.relations.stats import write_similarity

    out = Path(out)
    sets = sets if sets is not None else open_sets(trained, datasets, registry, split, short_side)
    check_folder_union(out, trained.union)
    check_no_relations(out, "mining into it")
    written: list[Path] = []
    with output_folder(out, [root for _, root in datasets]) if rank == 0 else contextlib.nullcontext(out):
        if barrier is not None:
            barrier()  # the folder exists before any process saves its partial sums there
        res = mine(trained, datasets, registry, device=device, split=split, short_side=short_side, workers=workers, autocast=autocast,
                   rank=rank, world_size=world_size, all_reduce=all_reduce, state_dir=out, progress=progress, sets=sets, interior=interior,
                   on_bad_file=on_bad_file)
        if rank == 0:
            atomic_write_text(out / UNION_FILE, dump_union_yaml(trained.union))
            sim = res.similarity(trained.union)
            (out / MINING_RECORD).unlink(missing_ok=True)  # a record never outlives the file it speaks for
            written = [out / UNION_FILE, *write_similarity(out, sim)]
            record = mining_record(trained, sim.content_fingerprint, split, short_side, res.interior)
            atomic_write_text(out / MINING_RECORD, json.dumps(record, indent=1) + "\n")
            written.append(out / MINING_RECORD)
            clear_state(out)
    return res, written


#: What mined ``similarity.npz``, written beside it: the demo reuses statistics only when its own
#: model mined them (a file another command left in its folder is refused).
MINING_RECORD = "mining.json"
MINING_FORMAT = "uniseg.mining/v1"


def weights_fingerprint(model: torch.nn.Module) -> str:
    """16 hex digits of SHA-256 over the network's state (names and bytes): the model that mined."""
    return _weights_digest(model)[:16]


def mining_record(trained: TrainedModel, similarity_fingerprint: str, split: Sequence[str], short_side: int, interior: int) -> dict:
    """The ``mining.json`` document: the checkpoint (path, iteration, weights fingerprint), the union,
    the similarity file's content fingerprint and the settings of the pass."""
    return {"format": MINING_FORMAT, "checkpoint": trained.path, "iteration": trained.iteration,
            "weights": weights_fingerprint(trained.model), "union_fingerprint": trained.union.fingerprint,
            "similarity_fingerprint": similarity_fingerprint, "split": list(split), "short_side": int(short_side), "interior": int(interior)}


def read_mining_record(folder: Path) -> Optional[dict]:
    """``folder/mining.json`` (None when there is none or it is not one)."""
    try:
        doc = json.loads((Path(folder) / MINING_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == MINING_FORMAT else None
