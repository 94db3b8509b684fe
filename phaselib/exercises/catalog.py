"""The catalogue of the book's exercises: every exercise of every chapter, with its checker.

Scans the notebooks listed in `_toc.yml`, in order, for exercise headings in the
markdown (`**Exercise N: title.**`) and for the `check_<name>(...)` calls of the code
cells that follow each heading, and finds the module of `phaselib/exercises/` that
defines each checker (by reading the modules' source, without importing them). An
exercise marked "(open)" has no checker.

`python -m phaselib.exercises.catalog > book/back/exercises.md` regenerates the book's
page, with each exercise's time and difficulty from `estimates.py`; a test checks that
the page equals what `render_page()` writes, and that every exercise has an estimate.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .estimates import DIFFICULTY, ESTIMATES, estimate, format_minutes

REPO = Path(__file__).resolve().parents[2]
HEADING = re.compile(r"\*\*(Exercise\s+(\d+)[^*]*?)\.?\*\*")
CALL = re.compile(r"\b(check_\w+)\(")


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, its heading, its checkers and where they are defined."""

    chapter: str          # path of the notebook, relative to the repository, no suffix
    title: str            # the chapter's title (its first "# " heading)
    number: int
    heading: str          # "Exercise 2: the suffix rule"
    checkers: tuple[str, ...]
    modules: tuple[str, ...]   # phaselib/exercises/<module>.py for each checker


def toc_chapters(root: Path = REPO) -> list[str]:
    """The `file:` entries of `_toc.yml`, in order (the root page first)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def checker_modules(root: Path = REPO) -> dict[str, str]:
    """{check_name: "phaselib/exercises/<module>.py"} for every checker the package defines."""
    out: dict[str, str] = {}
    for path in sorted((root / "phaselib" / "exercises").glob("*.py")):
        if path.name.startswith("_") or path.name == "catalog.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("check_"):
                out[node.name] = str(path.relative_to(root))
    return out


def scan_notebook(path: Path, known: dict[str, str]) -> list[tuple[int, str, list[str]]]:
    """[(number, heading, [checker, ...])] of one notebook, in order of appearance.

    A checker counts for the latest exercise heading above it; names that the package
    does not define (e.g. `subprocess.check_call`) are ignored.
    """
    if not isinstance(path, Path):
        raise TypeError(f"path must be a pathlib.Path, got {type(path).__name__}")
    if path.suffix != ".ipynb":
        raise ValueError(f"path must be a .ipynb notebook, got {path.name!r}")
    found: list[tuple[int, str, list[str]]] = []
    for cell in json.loads(path.read_text())["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            for m in HEADING.finditer(src):
                found.append((int(m.group(2)), " ".join(m.group(1).split()), []))
        elif found:
            for name in CALL.findall(src):
                if name in known and name not in found[-1][2]:
                    found[-1][2].append(name)
    return found


def chapter_title(path: Path) -> str:
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def catalog(root: Path = REPO) -> list[Exercise]:
    """Every exercise of every notebook in the table of contents, in book order."""
    known = checker_modules(root)
    rows = []
    for chapter in toc_chapters(root):
        path = root / f"{chapter}.ipynb"
        if not path.exists():
            continue
        title = chapter_title(path)
        for number, heading, checkers in scan_notebook(path, known):
            rows.append(Exercise(chapter, title, number, heading, tuple(checkers),
                                 tuple(known[c] for c in checkers)))
    return rows


def estimate_problems(rows: list[Exercise],
                      estimates: dict[str, dict[int, tuple[int, int]]] = ESTIMATES
                      ) -> tuple[list[str], list[str]]:
    """(exercises without an estimate, estimates of exercises that do not exist), each
    as "chapter: Exercise N"."""
    have = {(r.chapter, r.number) for r in rows}
    missing = [f"{r.chapter}: Exercise {r.number}" for r in rows
               if r.number not in estimates.get(r.chapter, {})]
    stale = [f"{c}: Exercise {n}" for c, by_number in estimates.items()
             for n in by_number if (c, n) not in have]
    return missing, stale


def render_page(root: Path = REPO) -> str:
    """The markdown page `book/back/exercises.md`: a table of every exercise."""
    rows = catalog(root)
    n_checked = sum(1 for r in rows if r.checkers)
    known = [(r, estimate(r.chapter, r.number)) for r in rows]
    checked_h = sum(e[0] for r, e in known if e and r.checkers) / 60
    open_h = sum(e[0] for r, e in known if e and not r.checkers) / 60
    lines = [
        "# Exercises and their checkers",
        "",
        "<!-- Generated by `python -m phaselib.exercises.catalog > book/back/exercises.md`;",
        "     do not edit by hand (tests/unit/test_course.py checks it is current). -->",
        "",
        f"Every exercise of the book, chapter by chapter: {len(rows)} exercises, "
        f"{n_checked} with a",
        "checker in `phaselib.exercises` that runs the learner's function on seeded and",
        "awkward inputs and says what is wrong. Exercises marked *open* have no checker:",
        "they make short written or experimental assignments (answer notes in the",
        "[instructor notes](instructor-notes.md)). Solutions are in each chapter,",
        "folded (click \"Show code cell source\");",
        "`python -m phaselib.book student-copy OUT` writes the chapters without them.",
        "",
        "**Time** is an estimate for a student who has read the chapter up to the",
        "exercise; for an open exercise it includes its runs on a laptop CPU (or the",
        "GPU it asks for) and a short write-up. **Difficulty**:",
        "; ".join(f"{k}, {v}" for k, v in DIFFICULTY.items()) + ".",
        f"The checked exercises take about {checked_h:.0f} hours in all, the open ones",
        f"about {open_h:.0f} more. The estimates are data",
        "(`phaselib/exercises/estimates.py`), made by reading each exercise and its",
        "solution, not timings of a class.",
        "",
        "| Chapter | Exercise | Time | Difficulty | Checker | Defined in |",
        "|---|---|---|---|---|---|",
    ]
    for r, est in known:
        link = f"[{r.title}](../{r.chapter.split('book/', 1)[-1]}.ipynb)"
        checker = ", ".join(f"`{c}`" for c in r.checkers) or (
            "*open*: no checker" if "(open)" in r.heading else "none found")
        where = ", ".join(f"`{m}`" for m in dict.fromkeys(r.modules)) or ""
        time = format_minutes(est[0]) if est else "no estimate"
        level = str(est[1]) if est else ""
        cells = [link, r.heading, time, level, checker, where]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.exercises.catalog",
                                description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=REPO, help="repository root (with _toc.yml)")
    args = p.parse_args(argv)
    if not (args.root / "_toc.yml").exists():
        p.error(f"--root {args.root} has no _toc.yml")
    sys.stdout.write(render_page(args.root))
    missing, stale = estimate_problems(catalog(args.root))
    for what, items in (("no estimate in phaselib/exercises/estimates.py", missing),
                        ("an estimate but no such exercise", stale)):
        if items:
            print(f"warning: {what}: " + "; ".join(items), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
