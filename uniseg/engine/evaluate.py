"""Score a model over the union on any dataset, seen or unseen, in that dataset's own label space.

For each image: the unified channels whose names are in the dataset's label space are read, the
argmax runs over those only, and the winner is compared with the dataset's own labels (decoded
through the registry) at the label file's native resolution. Classes of the dataset that the
union lacks are left out of the score. The confusion matrix is accumulated with one bincount
per image; under torchrun each process scores its share of the images and the matrices are
summed.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from uniseg.engine.generalisation import FineScores, FineScoring
from uniseg.engine.inference import InferenceSettings, predict_channels
from uniseg.engine.inputs import EvalSet, sample_loader
from uniseg.engine.metrics import confusion, scores
from uniseg.engine.runtime import gather_records
from uniseg.io import OutputRecord, atomic_write_text, claim_outputs, output_folder

Progress = Callable[[str, int, int], None]


@dataclass
class DatasetScore:
    """The score of one dataset (the record behind ``DIR/<dataset>.json``)."""

    dataset: str
    split: str
    images: int
    classes: list[str]
    iou: list[Optional[float]]
    miou: float
    pixel_accuracy: float
    confusion: np.ndarray
    missing: list[str] = field(default_factory=list)
    scored: int = 0
    absent_as_zero: bool = False
    fine: Optional["FineScores"] = None  # label-space generalisation on a synthetic world's fine truth
    bad_files: list[dict] = field(default_factory=list)  # --on-bad-file skip: {file, error} of the images left out
    unlabelled: list[str] = field(default_factory=list)  # images of the split without a label: left out, named

    @property
    def outside_space(self) -> Optional[float]:
        return None if self.fine is None else self.fine.outside_mean

    @property
    def consistency(self) -> Optional[float]:
        return None if self.fine is None else self.fine.consistency_mean

    def per_class(self) -> dict[str, Optional[float]]:
        return dict(zip(self.classes, self.iou))

    def to_dict(self, **context) -> dict:
        """The JSON document (contract: ``miou`` in [0, 1] and ``per_class``), plus ``context``
        (checkpoint, union fingerprint, settings)."""
        doc = {
            "dataset": self.dataset,
            "split": self.split,
            "images": self.images,
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "per_class": self.per_class(),
            "scored_classes": self.scored,
            "missing_from_union": list(self.missing),
            "absent_as_zero": self.absent_as_zero,
            "bad_files": list(self.bad_files),
            "images_without_labels": list(self.unlabelled),
        }
        if self.fine is not None:
            doc.update(self.fine.to_dict())
        doc.update(context)
        doc["classes"] = list(self.classes)
        doc["confusion"] = self.confusion.astype(np.int64).tolist()
        return doc


def _loader(es: EvalSet, workers: int, rank: int, world: int, fine: Optional[FineScoring] = None, on_bad_file: str = "error"):
    from uniseg.engine.generalisation import WithFineTruth

    dataset = es.dataset if fine is None else WithFineTruth(es.dataset, fine.truth, es.name)
    indices = list(range(rank, len(es.dataset), world))
    return sample_loader(dataset, on_bad_file=on_bad_file, indices=indices, workers=workers, collate_fn=_single), len(indices)


def _single(items: list) -> dict:
    return items[0]


@torch.no_grad()
def evaluate_set(
    model: nn.Module,
    es: EvalSet,
    *,
    device: torch.device,
    settings: InferenceSettings = InferenceSettings(),
    absent_as_zero: bool = False,
    workers: int = 0,
    autocast=None,
    rank: int = 0,
    world_size: int = 1,
    all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: Optional[Progress] = None,
    fine: Optional[FineScoring] = None,
    on_bad_file: str = "error",
) -> DatasetScore:
    """Score ``model`` (in eval mode) on one evaluation set; see the module docstring. ``fine``:
    also score label-space generalisation on a synthetic world's fine truth
    (:mod:`uniseg.engine.generalisation`). ``on_bad_file``: ``error`` raises ``BadFileError`` at
    an image that cannot be read, ``skip`` leaves it out of the score and lists it (this process's
    share of the images under torchrun)."""
    from uniseg.data.faults import BadFileError, BadFiles, SampleStream
    from uniseg.engine import generalisation as gen

    n = len(es.class_names)
    channels = torch.from_numpy(es.eval_map.channels).to(device)
    classes = torch.from_numpy(es.eval_map.classes).to(device)
    # ground truth of classes the union lacks is not scored
    keep = torch.full((256,), 255, dtype=torch.int64, device=device)
    keep[classes] = classes
    label_map = None if es.label_map is None else es.label_map.to(device)
    conf = torch.zeros(n, n, dtype=torch.int64, device=device)
    bad = BadFiles(on_bad_file)
    loader, total = _loader(es, workers, rank, world_size, fine, on_bad_file)
    if fine is not None:
        k = len(fine.truth.classes)
        contains_np = fine.truth.contains
        outside_np = np.ones(k, dtype=bool)
        outside_np[es.eval_map.channels] = False
        contains = torch.from_numpy(contains_np).to(device)
        containers = torch.from_numpy(gen.container_index(contains_np)).to(device)
        outside = torch.from_numpy(outside_np).to(device)
        sums = gen.FineSums.zeros(k, contains_np.shape[0], device)
        to_union = None  # a training dataset of the model: its labels in union indices, for the in-space counts
        if es.name in fine.truth.datasets:
            to_union = torch.full((256,), k, dtype=torch.int64, device=device)
            to_union[classes] = channels
    done = 0
    met = None  # under torchrun: a bad file this process met, said after the vote below
    with SampleStream(loader, bad) as items:
        try:
            for item in items:
                image = item["image"].unsqueeze(0).to(device)
                label = item["label"].to(device)
                if label_map is not None:
                    label = label_map[label]
                label = keep[label]
                winner, logits = predict_channels(model, image, label.shape[-2:], channels, settings, autocast)
                conf += confusion(classes[winner], label, n)
                if fine is not None:
                    scores_ = gen.normalised_scores(logits[0], fine.activation)
                    gen.add_image(sums, scores_, item["fine"].to(device), contains, containers, outside, fine.value,
                                  None if to_union is None else to_union[label])
                done += 1
                if progress is not None:
                    progress(es.name, items.consumed, total)
        except BadFileError as exc:
            if all_reduce is None:
                raise
            met = exc
    count = torch.tensor([done], dtype=torch.int64, device=device)
    if all_reduce is not None:
        # every process learns whether any met a bad file before the sums: none waits for one that left
        if all_reduce(torch.tensor([int(met is not None)], dtype=torch.int32)).item():
            raise met or BadFileError("another process met a bad file (its own line names it)")
        all_reduce(conf)
        all_reduce(count)
        if fine is not None:
            for t in sums.tensors():
                all_reduce(t)
    s = scores(conf, scored=es.scored(), absent_as_zero=absent_as_zero)
    fine_result = None if fine is None else gen.fine_scores(
        sums, fine.truth.classes, fine.truth.fine_classes, contains_np, outside_np, fine.value, fine.activation)
    return DatasetScore(
        dataset=es.name, split=es.split, images=int(count.item()), classes=list(es.class_names), iou=s.iou,
        miou=s.miou, pixel_accuracy=s.pixel_accuracy, confusion=conf.cpu().numpy(),
        missing=list(es.eval_map.missing), scored=s.scored, absent_as_zero=absent_as_zero, fine=fine_result,
        bad_files=gather_records(bad.to_list(), all_reduce, rank, world_size),  # every process's, not rank 0's alone
        unlabelled=list(getattr(es.dataset, "unlabelled", [])),
    )


def class_table_csv(score: DatasetScore) -> str:
    """Per-class rows: class, iou (empty = not scored), ground-truth / predicted / true-positive pixels."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["class", "iou", "gt_pixels", "predicted_pixels", "true_positives"])
    c = score.confusion
    for i, name in enumerate(score.classes):
        iou = score.iou[i]
        w.writerow([name, "" if iou is None else f"{iou:.6f}", int(c[i].sum()), int(c[:, i].sum()), int(c[i, i])])
    return buf.getvalue()


