"""The verdict rule: from an effect measured over seeds, with its interval, to a verdict.

Book: "How to read a verdict" (back matter). A seed claim predicts an effect (a gap in
loss, a rise in accuracy); the chapter measures it once per seed, paired (both arms on
the same held-out data), and the rule turns the per-seed values into a verdict:

- the interval: the mean over seeds and its two-sided 95% t interval (`Effect`);
- the threshold: the smallest effect that counts, stated in advance (`Rule.threshold`,
  in the effect's unit, with the direction the claim predicts);
- supported: the whole interval lies beyond the threshold;
- refuted: the whole interval lies short of it *and* a positive control, the same
  instrument on a case where the effect is planted, finds an effect beyond the
  threshold (a null the instrument could not have seen is no evidence);
- inconclusive: anything else (the interval straddles the threshold, or the control
  failed or is missing). More seeds narrow the interval; say which, or say
  inconclusive;
- `combine` turns several parts of one claim into one verdict: partly when some parts
  are supported and others refuted.

The sign of the effect agreeing in every seed is not a verdict: three seeds agree by
chance one time in four. `check_template` (in `phaselib.claims.templates`, re-exported
here) keeps numbers out of a record's text: the record's `why` is a template whose
numbers come from the evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from .templates import check_template, fill, placeholders

__all__ = ["RULE_VERDICTS", "Effect", "Count", "Rule", "Judgement", "judge",
           "judge_absence", "combine", "t_quantile", "check_template", "fill",
           "placeholders"]

RULE_VERDICTS = ("supported", "partly", "refuted", "inconclusive")

# Two-sided 95%: the 0.975 quantile of Student's t with df degrees of freedom.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365,
         8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145,
         15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060,
         30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` >= 1 degrees of freedom (the table's
    value at the largest tabulated df <= `df`, which errs wide; 1.960 beyond 120)."""
    if not (isinstance(df, int) and df >= 1):
        raise ValueError(f"df must be an integer >= 1, got {df!r}")
    if df > 120:
        return 1.960
    return _T975[max(k for k in _T975 if k <= df)]


@dataclass(frozen=True)
class Effect:
    """An effect measured once per seed: `values[i]` is seed i's paired difference (arm
    minus arm, on the same held-out data), in `unit`. `bounds` (lo, hi): the range the
    quantity cannot leave (a share: (0, 1)); the interval is cut there."""

    name: str
    values: tuple[float, ...]
    unit: str = ""
    bounds: tuple[float, float] | None = None

    def __post_init__(self):
        vals = tuple(float(v) for v in self.values)
        if len(vals) < 2:
            raise ValueError(f"effect {self.name!r}: values needs at least 2 seeds for an "
                             f"interval, got {len(vals)}")
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"effect {self.name!r}: values must be finite, got {vals}")
        if self.bounds is not None:
            b = tuple(float(x) for x in self.bounds)
            if len(b) != 2 or not b[0] < b[1]:
                raise ValueError(f"effect {self.name!r}: bounds must be (lo, hi) with "
                                 f"lo < hi, got {self.bounds!r}")
            if not all(b[0] <= v <= b[1] for v in vals):
                raise ValueError(f"effect {self.name!r}: values must lie within bounds "
                                 f"{b}, got {vals}")
            object.__setattr__(self, "bounds", b)
        object.__setattr__(self, "values", vals)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n

    @property
    def sd(self) -> float:
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    def interval(self) -> tuple[float, float]:
        """The two-sided 95% t interval of the mean over seeds, cut at `bounds` (the
        mean of a bounded quantity cannot leave them)."""
        half = t_quantile(self.n - 1) * self.sd / math.sqrt(self.n)
        lo, hi = self.mean - half, self.mean + half
        if self.bounds is not None:
            lo, hi = max(lo, self.bounds[0]), min(hi, self.bounds[1])
        return lo, hi

    def words(self, digits: int = 3) -> str:
        lo, hi = self.interval()
        unit = f" {self.unit}" if self.unit else ""
        half = t_quantile(self.n - 1) * self.sd / math.sqrt(self.n)
        cut = (", cut at the bounds" if (lo, hi) != (self.mean - half, self.mean + half)
               else "")
        return (f"{self.name} {self.mean:+.{digits}f}{unit} (95% interval "
                f"{lo:+.{digits}f} to {hi:+.{digits}f}{cut}, {self.n} seeds)")


