"""How complete the claims ledger is: every checkable sentence of the seeds mapped to
the rows that cover it.

Book: Part V, "The claims ledger", section "How complete the ledger is".
`phaselib.claims.extract` keeps every sentence of the seeds that states something
checkable (a number, a named model, system, paper or person, a dated forecast) in
`seed_sentences.json`, and `coverage.json` maps each of them to the rows that cover it,
or says why it states no claim. `coverage_report()` checks the map against the
extraction and the records: a sentence with no entry, an entry that names an unknown
record or a sentence no longer extracted, an empty reason, an entry with both or
neither kind of answer, and a sentence mapped twice all count against completeness.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import Claim, load_claims
from .extract import load_sentences

__all__ = ["COVERAGE", "Coverage", "load_coverage", "coverage_report"]

# Every checkable sentence of the seeds mapped to its rows (or marked "not a claim").
COVERAGE = Path(__file__).resolve().parent / "coverage.json"


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
