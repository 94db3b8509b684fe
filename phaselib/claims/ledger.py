"""The claims ledger: every claim record as one table, grouped by seed document.

Book: Part V, "The claims ledger". The table is generated from the records the chapters
keep (`phaselib/claims/records/*.json`), so it cannot say anything a chapter's verdict
box does not: `verdict_box` refuses a verdict that differs from its record, and the
tests check that every record outside the ledger has a box in its chapter.

`ledger_rows()` gives the rows in reading order; `ledger_html(page)` renders them with
each evidence link relative to the page that shows the table; `verdict_counts()` counts
verdicts for the prose.

How complete the ledger is: `phaselib.claims.extract` keeps every sentence of the seeds
that states something checkable (a number, a named model, system, paper or person, a
dated forecast) in `seed_sentences.json`, and `coverage.json` maps each of them to the
rows that cover it, or says why it states no claim. `coverage_report()` checks the map
against the extraction and the records: a sentence with no entry, an entry that names
an unknown record or a sentence no longer extracted, and an empty reason all count
against completeness.
"""

from __future__ import annotations

import html
import json
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import CHECK, JUDGED, UNTESTED, VERDICTS, Claim, load_claims

__all__ = ["SEEDS", "LEDGER_CHAPTER", "LedgerRow", "ledger_rows", "ledger_html",
           "verdict_counts", "evidence_href", "COVERAGE", "Coverage", "load_coverage",
           "coverage_report"]

# Every checkable sentence of the seeds mapped to its rows (or marked "not a claim").
COVERAGE = Path(__file__).resolve().parent / "coverage.json"

# The seed documents, in the order the ledger shows them (../shared/seeds/).
SEEDS = {
    "000": "The attention bottleneck essay (token bombs, residual momentum, predictions)",
    "001": "Eight failure modes, first version",
    "002": "A blog post on attention's history, costs and successors",
    "003": "Eight failure modes and a phase-transport option (with F9 and the remedies)",
    "004": "A predictions post",
}
# Claims that no chapter tests are kept as records of the ledger's own page.
LEDGER_CHAPTER = "book/part5/claims-ledger"
_CSS = {"supported": "ledger-supported", "partly": "ledger-partly",
        "refuted": "ledger-refuted", "inconclusive": "ledger-inconclusive",
        CHECK: "ledger-check", UNTESTED: "ledger-untested"}


@dataclass(frozen=True)
class LedgerRow:
    """One line of the ledger: a claim and where the book's evidence for it is."""

    claim: Claim
    chapter_title: str

    @property
    def tested(self) -> bool:
        """Judged by the rule (any verdict but a consistency check or untested)."""
        return self.claim.verdict in JUDGED


def _title(chapter: str) -> str:
    """A chapter's title for the table: its file name, made readable."""
    name = chapter.rsplit("/", 1)[-1]
    head, _, rest = name.partition("-")
    if len(head) == 2 and head[0] == "f" and head[1].isdigit():
        return f"F{head[1]} {rest.replace('-', ' ')}"
    return name.replace("-", " ").capitalize()


def ledger_rows(claims: dict[str, Claim] | None = None) -> list[LedgerRow]:
    """Every record as a row, by seed, then tested before untested, then chapter and id."""
    claims = load_claims() if claims is None else claims
    unknown = sorted({c.seed for c in claims.values()} - set(SEEDS))
    if unknown:
        raise ValueError(f"claims name seed documents the ledger does not know: {unknown}; "
                         f"known: {sorted(SEEDS)}")
    rows = [LedgerRow(c, _title(c.chapter)) for c in claims.values()]
    return sorted(rows, key=lambda r: (r.claim.seed, not r.tested, r.claim.chapter,
                                       r.claim.id))


def evidence_href(claim: Claim, page: str = LEDGER_CHAPTER) -> str:
    """The link from `page` (a chapter path without suffix) to the claim's evidence, as
    the built site has it: `.html`, relative, with the label's anchor."""
    target = posixpath.relpath(claim.chapter, posixpath.dirname(page)) + ".html"
    return target + (f"#{claim.label}" if claim.label else "")


def verdict_counts(claims: dict[str, Claim] | None = None,
                   seed: str | None = None) -> dict[str, int]:
    """How many records carry each verdict (every verdict present, zeros included)."""
    claims = load_claims() if claims is None else claims
    n = Counter(c.verdict for c in claims.values() if seed is None or c.seed == seed)
    return {v: n.get(v, 0) for v in VERDICTS}


