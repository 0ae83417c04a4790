"""The README and docs/*.md: their runnable examples run as written, and their links lead somewhere.

**Which blocks run.** A fenced ``bash`` or ``python`` block runs when the line right before its
opening fence is the HTML comment ``<!-- runnable -->`` (invisible on the code host). Blocks
without it are left alone: commands on real dataset roots (``/data/...``), and anything that
trains for minutes. Mark a block only when it takes a few seconds at most on the world below: the
whole of this test should stay well under half a minute on 2 CPU cores.

**Where they run.** One scratch folder prepared as the README's Quick start leaves it, only
smaller: the synthetic world in ``world/`` (``uniseg data synth --out world``; here Cityscapes,
BDD, IDD, Mapillary and KITTI, 6 images each at 96x192) and the union in ``runs/union``
(``uniseg labels union cityscapes bdd idd mapillary --out runs/union``). The files run in reading
order (:data:`ORDER`, then any other page alphabetically), each file's blocks in order, all in
that folder, so a page may use what an earlier page made (``relations.md`` mines with the model
``evaluation.md`` trains). The python blocks of one file share one namespace, as a reader pasting
them into one session would; bash blocks run with ``bash -e`` and the virtualenv's ``uniseg``
first on ``PATH``. Torch uses one thread (``OMP_NUM_THREADS=1``): two threads on a shared 2-core
machine made the examples several times slower.

**Links.** Every relative link ``[text](path)`` / ``[text](path#anchor)`` (images too) must point
at an existing file, and an anchor at a heading of that file under GitHub's rules (lower case,
spaces to hyphens, punctuation dropped, ``-1``, ``-2``, ... for repeated headings).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The reading order; pages not named here run after these, alphabetically.
ORDER = ("labels.md", "data.md", "training.md", "evaluation.md", "relations.md")
MARKER = "<!-- runnable -->"
RUNNABLE = ("bash", "python")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    file: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    runnable: bool

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    docs = sorted(DOCS.glob("*.md"))
    first = [DOCS / name for name in ORDER if (DOCS / name).is_file()]
    return [README, *first, *[p for p in docs if p not in first]]


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file (indented fences of list items included)."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = len(m.group(1)), m.group(2)
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        marked = start > 0 and lines[start - 1].strip() == MARKER
        out.append(Block(path, start + 1, lang, "\n".join(body) + "\n", marked))
        i += 1
    return out


def runnable(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.runnable]


def all_runnable() -> list[Block]:
    return [b for p in pages() for b in runnable(p)]


def prose(path: Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of the lines outside fenced blocks."""
    out, inside = [], False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line) or (inside and re.match(r"^\s*```\s*$", line)):
            inside = not inside
            continue
        if not inside:
            out.append((n, line))
    return out


# -- the examples run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    from uniseg.data.synth import synthesize
    from uniseg.labelspaces import default_registry
    from uniseg.unify import build_union
    from uniseg.unify.artifact import write_union_artifact

    folder = tmp_path_factory.mktemp("readme")
    synthesize(folder / "world", images=6, size=(96, 192), seed=0,
               datasets=["cityscapes", "bdd", "idd", "mapillary", "kitti"])
    reg = default_registry()
    spaces = reg.get_many(["cityscapes", "bdd", "idd", "mapillary"])
    write_union_artifact(build_union(spaces), spaces, folder / "runs" / "union")
    return folder


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def venv_bin() -> Path:
    """The folder of this interpreter's ``uniseg`` console script (the project's virtualenv)."""
    here = Path(sys.executable).parent
    if not (here / "uniseg").exists():
        pytest.fail(f"no uniseg command beside {sys.executable}; run the tests with the project's virtualenv (make test)")
    return here


def run_bash(block: Block, folder: Path) -> None:
    env = dict(os.environ, PATH=f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}", OMP_NUM_THREADS="1",
               COLUMNS="100", UNISEG_DEBUG="1")
    script = folder / ".block.sh"
    script.write_text(block.code, encoding="utf-8")
    proc = subprocess.run(["bash", "-e", str(script)], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"{block.where}: bash block failed (exit {proc.returncode})\n{block.code}\n"
                    f"--- stdout (end)\n{proc.stdout[-3000:]}\n--- stderr (end)\n{proc.stderr[-3000:]}")


