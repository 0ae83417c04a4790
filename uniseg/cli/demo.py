"""``uniseg demo``: build the synthetic world, train CE / Null BCE / class-relational BCE, mine
relations, evaluate on unseen datasets, print a Table-1-shaped result. Thin: see ``uniseg.engine.demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from uniseg.cli.options import DeviceOpt, FormatOpt
from uniseg.cli.render import Format, emit, err_console
from uniseg.errors import UnisegError

SHOW_RELATIONS = 12


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", metavar="DIR", help="Folder for every artifact (rerun to resume)."),
    plan_name: str = typer.Option("full", "--plan", metavar="full|quick|long|gpu", help="full: about 9.5 minutes on 2 CPU cores; quick: under a minute of training (CI, a first look); long: the full plan with four times the first stage, about 36 minutes on 2 CPU cores; gpu: a larger world, hrnet_w18_small_v2 and thousands of iterations, sized for one GPU."),
    quick: bool = typer.Option(False, "--quick", help="The same as --plan quick."),
    seed: int = typer.Option(0, "--seed", min=0, help="Training seed (the world is always built with seed 0)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=0, help="DataLoader worker processes (default: the plan's, at most the CPU cores beyond two: 0 on a 2-core machine)."),
    device: Optional[str] = DeviceOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Plain log lines instead of progress bars."),
    fmt: Format = FormatOpt,
) -> None:
    """The UniSeg method end to end on the synthetic road world, with the paper's Table 1 as the result.

    Trains the multi-dataset CE baseline and Null BCE (cosine head) on Cityscapes, BDD, IDD and
    Mapillary from one pretrained backbone (CE on Mapillary alone, standing in for the paper's
    ImageNet weights), mines class relations, trains the class-relational stage from the Null-BCE weights
    (and, as a control, Null BCE on for as many iterations; as a reference, C-R BCE with the
    world's planted relations as its table), and scores every run on the unseen KITTI, WildDash and
    CamVid. Everything lands in --out.
    """
    from uniseg.cli.train import CliEvents
    from uniseg.engine.demo import METHODS, SHORT, TITLES, DemoEvents, plan_named, run_demo
    from uniseg.relations.stats import KNOWN

    if quick and plan_name not in ("full", "quick"):
        raise UnisegError(f"--quick and --plan {plan_name}: give one of them")
    plan = plan_named("quick" if quick else plan_name.strip().lower())
    plain = quiet or fmt != Format.table

    def step(text: str) -> None:
        err_console.print(f"[bold]>[/] {text}", highlight=False)

    class Events(CliEvents):
        def start(self, info) -> None:  # the demo announces each run itself
            if self.bar is not None:
                self.bar.start()
                self.task = self.bar.add_task("train", total=info.iterations, completed=info.start_iteration, stats="")

        def validation(self, r: dict) -> None: ...

    result = run_demo(out, plan=plan, seed=seed, workers=workers, device=device or "auto",
                      events=DemoEvents(step=step, say=step, train_events=lambda: Events(plain)))
    s = result.summary
    rel = s["relations"]

    def tables():
        from rich.console import Group

        t = Table(title=f"Unseen-dataset mIoU (%), {plan.name} plan, seed {seed} (cf. the paper's Table 1)", title_justify="left")
        t.add_column("train datasets")
        t.add_column("method")
        for n in s["unseen"]:
            t.add_column(n, justify="right")
        t.add_column("mean", justify="right")
        for i, m in enumerate(METHODS):
            row = s["methods"][m]
            t.add_row("+".join(plan.train) if i == 0 else "", TITLES[m], *(f"{100 * row['unseen'][n]:.1f}" for n in s["unseen"]),
                      f"{100 * row['mean']:.1f}")
        r = Table(title=f"Mined relations (tau {rel['tau']:.3f}, {rel['tau_how']}, rule {s['mining']['rule']}): precision {rel['precision']:.2f}, "
                        f"recall {rel['recall']:.2f} against {rel['expected']} planted", title_justify="left")
        for col in ("dataset", "primary -> secondary", "score", "planted"):
            r.add_column(col, justify="right" if col == "score" else "left")
        for m in rel["mined"][:SHOW_RELATIONS]:
            r.add_row(m["dataset"], f"{m['primary']} -> {m['secondary']}", f"{m['score']:.2f}", "yes" if m["planted"] else "[red]no[/]")
        if len(rel["mined"]) > SHOW_RELATIONS:
            r.caption = f"… {len(rel['mined']) - SHOW_RELATIONS} more in {out}/relations.yaml"
        lr, unknown = rel["learned"], sum(m["why"] == "not learned" for m in rel["missed"])
        why = (f"planted relations whose secondary class the model knows (own score >= {KNOWN}): {lr['found']} of "
               f"{lr['expected']} found (recall {lr['recall']:.2f}); {unknown} of the missed lead to a class it does not "
               f"know (every miss and why: {out}/summary.json)")
        sets = s["evaluated"]
        cal = s["thresholds"]["calibrated"]
        thr = ", ".join(f"{SHORT[m]} {cal[m]:g}" for m in METHODS)
        paper = " or ".join(f"{v:g} on {k}" for k, v in s["thresholds"]["paper"].items())
        label_tables = []
        for key, title in (("outside_space", "Outside-space IoU (%): classes outside each dataset's label space, predicted as in Figure 4, against the world's fine truth"),
                           ("consistency", "Multi-label consistency (%): on fine classes several union classes contain, the share of pixels where all of them fire")):
            g = Table(title=title, title_justify="left", caption_justify="left",
                      caption=f"{', '.join(plan.train)}: their val splits. Each model's own threshold, the one at which its scores best "
                              f"detect the classes of those val splits: {thr} (at the paper's {paper}: {out}/summary.json)")
            g.add_column("dataset")
            for m in METHODS:
                g.add_column(SHORT[m], justify="right")
            for n in sets:
                g.add_row(n, *("-" if s[key][m][n] is None else f"{100 * s[key][m][n]:.1f}" for m in METHODS))
            label_tables.append(g)
        filled = s["filled_in"]["unseen"]
        acts = ("unseen classes relations can teach from data Null BCE leaves out: "
                + ", ".join(f"{f['dataset']} {f['class']} ({', '.join(t for t, ds in f['by'].items() if ds)})" for f in filled)
                + f" (every method's IoU on them: {out}/README.md)"
                if filled else "no relation teaches an unseen dataset's class from data Null BCE leaves out")
        return Group(t, *label_tables, r, why, acts, f"artifacts: {out}/ (index: {out}/README.md); {result.seconds:.0f} s")

    emit(s, fmt, tables)
