"""Reading road-scene datasets as distributed, and feeding them to multi-dataset training.

* ``discover(space, root)`` — find a label space's layout under a dataset root (layout.py)
* ``read_label`` / ``rasterize_polygons`` / ``read_unified`` — decode label files, map them
  into a union (labels.py; the one decoder is ``uniseg.labelfiles`` + ``uniseg.unify.apply``)
* ``check_dataset(space, root)`` — the report behind ``uniseg data check`` (check.py)
* ``SegDataset(name, root, union, split=...)`` — torch dataset, raw root or prepare cache (dataset.py)
* ``MultiDataset`` / ``MultiDatasetSampler`` — concatenation + weighted, sharded sampler (sampler.py)
* ``TrainTransform`` / ``EvalTransform`` — joint image + label transforms (transforms.py)
* ``prepare_cache`` — the cache behind ``uniseg data prepare`` (cache.py)
* ``uniseg.data.synth.synthesize`` — the synthetic road world

Names are imported lazily, so ``import uniseg.data`` does not import torch.
"""

from __future__ import annotations

from uniseg._lazy import lazy_exports

_EXPORTS = {
    "SampleRef": "layout",
    "SplitFiles": "layout",
    "Discovery": "layout",
    "discover": "layout",
    "read_label": "labels",
    "decode_label_image": "labels",
    "rasterize_polygons": "labels",
    "PolygonRaster": "labels",
    "read_unified": "labels",
    "LabelFileError": "labels",
    "build_dataset_lut": "labels",
    "CheckReport": "check",
    "check_dataset": "check",
    "SegDataset": "dataset",
    "MultiDataset": "sampler",
    "MultiDatasetSampler": "sampler",
    "SampleKey": "sampler",
    "TrainTransform": "transforms",
    "EvalTransform": "transforms",
    "IMAGENET_MEAN": "transforms",
    "IMAGENET_STD": "transforms",
    "normalize": "transforms",
    "denormalize": "transforms",
    "prepare_cache": "cache",
    "PrepareReport": "cache",
    "is_cache": "cache",
    "read_manifest": "cache",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
