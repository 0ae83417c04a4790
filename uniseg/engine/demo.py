"""``uniseg demo``: the whole UniSeg method on the synthetic road world, in one folder.

Steps (each skipped when its output is already complete, so an interrupted demo resumes):

1. ``world/``: the synthetic world (``uniseg data synth``) with its planted relations;
2. ``runs/pretrain``: the stand-in for the ImageNet weights every model of the paper starts from:
   CE on one training dataset alone (Mapillary, the finest label space; one label space, so no
   conflict to learn), whose backbone both first-stage runs load with ``pretrained``;
3. ``runs/ce`` and ``runs/null-bce``: the multi-dataset CE baseline (linear head, Eq. 1) and Null
   BCE with the cosine classifier (Eq. 4, Appendix G), from the same pretrained backbone;
4. ``similarity.npz``: relation mining (Eq. 7) with the Null-BCE model over the training datasets;
5. ``relations.yaml`` + ``table.npy``: the multi-label table (Eq. 6, automatic tau);
6. ``runs/null-bce-stage2``, ``runs/cr-bce`` and ``runs/cr-bce-planted``: the second stage,
   initialised from the Null-BCE run: a control that goes on with Null BCE for as many iterations,
   the class-relational stage (Eq. 8), and the same with the planted relations as its table
   (``planted/``, an oracle miner); the control tells C-R BCE's gain from that of the extra
   iterations, the oracle what better mining could add;
7. ``eval/<method>/<dataset>.json``: each method on the unseen KITTI, WildDash and CamVid;
8. ``summary.json`` and ``README.md``: the Table-1-shaped result, the mined relations against the
   planted ones (precision / recall), the unseen classes relations teach from data Null BCE leaves
   out (``filled_in``) with every method's IoU on them, and an index of every artifact.

The plans (world size, model, resolution, iterations) are data (:data:`PLANS`): ``full`` is sized
for about ten minutes on two CPU cores, ``quick`` for under two (CI).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from uniseg.engine.config import RESUME_MAY_CHANGE, DatasetSpec, TrainConfig, recipe_changes
from uniseg.errors import UnisegError
from uniseg.io import atomic_write_text
from uniseg.labelspaces.registry import Registry, default_registry

METHODS = ("ce", "null-bce", "null-bce-stage2", "cr-bce", "cr-bce-planted")
TITLES = {"ce": "Multi-dataset (CE)", "null-bce": "UniSeg (Null BCE)", "null-bce-stage2": "Null BCE (longer)",
          "cr-bce": "UniSeg (C-R BCE)", "cr-bce-planted": "C-R BCE (planted)"}
#: The second stage's runs, initialised from the Null-BCE run: C-R BCE; the control that trains as
#: long without relations (so that C-R BCE's gain is not just the extra iterations); and C-R BCE
#: with the world's planted relations as its table, an oracle miner (what relations can do at all,
#: apart from how well they were mined).
STAGE2 = ("null-bce-stage2", "cr-bce", "cr-bce-planted")
#: The folder of the planted relations' table inside --out (as ``relations labels`` writes one).
PLANTED_DIR = "planted"


@dataclass(frozen=True)
class DemoPlan:
    """Everything the demo does, as data."""

    name: str
    train: tuple[str, ...]
    unseen: tuple[str, ...]
    images: int  # per dataset in the synthetic world
    size: tuple[int, int]  # synthetic image size (H, W)
    model: str
    crop: tuple[int, int]
    batch_size: int
    stage1_iterations: int
    stage2_iterations: int
    lr: float
    optimizer: str = "adamw"  # learns these short runs faster than the paper's SGD (README: the plan)
    weight_decay: float = 0.01
    pretrain: tuple[str, ...] = ("mapillary",)  # the pretraining run's datasets (CE, linear head)
    pretrain_iterations: int = 300
    scale: tuple[float, float] = (0.75, 1.5)
    world_seed: int = 0


PLANS: dict[str, DemoPlan] = {
    "full": DemoPlan(
        name="full", train=("cityscapes", "bdd", "idd", "mapillary"), unseen=("kitti", "wilddash", "camvid"),
        images=40, size=(192, 384), model="hrnet_tiny", crop=(160, 160), batch_size=8,
        stage1_iterations=500, stage2_iterations=200, lr=0.006,
    ),
    "quick": DemoPlan(
        name="quick", train=("cityscapes", "bdd", "idd", "mapillary"), unseen=("kitti", "wilddash", "camvid"),
        images=12, size=(96, 192), model="hrnet_tiny", crop=(96, 96), batch_size=4,
        stage1_iterations=40, stage2_iterations=20, lr=0.006, pretrain_iterations=20,
    ),
}


@dataclass
class DemoEvents:
    """What the demo tells its caller: a step starting, a line of text, and training events."""

    step: Callable[[str], None] = lambda text: None
    say: Callable[[str], None] = lambda text: None
    train_events: Optional[Callable[[], object]] = None  # a fresh TrainEvents per training run


@dataclass
class DemoResult:
    out: Path
    summary: dict
    seconds: float
    steps_done: list[str] = field(default_factory=list)


#: The pretraining run (not one of the compared methods): CE on ``plan.pretrain`` alone.
PRETRAIN = "pretrain"


def _train_config(plan: DemoPlan, world: Path, method: str, seed: int, workers: int, device: str, out: Path) -> TrainConfig:
    head = "linear" if method in ("ce", PRETRAIN) else "cosine"
    loss = {"null-bce-stage2": "null-bce", "cr-bce-planted": "cr-bce", PRETRAIN: "ce"}.get(method, method)
    names = plan.pretrain if method == PRETRAIN else plan.train
    cfg = TrainConfig(
        datasets=[DatasetSpec(n, str(world / n)) for n in names], loss=loss, model=plan.model, head=head,
        batch_size=plan.batch_size, iterations=plan.stage1_iterations, crop=plan.crop, short_side=0, scale=plan.scale,
        optimizer=plan.optimizer, lr=plan.lr, weight_decay=plan.weight_decay, seed=seed, workers=workers, val_every=0, checkpoint_every=100, log_every=max(1, plan.stage1_iterations // 10),
        device=device, dataset_weights="balanced",
    )
    if method == PRETRAIN:
        cfg = cfg.replace(iterations=plan.pretrain_iterations, log_every=max(1, plan.pretrain_iterations // 10))
    elif method in STAGE2:
        cfg = cfg.replace(init=str(out / "runs" / "null-bce" / "last.pt"), iterations=plan.stage2_iterations,
                          log_every=max(1, plan.stage2_iterations // 10))
    else:  # the first stage starts from the pretraining run's backbone (its classifier is left out)
        cfg = cfg.replace(pretrained=str(out / "runs" / PRETRAIN / "last.pt"))
    if method == "cr-bce":
        cfg = cfg.replace(relations=str(out / "relations.yaml"))
    elif method == "cr-bce-planted":
        cfg = cfg.replace(relations=str(out / PLANTED_DIR / "relations.yaml"))
    return cfg


# and the paths inside --out; not "pretrained", so that a demo folder from before the pretraining run is refused
RERUN_MAY_CHANGE = (*RESUME_MAY_CHANGE, "relations", "init")


def _earlier_run(run: Path, cfg: TrainConfig, out: Path) -> Optional[dict]:
    """``last.pt`` of an earlier demo's run in ``run`` (None: none yet); refused when it was trained
    with other settings (another plan or seed), so that a rerun never mixes two demos."""
    from uniseg.engine.checkpoint import read_checkpoint

    if not (run / "last.pt").is_file():
        return None
    doc = read_checkpoint(run / "last.pt")
    changed = recipe_changes(doc.get("config") or {}, cfg.to_dict(), RERUN_MAY_CHANGE)
    if changed:
        raise UnisegError(f"--out {out}: {run} was trained with another {changed[0]} (another plan or seed, or an older uniseg's plan); choose another --out or delete it")
    return doc


def _world(plan: DemoPlan, out: Path, registry: Registry, events: DemoEvents) -> Path:
    from uniseg.data.synth import PLANTED_FILE, synthesize

    world = out / "world"
    planted = world / PLANTED_FILE
    if planted.is_file():
        from uniseg.data.synth.planted import read_planted

        doc = read_planted(planted)
        if doc.get("seed") == plan.world_seed and doc.get("images") == plan.images and list(doc.get("size", [])) == list(plan.size):
            return world
    events.step(f"building the synthetic world ({plan.images} images x {len(plan.train) + len(plan.unseen)} datasets, {plan.size[0]}x{plan.size[1]})")
    synthesize(world, images=plan.images, size=plan.size, seed=plan.world_seed, datasets=[*plan.train, *plan.unseen], registry=registry)
    return world


def _train(cfg: TrainConfig, run: Path, out: Path, registry: Registry, events: DemoEvents, label: str) -> None:
    """Train (or finish) one of the demo's runs; a finished one is kept."""
    from uniseg.engine.trainer import TrainingInterrupted, train

    earlier = _earlier_run(run, cfg, out)
    if earlier is not None and int(earlier["iteration"]) >= cfg.iterations:
        return
    events.step(f"training {label}: {cfg.model}, {cfg.head} head, {cfg.iterations} iterations")
    made = events.train_events() if events.train_events is not None else None
    try:
        train(cfg, run, resume=earlier is not None, registry=registry, events=made)
    except TrainingInterrupted as exc:  # the demo resumes as a whole: say so, not 'uniseg train --resume'
        where = str(exc).split(":", 1)[0]
        raise TrainingInterrupted(f"{where} of {label} ({run}); rerun the same 'uniseg demo' command to resume") from None
    finally:
        if made is not None and hasattr(made, "close"):
            made.close()


