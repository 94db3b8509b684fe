"""The claims ledger: generated from the records, in step with the chapters' boxes."""

import json
import re
from pathlib import Path

import pytest

from phaselib.claims import Claim, load_claims
from phaselib.claims.ledger import (LEDGER_CHAPTER, SEEDS, evidence_href, ledger_html,
                                    ledger_rows, verdict_counts)

ROOT = Path(__file__).resolve().parents[2]
BOX_CALL = re.compile(r"(?:verdict_box|check_box)\(\s*[\"']([^\"']+)[\"']")


def _claim(cid, seed="000", verdict="refuted", chapter="book/part2/f5-x", label=None):
    judged = verdict in ("supported", "partly", "refuted", "inconclusive")
    rules = {"gap": {"effect": "a gap", "unit": "nats", "threshold": 0.1,
                     "direction": 1}}
    return Claim(id=cid, seed=seed, quote=f"quote {cid}", chapter=chapter,
                 verdict=verdict, why=f"why {cid}", label=label,
                 change="a gap" if judged else None, rules=rules if judged else None)


def _boxes_in(chapter: str) -> set[str]:
    """The claim ids a chapter notebook passes to verdict_box in its code cells."""
    path = ROOT / f"{chapter}.ipynb"
    if not path.exists():
        return set()
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return set(BOX_CALL.findall(code))


def test_rows_come_by_seed_then_tested_first():
    claims = {c.id: c for c in [
        _claim("b", seed="002", verdict="not tested here"),
        _claim("a", seed="002", verdict="partly"),
        _claim("c", seed="000", verdict="not tested here"),
    ]}
    assert [r.claim.id for r in ledger_rows(claims)] == ["c", "a", "b"]


def test_rows_refuse_an_unknown_seed():
    with pytest.raises(ValueError, match="seed documents the ledger does not know"):
        ledger_rows({"x": _claim("x", seed="999")})


def test_evidence_href_is_relative_to_the_ledger_page_with_the_anchor():
    c = _claim("x", chapter="book/part2/f5-context-collapse", label="f5-threshold")
    assert evidence_href(c) == "../part2/f5-context-collapse.html#f5-threshold"
    assert evidence_href(_claim("y", chapter="book/part5/claims-ledger")) == \
        "claims-ledger.html"


def test_verdict_counts_include_zeros_and_filter_by_seed():
    claims = {c.id: c for c in [_claim("a"), _claim("b", verdict="supported"),
                                _claim("c", seed="001")]}
    assert verdict_counts(claims) == {"supported": 1, "partly": 0, "refuted": 2,
                                      "inconclusive": 0, "consistency check": 0,
                                      "not tested here": 0}
    assert verdict_counts(claims, seed="001")["refuted"] == 1


def test_ledger_html_has_one_row_per_claim_with_its_verdict_and_escapes_text():
    claims = {c.id: c for c in [_claim("a"), _claim("b<&>", seed="003", verdict="partly")]}
    page = ledger_html(claims=claims)
    assert page.count("<tr data-claim=") == 2
    assert 'data-claim="b&lt;&amp;&gt;" data-verdict="partly"' in page
    assert page.count("<table") == 2          # one table per seed present
    assert "What would change it" in page and "a gap, above +0.1 nats" in page
    assert "Seed 001" not in page


def test_every_seed_of_the_records_is_known_and_every_verdict_counted():
    claims = load_claims()
    assert {c.seed for c in claims.values()} <= set(SEEDS)
    assert sum(verdict_counts(claims).values()) == len(claims)


def test_every_record_outside_the_ledger_has_a_box_in_its_chapter():
    """A record whose chapter never shows it would put a verdict in the ledger that no
    chapter computes."""
    missing = [c.id for c in load_claims().values()
               if c.chapter != LEDGER_CHAPTER and c.id not in _boxes_in(c.chapter)]
    assert not missing, f"records with no verdict_box call in their chapter: {missing}"


def test_every_box_in_a_chapter_has_a_record_of_that_chapter():
    claims = load_claims()
    for nb in sorted((ROOT / "book").rglob("*.ipynb")):
        chapter = str(nb.relative_to(ROOT).with_suffix(""))
        for cid in _boxes_in(chapter):
            assert cid in claims, f"{chapter} shows a box for {cid!r}, which has no record"
            assert claims[cid].chapter == chapter, (
                f"{cid!r} is shown in {chapter} but its record names {claims[cid].chapter}")


def test_the_ledger_page_shows_no_box_itself():
    assert not _boxes_in(LEDGER_CHAPTER)


def test_check_held_share_accepts_a_right_answer_and_rejects_wrong_ones():
    from phaselib.exercises import check_held_share

    def right(claims):
        tested, held = {}, {}
        for c in claims.values():
            if c.verdict not in ("supported", "partly", "refuted"):
                continue
            tested[c.seed] = tested.get(c.seed, 0) + 1
            held[c.seed] = held.get(c.seed, 0) + (c.verdict in ("supported", "partly"))
        return {s: held[s] / tested[s] for s in tested}

    def counts_untested(claims):
        tested, held = {}, {}
        for c in claims.values():
            tested[c.seed] = tested.get(c.seed, 0) + 1
            held[c.seed] = held.get(c.seed, 0) + (c.verdict in ("supported", "partly"))
        return {s: held[s] / tested[s] for s in tested}

    def supported_only(claims):
        out = right(claims)
        for s in out:
            n = sum(c.seed == s and c.verdict in ("supported", "partly", "refuted")
                    for c in claims.values())
            out[s] = sum(c.seed == s and c.verdict == "supported"
                         for c in claims.values()) / n
        return out

    assert check_held_share(right) is True
    with pytest.raises(AssertionError, match="seeds"):
        check_held_share(counts_untested)
    with pytest.raises(AssertionError, match="share"):
        check_held_share(supported_only)


def test_check_verdict_rule_accepts_the_rule_and_rejects_a_sign_gate():
    from phaselib.claims.rule import Effect, Rule, judge
    from phaselib.exercises import check_verdict_rule

    def right(values, threshold, control=None):
        c = Effect("c", control) if control is not None else None
        return judge(Effect("e", values), Rule(threshold), c).verdict

    def signs(values, threshold, control=None):
        if all(v > threshold for v in values):
            return "supported"
        return "refuted" if all(v < threshold for v in values) else "inconclusive"

    def no_control(values, threshold, control=None):
        lo, hi = Effect("e", values).interval()
        return "supported" if lo > threshold else "refuted" if hi < threshold else \
            "inconclusive"

    assert check_verdict_rule(right) is True
    for wrong in (signs, no_control):
        with pytest.raises(AssertionError, match="expected"):
            check_verdict_rule(wrong)
