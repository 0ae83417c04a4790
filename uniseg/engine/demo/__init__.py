"""``uniseg demo``: the whole UniSeg method on the synthetic road world, in one folder.

Steps (each skipped when its output is already complete, so an interrupted demo resumes):

1. ``world/``: the synthetic world (``uniseg data synth``) with its planted relations and its fine
   truth;
2. the runs of :data:`~uniseg.engine.demo.plan.RUNS`: the pretraining run (the stand-in for the
   ImageNet weights), the multi-dataset CE baseline and Null BCE from its backbone;
3. ``similarity.npz``: relation mining (Eq. 7) with the Null-BCE model over the training datasets,
   as ``uniseg relations mine`` does it (:func:`uniseg.engine.mining.mine_to_folder`), with
   ``mining.json`` saying which model mined it (a rerun reuses only statistics its own model mined);
4. ``relations.yaml`` + ``table.npy``: the multi-label table (Eq. 6, automatic tau), and
   ``planted/``: the same with the planted relations switched on instead (an oracle miner);
5. the second stage from the Null-BCE weights: the control (Null BCE on as long), C-R BCE, and
   C-R BCE on the planted table;
6. ``eval/<method>/<dataset>.json``: every method on the training datasets' val splits and the
   unseen KITTI, WildDash and CamVid: mIoU, and label-space generalisation on the fine truth
   (outside-space IoU, multi-label consistency; :mod:`uniseg.engine.generalisation`);
7. ``summary.json`` and ``README.md`` (:mod:`uniseg.engine.demo.report`).

The plans and the runs are data (:mod:`uniseg.engine.demo.plan`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from uniseg.engine.config import RESUME_MAY_CHANGE, TrainConfig, recipe_changes
from uniseg.engine.demo.plan import (  # noqa: F401  (the demo's public names)
    METHODS, PLANS, PLANTED_DIR, PRETRAIN, RUN, RUNS, SHORT, STAGE2, TITLES, DemoPlan, Run, plan_named, train_config,
)
from uniseg.errors import UnisegError
from uniseg.io import atomic_write_text
from uniseg.labelspaces.registry import Registry, default_registry


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
    """``out/world``, built unless it is there with the plan's settings and its fine truth (a world
    from before the fine truth is written again: the same images and labels, and the truth)."""
    from uniseg.data.synth import PLANTED_FILE, synthesize

    world = out / "world"
    planted = world / PLANTED_FILE
    if planted.is_file():
        from uniseg.data.synth.planted import read_planted

        doc = read_planted(planted)
        same = doc.get("seed") == plan.world_seed and doc.get("images") == plan.images and list(doc.get("size", [])) == list(plan.size)
        if same and "fine_truth" in doc and set(plan.evaluated) <= set(doc["datasets"]):
            return world
        if not same:  # runs trained on it refer to that world: never replaced under them
            raise UnisegError(f"--out {out}: its world was made for another plan (seed {doc.get('seed')}, {doc.get('images')} images, "
                              f"size {'x'.join(map(str, doc.get('size') or []))}); choose another --out or delete it")
    events.step(f"building the synthetic world ({plan.images} images x {len(plan.evaluated)} datasets, {plan.size[0]}x{plan.size[1]})")
    synthesize(world, images=plan.images, size=plan.size, seed=plan.world_seed, datasets=list(plan.evaluated), registry=registry)
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


def _train_run(plan: DemoPlan, world: Path, run: Run, seed: int, workers: int, device: str, out: Path, registry: Registry,
               events: DemoEvents) -> None:
    label = TITLES.get(run.name, f"{run.title} (CE on {', '.join(plan.pretrain)} alone, for the backbone)")
    _train(train_config(plan, world, run, seed, workers, device, out), out / "runs" / run.name, out, registry, events, label)


def _mine_and_label(out: Path, world: Path, plan: DemoPlan, registry: Registry, events: DemoEvents, device, workers: int):
    """The mined statistics and the multi-label table (each made once, then read back): ``(sim, rs)``.
    Each is checked against what made it: the statistics were mined by this demo's Null-BCE model
    (``mining.json``), with this plan's interior radius; the table is the one Eq. 6 gives them with
    this plan's rule and automatic tau, not reviewed by hand. Anything else in ``out`` (another
    command's relations, an older demo's) is refused, never trained on."""
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.mining import MINING_RECORD, interior_radius, mine_to_folder, read_mining_record, weights_fingerprint
    from uniseg.relations.artifact import build_relations, read_relations, table_fingerprint, write_relations
    from uniseg.relations.stats import SIMILARITY_FILE, read_similarity

    trained = load_trained(out / "runs" / "null-bce" / "last.pt", device)
    radius = interior_radius(trained.model, plan.interior)
    if not (out / SIMILARITY_FILE).is_file():
        events.step(f"mining relations (Eq. 7) with the Null-BCE model ({f'interior pixels, radius {radius}' if radius else 'every pixel'})")
        mine_to_folder(trained, [(n, str(world / n)) for n in plan.train], registry, out, device=device, short_side=0,
                       workers=workers, interior=radius)
    sim = read_similarity(out / SIMILARITY_FILE)
    record = read_mining_record(out)
    why = ("no mining.json records what mined it" if record is None
           else "mining.json speaks for another similarity.npz" if record.get("similarity_fingerprint") != sim.content_fingerprint
           else f"it was mined with {record.get('checkpoint')}" if record.get("weights") != weights_fingerprint(trained.model)
           else "")
    if why:
        raise UnisegError(f"--out {out}: similarity.npz was not mined by this demo's Null-BCE model ({why}; another command's or an older "
                          f"demo's); choose another --out or delete similarity.npz, {MINING_RECORD}, relations.yaml, table.npy and runs/cr-bce*")
    if sim.interior != radius:
        raise UnisegError(f"--out {out}: similarity.npz was mined with interior radius {sim.interior}, this plan mines with {radius} "
                          "(an older uniseg's plan); choose another --out or delete similarity.npz and what follows it")
    made = build_relations(sim, trained.union, None, source=str(out / SIMILARITY_FILE), rule=plan.rule)
    if (out / "relations.yaml").is_file():
        rs = read_relations(out)
        if (rs.reviewed or rs.rule != plan.rule or rs.tau.how != "auto" or rs.min_support != made.min_support
                or rs.similarity.content_fingerprint != sim.content_fingerprint or table_fingerprint(rs.table) != table_fingerprint(made.table)):
            raise UnisegError(f"--out {out}: relations.yaml is not the table this demo makes from its statistics (Eq. 6, automatic tau, "
                              f"rule {plan.rule!r}; it has rule {rs.rule!r}, tau {rs.tau.tau:.4f} ({rs.tau.how}){', reviewed by hand' if rs.reviewed else ''}); "
                              "choose another --out or delete relations.yaml, table.npy and the C-R BCE runs")
        return sim, rs
    events.step(f"multi-label table (Eq. 6, automatic tau, rule {plan.rule})")
    write_relations(out, made)
    return sim, read_relations(out)


def _planted_relations(out: Path, world: Path, plan: DemoPlan, rs, events: DemoEvents) -> None:
    """``planted/``: the mined table with its relations replaced by the planted ones (written once)."""
    from uniseg.data.synth import PLANTED_FILE
    from uniseg.data.synth.planted import expected_relations, read_planted
    from uniseg.relations.scoring import planted_table
    from uniseg.relations.eq6 import TauChoice
    from uniseg.relations.artifact import write_relations

    from uniseg.relations.artifact import read_relations, table_fingerprint

    expected = expected_relations(read_planted(world / PLANTED_FILE), plan.train)
    table = planted_table(rs.table, rs.valid, expected, rs.datasets, rs.similarity.classes)
    if (out / PLANTED_DIR / "relations.yaml").is_file():  # made once; refused when it is not this world's planted table
        held = read_relations(out / PLANTED_DIR)
        if held.tau.how != "planted" or table_fingerprint(held.table) != table_fingerprint(table):
            raise UnisegError(f"--out {out}: {PLANTED_DIR}/relations.yaml is not the planted relations of this world and these "
                              f"statistics; choose another --out or delete {PLANTED_DIR}/ and runs/cr-bce-planted")
        return
    events.step("the planted relations as a table (an oracle miner, for reference)")
    tau = TauChoice(rs.tau.tau, 0, "planted", "not Eq. 6: the relations planted in the synthetic world, switched on as they are "
                    "(tau, the mined table's, played no part)")
    write_relations(out / PLANTED_DIR, replace(rs, table=table, tau=tau))


def _scored(path: Path) -> bool:
    """A score file of this uniseg: it holds the fine-truth scores and their threshold sweep (older demos' do not)."""
    if not path.is_file():
        return False
    try:
        return "threshold_sweep" in json.loads(path.read_text())
    except (OSError, ValueError):
        return False


def _evaluate(out: Path, world: Path, plan: DemoPlan, registry: Registry, events: DemoEvents, device, workers: int) -> dict:
    """``{method: {dataset: score document}}``: each run on every evaluated set, with its fine truth."""
    from uniseg.data.synth.truth import fine_truth_for
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.evaluate import evaluate_set, write_scores
    from uniseg.engine.generalisation import FineScoring
    from uniseg.engine.inputs import eval_set

    docs: dict[str, dict[str, dict]] = {}
    for method in METHODS:
        folder = out / "eval" / method
        if not all(_scored(folder / f"{n}.json") for n in plan.evaluated):
            events.step(f"evaluating {TITLES[method]} on {', '.join(plan.evaluated)}")
            trained = load_trained(out / "runs" / method / "last.pt", device)
            fine = FineScoring(fine_truth_for(world, trained.union), trained.activation)
            scores = [evaluate_set(trained.model, eval_set(n, world / n, trained.union, registry), device=device, workers=workers, fine=fine)
                      for n in plan.evaluated]
            write_scores(folder, scores, seen=trained.union.datasets, checkpoint=trained.path, iteration=trained.iteration,
                         union_fingerprint=trained.union.fingerprint, fine_truth=str(world), overwrite=True)  # the demo's own folder
        docs[method] = {n: json.loads((folder / f"{n}.json").read_text()) for n in plan.evaluated}
    return docs


def label_space_scores(plan: DemoPlan, docs: dict) -> dict:
    """The label-space generalisation keys of ``summary.json`` from the score documents of
    :func:`_evaluate`: ``outside_space`` / ``consistency`` ``{method: {set: mean}}`` at each model's
    own threshold (the grid threshold at which ``score > t`` best detects the classes of its
    training datasets' val splits: ``thresholds.calibrated``), the same at the paper's thresholds
    (``*_paper``: sigmoid 0.5, softmax 0.1, which a 70-way softmax passes where it is unsure), and
    the per-class outside-space IoU at the calibrated thresholds."""
    from uniseg.engine.generalisation import PAPER_THRESHOLDS, at_threshold, calibrated_threshold

    chosen = {}
    for m in METHODS:
        t = calibrated_threshold([docs[m][n]["threshold_sweep"] for n in plan.train])
        chosen[m] = docs[m][plan.train[0]]["outside_space"]["threshold"] if t is None else t
    sweep = lambda m, n: docs[m][n]["threshold_sweep"]  # noqa: E731
    return {
        "outside_space": {m: {n: at_threshold(sweep(m, n), "outside_space", chosen[m]) for n in plan.evaluated} for m in METHODS},
        "consistency": {m: {n: at_threshold(sweep(m, n), "consistency", chosen[m]) for n in plan.evaluated} for m in METHODS},
        "outside_space_paper": {m: {n: docs[m][n]["outside_space"]["mean"] for n in plan.evaluated} for m in METHODS},
        "consistency_paper": {m: {n: docs[m][n]["consistency"]["mean"] for n in plan.evaluated} for m in METHODS},
        "outside_space_per_class": {m: {n: {c: v[sweep(m, n)["thresholds"].index(chosen[m])] for c, v in sweep(m, n)["outside_per_class"].items()}
                                        for n in plan.evaluated} for m in METHODS},
        "in_space_iou": {m: {n: at_threshold(sweep(m, n), "in_space_iou", chosen[m]) for n in plan.train} for m in METHODS},
        "thresholds": {"paper": dict(PAPER_THRESHOLDS), "calibrated": chosen,
                       "activation": {m: docs[m][plan.train[0]]["outside_space"]["activation"] for m in METHODS}},
    }


def filled_in_scores(plan: DemoPlan, registry: Registry, tables: dict, docs: dict) -> dict:
    """Where relations act most directly on the unseen datasets: their classes whose unified class
    a table switches on in a training dataset that lacks it (``RelationSet.filled_in``; e.g. IDD's
    non-drivable fallback -> terrain), with each method's IoU on them (None where a method's score
    has none). ``tables``: name -> RelationSet (the mined and the planted); ``docs``: the score
    documents of :func:`_evaluate`. Any other relation turns a negative target into a positive one
    on a class the dataset's own labels teach."""
    filled = {name: rs.filled_in() for name, rs in tables.items()}
    filled_classes = set().union(*(set(f) for f in filled.values()))
    rows = []
    for n in plan.unseen:
        scores = {m: docs[m][n]["per_class"] for m in METHODS}
        for c in registry.get(n).classes:
            if c.unified in filled_classes and any(scores[m].get(c.name) is not None for m in METHODS):
                rows.append({"dataset": n, "class": c.name, "unified": c.unified,
                             "by": {t: f.get(c.unified, []) for t, f in filled.items()},
                             "iou": {m: scores[m].get(c.name) for m in METHODS}})
    return {"classes": filled, "unseen": rows}


def _check_seed(seed: int) -> None:
    from uniseg.engine.config import check_seed

    check_seed(seed)  # before the world is built: a seed torch cannot take would fail only at the first run


def run_demo(
    out: str | Path,
    *,
    plan: DemoPlan = PLANS["full"],
    seed: int = 0,
    workers: Optional[int] = None,
    device: str = "auto",
    registry: Optional[Registry] = None,
    events: Optional[DemoEvents] = None,
) -> DemoResult:
    """Run (or resume) the demo into ``out``; see the module docstring. ``workers``: DataLoader
    workers (default: :meth:`DemoPlan.workers_for` this machine)."""
    from uniseg.data.synth.planted import expected_relations, read_planted
    from uniseg.relations.scoring import planted_score, why_missed
    from uniseg.data.synth import PLANTED_FILE
    from uniseg.engine.demo.report import index
    from uniseg.engine.runtime import resolve_device
    from uniseg.relations.artifact import read_relations
    from uniseg.relations.stats import KNOWN, mean_own_scores

    t0 = time.perf_counter()
    _check_seed(seed)
    out = Path(out)
    workers = plan.workers_for() if workers is None else workers
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
    for run in RUNS:
        if not run.init:
            _train_run(plan, world, run, seed, workers, device, out, registry, events)
    sim, rs = _mine_and_label(out, world, plan, registry, events, dev, workers)
    _planted_relations(out, world, plan, rs, events)
    for run in RUNS:
        if run.init:
            _train_run(plan, world, run, seed, workers, device, out, registry, events)
    docs = _evaluate(out, world, plan, registry, events, dev, workers)
    expected = expected_relations(read_planted(world / PLANTED_FILE), plan.train)
    rel = planted_score(rs, expected)
    rel.update(why_missed(rel, sim.score, sim.pixels, rs.valid, sim.datasets, sim.classes, min_support=rs.min_support, rule=rs.rule))
    rel["own_score"] = mean_own_scores(sim.score, sim.pixels)
    rel["not_enough_support"] = rs.unsupported()
    filled = filled_in_scores(plan, registry, {"mined": rs, "planted": read_relations(out / PLANTED_DIR)}, docs)
    unseen = {m: {n: docs[m][n]["miou"] for n in plan.unseen} for m in METHODS}
    label_space = label_space_scores(plan, docs)
    summary = {
        "plan": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(plan).items()},
        "seed": seed,
        "unseen": list(plan.unseen),
        "methods": {m: {"title": TITLES[m], "unseen": unseen[m], "mean": sum(unseen[m].values()) / len(unseen[m])} for m in METHODS},
        "relations": rel,
        "precision": rel["precision"],
        "recall": rel["recall"],
        "filled_in": filled,
        "evaluated": list(plan.evaluated),
        "val_miou": {m: {n: docs[m][n]["miou"] for n in plan.train} for m in METHODS},
        **label_space,
        "mining": {"interior": int(sim.interior), "rule": rs.rule, "min_support": int(rs.min_support)},
    }
    atomic_write_text(summary_path, json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out / "README.md", index(plan, summary, KNOWN))
    return DemoResult(out, summary, time.perf_counter() - t0)
