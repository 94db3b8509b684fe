"""The source documents (issue 25): the back-matter page that introduces the seeds has a
section for every seed the records quote, linking every chapter that tests its claims,
and every verdict box's seed link lands on one of its labels."""

import posixpath
import re
from pathlib import Path

import yaml

from phaselib.claims import SOURCES, load_claims
from phaselib.claims.ledger import SEEDS

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / f"{SOURCES}.md"
LABEL = re.compile(r"^\(seed-(\d{3})\)=\n## Seed (\d{3})", re.M)


def sections(text: str) -> dict[str, str]:
    """Each seed's section of the page, by seed number: from its label to the next."""
    starts = [(m.group(1), m.start()) for m in LABEL.finditer(text)]
    ends = [s for _, s in starts[1:]] + [len(text)]
    return {seed: text[start:end] for (seed, start), end in zip(starts, ends)}


def chapter_link(chapter: str) -> str:
    """How the page (in book/back/) links a chapter: ../partN/x.ipynb."""
    return posixpath.relpath(chapter, posixpath.dirname(SOURCES)) + ".ipynb"


def test_sections_finds_each_labelled_section_and_nothing_else():
    text = ("# T\n\nintro [A](../part1/a.ipynb)\n\n(seed-000)=\n## Seed 000: x\n\n"
            "[B](../part2/b.ipynb)\n\n(seed-002)=\n## Seed 002: y\n\nz\n")
    got = sections(text)
    assert list(got) == ["000", "002"]
    assert chapter_link("book/part2/b") in got["000"]
    assert chapter_link("book/part1/a") not in "".join(got.values())


def test_the_page_is_in_the_back_matter_after_how_to_read_a_verdict():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    [back] = [p["chapters"] for p in toc["parts"] if p["caption"] == "Back matter"]
    files = [c["file"] for c in back]
    assert SOURCES in files, f"{SOURCES} is not under Back matter in _toc.yml"
    assert files.index(SOURCES) == files.index("book/back/reading-verdicts") + 1


def test_every_seed_of_the_records_and_the_ledger_has_one_labelled_section():
    text = PAGE.read_text()
    labels = re.findall(r"^\(seed-(\d{3})\)=$", text, re.M)
    assert len(labels) == len(set(labels)), f"a seed label appears twice: {labels}"
    for m in LABEL.finditer(text):
        assert m.group(1) == m.group(2), f"label seed-{m.group(1)} heads Seed {m.group(2)}"
    used = {c.seed for c in load_claims().values()}
    missing = sorted((used | set(SEEDS)) - set(sections(text)))
    assert not missing, f"{SOURCES}.md has no (seed-NNN)= section for seeds {missing}"


def test_each_seed_section_links_every_chapter_that_tests_its_claims():
    secs = sections(PAGE.read_text())
    missing = sorted({(c.seed, c.chapter) for c in load_claims().values()
                      if chapter_link(c.chapter) not in secs.get(c.seed, "")})
    assert not missing, f"seed sections of {SOURCES}.md do not link: {missing}"


def test_every_relative_link_of_the_page_points_at_a_page_of_the_book():
    text = PAGE.read_text()
    links = re.findall(r"\]\(([^)#:]+)\)", text)
    assert links
    for link in links:
        assert (PAGE.parent / link).resolve().is_file(), f"{link} does not exist"


def test_every_records_seed_link_lands_on_a_label_of_the_page():
    labels = set(sections(PAGE.read_text()))
    for c in load_claims().values():
        path, anchor = c.seed_href.split("#")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(c.chapter), path))
        assert target == f"{SOURCES}.html", f"{c.id}: {c.seed_href} from {c.chapter}"
        assert anchor == f"seed-{c.seed}" and c.seed in labels, c.id
