"""Draw the README's picture, the paper's Figure 4 view, from a finished ``uniseg demo`` folder.

    .venv/bin/python tools/readme_figure.py runs/demo                 # writes docs/img/figure4.png
    .venv/bin/python tools/readme_figure.py runs/demo --uniseg null-bce --images 1 --out fig.png

For a few validation images of one training dataset (default: Cityscapes, whose label space has no
lane marking and no bicyclist) it draws, side by side: the input | the multi-dataset CE model's
multi-label view | UniSeg's multi-label view. A multi-label view is what ``uniseg predict
--multilabel`` writes: the prediction in the dataset's own label space, and, where a union class
*outside* that space scores above the threshold, that class instead, in its union colour. The
threshold is each model's own, the one the demo's tables score it at (``summary.json``'s
``thresholds.calibrated``), or with ``--thresholds paper`` the paper's (0.5 on sigmoid for BCE
models, 0.1 on softmax for CE). One legend below names every class drawn.

The predictions are the library's (``uniseg.engine.predict.predict_files``, the code behind
``uniseg predict``); this script only lays the PNGs it writes out side by side. It reads the
layout ``uniseg demo --out DIR`` leaves: ``DIR/world/`` (the synthetic world) and
``DIR/runs/<method>/last.pt``. Images are chosen where the world's fine truth (``DIR/world/fine``)
holds the most pixels of classes outside the dataset's label space, unless ``--image`` names them.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NONE = 255


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("demo", type=Path, help="a finished 'uniseg demo --out DIR' folder")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "figure4.png", help="PNG to write")
    p.add_argument("--dataset", default="cityscapes", help="a training dataset of the demo whose images are shown")
    p.add_argument("--split", default="val", help="its split the images come from")
    p.add_argument("--images", type=int, default=2, help="how many images (rows)")
    p.add_argument("--image", action="append", type=Path, default=[],
                   help="show this image (repeatable; default: chosen by the fine truth)")
    p.add_argument("--baseline", default="ce", help="the demo run drawn in the middle column")
    p.add_argument("--uniseg", default="cr-bce", help="the demo run drawn in the right column (cr-bce or null-bce)")
    p.add_argument("--width", type=int, default=300, help="width of each panel in pixels")
    p.add_argument("--thresholds", choices=("calibrated", "paper"), default="calibrated",
                   help="calibrated: each model's own threshold, as the demo's tables score it (summary.json); "
                        "paper: 0.5 on sigmoid, 0.1 on softmax")
    return p.parse_args(argv)


def outside_pixels(demo: Path, dataset: str, root: Path, labels: list[str], union) -> list[int]:
    """Per label file, its pixels whose fine class lies in a union class outside ``dataset``'s space."""
    from uniseg.data.synth.truth import fine_truth_for
    from uniseg.labelspaces import default_registry

    truth = fine_truth_for(demo / "world", union)
    inside = set(union.eval_map(default_registry().get(dataset)).channels.tolist())
    outside_fine = np.zeros(256, dtype=bool)  # fine id (8-bit PNG value) -> its finest union class is outside
    for f, k in enumerate(truth.finest):
        outside_fine[f] = k is not None and k not in inside
    counts = []
    for label in labels:
        fine = np.asarray(Image.open(truth.path_for(dataset, root, root / label)))
        counts.append(int(outside_fine[fine].sum()))
    return counts


def choose_images(args: argparse.Namespace, union) -> list[Path]:
    if args.image:
        return list(args.image)
    from uniseg.data.layout import discover
    from uniseg.labelspaces import default_registry

    root = args.demo / "world" / args.dataset
    samples = discover(default_registry().get(args.dataset), root, split=args.split).samples(args.split)
    if not samples:
        raise SystemExit(f"{root}: no labelled {args.split} images")
    try:
        counts = outside_pixels(args.demo, args.dataset, root, [s.label for s in samples], union)
    except Exception as exc:  # a world without its fine truth: take the first images
        print(f"note: {exc}; taking the first images", file=sys.stderr)
        counts = [0] * len(samples)
    order = sorted(range(len(samples)), key=lambda i: (-counts[i], samples[i].image))
    return [root / samples[i].image for i in order[: args.images]]


