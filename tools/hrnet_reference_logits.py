"""Make the official-HRNet facts the tests pin: reference logits and state-dict keys/shapes.

Runs the official HRNet-Semantic-Segmentation model definitions, read from YOUR clone of
https://github.com/HRNet/HRNet-Semantic-Segmentation (``git show``, into a temporary folder
outside this repository; nothing official is copied into uniseg), on CPU with the weights and
input of ``tests/hrnet_reference.py``, and writes

* ``tests/data/hrnet_reference_logits.json``: 1/4-resolution logits of hrnet_w18_small_v1/v2,
  with the official upsampling under ``align_corners`` False and True;
* ``tests/data/hrnet_official_state_dicts.json``: every state-dict key and shape (compactly,
  one row per conv/BN module) and the parameter count of the official w18_small_v1/v2 and w48
  segmenters (19 classes).

It also prints how uniseg's models compare (same weights: logits; same seed: initialisation).

    git clone https://github.com/HRNet/HRNet-Semantic-Segmentation /tmp/official/hrnet
    python tools/hrnet_reference_logits.py --git-dir /tmp/official/hrnet/.git [--check]

``--check`` compares with the stored files instead of writing them (exit 1 on a difference).
Needs torch, numpy and pyyaml; uniseg is imported from this checkout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from hrnet_reference import expand_state_dict_rows, fill_state_dict, reference_input  # noqa: E402  (tests/hrnet_reference.py)

from uniseg.models import build_model  # noqa: E402

UPSTREAM = "HRNet/HRNet-Semantic-Segmentation"
OCR_BRANCH = "HRNet-OCR"  # the GitHub default branch; its seg_hrnet.py takes MODEL.ALIGN_CORNERS
V11_BRANCH = "pytorch-v1.1"  # "The small model are built based on the code of Pytorch-v1.1 branch" (master README)
CONFIGS = {
    "hrnet_w18_small_v1": (V11_BRANCH, "experiments/cityscapes/seg_hrnet_w18_small_v1_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml"),
    "hrnet_w18_small_v2": (V11_BRANCH, "experiments/cityscapes/seg_hrnet_w18_small_v2_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml"),
    "hrnet_w48": (OCR_BRANCH, "experiments/cityscapes/seg_hrnet_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml"),
}
LOGIT_MODELS = ("hrnet_w18_small_v1", "hrnet_w18_small_v2")
INPUT_HW = (44, 60)  # 1/4: 11x15, down to 2x2 at 1/32: odd sizes exercise the resizing
NUM_CLASSES = 4
KEYS_CLASSES = 19


class Cfg(dict):
    """The attribute-and-item access the official code expects of its yacs config."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _cfg(data) -> object:
    if isinstance(data, dict):
        return Cfg({k: _cfg(v) for k, v in data.items()})
    return data


def git_show(git_dir: Path, ref: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{ref}:{path}"], check=True, capture_output=True, text=True).stdout


def git_commit(git_dir: Path, ref: str) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", ref], check=True, capture_output=True, text=True).stdout.strip()


def load_official(git_dir: Path, ref: str, scratch: Path):
    """Import ``lib/models/seg_hrnet.py`` of ``ref`` as a package in ``scratch`` (bn_helper beside it)."""
    pkg = scratch / re.sub(r"\W", "_", ref)
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "seg_hrnet.py").write_text(git_show(git_dir, ref, "lib/models/seg_hrnet.py"))
    if "bn_helper" in (pkg / "seg_hrnet.py").read_text():
        (pkg / "bn_helper.py").write_text(git_show(git_dir, ref, "lib/models/bn_helper.py"))
    if not hasattr(np, "int"):
        np.int = int  # the official code calls np.int, which numpy 1.24 removed
    sys.path.insert(0, str(scratch))
    spec = importlib.util.find_spec(f"{pkg.name}.seg_hrnet")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_config(git_dir: Path, name: str, num_classes: int, align_corners: bool) -> Cfg:
    ref, path = CONFIGS[name]
    doc = yaml.safe_load(git_show(git_dir, ref, path))
    model = dict(doc["MODEL"], ALIGN_CORNERS=align_corners, PRETRAINED="")
    return _cfg({"MODEL": model, "DATASET": {"NUM_CLASSES": num_classes}})