def _mine_and_label(out: Path, world: Path, plan: DemoPlan, registry: Registry, events: DemoEvents, device, workers: int):
    """The mined statistics and the multi-label table (each made once, then read back): ``(sim, rs)``."""
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.mining import mine
    from uniseg.unify.relations import build_relations, read_relations, write_relations
    from uniseg.unify.similarity import read_similarity, similarity_for, write_similarity

    if (out / "relations.yaml").is_file():
        return read_similarity(out / "similarity.npz"), read_relations(out)
    if not (out / "similarity.npz").is_file():
        events.step("mining relations (Eq. 7) with the Null-BCE model")
        trained = load_trained(out / "runs" / "null-bce" / "last.pt", device)
        res = mine(trained, [(n, str(world / n)) for n in plan.train], registry, device=device, short_side=0, workers=workers)
        write_similarity(out, similarity_for(trained.union, res.score, res.cosine, res.pixels))
    sim = read_similarity(out / "similarity.npz")
    from uniseg.engine.checkpoint import read_checkpoint, checkpoint_union

    union = checkpoint_union(read_checkpoint(out / "runs" / "null-bce" / "last.pt"))
    events.step("multi-label table (Eq. 6, automatic tau)")
    rs = build_relations(sim, union, None, source=str(out / "similarity.npz"))
    write_relations(out, rs)
    return sim, rs


