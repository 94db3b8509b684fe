"""The claim records and the verdict box: records validate, boxes refuse stale verdicts."""

import json
import re
from pathlib import Path

import pytest

from phaselib.claims import VERDICTS, Claim, load_claims, verdict_box

ROOT = Path(__file__).resolve().parents[2]


def _record(**kw):
    row = dict(id="x-claim", seed="000", quote="a quote", chapter="book/part2/x",
               verdict="refuted", why="because")
    row.update(kw)
    return row


def test_claim_rejects_an_unknown_verdict():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Claim(**_record(verdict="mostly true"))


def test_claim_rejects_a_seed_that_is_not_three_digits():
    with pytest.raises(ValueError, match="seed must be a three-digit"):
        Claim(**_record(seed="0"))


def test_load_claims_rejects_a_duplicate_id(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([_record()]))
    (tmp_path / "b.json").write_text(json.dumps([_record()]))
    with pytest.raises(ValueError, match="appears twice"):
        load_claims(tmp_path)


def test_load_claims_rejects_an_unknown_field(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([_record(colour="red")]))
    with pytest.raises(ValueError, match="fields Claim does not"):
        load_claims(tmp_path)


def test_every_record_points_at_a_chapter_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*(\S+)", toc))
    for c in load_claims().values():
        assert c.chapter in listed, f"{c.id}: chapter {c.chapter} is not in _toc.yml"
        assert (ROOT / f"{c.chapter}.ipynb").exists() or (ROOT / f"{c.chapter}.md").exists()


def test_every_label_a_record_names_exists_in_its_chapter():
    for c in load_claims().values():
        if c.label is None:
            continue
        path = ROOT / f"{c.chapter}.ipynb"
        text = path.read_text() if path.exists() else (ROOT / f"{c.chapter}.md").read_text()
        assert f"({c.label})=" in text, f"{c.id}: no label ({c.label})= in {c.chapter}"


def test_verdict_box_refuses_a_verdict_that_differs_from_the_record():
    claims = load_claims()
    if not claims:
        pytest.skip("no claim records yet")
    c = next(iter(claims.values()))
    other = next(v for v in VERDICTS if v != c.verdict)
    with pytest.raises(ValueError, match="the record says"):
        verdict_box(c.id, "some evidence", other)


def test_verdict_box_shows_claim_evidence_and_verdict():
    claims = load_claims()
    if not claims:
        pytest.skip("no claim records yet")
    c = next(iter(claims.values()))
    html = verdict_box(c.id, "measured 0.25 < 1", c.verdict)._repr_html_()
    assert f'data-verdict="{c.verdict}"' in html
    assert "measured 0.25 &lt; 1" in html
    assert c.seed in html
