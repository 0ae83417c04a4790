"""Re-mine a finished demo's Null-BCE model with other mining settings and score each against the
world's planted relations: the experiment behind the defaults of ``relations mine --interior`` and
``relations labels --rule`` (docs/demo.md reports what it printed).

    python tools/mining_variants.py runs/demo [runs/demo-seed1 ...] [--interior off,1,2] [--rule paper,conflict]
        [--tau auto,0.4,0.5] [--run null-bce]

For every demo folder, every interior setting is mined once (into a scratch folder beside nothing:
``--scratch``, a temporary folder by default) from the model of ``--run`` (the Null-BCE run by
default, the one the demo mines; ``null-bce-stage2`` is the control, trained 200 iterations
longer) and every rule applied to it with every ``--tau`` (``auto``: the paper's automatic tau);
each line gives tau, the relations switched on, precision, recall, the recall over the planted
relations whose secondary class the model knows (own score >= 0.5), and the classes without
enough support. A last block gives the mean over the folders. Nothing in the demo folders changes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def score(folder: Path, interior: str, rules: list[str], taus: list[str], scratch: Path, plan_name: str, run: str) -> list[dict]:
    import torch

    from uniseg.data.synth import PLANTED_FILE
    from uniseg.data.synth.planted import expected_relations, read_planted
    from uniseg.engine.checkpoint import load_trained
    from uniseg.engine.demo.plan import PLANS
    from uniseg.engine.mining import interior_radius, mine_to_folder
    from uniseg.labelspaces import default_registry
    from uniseg.relations.artifact import build_relations
    from uniseg.relations.scoring import planted_score, why_missed
    from uniseg.relations.stats import read_similarity

    plan = PLANS[plan_name]
    trained = load_trained(folder / "runs" / run / "last.pt", torch.device("cpu"))
    radius = interior_radius(trained.model, interior)
    out = scratch / f"{folder.name}-{run}-interior{radius}"
    if not (out / "similarity.npz").is_file():
        mine_to_folder(trained, [(n, str(folder / "world" / n)) for n in plan.train], default_registry(), out,
                       device=torch.device("cpu"), short_side=0, workers=2, interior=radius)
    sim = read_similarity(out)
    expected = expected_relations(read_planted(folder / "world" / PLANTED_FILE), plan.train)
    rows = []
    for rule, tau in [(r, t) for r in rules for t in taus]:
        rs = build_relations(sim, trained.union, None if tau == "auto" else float(tau), rule=rule)
        rel = planted_score(rs, expected)
        rel.update(why_missed(rel, sim.score, sim.pixels, rs.valid, sim.datasets, sim.classes, min_support=rs.min_support, rule=rs.rule))
        rows.append({"folder": folder.name, "interior": radius, "rule": rule, "tau_given": tau, "tau": rs.tau.tau, "mined": len(rel["mined"]),
                     "precision": rel["precision"], "recall": rel["recall"], "known_recall": rel["learned"]["recall"],
                     "known": f"{rel['learned']['found']}/{rel['learned']['expected']}", "unsupported": len(rs.unsupported()),
                     "false": [f"{m['dataset']} {m['primary']}->{m['secondary']}" for m in rel["mined"] if not m["planted"]]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="finished 'uniseg demo --out' folders")
    ap.add_argument("--interior", default="off,1,2", help="comma-separated --interior settings (default off,1,2)")
    ap.add_argument("--rule", default="paper,conflict", help="comma-separated rules (default paper,conflict)")
    ap.add_argument("--tau", default="auto", help="comma-separated thresholds: auto (the paper's) or numbers (default auto)")
    ap.add_argument("--run", default="null-bce", help="the demo run whose last.pt is mined (default null-bce)")
    ap.add_argument("--scratch", type=Path, default=None, help="where the re-mined statistics go (default: a temporary folder)")
    ap.add_argument("--plan", default="full", help="the demo plan the folders were made with (default full)")
    ap.add_argument("--false", action="store_true", help="list the false relations of each line")
    args = ap.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="uniseg-mining-"))
    rules = args.rule.split(",")
    taus = args.tau.split(",")
    for t in taus:
        try:
            ok = t == "auto" or 0.0 <= float(t) <= 1.0
        except ValueError:
            ok = False
        if not ok:
            ap.error(f"--tau {t}: auto or a number in [0, 1]")
    rows = [r for f in args.folders for i in args.interior.split(",") for r in score(f, i, rules, taus, scratch, args.plan, args.run)]
    head = f"{'folder':<14} {'interior':>8} {'rule':<9} {'tau':>5} {'mined':>5} {'prec':>5} {'recall':>6} {'known rec':>9} {'known':>6} {'thin':>4}"
    print(head)
    for r in rows:
        print(f"{r['folder']:<14} {r['interior']:>8} {r['rule']:<9} {r['tau']:>5.2f} {r['mined']:>5} {r['precision']:>5.2f} {r['recall']:>6.2f} "
              f"{r['known_recall']:>9.2f} {r['known']:>6} {r['unsupported']:>4}")
        if args.false and r["false"]:
            print("    false: " + "; ".join(r["false"]))
    print("\nmean over folders")
    for key in sorted({(r["interior"], r["rule"], r["tau_given"]) for r in rows}):
        sel = [r for r in rows if (r["interior"], r["rule"], r["tau_given"]) == key]
        m = {k: float(np.mean([r[k] for r in sel])) for k in ("precision", "recall", "known_recall", "mined")}
        print(f"interior {key[0]} rule {key[1]:<9} tau {key[2]:<5} precision {m['precision']:.2f} recall {m['recall']:.2f} "
              f"known recall {m['known_recall']:.2f} mined {m['mined']:.1f} ({len(sel)} folders)")


if __name__ == "__main__":
    main()