def default_align_corners(git_dir: Path) -> bool:
    text = git_show(git_dir, OCR_BRANCH, "lib/config/default.py")
    return re.search(r"_C\.MODEL\.ALIGN_CORNERS\s*=\s*(\w+)", text).group(1) == "True"


def run_official(module, cfg: Cfg, x: torch.Tensor, align_corners: bool | None = None) -> torch.Tensor:
    model = module.HighResolutionNet(cfg)
    fill_state_dict(model)
    if align_corners is not None:
        module.ALIGN_CORNERS = align_corners  # HRNet-OCR reads this module global in forward
    with torch.no_grad():
        return model(x.clone())


def run_uniseg(name: str, x: torch.Tensor, align_corners: bool) -> torch.Tensor:
    model = fill_state_dict(build_model(name, NUM_CLASSES, align_corners=align_corners))
    with torch.no_grad():
        return model(x.clone(), return_aux=True)["logits_lowres"]


def compact_state_dict(model: torch.nn.Module) -> list:
    """``[[module, shape, extra]...]``: conv/linear rows expand to ``.weight`` (+ ``.bias`` when
    extra is "bias"), BN rows (1-D shape) to weight, bias, running_mean, running_var, num_batches_tracked."""
    rows = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            rows.append([name, list(mod.weight.shape)] + (["bias"] if mod.bias is not None else []))
        elif isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            rows.append([name, [mod.num_features]])
    return rows


