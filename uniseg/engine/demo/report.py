"""The demo's report: ``DIR/README.md``, the index of every artifact with the result tables."""

from __future__ import annotations

from uniseg.relations.scoring import WHY
from uniseg.engine.demo.plan import METHODS, TITLES, DemoPlan

INDEX = """\
# uniseg demo ({plan} plan, seed {seed})

The UniSeg method end to end on the synthetic road world. Rerun the same command to resume.

| what | where |
|---|---|
| the synthetic world, each dataset in its real layout | `world/` |
| the relations planted in it (ground truth for mining) | `world/planted_relations.yaml` |
| its fine truth (what only a synthetic world has) | `world/fine/` |
| pretraining run, the backbone every first-stage run starts from (CE on {pretrain} alone) | `runs/pretrain/` |
| CE baseline run (config, metrics, checkpoints) | `runs/ce/` |
| Null BCE run, cosine head | `runs/null-bce/` |
| class-relational BCE run (initialised from Null BCE) | `runs/cr-bce/` |
| control: Null BCE trained on as long, without relations | `runs/null-bce-stage2/` |
| reference: C-R BCE with the planted relations as its table (an oracle miner) | `runs/cr-bce-planted/`, `planted/` |
| mined statistics (Eq. 7, {interior}) | `similarity.npz`, `similarity.csv`, `union.yaml` |
| multi-label table (Eq. 6, rule: {rule}) | `relations.yaml`, `table.npy` |
| scores: every run on the training datasets' val splits and the unseen datasets | `eval/<method>/<dataset>.json` |
| everything above as numbers | `summary.json` |

## Unseen-dataset mIoU (%)

{table}

## Label-space generalisation (the paper's Figure 4 as numbers)

Outside-space IoU (%): on each set, every union class outside that dataset's own label space that
the world's fine truth holds there (lane marking on Cityscapes, rider on Mapillary), predicted as
in Figure 4 (the top class outside the label space, where it scores above the threshold), against
the fine truth; the mean over those classes. It measures whether a model predicts the union's
classes in every domain, or only where they were labelled.

Thresholds: each model's own, the grid threshold at which `score > t` best detects the classes of
its training datasets' val splits (the highest mean in-space IoU): {calibrated}. The paper's (0.5 on
sigmoid, 0.1 on softmax) are not comparable between the two: a softmax over the union passes 0.1
where the model is unsure between two classes. At the paper's thresholds the tables read:
`summary.json` `outside_space_paper`, `consistency_paper`.

{outside}

Multi-label consistency (%): on the pixels of each fine class that several union classes contain
(a bicyclist pixel: bicyclist and rider; a bike-lane pixel: bike lane and road), the share where
all of them score above the threshold; the mean over those fine classes. It measures whether a
model has learnt that the classes overlap.

{consistency}

The outside classes some model predicts (IoU at least 1% for one method), IoU (%) per method:

{per_class}

## Mined relations against the planted ones

tau = {tau:.3f} ({tau_how}), rule: {rule}; precision {precision:.2f}, recall {recall:.2f} ({n_mined} mined, {n_expected} planted).
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


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def relation_tables(rel: dict) -> tuple[str, str]:
    """The mined relations (planted or not) and the missed planted ones, as markdown tables."""
    mined = ["| dataset | primary -> secondary | s(c') | planted |", "|---|---|---:|---|"]
    mined += [f"| {m['dataset']} | {m['primary']} -> {m['secondary']} | {m['score']:.2f} | {'yes' if m['planted'] else 'no'} |"
              for m in rel["mined"]]
    missed = ["Missed planted relations:", "", "| dataset | primary -> secondary | s(c') | s(c) | why |", "|---|---|---:|---:|---|"]
    missed += [f"| {m['dataset']} | {m['primary']} -> {m['secondary']} | {m['score']:.2f} | {m['own']:.2f} | {WHY[m['why']]} |"
               for m in rel["missed"]]
    return "\n".join(mined), "\n".join(missed) if rel["missed"] else "No planted relation was missed."


def filled_table(filled: dict) -> str:
    """The unseen classes the relations fill in, with each method's IoU on each."""
    if not filled["unseen"]:
        return "No relation switches on an unseen dataset's class where a training dataset lacks it."
    lines = ["| unseen dataset | class | filled in from: mined | planted | " + " | ".join(TITLES[m] for m in METHODS) + " |",
             "|---|---|---|---|" + "---:|" * len(METHODS)]
    for r in filled["unseen"]:
        lines.append(f"| {r['dataset']} | {r['class']} | {', '.join(r['by']['mined']) or '-'} | {', '.join(r['by']['planted']) or '-'} | "
                     + " | ".join(pct(r["iou"][m]) for m in METHODS) + " |")
    return "\n".join(lines)