def _planted_relations(out: Path, world: Path, plan: DemoPlan, rs, events: DemoEvents) -> None:
    """``planted/``: the mined table with its relations replaced by the planted ones (written once)."""
    from uniseg.data.synth import PLANTED_FILE
    from uniseg.data.synth.planted import expected_relations, planted_table, read_planted
    from uniseg.unify.multilabel import TauChoice
    from uniseg.unify.relations import write_relations

    if (out / PLANTED_DIR / "relations.yaml").is_file():
        return
    events.step("the planted relations as a table (an oracle miner, for reference)")
    expected = expected_relations(read_planted(world / PLANTED_FILE), plan.train)
    table = planted_table(rs.table, rs.valid, expected, rs.datasets, rs.similarity.classes)
    tau = TauChoice(rs.tau.tau, 0, "planted", "not Eq. 6: the relations planted in the synthetic world, switched on as they are "
                    "(tau, the mined table's, played no part)")
    write_relations(out / PLANTED_DIR, replace(rs, table=table, tau=tau))


def _evaluate(out: Path, world: Path, plan: DemoPlan, registry: Registry, events: DemoEvents, device, workers: int) -> dict:
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.evaluate import evaluate_set, write_scores
    from uniseg.engine.inputs import eval_set

    table: dict[str, dict[str, float]] = {}
    for method in METHODS:
        folder = out / "eval" / method
        done = all((folder / f"{n}.json").is_file() for n in plan.unseen)
        if not done:
            events.step(f"evaluating {TITLES[method]} on {', '.join(plan.unseen)}")
            trained = load_trained(out / "runs" / method / "last.pt", device)
            scores = [evaluate_set(trained.model, eval_set(n, world / n, trained.union, registry), device=device, workers=workers)
                      for n in plan.unseen]
            write_scores(folder, scores, seen=trained.union.datasets, checkpoint=trained.path, iteration=trained.iteration,
                         union_fingerprint=trained.union.fingerprint)
        table[method] = {n: json.loads((folder / f"{n}.json").read_text())["miou"] for n in plan.unseen}
    return table


