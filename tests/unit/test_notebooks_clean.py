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