def miou_table(summary: dict) -> str:
    unseen = summary["unseen"]
    lines = ["| method | " + " | ".join(unseen) + " | mean |", "|---|" + "---:|" * (len(unseen) + 1)]
    for m in METHODS:
        row = summary["methods"][m]
        lines.append(f"| {TITLES[m]} | " + " | ".join(pct(row["unseen"][n]) for n in unseen) + f" | {pct(row['mean'])} |")
    return "\n".join(lines)


def per_set_table(scores: dict[str, dict[str, float | None]], sets: list[str], seen: tuple[str, ...]) -> str:
    """``{method: {dataset: mean}}`` as a table: training datasets' val splits, then the unseen ones."""
    head = [f"{n} (val)" if n in seen else n for n in sets]
    lines = ["| method | " + " | ".join(head) + " |", "|---|" + "---:|" * len(sets)]
    for m in METHODS:
        lines.append(f"| {TITLES[m]} | " + " | ".join(pct(scores[m].get(n)) for n in sets) + " |")
    return "\n".join(lines)


def outside_class_table(per_class: dict, sets: list[str]) -> str:
    """``{method: {set: {class: iou}}}`` as rows (set, class) where some method reaches 1%."""
    lines = ["| set | class | " + " | ".join(TITLES[m] for m in METHODS) + " |", "|---|---|" + "---:|" * len(METHODS)]
    for n in sets:
        for c in sorted({c for m in METHODS for c in per_class[m][n]}):
            row = [per_class[m][n].get(c) for m in METHODS]
            if max((v or 0.0) for v in row) >= 0.01:
                lines.append(f"| {n} | {c} | " + " | ".join(pct(v) for v in row) + " |")
    return "\n".join(lines) if len(lines) > 2 else "No outside class reaches 1% IoU for any method."


def index(plan: DemoPlan, summary: dict, known: float) -> str:
    """The ``README.md`` of a finished demo folder."""
    rel = summary["relations"]
    mined_table, missed_table = relation_tables(rel)
    sets = summary["evaluated"]
    cal = summary["thresholds"]["calibrated"]
    radius = summary["mining"]["interior"]
    return INDEX.format(
        plan=plan.name, seed=summary["seed"], pretrain=", ".join(plan.pretrain), table=miou_table(summary),
        interior=f"interior pixels, borders of {radius} px left out" if radius else "every pixel, the paper's plain mean",
        rule=summary["mining"]["rule"], calibrated=", ".join(f"{TITLES[m]} {cal[m]:g}" for m in METHODS),
        per_class=outside_class_table(summary["outside_space_per_class"], sets),
        outside=per_set_table(summary["outside_space"], sets, plan.train),
        consistency=per_set_table(summary["consistency"], sets, plan.train),
        tau=rel["tau"], tau_how=rel["tau_how"], precision=rel["precision"], recall=rel["recall"], n_mined=len(rel["mined"]),
        n_expected=rel["expected"], own_classes=rel["own_score"]["classes"], own_pixels=rel["own_score"]["pixels"], learned=known,
        l_found=rel["learned"]["found"], l_expected=rel["learned"]["expected"], l_recall=rel["learned"]["recall"],
        unknown=sum(m["why"] == "not learned" for m in rel["missed"]), mined=mined_table, missed=missed_table,
        filled=filled_table(summary["filled_in"]),
    )
