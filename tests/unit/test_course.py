"""The course material: the exercises page with each exercise's time and difficulty,
CITATION.cff and how to cite, and a syllabus, instructor notes (answer notes for every
open exercise) and assignments that stay in step with the table of contents."""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from phaselib.exercises import catalog as cat
from phaselib.exercises.estimates import DIFFICULTY, ESTIMATES, format_minutes

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


# Time and difficulty of every exercise ----------------------------------------------

def test_every_exercise_has_an_estimate_and_every_estimate_an_exercise():
    missing, stale = cat.estimate_problems(cat.catalog(ROOT))
    assert not missing, ("exercises without a time and difficulty in "
                         f"phaselib/exercises/estimates.py: {missing}")
    assert not stale, ("estimates for exercises that no longer exist (renumbered or "
                       f"removed?): {stale}")


def test_estimate_problems_names_what_is_missing_and_what_is_stale():
    rows = [cat.Exercise("book/p/a", "A", n, f"Exercise {n}", (), ()) for n in (1, 2)]
    est = {"book/p/a": {1: (10, 1), 3: (5, 2)}, "book/p/gone": {1: (5, 1)}}
    assert cat.estimate_problems(rows, est) == (
        ["book/p/a: Exercise 2"], ["book/p/a: Exercise 3", "book/p/gone: Exercise 1"])


def test_estimates_are_minutes_and_a_difficulty_of_one_to_three():
    assert set(DIFFICULTY) == {1, 2, 3}
    for chapter, by_number in ESTIMATES.items():
        for n, value in by_number.items():
            assert isinstance(n, int) and n >= 1, f"{chapter}: exercise number {n!r}"
            minutes, level = value
            assert isinstance(minutes, int) and 0 < minutes <= 12 * 60, (chapter, n)
            assert level in DIFFICULTY, f"{chapter} {n}: difficulty {level!r} not 1-3"


def test_format_minutes():
    assert [format_minutes(m) for m in (5, 119, 120, 150, 240, 361)] == [
        "5 min", "119 min", "2 h", "2.5 h", "4 h", "6 h"]


def test_the_page_shows_every_exercise_s_time_and_difficulty():
    lines = (BACK / "exercises.md").read_text().splitlines()
    for r in cat.catalog(ROOT):
        minutes, level = ESTIMATES[r.chapter][r.number]
        [row] = [ln for ln in lines if f"| {r.heading} |" in ln and f"[{r.title}]" in ln]
        assert f"| {r.heading} | {format_minutes(minutes)} | {level} |" in row, row


def test_every_open_exercise_has_answer_notes_in_its_chapter_s_section():
    sections = re.split(r"\n## ", (BACK / "instructor-notes.md").read_text())[1:]
    lacking = []
    for r in cat.catalog(ROOT):
        if "(open)" not in r.heading:
            continue
        link = f"{r.chapter.rsplit('/', 1)[1]}.ipynb)"    # in the section's heading
        [section] = [s for s in sections if link in s.splitlines()[0]]
        if f"**Answers to Exercise {r.number} (open)" not in section:
            lacking.append(f"{r.chapter}: {r.heading}")
    assert not lacking, f"open exercises without answer notes: {lacking}"


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
    notes = back.index("book/back/instructor-notes")
    assert back[notes + 1] == "book/back/assignments", \
        "the assignments come right after the instructor notes"


def _plan_sessions(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^\| \d+ \| (\d+) \|", text, flags=re.M)]


def test_syllabus_plans_ten_weeks_of_two_sessions_split_into_three():
    text = (BACK / "syllabus.md").read_text()
    assert _plan_sessions(text) == list(range(1, 21)), "sessions 1 to 20 in the plan"
    splits = re.findall(r"\*\*Session (\d+)\. [^*]*\((\d+) / (\d+) / (\d+)\)\.?\*\*",
                        text)
    assert [int(s[0]) for s in splits] == list(range(1, 21)), \
        "every session has a heading with its lecture / demo / lab minutes"
    for n, *minutes in splits:
        assert sum(map(int, minutes)) == 90, f"session {n}: {minutes} is not 90 minutes"
    assert "optional track" in text.lower()


ASSIGNMENT = re.compile(r"^## (Assignment|Project) (I|II|III|IV|V):", re.M)


def test_assignments_one_per_part_each_with_a_rubric_that_adds_up():
    text = (BACK / "assignments.md").read_text()
    found = ASSIGNMENT.findall(text)
    assert [p for _, p in found] == ["I", "II", "III", "IV", "V"], found
    for section in re.split(r"\n(?=## )", text)[1:]:
        title = section.splitlines()[0]
        points = [int(m) for m in re.findall(r"^\|(?!\s*\*\*Total).*\| (\d+) \|$",
                                             section, flags=re.M)]
        total = re.search(r"^\| \*\*Total\*\* \|.*\| \*\*(\d+)\*\* \|$", section,
                          flags=re.M)
        assert points and total, f"{title}: no rubric table with a total"
        assert sum(points) == int(total.group(1)), f"{title}: {points} != total"