def ledger_html(page: str = LEDGER_CHAPTER, claims: dict[str, Claim] | None = None,
                seeds: list[str] | None = None) -> str:
    """The ledger as one HTML table per seed document (links relative to `page`)."""
    rows = ledger_rows(claims)
    e = html.escape
    out = []
    for seed in seeds or list(SEEDS):
        mine = [r for r in rows if r.claim.seed == seed]
        if not mine:
            continue
        out.append(f'<h4 class="ledger-seed">Seed {e(seed)}: {e(SEEDS[seed])}</h4>')
        out.append('<table class="ledger table"><thead><tr><th>Claim</th>'
                   "<th>Evidence in this book</th><th>Verdict</th><th>Why</th></tr>"
                   "</thead><tbody>")
        for r in mine:
            c = r.claim
            link = f'<a href="{e(evidence_href(c, page))}">{e(r.chapter_title)}</a>'
            why = e(c.why_text)
            if c.rules:
                why += ('<br><span class="ledger-rule"><i>Rule</i>: '
                        + "; ".join(e(w) for w in c.rule_words()) + "</span>")
            if c.change:
                why += ('<br><span class="ledger-change"><i>What would change it</i>: '
                        f"{e(c.change_text)}</span>")
            out.append(f'<tr data-claim="{e(c.id)}" data-verdict="{e(c.verdict)}">'
                       f"<td>&ldquo;{e(c.quote)}&rdquo;</td><td>{link}</td>"
                       f'<td class="{_CSS[c.verdict]}"><b>{e(c.verdict)}</b></td>'
                       f"<td>{why}</td></tr>")
        out.append("</tbody></table>")
    return "\n".join(out)


@dataclass(frozen=True)
class Coverage:
    """How completely the ledger covers the seeds' checkable sentences.

    extracted: how many sentences the extraction holds; covered: (seed, sentence,
    claim ids) for those mapped to rows; not_claims: (seed, sentence, reason) for those
    marked "not a claim"; and what makes the map incomplete: missing (seed, sentence)
    with no entry, unknown (seed, sentence, id) naming no record, stale (seed, sentence)
    entries for a sentence not extracted, empty (seed, sentence) entries with an empty
    reason or an empty list of ids, malformed (seed, sentence) entries with both or
    neither of "claims" and "not_a_claim", duplicates (seed, sentence) mapped twice.
    """

    extracted: int
    covered: list = field(default_factory=list)
    not_claims: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unknown: list = field(default_factory=list)
    stale: list = field(default_factory=list)
    empty: list = field(default_factory=list)
    malformed: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unknown or self.stale or self.empty
                    or self.malformed or self.duplicates)

    @property
    def rows_used(self) -> set[str]:
        """The ids of the records that cover at least one sentence."""
        return {cid for _, _, ids in self.covered for cid in ids}

    def counts(self) -> dict[str, int]:
        return {"extracted": self.extracted, "covered": len(self.covered),
                "not_a_claim": len(self.not_claims), "missing": len(self.missing),
                "unknown": len(self.unknown), "stale": len(self.stale),
                "empty": len(self.empty), "malformed": len(self.malformed),
                "duplicates": len(self.duplicates)}

    def problems(self) -> str:
        """One line per problem, for an assertion's message."""
        out = [f"no entry for seed {s}: {t!r}" for s, t in self.missing]
        out += [f"unknown claim id {c!r} for seed {s}: {t!r}"
                for s, t, c in self.unknown]
        out += [f"stale entry (not extracted) for seed {s}: {t!r}"
                for s, t in self.stale]
        out += [f"empty reason or id list for seed {s}: {t!r}" for s, t in self.empty]
        out += [f"entry needs exactly one of claims / not_a_claim, seed {s}: {t!r}"
                for s, t in self.malformed]
        out += [f"entry given twice for seed {s}: {t!r}" for s, t in self.duplicates]
        return "\n".join(out)


def load_coverage(path: str | Path | None = None) -> list[dict]:
    """The entries of coverage.json: {"seed", "sentence", "claims" | "not_a_claim"}."""
    data = json.loads(Path(path or COVERAGE).read_text(encoding="utf-8"))
    return list(data["entries"])


def coverage_report(entries: list[dict] | None = None,
                    sentences: dict[str, list[str]] | None = None,
                    claims: dict[str, Claim] | None = None) -> Coverage:
    """Check the map of sentences to rows (`entries`, default coverage.json) against
    the extraction (`sentences`, {seed: [sentence]}, default seed_sentences.json) and
    the records (`claims`, default every record)."""
    from .extract import load_sentences
    entries = load_coverage() if entries is None else entries
    sentences = load_sentences() if sentences is None else sentences
    claims = load_claims() if claims is None else claims
    wanted = {(seed, s) for seed, ss in sentences.items() for s in ss}
    rep = Coverage(extracted=len(wanted))
    seen: set[tuple[str, str]] = set()
    for e in entries:
        key = (str(e.get("seed")), str(e.get("sentence")))
        if key in seen:
            rep.duplicates.append(key)
            continue
        seen.add(key)
        if key not in wanted:
            rep.stale.append(key)
            continue
        has_ids, has_reason = "claims" in e, "not_a_claim" in e
        if has_ids == has_reason:
            rep.malformed.append(key)
        elif has_reason:
            reason = e["not_a_claim"]
            if not isinstance(reason, str) or not reason.strip():
                rep.empty.append(key)
            else:
                rep.not_claims.append((*key, reason))
        else:
            ids = e["claims"]
            if not isinstance(ids, list) or not ids:
                rep.empty.append(key)
                continue
            bad = [cid for cid in ids if cid not in claims]
            rep.unknown.extend((*key, cid) for cid in bad)
            if not bad:
                rep.covered.append((*key, list(ids)))
    order = {k: i for i, k in enumerate((seed, s) for seed, ss in sentences.items()
                                        for s in ss)}
    rep.missing.extend(sorted(wanted - seen, key=order.get))
    return rep
