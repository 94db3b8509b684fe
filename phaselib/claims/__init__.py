"""The seeds' claims and the book's verdicts on them, kept as data.

Each chapter that tests a claim of a seed document keeps one record per claim in
`phaselib/claims/records/<chapter-slug>.json` (a JSON list of objects with the fields of
`Claim`). The chapter shows the record in a verdict box with `verdict_box(id, evidence,
verdict)`, passing the verdict its own measurement gives: the box refuses to render when
that verdict differs from the record, so a chapter and the claims ledger cannot drift
apart. `load_claims()` gathers every record for the ledger.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["VERDICTS", "Claim", "load_claims", "get_claim", "verdict_box", "VerdictBox"]

VERDICTS = ("supported", "partly", "refuted", "not tested here")
RECORDS = Path(__file__).resolve().parent / "records"
# The admonition class of the book's theme that colours each verdict.
_STYLE = {"supported": "tip", "partly": "warning", "refuted": "danger",
          "not tested here": "note"}


@dataclass(frozen=True)
class Claim:
    """One concrete claim of a seed document and the book's verdict on it.

    id: unique slug, prefixed with the chapter's ("f5-salience-threshold");
    seed: the seed document's number ("000"); quote: a short quotation of the claim;
    chapter: the chapter holding the evidence, a path without suffix
    ("book/part2/f5-context-collapse"); label: the MyST label of the section with the
    evidence (None: the chapter as a whole); verdict: one of VERDICTS; why: one line.
    """

    id: str
    seed: str
    quote: str
    chapter: str
    verdict: str
    why: str
    label: str | None = None

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

    @property
    def href(self) -> str:
        """The evidence's address relative to the book's root ("book/...ipynb#label")."""
        anchor = f"#{self.label}" if self.label else ""
        return f"{self.chapter}.ipynb{anchor}"


def _read(path: Path) -> list[Claim]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path} must hold a JSON list of claim records")
    out = []
    for row in rows:
        try:
            out.append(Claim(**row))
        except TypeError as e:
            raise ValueError(f"{path}: a record has fields Claim does not: {e}") from None
    return out


@lru_cache(maxsize=1)
def _all(folder: str) -> dict[str, Claim]:
    claims: dict[str, Claim] = {}
    for path in sorted(Path(folder).glob("*.json")):
        for c in _read(path):
            if c.id in claims:
                raise ValueError(f"claim id {c.id!r} appears twice (in {path.name})")
            claims[c.id] = c
    return claims


def load_claims(folder: str | Path | None = None) -> dict[str, Claim]:
    """Every claim record, by id (records/*.json, or `folder`)."""
    return dict(_all(str(folder or RECORDS)))


def get_claim(claim_id: str) -> Claim:
    claims = _all(str(RECORDS))
    if claim_id not in claims:
        raise KeyError(f"claim_id {claim_id!r} has no record in {RECORDS}; known ids: "
                       f"{sorted(claims)}")
    return claims[claim_id]


@dataclass(frozen=True)
class VerdictBox:
    """What a chapter displays: the claim, the chapter's evidence, the verdict."""

    claim: Claim
    evidence: str

    def _repr_html_(self) -> str:
        c, e = self.claim, html.escape
        return (f'<div class="admonition {_STYLE[c.verdict]} verdict-box" '
                f'data-claim="{e(c.id)}" data-verdict="{e(c.verdict)}">'
                f'<p class="admonition-title">Verdict: {e(c.verdict)}</p>'
                f"<p><b>Claim</b> (seed {e(c.seed)}): &ldquo;{e(c.quote)}&rdquo;</p>"
                f"<p><b>Evidence</b>: {e(self.evidence)}</p>"
                f"<p><b>Verdict</b>: {e(c.verdict)}. {e(c.why)}</p></div>")

    def _repr_markdown_(self) -> str:
        c = self.claim
        return (f"> **Verdict: {c.verdict}**  \n> **Claim** (seed {c.seed}): "
                f"\u201c{c.quote}\u201d  \n> **Evidence**: {self.evidence}  \n"
                f"> **Verdict**: {c.verdict}. {c.why}")

    def __repr__(self) -> str:
        return (f"Verdict ({self.claim.id}): {self.claim.verdict}\n"
                f"  claim (seed {self.claim.seed}): {self.claim.quote}\n"
                f"  evidence: {self.evidence}\n  why: {self.claim.why}")


def verdict_box(claim_id: str, evidence: str, verdict: str) -> VerdictBox:
    """The verdict box for `claim_id`, with `evidence` (a sentence whose numbers the chapter
    computed) and the `verdict` the chapter's own measurement gives.

    Raises ValueError when `verdict` differs from the record's verdict: the measurement
    changed, and the record in phaselib/claims/records must be updated with it (or the
    chapter's reasoning checked), so that the ledger never shows a stale verdict.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    if not isinstance(evidence, str) or not evidence.strip():
        raise ValueError("evidence must be a non-empty sentence naming the measurement")
    c = get_claim(claim_id)
    if verdict != c.verdict:
        raise ValueError(f"claim {claim_id!r}: this run's evidence gives the verdict "
                         f"{verdict!r} but the record says {c.verdict!r}; update the record "
                         f"in {RECORDS} or check the measurement")
    return VerdictBox(c, evidence)