@dataclass(frozen=True)
class Count:
    """A measurement with no seed to vary: a count over a fixed corpus by a
    deterministic tokenizer, or arithmetic on published shapes. `deterministic` says
    why no seed could change it (it is shown in the box). A trained model is never a
    Count: its numbers vary with the seed, so they are an `Effect`."""

    name: str
    value: float
    unit: str = ""
    deterministic: str = ""

    def __post_init__(self):
        if not math.isfinite(float(self.value)):
            raise ValueError(f"count {self.name!r}: value must be finite, got "
                             f"{self.value!r}")
        if not isinstance(self.deterministic, str) or len(self.deterministic.strip()) < 10:
            raise ValueError(f"count {self.name!r}: deterministic must say why no seed "
                             f"changes the value (e.g. 'BPE and the corpus are fixed'), "
                             f"got {self.deterministic!r}")
        object.__setattr__(self, "value", float(self.value))

    def interval(self) -> tuple[float, float]:
        return self.value, self.value

    def words(self, digits: int = 3) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return (f"{self.name} {self.value:+.{digits}g}{unit} (exact: "
                f"{self.deterministic})")


@dataclass(frozen=True)
class Rule:
    """What a claim predicts: an effect beyond `threshold` in `direction` (+1: larger
    than the threshold, -1: smaller). The threshold is the smallest effect that counts,
    fixed before the runs, in the effect's unit."""

    threshold: float
    direction: int = 1

    def __post_init__(self):
        if self.direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {self.direction!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold!r}")

    def beyond(self, x: float) -> bool:
        return (x - self.threshold) * self.direction > 0


@dataclass(frozen=True)
class Judgement:
    verdict: str
    effect: Effect | Count
    rule: Rule
    control: Effect | Count | None
    reason: str
    change: str

    def words(self) -> str:
        return f"{self.reason} What would change it: {self.change}"


def _sides(rule: Rule) -> tuple[str, str]:
    """The words for the two sides of `rule.threshold`: (beyond, back), "above" and
    "below" for direction +1, the other way round for -1."""
    return ("above", "below") if rule.direction == 1 else ("below", "above")


def _where(place: str, rule: Rule) -> str:
    """Where an effect lies, in plain words with the claim's side beside it: "below
    +0.2 (the claim predicts above)", or "at +0.2, not beyond it (...)" for `place`
    "at"."""
    t = f"{rule.threshold:+g}"
    spot = f"at {t}, not beyond it" if place == "at" else f"{place} {t}"
    return f"{spot} (the claim predicts {_sides(rule)[0]})"


def judge(effect: Effect | Count, rule: Rule,
          control: Effect | Count | None = None) -> Judgement:
    """The verdict on a claim that predicts `effect` beyond `rule.threshold`.

    supported: the interval lies wholly beyond the threshold. refuted: it lies wholly
    short of it and `control` (the same instrument on a planted effect) lies wholly
    beyond it. inconclusive otherwise. A `Count` (no seed to vary, no sampling noise)
    is its own interval and needs no control: it is supported or refuted. The
    Judgement says why and what result would change the verdict."""
    if not isinstance(rule, Rule):
        raise TypeError(f"rule must be a Rule, got {type(rule).__name__}")
    far_word, back = _sides(rule)
    beyond, short = _where(far_word, rule), _where(back, rule)
    if isinstance(effect, Count):
        if rule.beyond(effect.value):
            return Judgement("supported", effect, rule, None,
                             f"{effect.words()} lies {beyond}.",
                             "a different corpus, shape or published figure.")
        side = short if effect.value != rule.threshold else _where("at", rule)
        return Judgement("refuted", effect, rule, None,
                         f"{effect.words()} lies {side}.",
                         "a different corpus, shape or published figure.")
    if not isinstance(effect, Effect):
        raise TypeError(f"effect must be an Effect or a Count, got "
                        f"{type(effect).__name__}")
    lo, hi = effect.interval()
    near, far = (lo, hi) if rule.direction == 1 else (hi, lo)
    t = f"{rule.threshold:+g}"
    if rule.beyond(near):
        return Judgement("supported", effect, rule, control,
                         f"The whole interval of {effect.words()} lies {beyond}.",
                         f"seeds that bring the interval's near end ({near:+.3f}) back "
                         f"to {t} or {back} it.")
    if not rule.beyond(far) and far != rule.threshold:
        if control is None:
            return Judgement("inconclusive", effect, rule, None,
                             f"The interval of {effect.words()} lies {short}, but "
                             f"no positive control shows that the instrument would see "
                             f"an effect of that size.",
                             "a positive control (a planted effect) that the same "
                             "instrument detects beyond the threshold.")
        clo, chi = control.interval()
        c_near = clo if rule.direction == 1 else chi
        if rule.beyond(c_near):
            return Judgement("refuted", effect, rule, control,
                             f"The interval of {effect.words()} lies {short}, while "
                             f"the positive control, {control.words()}, lies {far_word} "
                             f"{t}.",
                             f"seeds that move the interval's far end ({far:+.3f}) past "
                             f"{t}, or a control that no longer detects its effect.")
        return Judgement("inconclusive", effect, rule, control,
                         f"The interval of {effect.words()} lies {short}, but the "
                         f"positive control, {control.words()}, does not lie {far_word} "
                         f"{t}: the instrument cannot tell.",
                         "an instrument whose positive control clears the threshold.")
    return Judgement("inconclusive", effect, rule, control,
                     f"The interval of {effect.words()} straddles {t}.",
                     f"more seeds (now {effect.n}) narrowing the interval to one side "
                     f"of {t}.")


