"""Book hygiene: notebooks are committed clean and follow the chapter conventions.

Outputs come from executing the notebooks (nbval, the book build), never from the
repository; every chapter has a papermill `parameters` cell and appears in _toc.yml.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text())["cells"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under book/"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_without_outputs(nb):
    dirty = [i for i, c in enumerate(cells(nb)) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{nb.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_has_one_parameters_cell(nb):
    tagged = [c for c in cells(nb) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{nb.name}: expected exactly one cell tagged 'parameters', got {len(tagged)}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_listed_in_the_toc(nb):
    listed = set(re.findall(r"file:\s*([^\s#]+)", (ROOT / "_toc.yml").read_text()))
    assert str(nb.relative_to(ROOT).with_suffix("")) in listed, f"{nb} is not in _toc.yml"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_has_objectives_exercises_and_takeaways(nb):
    text = "\n".join("".join(c["source"]) for c in cells(nb) if c["cell_type"] == "markdown")
    for heading in ("Learning objectives", "Exercise", "Key takeaways"):
        assert heading in text, f"{nb.name}: no '{heading}' section"
    hidden = [c for c in cells(nb) if "hide-input" in c.get("metadata", {}).get("tags", [])]
    assert hidden, f"{nb.name}: no solution cell tagged 'hide-input'"


def _display_math_left_inline(text: str) -> int:
    """How many `$$` fences of `text` did not open or close a display block (for example
    a formula inside a list item with no blank line before it, which MyST then reads as
    inline `$` pairs and typesets as garbage)."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark").use(dollarmath_plugin)
    lines = text.splitlines()
    fences = {i for i, line in enumerate(lines) if line.strip() == "$$"}
    in_blocks = {i for t in md.parse(text) if t.type in ("math_block", "math_block_eqno")
                 and t.map for i in range(*t.map) if i in fences}
    return len(fences - in_blocks)


PAGES = NOTEBOOKS + sorted((ROOT / "book").rglob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_display_formula_is_a_display_block(page):
    texts = ([page.read_text(encoding="utf-8")] if page.suffix == ".md" else
             ["".join(c["source"]) for c in cells(page) if c["cell_type"] == "markdown"])
    bad = [t[:60] for t in texts if _display_math_left_inline(t)]
    assert not bad, (f"{page.name}: a $$ formula is not a display block (leave a blank "
                     f"line before and after it): {bad}")


def test_the_display_math_check_sees_a_formula_glued_to_a_list_item():
    glued = "- item:\n  $$\n  x = 1\n  $$\n  more\n"
    assert _display_math_left_inline(glued) == 2
    assert _display_math_left_inline(glued.replace(":\n  $$", ":\n\n  $$")
                                     .replace("$$\n  more", "$$\n\n  more")) == 0


WIDE = 10     # inches: a figure this wide or wider is shrunk to half in the text column


def wide_untagged(cell_list: list[dict]) -> list[int]:
    """Code cells that draw a figure WIDE inches wide or more without the full-width tag
    (the theme then draws them wider than the text column instead of shrinking them)."""
    out = []
    for i, c in enumerate(cell_list):
        if c["cell_type"] != "code":
            continue
        widths = [float(w) for w in re.findall(r"figsize\s*=\s*\(\s*([0-9.]+)\s*,",
                                                "".join(c["source"]))]
        if any(w >= WIDE for w in widths) and "full-width" not in c.get(
                "metadata", {}).get("tags", []):
            out.append(i)
    return out


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_wide_figures_are_tagged_full_width(nb):
    untagged = wide_untagged(cells(nb))
    assert not untagged, f"{nb.name}: cells {untagged} draw a wide figure; tag full-width"


def test_the_wide_figure_check_sees_an_untagged_wide_figure():
    cell = {"cell_type": "code", "metadata": {"tags": ["hide-input"]},
            "source": ["fig, ax = plt.subplots(1, 3, figsize=(13, 4))\n"]}
    assert wide_untagged([cell]) == [0]
    cell["metadata"]["tags"].append("full-width")
    assert wide_untagged([cell]) == []
