"""Student copies (`python -m phaselib.book student-copy OUT`): the chapters without
their solution cells, everything else as it was, and the results files they read."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from phaselib.book.__main__ import main
from phaselib.book.student import (StudentCopyError, is_solution, strip_solutions,
                                   student_copy)
from phaselib.book.toc import read_notebook, toc_notebooks, write_notebook

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(r"\b(check_\w+)\(")


def src(cell: dict) -> str:
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("student")
    return out, student_copy(ROOT, out)


def test_every_chapter_is_copied_and_every_solution_removed(copy):
    out, copied = copy
    chapters = toc_notebooks(ROOT)
    assert len(chapters) >= 20
    assert [c.path for c in copied] == [out / p for p in chapters]
    total = 0
    for rel in chapters:
        mine = read_notebook(out / rel)
        left = [i for i, c in enumerate(mine["cells"])
                if c["cell_type"] == "code" and src(c).lstrip().startswith("# Solution")]
        assert not left, f"{rel}: solution cells {left} are still in the copy"
        total += sum(map(is_solution, read_notebook(ROOT / rel)["cells"]))
    assert total >= 40, f"only {total} solution cells in the book"
    assert sum(c.removed for c in copied) == total


def test_every_other_cell_is_kept_unchanged_and_in_order(copy):
    out, _ = copy
    for rel in toc_notebooks(ROOT):
        orig, mine = read_notebook(ROOT / rel), read_notebook(out / rel)
        assert mine["cells"] == [c for c in orig["cells"] if not is_solution(c)], rel
        assert {k: v for k, v in mine.items() if k != "cells"} == \
               {k: v for k, v in orig.items() if k != "cells"}, rel


def test_every_exercise_stub_and_checker_call_is_kept(copy):
    out, _ = copy
    n_stubs = 0
    for rel in toc_notebooks(ROOT):
        orig, mine = read_notebook(ROOT / rel), read_notebook(out / rel)
        stubs = [src(c) for c in orig["cells"] if c["cell_type"] == "code"
                 and "NotImplementedError" in src(c) and not is_solution(c)]
        kept = [src(c) for c in mine["cells"]]
        assert all(s in kept for s in stubs), f"{rel}: an exercise stub was dropped"
        n_stubs += len(stubs)
        called = {n for c in orig["cells"] for n in CALL.findall(src(c))}
        still = {n for c in mine["cells"] for n in CALL.findall(src(c))}
        assert called == still, f"{rel}: checker calls lost: {sorted(called - still)}"
    assert n_stubs >= 40, f"only {n_stubs} exercise stubs found"


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names a cell defines at the top level (what later cells can read)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            names |= {n.id for n in ast.walk(node)
                      if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def test_no_kept_cell_reads_a_name_that_only_a_solution_defines():
    """So that the copy still runs top to bottom: a later cell that used a function or
    value made in a solution cell would fail in the student's notebook."""
    for rel in toc_notebooks(ROOT):
        only_solutions: set[str] = set()
        defined: set[str] = set()
        for i, cell in enumerate(read_notebook(ROOT / rel)["cells"]):
            if cell["cell_type"] != "code":
                continue
            try:
                tree = ast.parse(src(cell))
            except SyntaxError:          # shell escapes and magics
                continue
            names = _top_level_names(tree)
            if is_solution(cell):
                only_solutions |= names - defined
                continue
            read = {n.id for n in ast.walk(tree)
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            needs = (read & only_solutions) - names
            assert not needs, f"{rel}, cell {i} reads {sorted(needs)}, defined only " \
                              "in a solution cell"
            defined |= names
            only_solutions -= names


def test_the_results_files_and_the_toc_come_along(copy):
    out, _ = copy
    files = [p for p in (ROOT / "book").glob("*/results/**/*") if p.is_file()]
    assert files, "no results files under book/*/results"
    for f in files:
        twin = out / f.relative_to(ROOT)
        assert twin.is_file() and twin.read_bytes() == f.read_bytes(), twin
    assert (out / "_toc.yml").read_text() == (ROOT / "_toc.yml").read_text()
    # The paths the chapters open relative to their own folder resolve in the copy.
    assert (out / "book" / "back" / "../part2/results/f5.json").is_file()


def _book(root: Path, cells: list[tuple[str, str]]) -> Path:
    (root / "book" / "part1").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n"
                                   "  - chapters:\n      - file: book/part1/ch\n")
    nb = {"cells": [{"cell_type": k, "metadata": {}, "source": s, **(
        {"outputs": [], "execution_count": None} if k == "code" else {})}
        for k, s in cells],
          "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4,
          "nbformat_minor": 5}
    write_notebook(nb, root / "book" / "part1" / "ch.ipynb")
    return root / "book" / "part1" / "ch.ipynb"


def test_a_chapter_without_solutions_is_copied_byte_for_byte(tmp_path):
    path = _book(tmp_path / "repo", [("markdown", "# A chapter\n\nNo exercises."),
                                     ("code", "x = 1\nprint(x)")])
    [c] = student_copy(tmp_path / "repo", tmp_path / "out")
    assert c.removed == 0
    assert c.path.read_bytes() == path.read_bytes()


def test_only_code_cells_that_start_with_the_mark_are_removed(tmp_path):
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Solution\nA heading."},
        {"cell_type": "code", "metadata": {}, "source": ["\n", "# Solution\n", "x = 2"]},
        {"cell_type": "code", "metadata": {"tags": ["hide-input"]},
         "source": "# Solution: the mean row.\ny = 3"},
        {"cell_type": "code", "metadata": {}, "source": "z = 1  # Solution below"},
        {"cell_type": "code", "metadata": {},
         "source": "def f():\n    raise NotImplementedError\ncheck_f(f);"},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    stripped, removed = strip_solutions(nb)
    assert removed == 2
    assert stripped["cells"] == [nb["cells"][0], nb["cells"][3], nb["cells"][4]]
    assert len(nb["cells"]) == 5, "the notebook passed in is not changed"


def test_the_copy_refuses_to_overwrite_the_book_or_a_full_folder(tmp_path):
    root = tmp_path / "repo"
    path = _book(root, [("code", "# Solution\nx = 1")])
    before = path.read_bytes()
    for bad in (root, root / "book", root / "book" / "student"):
        with pytest.raises(StudentCopyError, match="would overwrite"):
            student_copy(root, bad)
    assert path.read_bytes() == before
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    with pytest.raises(StudentCopyError, match="not empty"):
        student_copy(root, full)
    [c] = student_copy(root, full, force=True)
    assert c.removed == 1 and (full / "notes.txt").read_text() == "mine"


def test_the_command_writes_the_copy_and_says_so(tmp_path, capsys):
    root = tmp_path / "repo"
    _book(root, [("code", "def f():\n    raise NotImplementedError\ncheck_f(f);"),
                 ("code", "# Solution\ndef f():\n    return 1")])
    assert main(["--root", str(root), "student-copy", str(tmp_path / "out")]) == 0
    said = capsys.readouterr().out
    assert "1 chapter written" in said and "without 1 solution cell," in said
    copied = json.loads((tmp_path / "out" / "book" / "part1" / "ch.ipynb").read_text())
    assert [src(c) for c in copied["cells"]] == [
        "def f():\n    raise NotImplementedError\ncheck_f(f);"]
    assert main(["--root", str(root), "student-copy", str(root)]) == 2
    assert "would overwrite" in capsys.readouterr().err