def _floats(t: torch.Tensor) -> list:
    """Nested lists of floats printed with the fewest digits that read back to the same float32."""
    flat = [float(str(np.float32(v))) for v in t.flatten().tolist()]
    return np.array(flat, dtype=object).reshape(tuple(t.shape)).tolist()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--git-dir", type=Path, required=True, help="the .git folder of a HRNet-Semantic-Segmentation clone")
    ap.add_argument("--logits-out", type=Path, default=REPO / "tests/data/hrnet_reference_logits.json")
    ap.add_argument("--keys-out", type=Path, default=REPO / "tests/data/hrnet_official_state_dicts.json")
    ap.add_argument("--check", action="store_true", help="compare with the stored files instead of writing them")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    commits = {b: git_commit(args.git_dir, b) for b in (OCR_BRANCH, V11_BRANCH)}
    default_ac = default_align_corners(args.git_dir)
    x = reference_input(*INPUT_HW)
    ok = True
    with tempfile.TemporaryDirectory(prefix="official_hrnet_") as scratch:
        ocr = load_official(args.git_dir, OCR_BRANCH, Path(scratch))
        v11 = load_official(args.git_dir, V11_BRANCH, Path(scratch))

        logits_doc = {
            "source": {
                "repo": f"https://github.com/{UPSTREAM}",
                "code": {
                    V11_BRANCH: {"commit": commits[V11_BRANCH], "path": "lib/models/seg_hrnet.py", "align_corners": "not passed: False (the small checkpoints' code)"},
                    OCR_BRANCH: {"commit": commits[OCR_BRANCH], "path": "lib/models/seg_hrnet.py", "align_corners": f"MODEL.ALIGN_CORNERS (lib/config/default.py default: {default_ac})"},
                },
                "configs": {n: {"branch": CONFIGS[n][0], "path": CONFIGS[n][1]} for n in LOGIT_MODELS},
            },
            "recipe": (
                "tools/hrnet_reference_logits.py: HighResolutionNet(cfg) on CPU, every state-dict tensor filled by "
                "tests/hrnet_reference.py fill_state_dict (BN statistics included, eval mode), input "
                f"reference_input{INPUT_HW}, DATASET.NUM_CLASSES={NUM_CLASSES}; logits = the model output (1/4 resolution). "
                f"align_corners false: {V11_BRANCH} code (equal to {OCR_BRANCH} code with MODEL.ALIGN_CORNERS False); "
                f"align_corners true: {OCR_BRANCH} code with MODEL.ALIGN_CORNERS True."
            ),
            "torch": torch.__version__,
            "input_hw": list(INPUT_HW),
            "num_classes": NUM_CLASSES,
            "logits": {},
        }
        for name in LOGIT_MODELS:
            ref_false = run_official(v11, official_config(args.git_dir, name, NUM_CLASSES, False), x)
            ocr_false = run_official(ocr, official_config(args.git_dir, name, NUM_CLASSES, False), x, False)
            ocr_true = run_official(ocr, official_config(args.git_dir, name, NUM_CLASSES, True), x, True)
            print(f"{name}: logits {tuple(ref_false.shape)}, |max| {ref_false.abs().max():.3f}; "
                  f"{V11_BRANCH} vs {OCR_BRANCH}(False) max diff {(ref_false - ocr_false).abs().max():.3g}; "
                  f"official True vs False max diff {(ocr_true - ref_false).abs().max():.3g}")
            for ac, ref in ((False, ref_false), (True, ocr_true)):
                ours = run_uniseg(name, x, ac)
                print(f"  uniseg align_corners={ac}: max abs diff to official {(ours - ref).abs().max():.3g}")
            logits_doc["logits"][name] = {"false": _floats(ref_false[0]), "true": _floats(ocr_true[0])}

            torch.manual_seed(0)
            off = ocr.get_seg_model(official_config(args.git_dir, name, 19, default_ac)).state_dict()
            torch.manual_seed(0)
            ours = build_model(name, 19).state_dict()
            same = all(torch.equal(off[k], ours[k]) for k in off) and list(off) == list(ours)
            print(f"  initialisation under torch.manual_seed(0): {'identical' if same else 'DIFFERENT'} to official get_seg_model")

        keys_doc = {
            "source": {
                "repo": f"https://github.com/{UPSTREAM}",
                "code": {"branch": OCR_BRANCH, "commit": commits[OCR_BRANCH], "path": "lib/models/seg_hrnet.py"},
                "configs": {n: {"branch": b, "commit": commits[b], "path": p} for n, (b, p) in CONFIGS.items()},
            },
            "recipe": f"tools/hrnet_reference_logits.py: HighResolutionNet(cfg) with DATASET.NUM_CLASSES={KEYS_CLASSES}, its modules in registration order",
            "format": (
                "<model>.modules: [module, shape] or [module, shape, 'bias'] in state-dict order. A 4-D shape is a "
                "conv: key module.weight (and module.bias of [shape[0]] when 'bias'); a 1-D shape [C] is a BatchNorm: "
                "module.weight, .bias, .running_mean, .running_var of [C] and .num_batches_tracked of []"
            ),
        }
        for name in CONFIGS:
            model = ocr.HighResolutionNet(official_config(args.git_dir, name, KEYS_CLASSES, default_ac))
            rows = compact_state_dict(model)
            full = {k: list(v.shape) for k, v in model.state_dict().items()}
            assert list(expand_state_dict_rows(rows).items()) == list(full.items()), f"{name}: compact form does not expand to the state dict"
            keys_doc[name] = {"params": sum(p.numel() for p in model.parameters()), "modules": rows}

    for path, doc in ((args.logits_out, logits_doc), (args.keys_out, keys_doc)):
        text = _dump(doc)
        if args.check:
            stored = json.loads(path.read_text())
            facts = ("logits",) if "logits" in doc else tuple(CONFIGS)
            same = all(stored.get(k) == doc[k] for k in facts)
            print(f"{path}: {'matches' if same else 'DIFFERS'}")
            ok &= same
        else:
            path.write_text(text)
            print(f"wrote {path} ({len(text)} bytes)")
    return 0 if ok else 1


def _dump(doc, indent: str = "") -> str:
    """JSON with each row of numbers and each module row on one line (readable, diff-friendly)."""
    inner = indent + " "
    if isinstance(doc, dict):
        items = [f"{inner}{json.dumps(k)}: {_dump(v, inner)}" for k, v in doc.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}" + ("\n" if not indent else "")
    if isinstance(doc, list) and not _one_line(doc):
        return "[\n" + ",\n".join(inner + _dump(v, inner) for v in doc) + "\n" + indent + "]"
    return json.dumps(doc)


def _one_line(row: list) -> bool:
    """A row of scalars, or a record such as ``["conv1", [64, 3, 3, 3]]`` (scalars beside flat lists)."""
    if any(isinstance(v, dict) for v in row):
        return False
    nested = [v for v in row if isinstance(v, list)]
    flat = all(not isinstance(w, (list, dict)) for v in nested for w in v)
    return not nested or (flat and len(nested) < len(row))


if __name__ == "__main__":
    sys.exit(main())
