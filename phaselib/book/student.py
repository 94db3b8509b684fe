"""Student copies of the chapters: every notebook of `_toc.yml` without its solutions.

An exercise in a chapter is a heading in the markdown, a stub cell (the function to
write, raising NotImplementedError, and the checker's call, which reports "not
attempted yet" so the notebook still runs to the end) and a solution: a code cell whose
source starts with "# Solution", tagged `hide-input` so that the rendered book folds
it. `student_copy(root, out)` writes each chapter to the same path under `out` with its
solution cells removed and every other cell unchanged, and copies what the chapters
open relative to their folder: the precomputed results `book/<part>/results/` (a
chapter reads `results/<name>.json`, one in the back matter `../part2/results/...`).
It also copies `_toc.yml`, so `python -m phaselib.book run --root OUT` can execute the
copies to check that they run to the end without solutions.

The checkers do not need the solution cells: they compare the learner's function with
the package's own reference (`phaselib.exercises`). A student who reads the package
can still find the references; the copy takes the worked solutions out of the
notebooks, not out of the library.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path

from .toc import read_notebook, toc_notebooks, write_notebook

__all__ = ["SOLUTION_MARK", "is_solution", "strip_solutions", "student_copy",
           "CopiedChapter", "StudentCopyError"]

SOLUTION_MARK = "# Solution"


class StudentCopyError(ValueError):
    """The copy cannot be written where it was asked for (nothing was written)."""


@dataclass(frozen=True)
class CopiedChapter:
    path: Path           # the copy, under `out`
    removed: int         # solution cells left out


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def is_solution(cell: dict) -> bool:
    """A code cell whose source starts (after blank lines) with "# Solution"."""
    return (cell.get("cell_type") == "code"
            and _source(cell).lstrip().startswith(SOLUTION_MARK))


def strip_solutions(nb: dict) -> tuple[dict, int]:
    """(a copy of notebook `nb` without its solution cells, how many were removed).

    Every other cell, and the notebook's metadata, are kept as they are, in order."""
    out = copy.deepcopy(nb)
    cells = out.get("cells", [])
    out["cells"] = [c for c in cells if not is_solution(c)]
    return out, len(cells) - len(out["cells"])


def _check_out(root: Path, out: Path, force: bool) -> None:
    r, o = root.resolve(), out.resolve()
    if o == r or o.is_relative_to(r / "book"):
        raise StudentCopyError(f"{out} would overwrite the book's own chapters: choose "
                               "a folder outside the repository's book/ (for example "
                               "_build/student)")
    if o.exists() and not o.is_dir():
        raise StudentCopyError(f"{out} exists and is not a folder")
    if o.is_dir() and any(o.iterdir()) and not force:
        raise StudentCopyError(f"{out} is not empty: choose an empty folder, or pass "
                               "--force to write over the files it has in common with "
                               "the copy")


def student_copy(root: str | Path, out: str | Path, *,
                 force: bool = False) -> list[CopiedChapter]:
    """Write every chapter of `<root>/_toc.yml` into `out`, at the same relative path,
    without its solution cells; copy `book/<part>/results/` and `_toc.yml` beside
    them. Returns one entry per chapter, in the book's order.

    Refuses (StudentCopyError, nothing written) an `out` that is the repository or
    inside its `book/`, or a folder that is not empty unless `force`."""
    root, out = Path(root), Path(out)
    notebooks = toc_notebooks(root)          # FileNotFoundError without a _toc.yml
    _check_out(root, out, force)
    copied = []
    for rel in notebooks:
        nb, removed = strip_solutions(read_notebook(root / rel))
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        write_notebook(nb, target)
        copied.append(CopiedChapter(target, removed))
    for results in sorted((root / "book").glob("*/results")):
        if results.is_dir():
            shutil.copytree(results, out / results.relative_to(root),
                            dirs_exist_ok=True)
    shutil.copy2(root / "_toc.yml", out / "_toc.yml")
    return copied