def views(demo: Path, run: str, dataset: str, images: list[Path], work: Path, threshold: float | None):
    """``uniseg predict --multilabel`` for ``images`` with the demo run ``run``: per image the
    multi-label view (without its legend strip), and the (name, colour) entries drawn."""
    import torch

    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.predict import predict_files, target_space
    from uniseg.labelspaces import default_registry

    ckpt = demo / "runs" / run / "last.pt"
    if not ckpt.is_file():
        raise SystemExit(f"{ckpt}: missing; give a finished 'uniseg demo --out DIR' folder")
    trained = load_trained(ckpt, torch.device("cpu"))
    target = target_space(trained, dataset, default_registry())
    out = work / run
    report = predict_files(trained, target, images, out, device=torch.device("cpu"), multilabel=True, threshold=threshold)
    panels, entries = [], {}
    for written in map(Path, report.written):
        pred = np.asarray(Image.open(written))
        outside = np.asarray(Image.open(written.with_name(f"{written.stem}_outside.png")))
        view = Image.open(written.with_name(f"{written.stem}_multilabel.png")).convert("RGB")
        panels.append(view.crop((0, 0, pred.shape[1], pred.shape[0])))  # the legend strip is redrawn below
        for c in np.unique(pred[(pred != NONE) & (outside == NONE)]).tolist():
            entries[target.classes[c]] = tuple(int(v) for v in target.colours[c])
        for k in np.unique(outside[outside != NONE]).tolist():
            entries[f"{trained.union.names[k]} (outside {dataset})"] = tuple(int(v) for v in trained.union.palette[k])
    return trained, panels, entries


def title_of(trained, run: str, threshold: float | None) -> str:
    names = {"ce": "multi-dataset CE", "null-bce": "UniSeg, Null BCE", "cr-bce": "UniSeg, C-R BCE"}
    if threshold is None:
        threshold = 0.1 if trained.activation == "softmax" else 0.5
    return f"{names.get(run, run)} ({trained.activation} > {threshold:g})"


def compose(images: list[Path], columns: list[tuple[str, list[Image.Image]]], entries: dict, width: int,
            first_title: str) -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    first = Image.open(images[0])
    aspect = first.height / first.width
    ncol, nrow = 1 + len(columns), len(images)
    dpi = 100
    panel_w = width / dpi
    legend_rows = (len(entries) + ncol * 2 - 1) // (ncol * 2)
    legend_h = 0.2 * legend_rows + 0.08
    fig_h = nrow * panel_w * aspect + 0.3 + legend_h
    fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * panel_w, fig_h), dpi=dpi, squeeze=False)
    for r, path in enumerate(images):
        cells = [(first_title, Image.open(path).convert("RGB"))]
        cells += [(title, panels[r]) for title, panels in columns]
        for c, (title, img) in enumerate(cells):
            ax = axes[r][c]
            ax.imshow(np.asarray(img), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
    handles = [Patch(facecolor=np.array(col) / 255, edgecolor="black", linewidth=0.4, label=name)
               for name, col in sorted(entries.items(), key=lambda e: ("outside" not in e[0], e[0]))]
    fig.legend(handles=handles, loc="lower center", ncol=ncol * 2, fontsize=6.5, frameon=False,
               handlelength=1.0, columnspacing=1.0)
    bottom = legend_h / fig_h
    fig.subplots_adjust(left=0.005, right=0.995, top=1 - 0.3 / fig_h, bottom=bottom, wspace=0.02, hspace=0.04)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def main(argv=None) -> int:
    args = parse_args(argv)
    demo = args.demo
    if not (demo / "world").is_dir():
        raise SystemExit(f"{demo}: no world/; give a finished 'uniseg demo --out DIR' folder")
    from uniseg.engine.checkpoint import load_trained

    union = load_trained(demo / "runs" / args.uniseg / "last.pt").union
    images = choose_images(args, union)
    summary = {}
    if (demo / "summary.json").is_file():
        import json

        summary = json.loads((demo / "summary.json").read_text())
    calibrated = summary.get("thresholds", {}).get("calibrated", {}) if args.thresholds == "calibrated" else {}
    entries: dict = {}
    columns = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in (args.baseline, args.uniseg):
            threshold = calibrated.get(run)
            trained, panels, drawn = views(demo, run, args.dataset, images, Path(tmp), threshold)
            columns.append((title_of(trained, run, threshold), panels))
            entries.update(drawn)
    plan = ""
    if summary:
        name = summary.get("plan", {})
        name = name.get("name") if isinstance(name, dict) else name
        plan = f"; {name} demo, seed {summary.get('seed')}"
    figure = compose(images, columns, entries, args.width, f"input ({args.dataset} {args.split}{plan})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # an adaptive palette keeps the file small; the views hold few colours anyway
    figure.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"{args.out}: {figure.width}x{figure.height}, {args.out.stat().st_size // 1024} KiB; "
          f"images: {', '.join(str(p.relative_to(demo)) if p.is_relative_to(demo) else str(p) for p in images)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