def judge_absence(effect: Effect, rule: Rule, control: Effect | None) -> Judgement:
    """The verdict on a claim that predicts an effect *absent*: smaller than
    `rule.threshold` (`rule.direction` must be -1). Supported, the absence shown, is a
    null, so it needs what a null always needs: `control`, the same instrument on a
    case where the effect is there, lying wholly above the threshold; without a
    passing control the verdict is inconclusive. Refuted, the effect found (the
    interval wholly above the threshold), needs no control."""
    if not isinstance(rule, Rule) or rule.direction != -1:
        raise ValueError(f"rule must be a Rule with direction -1 (the effect predicted "
                         f"absent), got {rule!r}")
    if not isinstance(effect, Effect):
        raise TypeError(f"effect must be an Effect, got {type(effect).__name__}")
    lo, hi = effect.interval()
    t = f"{rule.threshold:+g}"
    if lo > rule.threshold:
        return Judgement("refuted", effect, rule, control,
                         f"The whole interval of {effect.words()} lies above {t}: the "
                         f"effect predicted absent is there.",
                         f"seeds that bring the interval's low end ({lo:+.3f}) down to "
                         f"{t} or below.")
    if hi >= rule.threshold:
        return Judgement("inconclusive", effect, rule, control,
                         f"The interval of {effect.words()} straddles {t}.",
                         f"more seeds (now {effect.n}) narrowing the interval to one "
                         f"side of {t}.")
    if control is None:
        return Judgement("inconclusive", effect, rule, None,
                         f"The interval of {effect.words()} lies below {t}, but no "
                         f"positive control shows that the instrument would see the "
                         f"effect where it is there.",
                         "a positive control that the same instrument finds above "
                         "the threshold.")
    clo, _ = control.interval()
    if clo > rule.threshold:
        return Judgement("supported", effect, rule, control,
                         f"The whole interval of {effect.words()} lies below {t}, while "
                         f"the positive control, {control.words()}, lies above it.",
                         f"seeds that move the interval's high end ({hi:+.3f}) past "
                         f"{t}, or a control that no longer finds its effect.")
    return Judgement("inconclusive", effect, rule, control,
                     f"The interval of {effect.words()} lies below {t}, but the "
                     f"positive control, {control.words()}, does not lie above it: "
                     f"the instrument cannot tell.",
                     "an instrument whose positive control clears the threshold.")


def combine(verdicts: Iterable[str]) -> str:
    """One verdict from the verdicts of a claim's parts: all supported -> supported, all
    refuted -> refuted, some supported and some refuted (none inconclusive) -> partly,
    any inconclusive -> inconclusive."""
    vs = list(verdicts)
    if not vs or any(v not in ("supported", "refuted", "inconclusive") for v in vs):
        raise ValueError(f"verdicts must be a non-empty list of supported, refuted or "
                         f"inconclusive, got {vs}")
    if "inconclusive" in vs:
        return "inconclusive"
    if all(v == "supported" for v in vs):
        return "supported"
    if all(v == "refuted" for v in vs):
        return "refuted"
    return "partly"