def planted_score(rs, world: Path, train: tuple[str, ...]) -> dict:
    """Precision and recall of the switched-on relations against the world's planted relations."""
    from uniseg.data.synth import PLANTED_FILE
    from uniseg.data.synth.planted import expected_relations, read_planted

    expected = expected_relations(read_planted(world / PLANTED_FILE), train)
    mined = {(r.dataset, r.primary, r.secondary): r.score for r in rs.relations()}
    hits = sorted(set(mined) & set(expected))
    return {
        "precision": len(hits) / len(mined) if mined else 0.0,
        "recall": len(hits) / len(expected) if expected else 0.0,
        "mined": [{"dataset": d, "primary": p, "secondary": s, "score": round(mined[(d, p, s)], 4), "planted": (d, p, s) in expected}
                  for d, p, s in sorted(mined)],
        "missed": [{"dataset": d, "primary": p, "secondary": s, "pixels": expected[(d, p, s)]}
                   for d, p, s in sorted(set(expected) - set(mined))],
        "expected": len(expected),
        "tau": float(rs.tau.tau),
        "tau_how": rs.tau.how,
    }


def filled_in_scores(out: Path, plan: DemoPlan, registry: Registry, tables: dict) -> dict:
    """Where relations act most directly on the unseen datasets: their classes whose unified class
    a table switches on in a training dataset that lacks it (``RelationSet.filled_in``; e.g. IDD's
    non-drivable fallback -> terrain), with each method's IoU on them (None where a method's score
    has none). ``tables``: name -> RelationSet (the mined and the planted). Any other relation
    turns a negative target into a positive one on a class the dataset's own labels teach."""
    filled = {name: rs.filled_in() for name, rs in tables.items()}
    filled_classes = set().union(*(set(f) for f in filled.values()))
    rows = []
    for n in plan.unseen:
        scores = {m: json.loads((out / "eval" / m / f"{n}.json").read_text())["per_class"] for m in METHODS}
        for c in registry.get(n).classes:
            if c.unified in filled_classes and any(scores[m].get(c.name) is not None for m in METHODS):
                rows.append({"dataset": n, "class": c.name, "unified": c.unified,
                             "by": {t: f.get(c.unified, []) for t, f in filled.items()},
                             "iou": {m: scores[m].get(c.name) for m in METHODS}})
    return {"classes": filled, "unseen": rows}


def own_scores(score, pixels) -> dict:
    """How well the mining model knows the classes: the mean own score s_{d,c}(c) (Eq. 7) over the
    (dataset, class) rows with pixels, per row and weighted by pixels. Relations mined from a model
    that scores a class low on its own pixels come from the class's surroundings, not from it."""
    import numpy as np

    own = np.einsum("dcc->dc", np.asarray(score, dtype=np.float64))
    px = np.asarray(pixels, dtype=np.float64)
    seen = px > 0
    if not seen.any():
        return {"classes": 0.0, "pixels": 0.0}
    return {"classes": float(own[seen].mean()), "pixels": float((own * px)[seen].sum() / px[seen].sum())}


def why_missed(planted: dict, score, pixels, valid, datasets, classes) -> dict:
    """Why Eq. 6 left each planted relation off, from the mining statistics alone.

    ``planted`` is :func:`planted_score`'s result. Each of its ``missed`` rows gains ``score``
    s(c'), ``own`` s(c) and ``why``: ``not learned`` when the model hardly knows the secondary
    class (its own score, ``uniseg.unify.relations.class_own_scores``, is under ``KNOWN``), for no
    mining rule can find a class the model does not know; else ``below tau``, or ``primary
    higher`` (s(c') <= s(c)). ``learned`` counts the planted relations whose secondary class the
    model knows and how many of those were found, so that the rule's recall reads apart from the
    model's."""
    import numpy as np

    from uniseg.unify.relations import KNOWN, class_own_scores

    score = np.asarray(score, dtype=np.float64)
    known = class_own_scores(score, pixels, valid) >= KNOWN
    di, ci = {n: i for i, n in enumerate(datasets)}, {n: i for i, n in enumerate(classes)}
    rows = []
    for m in planted["missed"]:
        d, c, c2 = di[m["dataset"]], ci[m["primary"]], ci[m["secondary"]]
        s2, s1 = float(score[d, c, c2]), float(score[d, c, c])
        why = "below tau" if s2 <= planted["tau"] else "primary higher"
        rows.append({**m, "score": round(s2, 4), "own": round(s1, 4), "why": why if known[c2] else "not learned"})
    found = sum(1 for m in planted["mined"] if m["planted"] and known[ci[m["secondary"]]])
    expected = found + sum(r["why"] != "not learned" for r in rows)
    return {"missed": rows, "learned": {"expected": expected, "found": found, "recall": found / expected if expected else 0.0}}


