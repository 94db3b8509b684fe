"""The claim records and the verdict box: records validate, boxes refuse stale verdicts."""

import json
import re
from pathlib import Path

import pytest

from phaselib.claims import (VERDICTS, Claim, check_box, claim_rule, load_claims,
                             seed_href, verdict_box)
from phaselib.claims.rule import Count, Effect, Rule, judge

ROOT = Path(__file__).resolve().parents[2]


RULE = {"effect": "loss gap, arm A minus arm B", "unit": "nats", "threshold": 0.05,
        "direction": 1}


def _record(**kw):
    row = dict(id="x-claim", seed="000", quote="a quote", chapter="book/part2/x",
               verdict="refuted", why="because", change="a gap beyond the threshold",
               rules={"gap": RULE})
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


def _box_records(tmp_path, monkeypatch, *rows):
    """Point the records folder at tmp_path holding `rows`."""
    import phaselib.claims as claims

    (tmp_path / "x.json").write_text(json.dumps([_record(**r) for r in rows]))
    monkeypatch.setattr(claims, "RECORDS", tmp_path)


def test_a_record_with_a_typed_number_does_not_load():
    with pytest.raises(ValueError, match="types the number"):
        Claim(**_record(why="the gap is under 5% in every seed"))
    with pytest.raises(ValueError, match="types the number"):
        Claim(**_record(change="a gap above 0.1 nats"))
    with pytest.raises(ValueError, match="given does not hold"):
        Claim(**_record(why="the post says {share}"))
    c = Claim(**_record(why="the post says {share} of the time", given={"share": "80%"}))
    assert c.why_text == "the post says 80% of the time"


def test_a_judged_record_needs_its_rule_and_what_would_change_it():
    with pytest.raises(ValueError, match="needs change"):
        Claim(**_record(change=None))
    with pytest.raises(ValueError, match="needs rules"):
        Claim(**_record(rules=None))
    with pytest.raises(ValueError, match="exactly the keys"):
        Claim(**_record(rules={"gap": {"effect": "x", "threshold": 0.1}}))
    with pytest.raises(ValueError, match="has no rules to judge"):
        Claim(**_record(verdict="not tested here", change=None))


def test_a_sign_only_gate_cannot_make_a_box(tmp_path, monkeypatch):
    _box_records(tmp_path, monkeypatch, dict(verdict="supported"))
    with pytest.raises(ValueError, match="passed as a string"):
        verdict_box("x-claim", "positive in all three seeds", "supported")
    # Three positive seeds whose interval straddles the threshold: inconclusive.
    j = judge(Effect("gap", (0.02, 0.3, 0.04)), claim_rule("x-claim"))
    with pytest.raises(ValueError, match="gives the verdict 'inconclusive'"):
        verdict_box("x-claim", "positive in all three seeds", j)


def test_a_null_without_a_positive_control_cannot_make_a_refuted_box(tmp_path,
                                                                    monkeypatch):
    _box_records(tmp_path, monkeypatch, dict(verdict="refuted"))
    null = Effect("gap", (0.001, -0.002, 0.0), "nats")
    with pytest.raises(ValueError, match="gives the verdict 'inconclusive'"):
        verdict_box("x-claim", "no gap", judge(null, claim_rule("x-claim")))
    weak = Effect("planted gap", (0.01, 0.02, 0.015), "nats")
    with pytest.raises(ValueError, match="gives the verdict 'inconclusive'"):
        verdict_box("x-claim", "no gap", judge(null, claim_rule("x-claim"), weak))
    planted = Effect("planted gap", (0.30, 0.32, 0.31), "nats")
    box = verdict_box("x-claim", "no gap", judge(null, claim_rule("x-claim"), planted))
    html = box._repr_html_()
    assert 'data-verdict="refuted"' in html and "positive control" in html
    assert "planted gap +0.310" in html and "What would change it" in html


def test_a_box_refuses_a_rule_other_than_the_records(tmp_path, monkeypatch):
    _box_records(tmp_path, monkeypatch, dict(verdict="supported"))
    j = judge(Effect("gap", (0.30, 0.32, 0.31)), Rule(0.01))
    with pytest.raises(ValueError, match="the record states"):
        verdict_box("x-claim", "a gap", j)
    ok = verdict_box("x-claim", "a gap", judge(Effect("gap", (0.30, 0.32, 0.31)),
                                               claim_rule("x-claim")))
    assert ok.claim.verdict == "supported"


