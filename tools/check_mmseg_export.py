"""Check ``uniseg labels export --to mmseg`` against a real mmsegmentation 1.x install.

Writes a tiny Cityscapes-style dataset (raw labelIds PNGs) and the exported module to a
temporary folder, loads an ordinary mmseg config that uses ``custom_imports``,
``UnisegDataset`` and ``UnisegLabelRemap`` after ``LoadAnnotations``, builds the dataset through
mmseg's registry and compares the packed ``gt_sem_seg`` with uniseg's own remap. The same
labels remapped beforehand (``uniseg labels remap``'s route) must load identically without the
transform, and ``IoUMetric`` must take the dataset's metainfo.

    pip install "mmsegmentation>=1.0" "mmcv>=2.0.0rc4,<2.2.0" mmengine   # mmseg.datasets needs mmcv's compiled ops
    python tools/check_mmseg_export.py [--union cityscapes,bdd,idd,mapillary]

Prints one line per check; exit 0 when all pass. Not part of the test suite: the suite checks
the module against mmseg's documented API without mmseg (tests/test_artifact_exports.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uniseg.unify.artifact import open_union  # noqa: E402
from uniseg.unify.exports import export  # noqa: E402
from uniseg.unify.lut import build_lut  # noqa: E402

CONFIG = """
default_scope = 'mmseg'
custom_imports = dict(imports=['{module}'], allow_failed_imports=False)
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='UnisegLabelRemap', dataset='{dataset}', encoding='{encoding}'),
    dict(type='PackSegInputs'),
]
raw = dict(type='UnisegDataset', data_root='{root}', data_prefix=dict(img_path='img', seg_map_path='raw'),
           img_suffix='.png', seg_map_suffix='.png', pipeline=pipeline)
unified = dict(type='UnisegDataset', data_root='{root}', data_prefix=dict(img_path='img', seg_map_path='unified'),
               img_suffix='.png', seg_map_suffix='.png',
               pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')])
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--union", default="cityscapes,bdd,idd,mapillary", help="datasets of the union (the first is the one loaded)")
    ap.add_argument("--encoding", default="labelIds", help="encoding of the first dataset's raw labels")
    args = ap.parse_args(argv)

    import mmseg
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmseg.evaluation import IoUMetric
    from mmseg.registry import DATASETS, TRANSFORMS

    union, spaces = open_union([n for n in args.union.split(",") if n])
    dataset = union.datasets[0]
    lut = build_lut(union, spaces[dataset], args.encoding)
    failures = 0

    def check(ok: bool, what: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}")

    with tempfile.TemporaryDirectory(prefix="uniseg_mmseg_") as tmp:
        root = Path(tmp)
        module = "uniseg_union_mmseg"
        export(union, list(spaces.values()), "mmseg", root / f"{module}.py")
        rng = np.random.default_rng(0)
        raw_ids = np.array([r.raw_id for r in lut.rows] + [254], dtype=np.uint8)  # every listed id and an unknown one
        for i in range(2):
            for sub in ("img", "raw", "unified"):
                (root / sub).mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(root / "img" / f"f{i}.png")
            label = rng.choice(raw_ids, size=(24, 32)).astype(np.uint8)
            Image.fromarray(label, mode="L").save(root / "raw" / f"f{i}.png")
            Image.fromarray(lut.apply(label), mode="L").save(root / "unified" / f"f{i}.png")
        (root / "cfg.py").write_text(CONFIG.format(module=module, dataset=dataset, encoding=args.encoding, root=root))
        sys.path.insert(0, str(root))
        cfg = Config.fromfile(str(root / "cfg.py"))  # imports custom_imports, as every mmseg tool does
        init_default_scope("mmseg")
        print(f"mmseg {mmseg.__version__}; union {union.fingerprint} ({union.num_classes} classes); {dataset}.{args.encoding}")
        check(TRANSFORMS.get("UnisegLabelRemap") is not None and DATASETS.get("UnisegDataset") is not None,
              "custom_imports registered UnisegDataset and UnisegLabelRemap")
        raw_ds, unified_ds = DATASETS.build(cfg.raw), DATASETS.build(cfg.unified)
        check(list(raw_ds.metainfo["classes"]) == union.names, "UnisegDataset metainfo classes are the union's")
        check([list(p) for p in raw_ds.metainfo["palette"]] == [list(c.colour) for c in union.classes], "palette is the union's")
        check(raw_ds.metainfo.get("label_map") is None, "no mmseg label_map interferes")
        check(len(raw_ds) == 2, f"{len(raw_ds)} samples found")
        for i in range(len(raw_ds)):
            got = raw_ds[i]["data_samples"].gt_sem_seg.data.numpy()[0]
            pre = unified_ds[i]["data_samples"].gt_sem_seg.data.numpy()[0]
            raw = np.array(Image.open(raw_ds.get_data_info(i)["seg_map_path"]))
            check(np.array_equal(got, lut.apply(raw)), f"sample {i}: UnisegLabelRemap after LoadAnnotations equals uniseg's remap")
            check(np.array_equal(pre, got), f"sample {i}: pre-remapped labels load the same without the transform")
        metric = IoUMetric(iou_metrics=["mIoU"])
        metric.dataset_meta = raw_ds.metainfo
        sample = raw_ds[0]["data_samples"]
        metric.process([], [{"pred_sem_seg": {"data": sample.gt_sem_seg.data}, "gt_sem_seg": {"data": sample.gt_sem_seg.data}}])
        MMLogger.get_current_instance().setLevel(logging.WARNING)  # not its per-class table
        res = metric.compute_metrics(metric.results)
        check(abs(res["mIoU"] - 100.0) < 1e-6, f"IoUMetric over the union's classes: mIoU {res['mIoU']} for a perfect prediction")
    print("all checks passed" if not failures else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