def run_python(block: Block, namespace: dict) -> None:
    try:
        exec(compile(block.code, block.where, "exec"), namespace)
    except Exception as exc:  # pragma: no cover - the message is the point
        pytest.fail(f"{block.where}: python block failed: {type(exc).__name__}: {exc}\n{block.code}")


def test_there_are_runnable_examples():
    langs = [b.lang for b in all_runnable()]
    assert langs.count("python") >= 5 and langs.count("bash") >= 4, langs
    assert runnable(README), "the README's quick start should be checked"


def test_every_marker_stands_before_a_bash_or_python_block():
    for path in pages():
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if line.strip() != MARKER:
                continue
            nxt = lines[n + 1] if n + 1 < len(lines) else ""
            m = FENCE.match(nxt)
            assert m and m.group(2) in RUNNABLE, (
                f"{path.relative_to(ROOT)}:{n + 1}: {MARKER} must stand right before a ```bash or ```python fence")


def test_every_runnable_block_runs_as_written(scratch, monkeypatch, one_thread):
    monkeypatch.chdir(scratch)
    namespaces: dict[Path, dict] = {}
    for block in all_runnable():
        if block.lang == "bash":
            run_bash(block, scratch)
        else:
            run_python(block, namespaces.setdefault(block.file, {"__name__": "__readme__"}))
    # the figures labels.md states in a comment
    union = namespaces[DOCS / "labels.md"]["union"]
    assert (union.num_classes, union.fingerprint) == (70, "d5179084b312d0f7")
    text = (DOCS / "labels.md").read_text(encoding="utf-8")
    assert "union.num_classes, union.fingerprint        # 70, 'd5179084b312d0f7'" in text


# -- the pages hold together -----------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    out = []
    for n, line in prose(path):
        line = re.sub(r"`[^`]*`", "", line)  # inline code is no link
        out += [(n, target) for target in LINK.findall(line)]
    return out


def test_every_relative_link_leads_to_a_file_and_heading():
    problems = []
    for page in pages():
        for n, target in links(page):
            if EXTERNAL.match(target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}:{n}: ({target})"
            if not dest.exists():
                problems.append(f"{where}: no file {dest}")
            elif anchor and anchor not in anchors(dest):
                problems.append(f"{where}: no heading '#{anchor}' in {dest.name} (has: {', '.join(sorted(anchors(dest)))})")
    assert not problems, "\n".join(problems)


def test_the_slug_rules():
    assert slug("Remap (`bench_remap.py`)") == "remap-bench_remappy"
    assert slug("Unseen mIoU, seeds 0-2 (2-core CPU, 2026-11-26)") == "unseen-miou-seeds-0-2-2-core-cpu-2026-11-26"
    assert slug("The relation graph: `show`, `conflicts`") == "the-relation-graph-show-conflicts"


def test_every_docs_page_is_linked_and_opens_with_its_command():
    reached, todo = {README}, [README]
    while todo:
        page = todo.pop()
        for _, target in links(page):
            path = target.partition("#")[0]
            if EXTERNAL.match(target) or not path.endswith(".md"):
                continue
            dest = (page.parent / path).resolve()
            if dest.exists() and dest not in reached:
                reached.add(dest)
                todo.append(dest)
    for page in sorted(DOCS.glob("*.md")):
        assert page.resolve() in reached, f"docs/{page.name} is linked from no page the README leads to"
        first = blocks(page)[0]
        text = page.read_text(encoding="utf-8").splitlines()
        before = [line for line in text[: first.line - 1] if line.strip() and not line.startswith("#")]
        assert first.lang == "bash" and not before, f"docs/{page.name} should open with the command a user types (a bash block)"


def test_the_readme_starts_with_make_demo_and_make_test_and_stays_short():
    first = blocks(README)[0]
    commands = [line.split("#")[0].strip() for line in first.code.splitlines() if line.split("#")[0].strip()]
    assert first.lang == "bash" and commands[:2] == ["make demo", "make test"], commands
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200
    assert shutil.which("bash"), "the runnable bash blocks need bash"
