"""Builders of tiny datasets in their real on-disk layouts and encodings (real PNG/JPEG/JSON files).

Every label image holds vertical stripes of known raw values (``stripes``), so tests can state
the expected decoded / unified values by hand. Images are seeded noise (PNG or JPEG as the
dataset ships them). Each builder returns a ``Built`` with the root-relative files it wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

SIZE = (32, 64)  # H, W

# Mapillary Vistas v1.2 palette (RGB per id 0..65), as in the dataset's config.json
MAPILLARY_COLOURS = [
    (165, 42, 42), (0, 192, 0), (196, 196, 196), (190, 153, 153), (180, 165, 180), (90, 120, 150), (102, 102, 156),
    (128, 64, 255), (140, 140, 200), (170, 170, 170), (250, 170, 160), (96, 96, 96), (230, 150, 140), (128, 64, 128),
    (110, 110, 110), (244, 35, 232), (150, 100, 100), (70, 70, 70), (150, 120, 90), (220, 20, 60), (255, 0, 0),
    (255, 0, 100), (255, 0, 200), (200, 128, 128), (255, 255, 255), (64, 170, 64), (230, 160, 50), (70, 130, 180),
    (190, 255, 255), (152, 251, 152), (107, 142, 35), (0, 170, 30), (255, 255, 128), (250, 0, 30), (100, 140, 180),
    (220, 220, 220), (220, 128, 128), (222, 40, 40), (100, 170, 30), (40, 40, 40), (33, 33, 33), (100, 128, 160),
    (142, 0, 0), (70, 100, 150), (210, 170, 100), (153, 153, 153), (128, 128, 128), (0, 0, 80), (250, 170, 30),
    (192, 192, 192), (220, 220, 0), (140, 140, 20), (119, 11, 32), (150, 0, 255), (0, 60, 100), (0, 0, 142), (0, 0, 90),
    (0, 0, 230), (0, 80, 100), (128, 64, 64), (0, 0, 110), (0, 0, 70), (0, 0, 192), (32, 32, 32), (120, 10, 10), (0, 0, 0),
]


@dataclass
class Built:
    root: Path
    images: list[str] = field(default_factory=list)  # root-relative
    labels: list[str] = field(default_factory=list)  # root-relative, same order as images (labelled ones)
    unlabelled: list[str] = field(default_factory=list)  # images of unlabelled splits
    siblings: list[str] = field(default_factory=list)  # the other files a real copy keeps beside each label


def stripes(values: Sequence, size: tuple[int, int] = SIZE) -> np.ndarray:
    """``H x W`` (or ``H x W x 3`` for colour tuples) array of vertical stripes of ``values``."""
    h, w = size
    cols = (np.arange(w) * len(values)) // w
    table = np.array(values, dtype=np.uint8 if max(np.ravel(values)) < 256 else np.uint16)
    return np.ascontiguousarray(np.broadcast_to(table[cols][None], (h, w) + table.shape[1:]))


def stray(arr: np.ndarray, value, n: int = 4) -> np.ndarray:
    """A copy of a label array with ``n`` pixels of ``value`` at the start of its first row: a few
    stray unknown pixels, as real labels sometimes have (counted, not refused)."""
    out = np.array(arr)
    out[0, :n] = value
    return out


def photo(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)


def _save(root: Path, rel: str, img: Image.Image, **params) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "JPEG" if path.suffix == ".jpg" else "PNG"
    img.save(path, format=fmt, **params)
    return rel


def _image(root: Path, rel: str, seed: int, size=SIZE) -> str:
    return _save(root, rel, Image.fromarray(photo(seed, size)), **({"quality": 90} if rel.endswith(".jpg") else {}))


def _ids(root: Path, rel: str, values: Sequence[int], size=SIZE) -> str:
    return _save(root, rel, Image.fromarray(stripes(values, size), mode="L"))


CITYSCAPES_VALUES = (7, 26, 0)  # road, car, unlabeled
CITYSCAPES_TRAINIDS = (0, 13, 255)
CITYSCAPES_COLOURS = ((128, 64, 128, 255), (0, 0, 142, 255), (0, 0, 0, 255))  # _gtFine_color.png is RGBA
CITYSCAPES_INSTANCES = (7, 26001, 0)  # _gtFine_instanceIds.png: labelId * 1000 + instance for 'car'


def cityscapes_polygon_doc(width: int, height: int) -> dict:
    """A ``*_gtFine_polygons.json`` as the official package ships it (road, car, ego vehicle)."""
    return {
        "imgHeight": height,
        "imgWidth": width,
        "objects": [
            {"label": "road", "polygon": [[0, 0], [width // 3, 0], [width // 3, height], [0, height]]},
            {"label": "car", "polygon": [[width // 3, 0], [2 * width // 3, 0], [2 * width // 3, height], [width // 3, height]]},
            {"label": "ego vehicle", "polygon": [[0, height - 2], [width, height - 2], [width, height], [0, height]]},
        ],
    }


def make_cityscapes(root: Path, *, cities: dict | None = None, per_city: int = 1, labels: str = "labelIds",
                    values: Sequence[int] | None = None, size=SIZE) -> Built:
    """``leftImg8bit/{split}/{city}/{city}_{seq:06}_{frame:06}_leftImg8bit.png`` + gtFine
    ``*_gtFine_labelIds.png`` (``labels='labelTrainIds'``: trainIds, ``'both'``: both, ``'all'``:
    every file the official gtFine package and createTrainIdLabelImgs leave per frame — labelIds,
    labelTrainIds, instanceIds (16-bit), color (RGBA) and polygons JSON; ``labels`` lists the
    labelIds files, ``siblings`` the rest)."""
    root = Path(root)
    cities = cities or {"train": ["aachen", "bochum"], "val": ["frankfurt"], "test": ["berlin"]}
    out = Built(root)
    seed = 0
    for split, names in cities.items():
        for city in names:
            for i in range(per_city):
                stem = f"{city}_{i:06d}_{19 + i:06d}"
                out.images.append(_image(root, f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", seed, size))
                seed += 1
                if split == "test":
                    out.unlabelled.append(out.images.pop())
                    continue
                base = f"gtFine/{split}/{city}/{stem}_gtFine_"
                if labels in ("labelIds", "both", "all"):
                    out.labels.append(_ids(root, base + "labelIds.png", values or CITYSCAPES_VALUES, size))
                if labels in ("labelTrainIds", "both", "all"):
                    rel = _ids(root, base + "labelTrainIds.png", values or CITYSCAPES_TRAINIDS, size)
                    (out.labels if labels == "labelTrainIds" else out.siblings).append(rel)
                if labels == "all":
                    out.siblings.append(_save(root, base + "instanceIds.png", Image.fromarray(stripes(CITYSCAPES_INSTANCES, size))))
                    out.siblings.append(_save(root, base + "color.png", Image.fromarray(stripes(CITYSCAPES_COLOURS, size), mode="RGBA")))
                    (root / (base + "polygons.json")).write_text(json.dumps(cityscapes_polygon_doc(size[1], size[0]), indent=4))
                    out.siblings.append(base + "polygons.json")
    return out


def jpeg_bytes(values: Sequence[int], size=SIZE, quality: int = 75) -> bytes:
    """A label id image saved as JPEG (lossy: ids change at every stripe edge)."""
    import io

    buf = io.BytesIO()
    Image.fromarray(stripes(values, size), mode="L").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


BDD_VALUES = (0, 13, 255)  # road, car, unknown/void


def make_bdd(root: Path, *, legacy: bool = False, counts: dict | None = None, values: Sequence[int] = BDD_VALUES, size=SIZE) -> Built:
    """Current: ``images/10k/{split}/<id>.jpg`` + ``labels/sem_seg/masks/{split}/<id>.png``;
    legacy: ``seg/images/{split}/<id>.jpg`` + ``seg/labels/{split}/<id>_train_id.png``."""
    root = Path(root)
    counts = counts or {"train": 2, "val": 1}
    out = Built(root)
    for split, n in counts.items():
        for i in range(n):
            bid = f"{0x0a0b1c2d + 97 * i + (0 if split == 'train' else 5000):08x}-{0x7c39d841 + i:08x}"
            if legacy:
                out.images.append(_image(root, f"seg/images/{split}/{bid}.jpg", i, size))
                out.labels.append(_ids(root, f"seg/labels/{split}/{bid}_train_id.png", values, size))
            else:
                out.images.append(_image(root, f"images/10k/{split}/{bid}.jpg", i, size))
                out.labels.append(_ids(root, f"labels/sem_seg/masks/{split}/{bid}.png", values, size))
    return out


IDD_LEVEL3 = (0, 9, 255)  # road, car, void
IDD_IDS = (0, 12, 35)  # road, car, unlabeled


def idd_polygon_doc(width: int, height: int) -> dict:
    """Toolkit-format polygons: road over the bottom half, a car box on top of it, one deleted
    polygon, one with two points, a 'cargroup' and an unknown label."""
    return {
        "imgHeight": height,
        "imgWidth": width,
        "objects": [
            {"label": "road", "polygon": [[0, height // 2], [width - 1, height // 2], [width - 1, height - 1], [0, height - 1]], "deleted": 0, "id": 0, "verified": 1, "user": "fixture", "date": "01-Jan-2019 00:00:00"},
            {"label": "car", "polygon": [[4, height // 2 + 2], [20, height // 2 + 2], [20, height - 4], [4, height - 4]], "deleted": 0, "id": 1},
            {"label": "sky", "polygon": [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], "deleted": 1, "id": 2},
            {"label": "truck", "polygon": [[30, 2], [40, 2]], "deleted": 0, "id": 3},
            {"label": "cargroup", "polygon": [[40, 2], [50, 2], [50, 8], [40, 8]], "deleted": 0, "id": 4},
            {"label": "hovercraft", "polygon": [[52, 2], [60, 2], [60, 8], [52, 8]], "deleted": 0, "id": 5},
        ],
    }


def make_idd(root: Path, *, mode: str = "level3", counts: dict | None = None, size=SIZE) -> Built:
    """``leftImg8bit/{split}/{drive}/{img}_leftImg8bit.png`` with ``gtFine/.../{img}_gtFine_``
    ``labellevel3Ids.png`` (mode 'level3'), ``labelids.png`` ('id') or ``polygons.json`` ('polygons')."""
    root = Path(root)
    counts = counts or {"train": 2, "val": 1}
    out = Built(root)
    h, w = size
    for split, n in counts.items():
        for i in range(n):
            drive, img = str(201 + i), f"{i * 23:06d}"
            out.images.append(_image(root, f"leftImg8bit/{split}/{drive}/{img}_leftImg8bit.png", i, size))
            base = f"gtFine/{split}/{drive}/{img}_gtFine_"
            if mode == "level3":
                out.labels.append(_ids(root, base + "labellevel3Ids.png", IDD_LEVEL3, size))
            elif mode == "id":
                out.labels.append(_ids(root, base + "labelids.png", IDD_IDS, size))
            elif mode == "polygons":
                rel = base + "polygons.json"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(json.dumps(idd_polygon_doc(w, h), indent=4))
                out.labels.append(rel)
            else:
                raise ValueError(mode)
    return out


MAPILLARY_VALUES = (13, 55, 65)  # Road, Car, Unlabeled


def paletted(values: Sequence[int] | np.ndarray, size=SIZE) -> Image.Image:
    """A Mapillary-style paletted PNG of stripes of ``values`` (or of an ``H x W`` id array)."""
    arr = values if isinstance(values, np.ndarray) else stripes(values, size)
    img = Image.fromarray(arr.astype(np.uint8), mode="L")
    img.putpalette([c for rgb in MAPILLARY_COLOURS for c in rgb])  # -> mode P, indices unchanged
    assert img.mode == "P"
    return img


def make_mapillary(root: Path, *, version: str = "v1.2", counts: dict | None = None, values: Sequence[int] = MAPILLARY_VALUES,
                   with_v2: bool = False, size=SIZE) -> Built:
    """``{training,validation}/images/<key>.jpg`` + ``{split}/v1.2/labels/<key>.png`` (v1.2, the
    v2.0 package; ``with_v2`` adds its ``v2.0/labels`` too) or ``{split}/labels/<key>.png`` (v1.1)."""
    root = Path(root)
    counts = counts or {"training": 2, "validation": 1}
    out = Built(root)
    for split, n in counts.items():
        for i in range(n):
            key = f"{'M' if split == 'training' else 'V'}{i}x_4KkZb-yQ2RnXqA9eWo"
            out.images.append(_image(root, f"{split}/images/{key}.jpg", i, size))
            rel = f"{split}/v1.2/labels/{key}.png" if version == "v1.2" else f"{split}/labels/{key}.png"
            out.labels.append(_save(root, rel, paletted(values, size)))
            if with_v2:
                _save(root, f"{split}/v2.0/labels/{key}.png", paletted((99, 100, 101), size))
    return out


KITTI_VALUES = (7, 26, 0)


def make_kitti(root: Path, *, n: int = 3, test: int = 1, size=SIZE) -> Built:
    """``training/image_2/000000_10.png`` + ``training/semantic/000000_10.png``; ``testing/image_2`` unlabelled."""
    root = Path(root)
    out = Built(root)
    for i in range(n):
        out.images.append(_image(root, f"training/image_2/{i:06d}_10.png", i, size))
        out.labels.append(_ids(root, f"training/semantic/{i:06d}_10.png", KITTI_VALUES, size))
    for i in range(test):
        out.unlabelled.append(_image(root, f"testing/image_2/{i:06d}_10.png", 100 + i, size))
    return out


def make_wilddash(root: Path, *, names: Sequence[str] = ("at0000_100000", "cn0001_100000", "us0002_100000"), size=SIZE) -> Built:
    """``wd_val_01/<name>.png`` with ``wd_val_01/<name>_labelIds.png`` in the same folder."""
    root = Path(root)
    out = Built(root)
    for i, name in enumerate(names):
        out.images.append(_image(root, f"wd_val_01/{name}.png", i, size))
        out.labels.append(_ids(root, f"wd_val_01/{name}_labelIds.png", CITYSCAPES_VALUES, size))
    return out


CAMVID_COLOURS = ((128, 64, 128), (64, 0, 128), (0, 0, 0))  # Road, Car, Void


def make_camvid(root: Path, *, frames: Sequence[str] = ("0001TP_006690", "0006R0_f02430", "Seq05VD_f00000"),
                colours: Sequence = CAMVID_COLOURS, size=SIZE) -> Built:
    """Original release: ``701_StillsRaw_full/<f>.png`` + RGB ``LabeledApproved_full/<f>_L.png``."""
    root = Path(root)
    out = Built(root)
    for i, f in enumerate(frames):
        out.images.append(_image(root, f"701_StillsRaw_full/{f}.png", i, size))
        out.labels.append(_save(root, f"LabeledApproved_full/{f}_L.png", Image.fromarray(stripes(colours, size), mode="RGB")))
    return out


SEGNET_VALUES = (3, 8, 11)  # Road, Car, Unlabelled


def make_camvid_segnet(root: Path, *, counts: dict | None = None, size=SIZE) -> Built:
    """SegNet variant: ``{train,val,test}/<f>.png`` + indexed ``{split}annot/<f>.png``."""
    root = Path(root)
    counts = counts or {"train": 2, "val": 1, "test": 1}
    out = Built(root)
    for split, n in counts.items():
        for i in range(n):
            f = f"0016E5_{7959 + 30 * i:05d}"
            out.images.append(_image(root, f"{split}/{f}.png", i, size))
            out.labels.append(_ids(root, f"{split}annot/{f}.png", SEGNET_VALUES, size))
    return out