def summary_csv(rows: list[dict]) -> str:
    """One row per dataset: dataset, split, images, miou, pixel_accuracy, checkpoint, union fingerprint."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ["dataset", "split", "images", "miou", "pixel_accuracy", "scored_classes", "checkpoint", "union_fingerprint"]
    fine = any("outside_space" in r for r in rows)
    if fine:  # scored on a synthetic world's fine truth: the two means
        cols += ["outside_space_iou", "consistency"]
        rows = [{**r, "outside_space_iou": (r.get("outside_space") or {}).get("mean"),
                 "consistency": (r.get("consistency") or {}).get("mean")} for r in rows]
    w.writerow(cols)
    for r in rows:
        w.writerow([f"{r[c]:.6f}" if isinstance(r.get(c), float) else ("" if r.get(c) is None else r.get(c, "")) for c in cols])
    return buf.getvalue()


SCORES_COMMAND = "eval"


def scores_made_from(context: dict, absent_as_zero: bool = False) -> dict:
    """What an eval folder's scores were made from: the checkpoint (file, iteration, union) and the
    settings that change a score. A folder holds the scores of one of these (``uniseg.io.claim_outputs``)."""
    import os

    made = {k: context.get(k) for k in ("checkpoint", "iteration", "union_fingerprint", "infer_height", "window", "fine_truth")}
    if made["checkpoint"]:
        made["checkpoint"] = os.path.abspath(str(made["checkpoint"]))
    made["absent_as_zero"] = bool(absent_as_zero)
    return made


def score_files(out: Path, datasets: Sequence[str]) -> list[Path]:
    """The files an eval of ``datasets`` writes into ``out``."""
    return [out / f"{d}.{ext}" for d in datasets for ext in ("json", "csv")] + [out / "summary.csv"]


def claim_scores(out: Path, datasets: Sequence[str], context: dict, *, absent_as_zero: bool = False,
                 overwrite: bool = False, check_only: bool = False) -> OutputRecord:
    """Before scoring: refuse an ``out`` holding another checkpoint's (or setting's) scores, or files
    uniseg did not write, unless ``overwrite``; record this eval's files. Call inside ``output_folder(out)``
    (``check_only``: refuse, change nothing: the other processes of a torchrun job)."""
    return claim_outputs(out, SCORES_COMMAND, scores_made_from(context, absent_as_zero), score_files(Path(out), datasets),
                         overwrite=overwrite, check_only=check_only)


def write_scores(out: Path, scores_: list[DatasetScore], *, seen: Sequence[str] = (), record: Optional[OutputRecord] = None,
                 overwrite: bool = False, **context) -> list[Path]:
    """``out/<dataset>.json`` and ``out/<dataset>.csv`` per dataset, and ``out/summary.csv`` (a row for
    every dataset scored into ``out`` with this checkpoint, earlier evals' included); ``seen``: the
    datasets the model was trained on (each JSON says whether it is one). ``record``: the folder's
    claim (:func:`claim_scores`, the caller holding ``output_folder(out)``); without one it is made here."""
    if record is None:
        absent = any(s.absent_as_zero for s in scores_)
        with output_folder(out) as folder:
            rec = claim_scores(folder, [s.dataset for s in scores_], context, absent_as_zero=absent, overwrite=overwrite)
            return _write_scores(folder, scores_, seen, rec, context)
    return _write_scores(Path(out), scores_, seen, record, context)


def _write_scores(out: Path, scores_: list[DatasetScore], seen: Sequence[str], record: OutputRecord, context: dict) -> list[Path]:
    written, rows = [], []
    for s in scores_:
        doc = s.to_dict(seen=s.dataset in seen, **context)
        rows.append(doc)
        p = out / f"{s.dataset}.json"
        atomic_write_text(p, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        q = out / f"{s.dataset}.csv"
        atomic_write_text(q, class_table_csv(s))
        written += [p, q]
    names = {s.dataset for s in scores_}
    for rel in sorted(record.files):  # datasets an earlier eval of the same checkpoint scored here keep their row
        if rel.endswith(".json") and "/" not in rel and rel[: -len(".json")] not in names and (out / rel).is_file():
            try:
                rows.append(json.loads((out / rel).read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
    summary = out / "summary.csv"
    atomic_write_text(summary, summary_csv(rows))
    return written + [summary]
