"""The verdict box a chapter shows for a claim: `verdict_box` for a claim judged by the
rule, `check_box` for a consistency check. Each refuses to render when the chapter's
judgement and the claim's record disagree (see the package's docstring).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Mapping

from . import CHECK, JUDGED, UNTESTED, Claim, get_claim
from .rule import Judgement, combine

__all__ = ["VerdictBox", "verdict_box", "check_box"]

# The admonition class of the book's theme that colours each verdict.
_STYLE = {"supported": "tip", "partly": "warning", "refuted": "danger",
          "inconclusive": "caution", CHECK: "seealso", UNTESTED: "note"}


def _records() -> str:
    from . import RECORDS        # read at call time: tests point it elsewhere
    return str(RECORDS)


@dataclass(frozen=True)
class VerdictBox:
    """What a chapter displays: the claim, the chapter's evidence, the judgements by the
    rule (none for a consistency check or an untested claim), the verdict."""

    claim: Claim
    evidence: str
    judgements: tuple[tuple[str, Judgement], ...] = ()

    @property
    def title(self) -> str:
        v = self.claim.verdict
        return "Consistency check: holds" if v == CHECK else f"Verdict: {v}"

    def _parts(self) -> list[tuple[str, str]]:
        return [(part, j.reason) for part, j in self.judgements]

    def _changes(self) -> str:
        specific = " ".join(f"{p}: {j.change}" if len(self.judgements) > 1 else j.change
                            for p, j in self.judgements)
        general = self.claim.change_text
        return " ".join(s for s in (general, specific) if s)

    def _repr_html_(self) -> str:
        c, e = self.claim, html.escape
        rows = [f'<div class="admonition {_STYLE[c.verdict]} verdict-box" '
                f'data-claim="{e(c.id)}" data-verdict="{e(c.verdict)}">',
                f'<p class="admonition-title">{e(self.title)}</p>',
                f'<p><b>Claim</b> (<a href="{e(c.seed_href)}">seed {e(c.seed)}</a>): '
                f"&ldquo;{e(c.quote)}&rdquo;</p>",
                f"<p><b>Evidence</b>: {e(self.evidence)}</p>"]
        for part, reason in self._parts():
            rows.append(f'<p class="verdict-rule"><b>Rule</b> ({e(part)}): '
                        f"{e(reason)}</p>")
        label = "Check" if c.verdict == CHECK else "Verdict"
        rows.append(f"<p><b>{label}</b>: {e(c.verdict)}. {e(c.why_text)}</p>")
        if c.verdict in JUDGED:
            rows.append(f'<p class="verdict-change"><b>What would change it</b>: '
                        f"{e(self._changes())}</p>")
        rows.append("</div>")
        return "".join(rows)

    def _repr_markdown_(self) -> str:
        c = self.claim
        # myst-nb keeps a link of a markdown output as written: the built site's href.
        seed = f"[seed {c.seed}]({c.seed_href})"
        lines = [f"> **{self.title}**", f"> **Claim** ({seed}): \u201c{c.quote}\u201d",
                 f"> **Evidence**: {self.evidence}"]
        lines += [f"> **Rule** ({p}): {r}" for p, r in self._parts()]
        lines.append(f"> **Verdict**: {c.verdict}. {c.why_text}")
        if c.verdict in JUDGED:
            lines.append(f"> **What would change it**: {self._changes()}")
        return "  \n".join(lines)

    def __repr__(self) -> str:
        out = [f"{self.title} ({self.claim.id})",
               f"  claim (seed {self.claim.seed}): {self.claim.quote}",
               f"  evidence: {self.evidence}"]
        out += [f"  rule ({p}): {r}" for p, r in self._parts()]
        out.append(f"  why: {self.claim.why_text}")
        if self.claim.verdict in JUDGED:
            out.append(f"  what would change it: {self._changes()}")
        return "\n".join(out)


def _check_evidence(evidence) -> None:
    if not isinstance(evidence, str) or not evidence.strip():
        raise ValueError("evidence must be a non-empty sentence naming the measurement")


def verdict_box(claim_id: str, evidence: str,
                judgement: Judgement | Mapping[str, Judgement] | str) -> VerdictBox:
    """The verdict box for `claim_id`, with `evidence` (a sentence whose numbers the chapter
    computed) and `judgement`: the `rule.judge` result for the record's one part, or a
    dict {part: Judgement} for every part the record's `rules` names, or the string
    "not tested here" for a claim the chapter does not judge.

    The verdict is computed from the judgements (`rule.combine` over parts) and each
    judgement's rule must be the record's. Raises ValueError when the computed verdict
    differs from the record's (the measurement changed: update the record, or check the
    chapter), when a judged verdict is passed as a bare string (a verdict comes from an
    effect and its interval, never from a sign), or when a rule differs from the record.
    """
    _check_evidence(evidence)
    c = get_claim(claim_id)
    if c.verdict == CHECK:
        raise ValueError(f"claim {claim_id!r} is a consistency check: show it with "
                         f"check_box(id, evidence, holds)")
    if isinstance(judgement, str):
        if judgement in JUDGED:
            raise ValueError(f"claim {claim_id!r}: the verdict {judgement!r} was passed "
                             f"as a string; a verdict comes from the rule: pass the "
                             f"Judgement(s) of phaselib.claims.rule.judge")
        if judgement != c.verdict:
            raise ValueError(f"claim {claim_id!r}: this chapter gives {judgement!r} but "
                             f"the record says {c.verdict!r}; update the record in "
                             f"{_records()} or check the chapter")
        return VerdictBox(c, evidence)
    parts = dict(judgement) if isinstance(judgement, Mapping) else None
    if parts is None:
        if not isinstance(judgement, Judgement):
            raise TypeError(f"judgement must be a Judgement, a dict of them or "
                            f"{UNTESTED!r}, got {type(judgement).__name__}")
        if len(c.rules or {}) != 1:
            raise ValueError(f"claim {claim_id!r} has the parts {sorted(c.rules or {})}: "
                             f"pass a dict with one Judgement per part")
        parts = {next(iter(c.rules)): judgement}
    if set(parts) != set(c.rules or {}):
        raise ValueError(f"claim {claim_id!r}: judgements for {sorted(parts)}, but the "
                         f"record's parts are {sorted(c.rules or {})}")
    for part, j in parts.items():
        if not isinstance(j, Judgement):
            raise TypeError(f"claim {claim_id!r}: part {part!r} must be a Judgement, got "
                            f"{type(j).__name__}")
        want = c.rule(part)
        if not (math.isclose(j.rule.threshold, want.threshold, rel_tol=0, abs_tol=1e-12)
                and j.rule.direction == want.direction):
            raise ValueError(f"claim {claim_id!r}: part {part!r} was judged against "
                             f"{j.rule}, but the record states {want}; judge with "
                             f"claim_rule({claim_id!r}, {part!r})")
    verdict = combine(j.verdict for j in parts.values())
    if verdict != c.verdict:
        raise ValueError(f"claim {claim_id!r}: this run's evidence gives the verdict "
                         f"{verdict!r} (parts: "
                         f"{ {p: j.verdict for p, j in parts.items()} }) but the record "
                         f"says {c.verdict!r}; update the record in {_records()} or check "
                         f"the measurement")
    order = list(c.rules)
    return VerdictBox(c, evidence, tuple((p, parts[p]) for p in order))


def check_box(claim_id: str, evidence: str, holds: bool) -> VerdictBox:
    """The box for a claim that is true by construction (a definition, an identity, a
    count of our own code's bytes): shown as a consistency check, not a verdict.
    Raises ValueError when `holds` is not True (the code or the arithmetic is wrong) or
    the record is not a consistency check."""
    _check_evidence(evidence)
    c = get_claim(claim_id)
    if c.verdict != CHECK:
        raise ValueError(f"claim {claim_id!r} is recorded as {c.verdict!r}, not as a "
                         f"{CHECK}: show it with verdict_box")
    if holds is not True:
        raise ValueError(f"claim {claim_id!r}: the consistency check failed (holds="
                         f"{holds!r}): {evidence}")
    return VerdictBox(c, evidence)
