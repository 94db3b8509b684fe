"""The seeds' claims and the book's verdicts on them, kept as data.

Each chapter that tests a claim of a seed document keeps one record per claim in
`phaselib/claims/records/<chapter-slug>.json` (a JSON list of objects with the fields of
`Claim`). The chapter measures, turns the measurement into a verdict by the rule of
`phaselib.claims.rule` (an effect with its interval over seeds against the threshold
the record states, a positive control before any null), and shows the record in a box
(`box.py`):

- `verdict_box(id, evidence, judgement)`: `judgement` is what `rule.judge` returned
  (or a dict of them, one per part the record's `rules` names). The box recomputes the
  verdict from the judgements and refuses to render when it differs from the record, so
  a chapter and the claims ledger cannot drift apart. A verdict typed as a string is
  refused, except "not tested here".
- `check_box(id, evidence, holds)`: a result that is true by construction (a
  definition, an identity, a count of our own cache's bytes) is a consistency check,
  not a verdict; the box refuses to render if the check fails.

A box's "seed 00N" links to that seed's section of the back-matter page "The source
documents" (`seed_href`), relative to the box's chapter.

No number is typed into a record: `why` and `change` are templates whose
{placeholders} come from `given` (numbers the seed states or a cited source gives,
never a result); a bare number makes the record fail to load. Book: "How to read a
verdict" (back matter). `load_claims()` gathers every record for the ledger.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .rule import Rule, check_template, placeholders

__all__ = ["VERDICTS", "JUDGED", "CHECK", "UNTESTED", "Claim", "load_claims",
           "get_claim", "claim_rule", "verdict_box", "check_box", "VerdictBox",
           "SOURCES", "seed_href"]

JUDGED = ("supported", "partly", "refuted", "inconclusive")
CHECK = "consistency check"
UNTESTED = "not tested here"
VERDICTS = JUDGED + (CHECK, UNTESTED)
RECORDS = Path(__file__).resolve().parent / "records"
_RULE_KEYS = {"effect", "unit", "threshold", "direction"}
# Optional: "registered", the day (YYYY-MM-DD) the part was committed, before its runs.
_RULE_OPTIONAL = {"registered"}
# The page that introduces the seed documents: one section per seed, labelled
# (seed-NNN)= in MyST, which Sphinx turns into the section's id "seed-NNN".
SOURCES = "book/back/sources"


def seed_href(seed: str, page: str | None = None) -> str:
    """The link from `page` (a chapter path without suffix, "book/part4/phase-lm") to
    the seed's section of the sources page, as the built site has it:
    "../back/sources.html#seed-003", or "sources.html#seed-003" from the back matter.
    A page not under book/ (or none) gets the link from a chapter one folder below
    book/, where every chapter lives."""
    here = posixpath.dirname(page) if page and page.startswith("book/") else "book/part"
    return f"{posixpath.relpath(SOURCES, here)}.html#seed-{seed}"


@dataclass(frozen=True)
class Claim:
    """One concrete claim of a seed document and the book's verdict on it.

    id: unique slug, prefixed with the chapter's ("f5-salience-threshold");
    seed: the seed document's number ("000"); quote: a short quotation of the claim;
    chapter: the chapter holding the evidence, a path without suffix
    ("book/part2/f5-context-collapse"); label: the MyST label of the section with the
    evidence (None: the chapter as a whole); verdict: one of VERDICTS.
    why: one line, a template with no number typed in;
    change: what result would change the verdict (required when judged), a template;
    rules: for a judged verdict, the parts of the claim by name, each
      {"effect": what is measured, "unit": its unit, "threshold": the smallest effect
      that counts, fixed before the runs, "direction": +1 or -1 (beyond = larger or
      smaller)}, and optionally "registered": the day (YYYY-MM-DD) the part was
      committed, before the runs that judge it (a pre-registered part); the chapter
      judges one effect per part against exactly this rule;
    given: numbers the seed states or a cited source gives (a data sheet), by name,
      filled into why/change; never a result of this book.
    """

    id: str
    seed: str
    quote: str
    chapter: str
    verdict: str
    why: str
    label: str | None = None
    change: str | None = None
    rules: dict | None = None
    given: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("id", "seed", "quote", "chapter", "why"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"claim {self.id!r}: {name} must be a non-empty string, "
                                 f"got {v!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id!r}: verdict must be one of {VERDICTS}, "
                             f"got {self.verdict!r}")
        if not (len(self.seed) == 3 and self.seed.isdigit()):
            raise ValueError(f"claim {self.id!r}: seed must be a three-digit seed number "
                             f"such as '000', got {self.seed!r}")
        if not isinstance(self.given, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.given.items()):
            raise ValueError(f"claim {self.id!r}: given must map names to strings, got "
                             f"{self.given!r}")
        for name in ("why", "change"):
            text = getattr(self, name)
            if text is None:
                continue
            check_template(text, f"claim {self.id!r}: {name}")
            unknown = placeholders(text) - set(self.given)
            if unknown:
                raise ValueError(f"claim {self.id!r}: {name} asks for {sorted(unknown)}, "
                                 f"which given does not hold (given: "
                                 f"{sorted(self.given)})")
        judged = self.verdict in JUDGED
        if judged and not (isinstance(self.change, str) and self.change.strip()):
            raise ValueError(f"claim {self.id!r}: a {self.verdict!r} verdict needs "
                             f"change, the result that would change it")
        if judged and not self.rules:
            raise ValueError(f"claim {self.id!r}: a {self.verdict!r} verdict needs rules, "
                             f"the effect(s) and threshold(s) it is judged on")
        if not judged and self.rules:
            raise ValueError(f"claim {self.id!r}: a {self.verdict!r} record has no "
                             f"rules to judge")
        for part, r in (self.rules or {}).items():
            if not isinstance(r, dict) or not _RULE_KEYS <= set(r) \
                    or set(r) - _RULE_KEYS - _RULE_OPTIONAL:
                raise ValueError(f"claim {self.id!r}: rule {part!r} must have exactly the "
                                 f"keys {sorted(_RULE_KEYS)} (and optionally "
                                 f"{sorted(_RULE_OPTIONAL)}), got {r!r}")
            if "registered" in r and not re.fullmatch(r"\d{4}-\d{2}-\d{2}",
                                                      str(r["registered"])):
                raise ValueError(f"claim {self.id!r}: rule {part!r}: registered must be a "
                                 f"date YYYY-MM-DD, got {r['registered']!r}")
            Rule(float(r["threshold"]), int(r["direction"]))

    @property
    def href(self) -> str:
        """The evidence's address relative to the book's root ("book/...ipynb#label")."""
        anchor = f"#{self.label}" if self.label else ""
        return f"{self.chapter}.ipynb{anchor}"

    @property
    def seed_href(self) -> str:
        """The link from this record's chapter to its seed's section of the sources
        page ("../back/sources.html#seed-003")."""
        return seed_href(self.seed, self.chapter)

    @property
    def why_text(self) -> str:
        return self.why.format(**self.given)

    @property
    def change_text(self) -> str:
        return (self.change or "").format(**self.given)

    def rule(self, part: str | None = None) -> Rule:
        """The Rule of `part` (the only one when None) as the record states it."""
        rules = self.rules or {}
        if part is None:
            if len(rules) != 1:
                raise ValueError(f"claim {self.id!r} has the parts {sorted(rules)}: name "
                                 f"one")
            part = next(iter(rules))
        if part not in rules:
            raise KeyError(f"claim {self.id!r} has no rule {part!r}; its parts: "
                           f"{sorted(rules)}")
        r = rules[part]
        return Rule(float(r["threshold"]), int(r["direction"]))

    def rule_words(self) -> list[str]:
        """One phrase per part: what is measured and the threshold it must pass."""
        out = []
        for part, r in (self.rules or {}).items():
            side = "above" if int(r["direction"]) == 1 else "below"
            unit = f" {r['unit']}" if r["unit"] else ""
            fixed = (f" (fixed on {r['registered']}, before its runs)"
                     if "registered" in r else "")
            out.append(f"{part}: {r['effect']}, {side} {float(r['threshold']):+g}{unit}"
                       f"{fixed}")
        return out


def _rows(path: Path) -> list[dict]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path} must hold a JSON list of claim records")
    return rows


def _make(row: dict, path: Path) -> Claim:
    try:
        return Claim(**row)
    except TypeError as e:
        raise ValueError(f"{path}: a record has fields Claim does not: {e}") from None


@lru_cache(maxsize=4)
def _raw(folder: str) -> dict[str, tuple[dict, Path]]:
    rows: dict[str, tuple[dict, Path]] = {}
    for path in sorted(Path(folder).glob("*.json")):
        for row in _rows(path):
            cid = row.get("id")
            if cid in rows:
                raise ValueError(f"claim id {cid!r} appears twice (in {path.name})")
            rows[cid] = (row, path)
    return rows


def load_claims(folder: str | Path | None = None) -> dict[str, Claim]:
    """Every claim record, by id (records/*.json, or `folder`), each validated."""
    return {cid: _make(row, path)
            for cid, (row, path) in _raw(str(folder or RECORDS)).items()}


@lru_cache(maxsize=None)
def _one(folder: str, claim_id: str) -> Claim:
    rows = _raw(folder)
    if claim_id not in rows:
        raise KeyError(f"claim_id {claim_id!r} has no record in {folder}; known ids: "
                       f"{sorted(map(str, rows))}")
    return _make(*rows[claim_id])


def get_claim(claim_id: str) -> Claim:
    """The record of `claim_id`, validated (only it: a chapter's box does not depend on
    other chapters' records)."""
    return _one(str(RECORDS), claim_id)


def claim_rule(claim_id: str, part: str | None = None) -> Rule:
    """The Rule the record of `claim_id` states for `part`: what the chapter passes to
    `rule.judge`, so that the threshold lives in the record, not in the notebook."""
    return get_claim(claim_id).rule(part)


# The boxes a chapter shows (box.py reads the names above).
from .box import VerdictBox, check_box, verdict_box  # noqa: E402
