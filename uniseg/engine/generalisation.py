"""Label-space generalisation, scored on a synthetic world's fine truth: the paper's Figure 4 as numbers.

The paper's claim (Sec. 4, App. A: Fig. 4, A-1..A-3): a CE model "insidiously learns a connection
between the domain and the label space" (it predicts lane marking on Mapillary-looking images
only), while UniSeg predicts the union's classes in every domain. Two scores make that a number,
per evaluated set, against the fine truth (``uniseg.data.synth.truth``):

* **Outside-space IoU.** For each union class c' outside the set's own label space whose extent
  the fine truth holds there (lane marking on Cityscapes, rider on Mapillary), the IoU of the
  Figure-4 prediction of c' with its extent's pixels. The Figure-4 prediction is the paper's: at
  each pixel the top-scoring class outside the label space, where its normalised score (sigmoid
  for BCE models, softmax over the union for CE) is above the threshold (the paper: 0.5 and 0.1);
  ``uniseg predict --multilabel`` draws the same prediction and writes it as ``<stem>_outside.png``.
* **Multi-label consistency.** On the pixels of each fine class that two or more union classes
  contain (a bicyclist pixel: bicyclist and rider; a bike-lane pixel: bike lane and road), the
  share where every one of them scores above the threshold.

The paper's thresholds (sigmoid 0.5, softmax 0.1) are not comparable between the two activations:
a softmax over 70 classes passes 0.1 where the model is unsure between two of them. So every set is
also scored at each threshold of :data:`GRID` (one pass), with, on the datasets the model was trained
on, how well ``score > t`` detects the classes those datasets label (the *in-space IoU*): the
threshold that detects the labelled classes best is the model's own, chosen on the training
datasets' val splits (:func:`calibrated_threshold`), and the demo reports both.

The sums are accumulated per image with bincounts and gathers (no loop over classes or pixels; a
loop over the few grid thresholds) and reduced under torchrun like the confusion matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

#: The thresholds of the paper's Figure 4: sigmoid (UniSeg) and softmax (CE).
PAPER_THRESHOLDS = {"sigmoid": 0.5, "softmax": 0.1}

#: Every set is also scored at these thresholds, so that one chosen afterwards needs no second pass.
GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def paper_threshold(activation: str) -> float:
    return PAPER_THRESHOLDS[activation]


def normalised_scores(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """``K x ...`` scores in [0, 1]: sigmoid per class (BCE models) or softmax over the union (CE)."""
    return torch.softmax(logits, dim=0) if activation == "softmax" else torch.sigmoid(logits)


def outside_prediction(scores: torch.Tensor, outside: torch.Tensor, threshold: float) -> torch.Tensor:
    """The Figure-4 prediction of classes outside the label space: per pixel the top-scoring class
    among ``outside`` (``K`` bool) where its score is above ``threshold``, else ``K`` (none).
    ``scores`` is ``K x N``; the result ``N`` int64."""
    k = scores.shape[0]
    if not bool(outside.any()):
        return torch.full(scores.shape[1:], k, dtype=torch.int64, device=scores.device)
    best, cls = scores.masked_fill(~outside[:, None], -1.0).max(0)
    return torch.where(best > threshold, cls, torch.full_like(cls, k))


def container_index(contains: np.ndarray) -> np.ndarray:
    """``F x J`` int64: each fine class's containers (union indices), padded with ``K`` (a spare
    row that always fires), J the most containers of any fine class (at least 1)."""
    f, k = contains.shape
    width = max(1, int(contains.sum(axis=1).max(initial=0)))
    out = np.full((f, width), k, dtype=np.int64)
    for i, row in enumerate(contains):  # F rows, once per evaluated set: not a per-pixel loop
        ks = np.flatnonzero(row)
        out[i, : ks.size] = ks
    return out


@dataclass
class FineSums:
    """Running sums over a set's images (torch int64, one device)."""

    tp: torch.Tensor  # K: pixels predicted c' (outside) and in c''s extent
    predicted: torch.Tensor  # K: pixels predicted c'
    truth: torch.Tensor  # K: pixels of c''s extent
    fine_pixels: torch.Tensor  # F
    all_fire: torch.Tensor  # F: pixels where every container scores above the threshold
    # the same at each threshold of the grid (G rows), and the in-space detection counts
    grid_tp: torch.Tensor  # G x K
    grid_predicted: torch.Tensor  # G x K
    grid_all_fire: torch.Tensor  # G x F
    in_tp: torch.Tensor  # G x K: labelled pixels of class c scoring c above the threshold
    in_predicted: torch.Tensor  # G x K: labelled pixels scoring c (a class of the set's space) above it
    in_truth: torch.Tensor  # K: labelled pixels of class c

    @classmethod
    def zeros(cls, k: int, f: int, device: torch.device, grid: int = len(GRID)) -> "FineSums":
        z = lambda *n: torch.zeros(*n, dtype=torch.int64, device=device)  # noqa: E731
        return cls(z(k), z(k), z(k), z(f), z(f), z(grid, k), z(grid, k), z(grid, f), z(grid, k), z(grid, k), z(k))

    def tensors(self) -> list[torch.Tensor]:
        return [self.tp, self.predicted, self.truth, self.fine_pixels, self.all_fire, self.grid_tp, self.grid_predicted,
                self.grid_all_fire, self.in_tp, self.in_predicted, self.in_truth]