INDEX = """\
# uniseg demo ({plan} plan, seed {seed})

The UniSeg method end to end on the synthetic road world. Rerun the same command to resume.

| what | where |
|---|---|
| the synthetic world, each dataset in its real layout | `world/` |
| the relations planted in it (ground truth for mining) | `world/planted_relations.yaml` |
| pretraining run, the backbone every first-stage run starts from (CE on {pretrain} alone) | `runs/pretrain/` |
| CE baseline run (config, metrics, checkpoints) | `runs/ce/` |
| Null BCE run, cosine head | `runs/null-bce/` |
| class-relational BCE run (initialised from Null BCE) | `runs/cr-bce/` |
| control: Null BCE trained on as long, without relations | `runs/null-bce-stage2/` |
| reference: C-R BCE with the planted relations as its table (an oracle miner) | `runs/cr-bce-planted/`, `planted/` |
| mined statistics (Eq. 7) | `similarity.npz`, `similarity.csv` |
| multi-label table (Eq. 6) | `relations.yaml`, `table.npy` |
| scores on the unseen datasets | `eval/<method>/<dataset>.json` |
| everything above as numbers | `summary.json` |

## Unseen-dataset mIoU (%)

{table}

## Mined relations against the planted ones

tau = {tau:.3f} ({tau_how}); precision {precision:.2f}, recall {recall:.2f} ({n_mined} mined, {n_expected} planted).
The mining model's mean own score s(c) on its own pixels: {own_classes:.2f} per class, {own_pixels:.2f} per pixel
(a class scored low on its own pixels takes its relations from its surroundings).
Of the planted relations whose secondary class the model knows (own score at least {learned}), {l_found} of
{l_expected} were found (recall {l_recall:.2f}); {unknown} of the missed ones lead to a class it does not know,
which no mining rule can find.

{mined}

{missed}

## Where relations can act on the unseen datasets

A relation that switches a class on in a training dataset whose label space lacks it (null under
Null BCE) teaches that class from data it never saw; any other relation turns a negative target
into a positive one on a class that dataset labels. The unseen datasets' classes that get such new
data, with each method's IoU (%) ('-': no score). (CE is where the conflict bites: its softmax
pushes such a class down on the other dataset's pixels.)

{filled}
"""

WHY = {"not learned": "the model does not know the secondary class", "below tau": "s(c') <= tau",
       "primary higher": "s(c') <= s(c)"}


def _relation_tables(rel: dict) -> tuple[str, str]:
    """The mined relations (planted or not) and the missed planted ones, as markdown tables."""
    mined = ["| dataset | primary -> secondary | s(c') | planted |", "|---|---|---:|---|"]
    mined += [f"| {m['dataset']} | {m['primary']} -> {m['secondary']} | {m['score']:.2f} | {'yes' if m['planted'] else 'no'} |"
              for m in rel["mined"]]
    missed = ["Missed planted relations:", "", "| dataset | primary -> secondary | s(c') | s(c) | why |", "|---|---|---:|---:|---|"]
    missed += [f"| {m['dataset']} | {m['primary']} -> {m['secondary']} | {m['score']:.2f} | {m['own']:.2f} | {WHY[m['why']]} |"
               for m in rel["missed"]]
    return "\n".join(mined), "\n".join(missed) if rel["missed"] else "No planted relation was missed."


def _filled_table(filled: dict) -> str:
    """The unseen classes the relations fill in, with each method's IoU on each."""
    if not filled["unseen"]:
        return "No relation switches on an unseen dataset's class where a training dataset lacks it."
    lines = ["| unseen dataset | class | filled in from: mined | planted | " + " | ".join(TITLES[m] for m in METHODS) + " |",
             "|---|---|---|---|" + "---:|" * len(METHODS)]
    for r in filled["unseen"]:
        lines.append(f"| {r['dataset']} | {r['class']} | {', '.join(r['by']['mined']) or '-'} | {', '.join(r['by']['planted']) or '-'} | "
                     + " | ".join("-" if r["iou"][m] is None else f"{100 * r['iou'][m]:.1f}" for m in METHODS) + " |")
    return "\n".join(lines)