def test_parts_combine_into_partly_and_must_all_be_given(tmp_path, monkeypatch):
    rules = {"a": RULE, "b": dict(RULE, threshold=0.0, direction=-1)}
    _box_records(tmp_path, monkeypatch, dict(verdict="partly", rules=rules))
    big = Effect("gap", (0.30, 0.32, 0.31))
    ja = judge(big, claim_rule("x-claim", "a"))
    jb = judge(big, claim_rule("x-claim", "b"), Effect("planted", (-0.5, -0.6, -0.55)))
    assert (ja.verdict, jb.verdict) == ("supported", "refuted")
    with pytest.raises(ValueError, match="record's parts"):
        verdict_box("x-claim", "two parts", {"a": ja})
    box = verdict_box("x-claim", "two parts", {"a": ja, "b": jb})
    assert repr(box).count("rule (") == 2


def test_a_count_needs_no_control_but_must_say_why_no_seed_changes_it(tmp_path,
                                                                     monkeypatch):
    with pytest.raises(ValueError, match="deterministic must say"):
        Count("share", 0.1)
    _box_records(tmp_path, monkeypatch, dict(verdict="refuted"))
    j = judge(Count("gap", 0.01, "nats", "arithmetic on published shapes"),
              claim_rule("x-claim"))
    assert verdict_box("x-claim", "arithmetic", j).claim.verdict == "refuted"


def test_a_consistency_check_is_not_a_verdict(tmp_path, monkeypatch):
    _box_records(tmp_path, monkeypatch,
                 dict(id="x-check", verdict="consistency check", rules=None, change=None))
    with pytest.raises(ValueError, match="is a consistency check"):
        verdict_box("x-check", "rows sum to one", "supported")
    with pytest.raises(ValueError, match="check failed"):
        check_box("x-check", "rows sum to one", False)
    box = check_box("x-check", "rows sum to one", True)
    assert "Consistency check: holds" in box._repr_html_()


def test_every_record_of_the_book_loads_under_the_rule():
    claims = load_claims()
    assert len(claims) >= 40
    for c in claims.values():
        assert c.verdict in VERDICTS


def test_a_box_links_its_seed_to_the_seeds_section_of_the_sources_page(tmp_path,
                                                                       monkeypatch):
    untested = dict(verdict="not tested here", rules=None, change=None)
    _box_records(tmp_path, monkeypatch,
                 dict(untested, id="x-part4", seed="003", chapter="book/part4/phase-lm"),
                 dict(untested, id="x-back", seed="001",
                      chapter="book/back/reading-verdicts"))
    box = verdict_box("x-part4", "not measured", "not tested here")
    assert ('(<a href="../back/sources.html#seed-003">seed 003</a>)'
            in box._repr_html_())
    assert "([seed 003](../back/sources.html#seed-003))" in box._repr_markdown_()
    back = verdict_box("x-back", "not measured", "not tested here")._repr_html_()
    assert '<a href="sources.html#seed-001">seed 001</a>' in back


def test_seed_href_is_relative_to_the_page_and_falls_back_to_a_chapter():
    assert seed_href("002", "book/part2/f2-quadratic-cost") == (
        "../back/sources.html#seed-002")
    assert seed_href("002", "book/back/glossary") == "sources.html#seed-002"
    assert seed_href("002", "book/intro") == "back/sources.html#seed-002"
    assert seed_href("002") == seed_href("002", "elsewhere/x") == (
        "../back/sources.html#seed-002")


def test_a_rule_part_may_say_the_day_it_was_registered():
    c = Claim(**_record(rules={"gap": {**RULE, "registered": "2026-12-04"}}))
    assert c.rule("gap") == Rule(0.05, 1)
    assert c.rule_words() == ["gap: loss gap, arm A minus arm B, above +0.05 nats "
                              "(fixed on 2026-12-04, before its runs)"]
    assert "fixed on" not in Claim(**_record()).rule_words()[0]
    with pytest.raises(ValueError, match="registered must be a date"):
        Claim(**_record(rules={"gap": {**RULE, "registered": "last week"}}))
    with pytest.raises(ValueError, match="must have exactly the keys"):
        Claim(**_record(rules={"gap": {**RULE, "why": "extra"}}))
    with pytest.raises(ValueError, match="must have exactly the keys"):
        Claim(**_record(rules={"gap": {k: v for k, v in RULE.items() if k != "unit"}}))
