"""The ledger is complete by construction: every checkable sentence of the seeds (as
phaselib.claims.extract finds them, kept in seed_sentences.json) maps to ledger rows or
is marked "not a claim" with a reason (coverage.json). Nothing here reads the seeds."""

import json

import pytest

from phaselib.claims import load_claims
from phaselib.claims.extract import (SENTENCES, checkable_sentences, load_sentences,
                                     split_sentences)
from phaselib.claims.coverage import COVERAGE, coverage_report, load_coverage

# --- the extraction, on hand-made texts -------------------------------------------


def test_split_sentences_keeps_abbreviations_and_initials_inside_a_sentence():
    text = ("Modern attention derives from Bahdanau et al. (2014). It was new. "
            "See Dr. X.")
    assert split_sentences(text) == [
        "Modern attention derives from Bahdanau et al. (2014).", "It was new.",
        "See Dr. X."]


def test_split_sentences_joins_a_formula_broken_over_lines():
    text = ("Full attention scales as\n\n𝑂\n(\n𝑇\n2\n)\nO(T\n2\nD). "
            "Compute stays quadratic.")
    assert split_sentences(text) == ["Full attention scales as 𝑂 ( 𝑇 2 ) O(T 2 D).",
                                     "Compute stays quadratic."]


def test_split_sentences_cuts_an_inline_list_and_a_timeline():
    text = ("The model fails: 4. Even the best layers cannot recover it "
            "5. The bomb wins\n"
            "2014: Bahdanau - attention 2017: Vaswani - transformers")
    assert split_sentences(text) == [
        "The model fails:", "4. Even the best layers cannot recover it",
        "5. The bomb wins", "2014: Bahdanau - attention",
        "2017: Vaswani - transformers"]


def test_a_number_a_name_or_a_year_makes_a_sentence_checkable():
    text = ("Attention is a routing system. The cache needs 48GB on one GPU. "
            "Mamba replaces attention. Flash kernels help. "
            "Dao et al. showed it in 2022. "
            "The model learns routing profiles.")
    assert checkable_sentences(text) == ["The cache needs 48GB on one GPU.",
                                         "Mamba replaces attention.",
                                         "Dao et al. showed it in 2022."]


def test_labels_and_enumerators_are_not_numbers():
    text = ("F4 — Geometric partitions\nFailure 3 feeds Failures 6–7 (F4/F5/F8).\n"
            "Part 1: Rethinking Attention\n## 2. Background\n"
            "(1) tokens and (iv) depth.\n"
            "It fades after 12 layers.")
    assert checkable_sentences(text) == ["It fades after 12 layers."]


def test_names_match_whole_words_with_their_case():
    assert checkable_sentences("We switch tasks often. A Switch router routes.") == \
        ["A Switch router routes."]
    assert checkable_sentences("The gumbo was good. Gu and Dao wrote it.") == \
        ["Gu and Dao wrote it."]


def test_a_quoted_title_counts_as_a_named_paper():
    text = ('See “A Renaissance Architecture for AI: Six Pillars”. '
            'He said “go home now”.')
    assert checkable_sentences(text) == \
        ["See “A Renaissance Architecture for AI: Six Pillars”."]


def test_items_under_a_dated_heading_are_dated_forecasts():
    text = ("**Short-term (3-6 months)**:\n- Criticism will follow a release\n"
            "- Someone will roll back a feature\nThe end of the list.\n"
            "- A bullet after the list ends\n")
    assert checkable_sentences(text) == ["**Short-term (3-6 months)**:",
                                         "- Criticism will follow a release",
                                         "- Someone will roll back a feature"]


def test_a_repeated_sentence_is_kept_once_and_fragments_are_not_sentences():
    text = "GPT-4 exists.\nGPT-4 exists.\n…\n7\n"
    assert checkable_sentences(text) == ["GPT-4 exists."]


# --- the kept extraction and the map ------------------------------------------------