def _markdown_table(summary: dict) -> str:
    unseen = summary["unseen"]
    lines = ["| method | " + " | ".join(unseen) + " | mean |", "|---|" + "---:|" * (len(unseen) + 1)]
    for m in METHODS:
        row = summary["methods"][m]
        lines.append(f"| {TITLES[m]} | " + " | ".join(f"{100 * row['unseen'][n]:.1f}" for n in unseen) + f" | {100 * row['mean']:.1f} |")
    return "\n".join(lines)


def run_demo(
    out: str | Path,
    *,
    plan: DemoPlan = PLANS["full"],
    seed: int = 0,
    workers: int = 2,
    device: str = "auto",
    registry: Optional[Registry] = None,
    events: Optional[DemoEvents] = None,
) -> DemoResult:
    """Run (or resume) the demo into ``out``; see the module docstring."""
    from uniseg.engine.runtime import resolve_device
    from uniseg.unify.relations import KNOWN, read_relations

    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UnisegError(f"--out {out}: exists and is not a folder")
    summary_path = out / "summary.json"
    if summary_path.is_file():
        old = json.loads(summary_path.read_text())
        if old.get("plan", {}).get("name") != plan.name or old.get("seed") != seed:
            raise UnisegError(f"--out {out}: holds a demo with another plan or seed; choose another --out or delete it")
    registry = registry or default_registry()
    events = events or DemoEvents()
    dev = resolve_device(device)
    world = _world(plan, out, registry, events)
    _train(_train_config(plan, world, PRETRAIN, seed, workers, device, out), out / "runs" / PRETRAIN, out, registry, events,
           f"the pretraining run (CE on {', '.join(plan.pretrain)} alone, for the backbone)")
    for method in ("ce", "null-bce"):
        _train(_train_config(plan, world, method, seed, workers, device, out), out / "runs" / method, out, registry, events, TITLES[method])
    sim, rs = _mine_and_label(out, world, plan, registry, events, dev, workers)
    _planted_relations(out, world, plan, rs, events)
    for method in STAGE2:
        _train(_train_config(plan, world, method, seed, workers, device, out), out / "runs" / method, out, registry, events, TITLES[method])
    table = _evaluate(out, world, plan, registry, events, dev, workers)
    rel = planted_score(rs, world, plan.train)
    rel.update(why_missed(rel, sim.score, sim.pixels, rs.valid, sim.datasets, sim.classes))
    rel["own_score"] = own_scores(sim.score, sim.pixels)
    filled = filled_in_scores(out, plan, registry, {"mined": rs, "planted": read_relations(out / PLANTED_DIR)})
    summary = {
        "plan": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(plan).items()},
        "seed": seed,
        "unseen": list(plan.unseen),
        "methods": {m: {"title": TITLES[m], "unseen": table[m], "mean": sum(table[m].values()) / len(table[m])} for m in METHODS},
        "relations": rel,
        "precision": rel["precision"],
        "recall": rel["recall"],
        "filled_in": filled,
    }
    atomic_write_text(summary_path, json.dumps(summary, indent=1) + "\n")
    mined_table, missed_table = _relation_tables(rel)
    atomic_write_text(out / "README.md", INDEX.format(
        plan=plan.name, seed=seed, pretrain=", ".join(plan.pretrain), table=_markdown_table(summary), tau=rel["tau"], tau_how=rel["tau_how"],
        precision=rel["precision"], recall=rel["recall"], n_mined=len(rel["mined"]), n_expected=rel["expected"],
        own_classes=rel["own_score"]["classes"], own_pixels=rel["own_score"]["pixels"], learned=KNOWN,
        l_found=rel["learned"]["found"], l_expected=rel["learned"]["expected"], l_recall=rel["learned"]["recall"],
        unknown=sum(m["why"] == "not learned" for m in rel["missed"]), mined=mined_table, missed=missed_table,
        filled=_filled_table(filled),
    ))
    return DemoResult(out, summary, time.perf_counter() - t0)


def plan_named(name: str, **overrides) -> DemoPlan:
    if name not in PLANS:
        raise UnisegError(f"unknown demo plan {name!r} (choose {', '.join(PLANS)})")
    return replace(PLANS[name], **overrides)