def add_image(sums: FineSums, scores: torch.Tensor, fine: torch.Tensor, contains: torch.Tensor, containers: torch.Tensor,
              outside: torch.Tensor, threshold: float, label: Optional[torch.Tensor] = None, grid: Sequence[float] = GRID) -> None:
    """Accumulate one image: ``scores`` ``K x H x W`` normalised, ``fine`` ``H x W`` fine ids,
    ``contains`` ``F x K`` bool, ``containers`` :func:`container_index`, ``outside`` ``K`` bool
    (the classes outside the set's label space), at ``threshold`` and at each of ``grid``.
    ``label``: ``H x W`` union indices of the set's own labels (``K`` or more: not labelled) for the
    in-space detection counts; None leaves them out (a dataset the model was not trained on)."""
    k = scores.shape[0]
    f = contains.shape[0]
    s = scores.reshape(k, -1)
    fid = fine.reshape(-1).long()
    dev = s.device
    per_fine = torch.bincount(fid, minlength=f)[:f]
    sums.fine_pixels += per_fine
    sums.truth += per_fine @ contains.long()
    padded = torch.cat([contains, torch.zeros(f, 1, dtype=torch.bool, device=dev)], dim=1)  # F x (K+1)
    if bool(outside.any()):
        best, top = s.masked_fill(~outside[:, None], -1.0).max(0)  # the top outside class: the same at every threshold
    else:
        best, top = torch.full_like(s[0], -1.0), torch.full_like(fid, k)
    weakest = torch.gather(torch.cat([s, torch.ones(1, s.shape[1], dtype=s.dtype, device=dev)], dim=0), 0,
                           containers[fid].t()).amin(0)  # the lowest score among the pixel's containers (padding: 1)

    def counts(t: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pred = torch.where(best > t, top, torch.full_like(top, k))
        hit = padded[fid, pred]  # the predicted class contains the pixel's fine class (False where none)
        return (torch.bincount(pred[hit], minlength=k + 1)[:k], torch.bincount(pred, minlength=k + 1)[:k],
                torch.bincount(fid[weakest > t], minlength=f)[:f])

    tp, predicted, fire = counts(threshold)
    sums.tp += tp
    sums.predicted += predicted
    sums.all_fire += fire
    edges = torch.tensor(list(grid), dtype=s.dtype, device=dev)

    def above(values: torch.Tensor, keys: torch.Tensor, n: int) -> torch.Tensor:
        """``G x n``: per key, the values above each grid threshold (one bucketize and one bincount
        for the whole grid: the number of thresholds strictly below a value is its bucket)."""
        b = torch.bucketize(values, edges)  # 0..G
        h = torch.bincount(keys * (len(grid) + 1) + b, minlength=n * (len(grid) + 1)).reshape(n, len(grid) + 1)
        return h.flip(1).cumsum(1).flip(1)[:, 1:].t()

    hit = padded[fid, top]
    sums.grid_predicted += above(best, top, k + 1)[:, :k]
    sums.grid_tp += above(best[hit], top[hit], k + 1)[:, :k]
    sums.grid_all_fire += above(weakest, fid, f)
    if label is not None:
        lab = label.reshape(-1).long()
        keep = lab < k
        lab, s_in = lab[keep], s[:, keep]
        sums.in_truth += torch.bincount(lab, minlength=k)[:k]
        own = s_in.gather(0, lab[None])[0]  # each labelled pixel's score for its own class
        sums.in_tp += above(own, lab, k)
        inside = torch.nonzero(~outside).flatten()  # the set's own classes: only they are labelled here
        mine = s_in[inside]
        rows = torch.arange(inside.numel(), device=dev)[:, None].expand_as(mine)
        sums.in_predicted[:, inside] += above(mine.reshape(-1), rows.reshape(-1), inside.numel())


def iou(tp: np.ndarray, predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    union = predicted + truth - tp
    return np.divide(tp, union, out=np.zeros(tp.shape, dtype=np.float64), where=union > 0)


@dataclass
class FineScores:
    """The two scores of one set (the record behind the ``outside_space`` / ``consistency`` keys)."""

    threshold: float
    activation: str
    outside: dict[str, dict] = field(default_factory=dict)  # union class -> iou, truth_pixels, predicted_pixels
    consistency: dict[str, dict] = field(default_factory=dict)  # fine class -> share, pixels, classes
    sweep: dict = field(default_factory=dict)  # the means at each threshold of GRID (:func:`fine_scores`)

    @property
    def outside_mean(self) -> Optional[float]:
        return float(np.mean([v["iou"] for v in self.outside.values()])) if self.outside else None

    @property
    def consistency_mean(self) -> Optional[float]:
        return float(np.mean([v["share"] for v in self.consistency.values()])) if self.consistency else None

    def to_dict(self) -> dict:
        return {
            "outside_space": {"mean": self.outside_mean, "threshold": self.threshold, "activation": self.activation,
                              "per_class": self.outside},
            "consistency": {"mean": self.consistency_mean, "threshold": self.threshold, "activation": self.activation,
                            "per_fine_class": self.consistency},
            "threshold_sweep": self.sweep,
        }


def _mean(values: np.ndarray) -> Optional[float]:
    return float(values.mean()) if values.size else None


def fine_scores(sums: FineSums, classes: Sequence[str], fine_classes: Sequence[str], contains: np.ndarray, outside: np.ndarray,
                threshold: float, activation: str, grid: Sequence[float] = GRID) -> FineScores:
    """The scores from the sums: outside classes whose extent has pixels in the set, fine classes
    with two or more containers and pixels; ``sweep`` holds the means at each threshold of ``grid``
    (and the in-space IoU there: the mean over the set's classes with labelled pixels; None
    where the set was scored without its labels)."""
    arr = {name: t.cpu().numpy().astype(np.int64) for name, t in zip(
        ("tp", "pred", "truth", "fpx", "fire", "gtp", "gpred", "gfire", "itp", "ipred", "itruth"), sums.tensors())}
    truth, fpx = arr["truth"], arr["fpx"]
    out = FineScores(float(threshold), activation)
    ious = iou(arr["tp"], arr["pred"], truth)
    scored = np.flatnonzero(np.asarray(outside) & (truth > 0))
    for k in scored:
        out.outside[classes[k]] = {"iou": float(ious[k]), "truth_pixels": int(truth[k]), "predicted_pixels": int(arr["pred"][k])}
    many = np.flatnonzero((np.asarray(contains).sum(axis=1) >= 2) & (fpx > 0))
    for i in many:
        out.consistency[fine_classes[i]] = {"share": float(arr["fire"][i] / fpx[i]), "pixels": int(fpx[i]),
                                            "classes": [classes[k] for k in np.flatnonzero(contains[i])]}
    labelled = np.flatnonzero(arr["itruth"] > 0)
    out.sweep = {
        "thresholds": [float(t) for t in grid],
        "outside_space": [_mean(iou(arr["gtp"][g], arr["gpred"][g], truth)[scored]) for g in range(len(grid))],
        "consistency": [_mean(arr["gfire"][g][many] / fpx[many]) for g in range(len(grid))],
        "in_space_iou": [_mean(iou(arr["itp"][g], arr["ipred"][g], arr["itruth"])[labelled]) if labelled.size else None
                         for g in range(len(grid))],
        "outside_per_class": {classes[k]: [float(iou(arr["gtp"][g], arr["gpred"][g], truth)[k]) for g in range(len(grid))]
                              for k in scored},
    }
    return out


def calibrated_threshold(sweeps: Sequence[dict]) -> Optional[float]:
    """The threshold of the grid at which ``score > t`` best detects the classes the model was
    trained on: the highest mean in-space IoU over ``sweeps`` (``threshold_sweep`` records of the
    training datasets' val splits; the lower threshold on a tie). None without in-space counts."""
    rows = [s["in_space_iou"] for s in sweeps if s and any(v is not None for v in s.get("in_space_iou", []))]
    if not rows:
        return None
    grid = sweeps[0]["thresholds"]
    mean = [float(np.mean([r[g] for r in rows if r[g] is not None])) for g in range(len(grid))]
    return float(grid[int(np.argmax(mean))])


def at_threshold(sweep: dict, key: str, threshold: float) -> Optional[float]:
    """``sweep[key]`` (``outside_space``, ``consistency`` or ``in_space_iou``) at a threshold of its grid."""
    return sweep[key][sweep["thresholds"].index(threshold)]


@dataclass
class FineScoring:
    """What :func:`uniseg.engine.evaluate.evaluate_set` needs to score a set on the fine truth."""

    truth: object  # uniseg.data.synth.truth.FineTruth
    activation: str  # "sigmoid" | "softmax"
    threshold: Optional[float] = None  # None: the paper's for the activation

    @property
    def value(self) -> float:
        return paper_threshold(self.activation) if self.threshold is None else float(self.threshold)


class WithFineTruth(torch.utils.data.Dataset):
    """A set's items with their fine truth added (``item["fine"]``: ``H x W`` uint8 fine ids),
    read in the DataLoader's workers like the labels. Every file is found before the first item."""

    def __init__(self, dataset, truth, name: str) -> None:
        self.dataset = dataset
        labels = getattr(dataset, "labels", None)
        if labels is None or any(p is None for p in labels):
            raise ValueError(f"{name}: scoring on the fine truth needs every image's label file")
        self.paths = [str(truth.path_for(name, dataset.root, p)) for p in labels]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        from uniseg.errors import UnisegError

        item = self.dataset[i]
        with Image.open(self.paths[item["index"]]) as im:
            fine = torch.from_numpy(np.array(im, dtype=np.uint8))
        if tuple(fine.shape) != tuple(item["label"].shape[-2:]):
            raise UnisegError(f"{self.paths[item['index']]}: fine truth {fine.shape[1]}x{fine.shape[0]}, its label "
                              f"{item['label'].shape[-1]}x{item['label'].shape[-2]}; write the world again")
        item["fine"] = fine
        return item