def test_the_kept_extraction_names_each_seed_file_with_its_hash():
    data = json.loads(SENTENCES.read_text(encoding="utf-8"))
    assert set(data["seeds"]) == {"000", "001", "002", "003", "004"}
    for seed, v in data["seeds"].items():
        assert v["file"].startswith(f"{seed}_") and len(v["sha256"]) == 64
        assert v["sentences"], f"seed {seed}: no checkable sentence kept"
    assert data["command"].startswith("python -m phaselib.claims.extract")


def test_every_extracted_sentence_has_a_row_or_a_reason():
    rep = coverage_report()
    assert rep.complete, rep.problems()
    assert len(rep.covered) + len(rep.not_claims) == rep.extracted > 0


def test_every_untested_ledger_row_covers_a_sentence_or_is_a_known_row():
    """A row of the ledger page that no sentence maps to would be a row for a claim
    the extraction does not see; it is allowed, but rows added for coverage must be
    used. Here: every ledger row is used, so a typo in an id cannot hide."""
    rows = {cid for cid, c in load_claims().items()
            if c.chapter == "book/part5/claims-ledger"}
    assert rows <= coverage_report().rows_used


# --- coverage_report fails on each kind of gap ---------------------------------------

SENTS = {"000": ["Mamba is fast.", "GPT-4 exists."]}
CLAIMS = {"a-row": object()}


def _entries(*extra):
    return [{"seed": "000", "sentence": "Mamba is fast.", "claims": ["a-row"]},
            {"seed": "000", "sentence": "GPT-4 exists.", "not_a_claim": "a byline"},
            *extra]


def test_coverage_report_is_complete_on_a_full_map():
    rep = coverage_report(_entries(), SENTS, CLAIMS)
    assert rep.complete and rep.counts()["covered"] == 1
    assert rep.counts()["not_a_claim"] == 1


def test_coverage_report_fails_on_a_sentence_with_no_entry():
    rep = coverage_report(_entries()[:1], SENTS, CLAIMS)
    assert not rep.complete and rep.missing == [("000", "GPT-4 exists.")]
    assert "no entry" in rep.problems()


def test_coverage_report_fails_on_an_unknown_claim_id():
    entries = _entries()
    entries[0] = {**entries[0], "claims": ["a-row", "no-such-row"]}
    rep = coverage_report(entries, SENTS, CLAIMS)
    assert not rep.complete
    assert rep.unknown == [("000", "Mamba is fast.", "no-such-row")]


def test_coverage_report_fails_on_a_stale_sentence():
    stale = {"seed": "000", "sentence": "Mamba was fast.", "claims": ["a-row"]}
    rep = coverage_report(_entries(stale), SENTS, CLAIMS)
    assert not rep.complete and rep.stale == [("000", "Mamba was fast.")]


@pytest.mark.parametrize("bad", [{"not_a_claim": "  "}, {"claims": []}])
def test_coverage_report_fails_on_an_empty_reason_or_id_list(bad):
    entries = _entries()
    entries[1] = {"seed": "000", "sentence": "GPT-4 exists.", **bad}
    rep = coverage_report(entries, SENTS, CLAIMS)
    assert not rep.complete and rep.empty == [("000", "GPT-4 exists.")]


def test_coverage_report_fails_on_both_or_neither_and_on_duplicates():
    entries = _entries()
    entries[1] = {**entries[1], "claims": ["a-row"]}
    rep = coverage_report(entries, SENTS, CLAIMS)
    assert not rep.complete and rep.malformed == [("000", "GPT-4 exists.")]
    rep = coverage_report(_entries(_entries()[0]), SENTS, CLAIMS)
    assert not rep.complete and rep.duplicates == [("000", "Mamba is fast.")]


def test_the_shipped_files_load():
    assert COVERAGE.exists() and load_coverage()
    assert sum(len(v) for v in load_sentences().values()) == coverage_report().extracted
