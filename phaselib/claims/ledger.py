"""The claims ledger: every claim record as one table, grouped by seed document.

Book: Part V, "The claims ledger". The table is generated from the records the chapters
keep (`phaselib/claims/records/*.json`), so it cannot say anything a chapter's verdict
box does not: `verdict_box` refuses a verdict that differs from its record, and the
tests check that every record outside the ledger has a box in its chapter.

`ledger_rows()` gives the rows in reading order; `ledger_html(page)` renders them with
each evidence link relative to the page that shows the table; `verdict_counts()` counts
verdicts for the prose.

How complete the ledger is (every checkable sentence of the seeds mapped to its rows)
is checked by `phaselib.claims.coverage`.
"""

from __future__ import annotations

import html
import posixpath
from collections import Counter
from dataclasses import dataclass

from . import CHECK, JUDGED, UNTESTED, VERDICTS, Claim, load_claims

__all__ = ["SEEDS", "LEDGER_CHAPTER", "LedgerRow", "ledger_rows", "ledger_html",
           "verdict_counts", "evidence_href"]

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

