"""Scoring speed: uniseg's evaluator against the official Cityscapes one, on the same predictions.

Issue target: at least 20x faster than ``cityscapesscripts``' ``evalPixelLevelSemanticLabeling``.
Both score the same prediction PNGs against the same ``*_gtFine_labelIds.png`` files of a
synthetic Cityscapes val split at the real 1024 x 2048 size (predictions: the ground truth with
a share of pixels set to other classes). Both columns include reading the two PNGs per image,
which neither can avoid; the third column is uniseg's accumulation alone (decoded arrays in
memory: label lookup + one bincount), the part that replaces the official per-image
``np.unique`` and Python loop over the pairs it finds. The numbers of both are checked equal.

    python benchmarks/bench_eval.py [--images 8] [--size 1024x2048]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uniseg.data import SegDataset  # noqa: E402
from uniseg.data.synth import synthesize  # noqa: E402
from uniseg.engine.metrics import confusion, scores  # noqa: E402
from uniseg.unify.apply import read_unified  # noqa: E402
from uniseg.labelspaces import default_registry  # noqa: E402
from uniseg.unify import build_union  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8, help="val images (synthetic Cityscapes)")
    ap.add_argument("--size", default="1024x2048")
    ap.add_argument("--noise", type=float, default=0.2, help="share of prediction pixels set to another class")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
    from cityscapesscripts.helpers.labels import name2label

    h, w = (int(v) for v in args.size.lower().split("x"))
    reg = default_registry()
    space = reg.get("cityscapes")
    union = build_union([space])
    to_id = np.zeros(256, np.uint8)
    for v in space.encoding("labelIds").values:
        if v.cls is not None:
            to_id[v.cls] = v.value
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "world", images=args.images * 5, size=(h, w), seed=0, datasets=["cityscapes"])
        ds = SegDataset("cityscapes", tmp / "world" / "cityscapes", union, split="val", target="dataset")
        rng = np.random.default_rng(0)
        preds_cls, preds_id, gts = [], [], []
        for i in range(len(ds)):
            _, lab = ds.load(i)
            gt = np.asarray(lab).astype(np.int64)
            pred = np.where(gt == 255, rng.integers(0, 19, gt.shape), gt)
            flip = rng.random(gt.shape) < args.noise
            pred[flip] = rng.integers(0, 19, int(flip.sum()))
            p_cls, p_id = tmp / f"pred_{i}_cls.png", tmp / f"pred_{i}_labelIds.png"
            Image.fromarray(pred.astype(np.uint8)).save(p_cls)
            Image.fromarray(to_id[pred]).save(p_id)
            preds_cls.append(p_cls)
            preds_id.append(str(p_id))
            gts.append(ds.labels[i])
        n = len(gts)

        def uniseg_files():
            conf = torch.zeros(19, 19, dtype=torch.int64)
            for i in range(n):
                lab = read_unified(ds.labels[i], ds.lut).image  # the label decoding of uniseg eval, without the photo
                gt = torch.from_numpy(np.array(lab))
                pred = torch.from_numpy(np.array(Image.open(preds_cls[i])))
                conf += confusion(pred, gt, 19)
            return conf

        decoded = [(torch.from_numpy(np.array(ds.load(i)[1])), torch.from_numpy(np.array(Image.open(preds_cls[i]))))
                   for i in range(n)]

        def uniseg_arrays():
            conf = torch.zeros(19, 19, dtype=torch.int64)
            for gt, pred in decoded:
                conf += confusion(pred, gt, 19)
            return conf

        def official_files():
            a = official.args
            a.evalInstLevelScore, a.JSONOutput, a.quiet, a.evalPixelAccuracy = False, False, True, False
            return official.evaluateImgLists(preds_id, gts, a)

        def best(fn):
            times, out = [], None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
            return min(times), out

        t_off, res = best(official_files)
        t_files, conf = best(uniseg_files)
        t_arr, conf2 = best(uniseg_arrays)
        assert torch.equal(conf, conf2)
        ours = scores(conf)
        theirs = {k: v for k, v in res["classScores"].items() if not name2label[k].ignoreInEval}
        names = [c.name for c in space.classes]
        diff = max(abs(ours.iou[names.index(k)] - v) for k, v in theirs.items() if not np.isnan(v))
        print(f"{n} val images {h}x{w}, {args.noise:.0%} of prediction pixels changed; CPU, torch {torch.get_num_threads()} threads; "
              f"cityscapesscripts CSUPPORT={official.CSUPPORT}")
        print(f"{'scorer':<44}{'ms/image':>10}{'x official':>12}")
        print(f"{'official evalPixelLevelSemanticLabeling':<44}{1000 * t_off / n:>10.1f}{1.0:>12.1f}")
        print(f"{'uniseg (read both PNGs + bincount)':<44}{1000 * t_files / n:>10.1f}{t_off / t_files:>12.1f}")
        print(f"{'uniseg accumulation alone (arrays in memory)':<44}{1000 * t_arr / n:>10.1f}{t_off / t_arr:>12.1f}")
        print(f"largest IoU difference to the official numbers: {diff:.1e}; target >= 20x: "
              f"{'met' if t_off / t_files >= 20 else 'MISSED'} end to end, {'met' if t_off / t_arr >= 20 else 'MISSED'} for the accumulation")


if __name__ == "__main__":
    main()
