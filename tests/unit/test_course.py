"""The course material (issue 11): the exercises page, CITATION.cff and how to cite, and
a syllabus and instructor notes that stay in step with the table of contents."""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from phaselib.exercises import catalog as cat

ROOT = Path(__file__).resolve().parents[2]
BACK = ROOT / "book" / "back"
PART3 = "book/part3/remedies"      # Part III, in the syllabus before it is in the toc
# The root keys of Citation File Format 1.2.0 (its schema's "properties").
CFF_KEYS = {"abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi",
            "identifiers", "keywords", "license", "license-url", "message",
            "preferred-citation", "references", "repository", "repository-artifact",
            "repository-code", "title", "type", "url", "version"}


def chapters() -> list[str]:
    """Chapters of the toc that a course teaches: everything but the root and back matter."""
    return [f for f in cat.toc_chapters(ROOT)[1:] if not f.startswith("book/back/")]


def missing_from(text: str, chapters_: list[str]) -> list[str]:
    """The chapters a page neither links (../partN/x.ipynb) nor names (book/partN/x.ipynb)."""
    return [c for c in chapters_
            if f"../{c.split('book/', 1)[1]}.ipynb" not in text and f"{c}.ipynb" not in text]


# The exercises page ------------------------------------------------------------------

def test_exercises_page_is_what_the_catalog_generates():
    page = (BACK / "exercises.md").read_text()
    assert page == cat.render_page(ROOT), (
        "book/back/exercises.md is stale: run "
        "`python -m phaselib.exercises.catalog > book/back/exercises.md`")


def _notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    nb = {"cells": [{"cell_type": k, "metadata": {}, "source": s} for k, s in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def test_scan_pairs_each_exercise_with_the_checkers_below_it(tmp_path):
    nb = _notebook(tmp_path / "x.ipynb", [
        ("code", "subprocess.check_call(['pip'])\ncheck_attention(f)"),   # before any exercise
        ("markdown", "## Exercises\n\n**Exercise 1: the mask.** Write it."),
        ("code", "def f():\n    raise NotImplementedError\ncheck_causal_mask(f)"),
        ("code", "# Solution\nassert check_causal_mask(f)"),
        ("markdown", "**Exercise 2 (open): think.** No checker."),
        ("markdown", "**Exercise 3: two.**"),
        ("code", "check_attention(g)\ncheck_call(h)\ncheck_transport(g)"),
    ])
    known = {"check_causal_mask": "a.py", "check_attention": "a.py", "check_transport": "b.py"}
    assert cat.scan_notebook(nb, known) == [
        (1, "Exercise 1: the mask", ["check_causal_mask"]),
        (2, "Exercise 2 (open): think", []),
        (3, "Exercise 3: two", ["check_attention", "check_transport"]),
    ]


def test_scan_rejects_what_is_not_a_notebook_path(tmp_path):
    with pytest.raises(TypeError, match="path must be a pathlib.Path"):
        cat.scan_notebook(str(tmp_path / "x.ipynb"), {})
    with pytest.raises(ValueError, match="path must be a .ipynb notebook"):
        cat.scan_notebook(tmp_path / "x.md", {})


def test_every_exercise_that_is_not_open_has_a_checker():
    rows = cat.catalog(ROOT)
    assert len(rows) >= 30, f"only {len(rows)} exercises found"
    bare = [f"{r.chapter}: {r.heading}" for r in rows
            if not r.checkers and "(open)" not in r.heading]
    assert not bare, f"exercises without a checker and not marked (open): {bare}"


def test_every_listed_checker_is_exported_by_phaselib_exercises():
    import phaselib.exercises as ex

    named = {c for r in cat.catalog(ROOT) for c in r.checkers}
    assert named, "no checkers found"
    absent = sorted(c for c in named if not callable(getattr(ex, c, None)))
    assert not absent, f"checkers named in chapters but not in phaselib.exercises: {absent}"


def test_the_catalog_command_writes_the_page(capsys):
    assert cat.main(["--root", str(ROOT)]) == 0
    assert capsys.readouterr().out == (BACK / "exercises.md").read_text()


def test_the_catalog_command_refuses_a_root_without_a_toc(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cat.main(["--root", str(tmp_path)])
    assert "has no _toc.yml" in capsys.readouterr().err


# Citation --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cff() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_file_is_cff_1_2_0(cff):
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "version", "license", "repository-code"):
        assert isinstance(cff.get(key), str) and cff[key].strip(), f"{key} missing or empty"
    unknown = set(cff) - CFF_KEYS
    assert not unknown, f"keys that CFF 1.2.0 does not define: {sorted(unknown)}"
    assert isinstance(cff["authors"], list) and cff["authors"], "authors must be a list"
    for a in cff["authors"]:
        assert a.get("name") or a.get("family-names"), f"author without a name: {a}"
    date = str(cff["date-released"])
    assert re.fullmatch(r"\d{4}-(0[1-9]|1[012])-(0[1-9]|[12]\d|3[01])", date), date
    dt.date.fromisoformat(date)


def test_citation_agrees_with_the_package_and_the_book(cff):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cff["version"] == project["version"]
    assert cff["license"] == project["license"]
    assert cff["repository-code"] == config["repository"]["url"]
    assert cff["title"] == config["title"]


def test_how_to_cite_page_says_what_the_citation_file_says(cff):
    page = (BACK / "how-to-cite.md").read_text()
    for value in (cff["title"], cff["version"], cff["repository-code"], cff["license"],
                  str(cff["date-released"])[:4], cff["authors"][0]["name"]):
        assert value in page, f"how-to-cite.md does not say {value!r}"
    bib = re.search(r"```bibtex\n(.*?)```", page, re.S)
    assert bib, "how-to-cite.md has no BibTeX block"
    assert f"version = {{{cff['version']}}}" in bib.group(1)


# Syllabus and instructor notes ------------------------------------------------------

def test_missing_from_finds_a_chapter_left_out():
    text = "[A](../part1/a.ipynb) and `book/part3/c.ipynb`"
    assert missing_from(text, ["book/part1/a", "book/part2/b", "book/part3/c"]) == [
        "book/part2/b"]


def test_syllabus_lists_every_chapter_of_the_toc_and_part_three():
    text = (BACK / "syllabus.md").read_text()
    assert len(chapters()) >= 15
    missing = missing_from(text, chapters() + [PART3])
    assert not missing, f"syllabus.md does not list {missing}"


def test_instructor_notes_have_a_section_for_every_chapter():
    text = (BACK / "instructor-notes.md").read_text()
    sections = re.split(r"\n## ", text)[1:]
    missing = [c for c in chapters() + [PART3]
               if not any(missing_from(s, [c]) == [] for s in sections)]
    assert not missing, f"instructor-notes.md has no section for {missing}"
    for s in sections:
        for field in ("**Run time:**", "**Run live:**", "**Pitfalls:**", "**Discuss:**"):
            assert field in s, f"section {s.splitlines()[0]!r} lacks {field}"


def test_back_pages_are_in_the_toc_under_back_matter():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    back = [c["file"] for p in toc["parts"] if p["caption"] == "Back matter"
            for c in p["chapters"]]
    for page in ("syllabus", "instructor-notes", "exercises", "how-to-cite"):
        assert f"book/back/{page}" in back, f"book/back/{page} is not under Back matter"
        assert (BACK / f"{page}.md").exists()
