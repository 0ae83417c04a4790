"""Start-up time of the ``uniseg`` CLI (issue #11 item 3): each command against a bare interpreter.

Every command runs as a fresh process, exactly as the console script starts it
(``from uniseg.cli.main import main; main()``), output to /dev/null, round-robin over the
commands so that a busy neighbour slows all of them alike. The median and the best of
``--repeat`` runs are printed; ratios and verdicts use the best runs (of the command and of
``python -c pass``), the ones least disturbed by other work on the machine, beside the issue's
targets and the figures it measured before.

Four references show what the libraries cost by themselves: importing typer, a one-option
typer command (typer builds each parameter's converter with pydantic on first use, so any
command with an option pays for importing pydantic), importing rich's console, and what
``labels list`` does with no CLI framework at all (read the label spaces, print a rich table):
the floor under ``labels list`` with the libraries the project is built on.

Run: python benchmarks/bench_startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ENTRY = "from uniseg.cli.main import main; main()"
ONE_OPTION = (
    "import typer\n"
    "app = typer.Typer(add_completion=False)\n"
    "@app.command()\n"
    "def hello(name: str = typer.Option('x', '--name')) -> None:\n"
    "    pass\n"
    "app(['--name', 'y'])\n"
)
# What `labels list` does with no CLI framework at all: read the label spaces, print a rich table.
NO_FRAMEWORK = (
    "from rich.console import Console\n"
    "from rich.table import Table\n"
    "from uniseg.labelspaces.registry import Registry\n"
    "t = Table('name', 'classes')\n"
    "for s in Registry.from_dirs([]).all():\n"
    "    t.add_row(s.name, str(s.num_classes))\n"
    "Console().print(t)\n"
)

# (label, argv after the interpreter, target as (kind, value), issue's figure before the work)
CASES = [
    ("python -c pass", ["-c", "pass"], None, "0.08 s"),
    ("import typer (reference)", ["-c", "import typer"], None, "-"),
    ("typer, one-option command (reference)", ["-c", ONE_OPTION], None, "-"),
    ("import rich.console (reference)", ["-c", "import rich.console"], None, "-"),
    ("labels list without typer (reference)", ["-c", NO_FRAMEWORK], None, "-"),
    ("uniseg --help", ["-c", ENTRY, "--help"], ("ratio", 3.0), "0.6 s"),
    ("uniseg labels list", ["-c", ENTRY, "labels", "list"], ("ratio", 3.0), "0.5-0.8 s"),
    ("uniseg labels union cityscapes bdd idd mapillary", ["-c", ENTRY, "labels", "union", "cityscapes", "bdd", "idd", "mapillary"], None, "0.6-0.9 s"),
    ("uniseg models list", ["-c", ENTRY, "models", "list"], ("seconds", 1.0), "13 s"),
    ("uniseg models info hrnet_w18_small_v2", ["-c", ENTRY, "models", "info", "hrnet_w18_small_v2"], ("seconds", 1.0), "7-9 s"),
    ("uniseg models info hrnet_w48 --size 1024x2048", ["-c", ENTRY, "models", "info", "hrnet_w48", "--size", "1024x2048"], ("seconds", 1.0), "7-9 s"),
]


def _run(argv: list[str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:]) or argv}: exit {res.returncode}: {res.stderr.decode()[-500:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15, help="runs per command (default 15)")
    args = ap.parse_args()
    env_note = f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    print(f"Python {sys.version.split()[0]} at {sys.executable}; {env_note} before")

    for _, argv, _, _ in CASES:  # warm the file cache and the .pyc files
        _run(argv)
    times: dict[str, list[float]] = {label: [] for label, *_ in CASES}
    for _ in range(max(args.repeat, 1)):
        for label, argv, _, _ in CASES:
            times[label].append(_run(argv))

    bare = min(times[CASES[0][0]])
    width = max(len(label) for label, *_ in CASES)
    print(f"\n{'command':<{width}}  median    best   best/bare  target              before (issue #11)")
    missed = 0
    for label, _, target, before in CASES:
        med, best = statistics.median(times[label]), min(times[label])
        ratio = best / bare
        if target is None:
            verdict = ""
        elif target[0] == "ratio":
            ok = ratio <= target[1]
            verdict = f"<= {target[1]:.0f}x bare: {'OK' if ok else 'MISSED'}"
            missed += not ok
        else:
            ok = best < target[1]
            verdict = f"< {target[1]:.0f} s: {'OK' if ok else 'MISSED'}"
            missed += not ok
        print(f"{label:<{width}}  {med:5.3f} s {best:5.3f} s  {ratio:8.1f}x  {verdict:<19} {before}")
    print(f"\nload average {', '.join(f'{x:.2f}' for x in os.getloadavg())} after; "
          f"{missed} target(s) missed" if missed else f"\nload average {', '.join(f'{x:.2f}' for x in os.getloadavg())} after; every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
