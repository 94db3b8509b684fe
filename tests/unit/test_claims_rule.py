"""The verdict rule: intervals, thresholds, positive controls, numbers from evidence."""

import pytest

from phaselib.claims.rule import (Effect, Rule, check_template, combine, fill, judge,
                                  judge_absence, t_quantile)


def test_t_quantile_is_the_two_sided_95_value_and_errs_wide_between_rows():
    assert t_quantile(2) == pytest.approx(4.303)
    assert t_quantile(26) == t_quantile(25) > t_quantile(30)
    assert t_quantile(10_000) == pytest.approx(1.96)
    with pytest.raises(ValueError, match="df"):
        t_quantile(0)


def test_the_interval_is_the_mean_plus_minus_t_times_the_standard_error():
    e = Effect("gap", (1.0, 2.0, 3.0), "nats")
    lo, hi = e.interval()
    half = 4.303 * 1.0 / 3 ** 0.5
    assert (lo, hi) == pytest.approx((2 - half, 2 + half), abs=1e-3)
    assert "gap +2.000 nats" in e.words() and "3 seeds" in e.words()


def test_a_sign_that_agrees_in_every_seed_is_not_enough():
    # Three positive seeds (chance: one in four), but the interval straddles zero.
    j = judge(Effect("gap", (0.01, 0.2, 0.02)), Rule(0.0))
    assert j.verdict == "inconclusive"
    assert "more seeds" in j.change


def test_an_interval_wholly_beyond_the_threshold_supports():
    j = judge(Effect("gap", (0.30, 0.32, 0.31)), Rule(0.1))
    assert j.verdict == "supported" and "lies above +0.1" in j.reason
    j = judge(Effect("gap", (-0.30, -0.32, -0.31)), Rule(-0.1, direction=-1))
    assert j.verdict == "supported" and "lies below -0.1" in j.reason


def test_a_count_reads_in_plain_directions_whichever_side_the_claim_predicts():
    # A claim that predicts a count below its threshold: 1.17 lies *above* 0.5, which
    # refutes it; the box must not say "short of" for a number larger than the mark.
    from phaselib.claims.rule import Count
    j = judge(Count("ratio", 1.17, "", "arithmetic on fixed shapes"), Rule(0.5, direction=-1))
    assert j.verdict == "refuted"
    assert "lies above +0.5 (the claim predicts below)" in j.reason
    j = judge(Count("ratio", 0.2, "", "arithmetic on fixed shapes"), Rule(0.5, direction=-1))
    assert j.verdict == "supported"
    assert "lies below +0.5 (the claim predicts below)" in j.reason
    j = judge(Count("ratio", 0.5, "", "arithmetic on fixed shapes"), Rule(0.5))
    assert j.verdict == "refuted"                     # on the mark is not beyond it
    assert "lies at +0.5, not beyond it (the claim predicts above)" in j.reason


def test_a_null_without_a_positive_control_is_not_refuted():
    null = Effect("gap", (0.001, -0.002, 0.0))
    assert judge(null, Rule(0.05)).verdict == "inconclusive"
    blind = Effect("planted gap", (0.01, 0.03, 0.02))        # the instrument missed it
    assert judge(null, Rule(0.05), control=blind).verdict == "inconclusive"
    seen = Effect("planted gap", (0.20, 0.22, 0.21))
    j = judge(null, Rule(0.05), control=seen)
    assert j.verdict == "refuted" and "positive control" in j.reason


def test_parts_combine_into_partly_only_when_none_is_inconclusive():
    assert combine(["supported", "supported"]) == "supported"
    assert combine(["refuted", "refuted"]) == "refuted"
    assert combine(["supported", "refuted"]) == "partly"
    assert combine(["supported", "inconclusive"]) == "inconclusive"
    with pytest.raises(ValueError):
        combine(["partly"])


@pytest.mark.parametrize("text", ["falls by under 5%", "KL within a factor 1.3",
                                  "from 25 to 47 keys", "a gap of -0.02 nats",
                                  "accuracy 1e-3 below"])
def test_a_number_typed_into_a_record_is_refused(text):
    with pytest.raises(ValueError, match="types the number"):
        check_template(text)


def test_names_with_digits_and_placeholders_are_not_numbers():
    check_template("F5's heads at {n_keys} keys; seed {seed}'s run; a log2 T tower")
    assert fill("a gap of {gap:.2f} nats", {"gap": 0.123}) == "a gap of 0.12 nats"
    with pytest.raises(ValueError, match="needs the value"):
        fill("a gap of {gap} nats", {})


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        Effect("gap", (1.0,))
    with pytest.raises(ValueError, match="finite"):
        Effect("gap", (1.0, float("nan")))
    with pytest.raises(ValueError, match="direction"):
        Rule(0.0, direction=0)
    with pytest.raises(TypeError, match="Effect"):
        judge((1.0, 2.0), Rule(0.0))


def test_a_seed_documents_name_is_not_a_typed_number():
    check_template("seeds 001/003 name it, and seed 000 too")
    with pytest.raises(ValueError, match="types the number"):
        check_template("in seed 000, 3 seeds agree")


def test_a_factor_is_a_typed_number_but_a_model_name_is_not():
    check_template("GPT-3.5 and Llama-2-7B, a 70B-shaped model, F5 and T5")
    with pytest.raises(ValueError, match="types the number"):
        check_template("a 5x speed-up")


def test_an_absence_is_supported_only_with_a_control_that_finds_the_effect():
    rule = Rule(threshold=0.125, direction=-1)
    small = Effect("gain", (0.01, 0.03, 0.02, 0.0, 0.04))
    present = Effect("gain from scratch", (0.8, 0.9, 0.85))
    weak = Effect("gain from scratch", (0.05, 0.3, 0.1))
    assert judge_absence(small, rule, present).verdict == "supported"
    assert judge_absence(small, rule, None).verdict == "inconclusive"
    assert judge_absence(small, rule, weak).verdict == "inconclusive"
    # the effect found: refuted, control or not
    assert judge_absence(Effect("gain", (0.5, 0.6, 0.55)), rule, None).verdict == "refuted"
    assert judge_absence(Effect("gain", (0.0, 0.4, 0.2)), rule,
                         present).verdict == "inconclusive"
    with pytest.raises(ValueError, match="direction -1"):
        judge_absence(small, Rule(threshold=0.125), present)


def test_a_bounded_quantity_has_its_interval_cut_at_the_bounds():
    wide = Effect("share", (1.0, 0.97, 0.70), "of the passage")
    cut = Effect("share", (1.0, 0.97, 0.70), "of the passage", bounds=(0, 1))
    assert wide.interval()[1] > 1.0                  # the t interval runs past 1
    assert cut.interval() == (wide.interval()[0], 1.0)
    assert "cut at the bounds" in cut.words() and "cut" not in wide.words()
    inside = Effect("share", (0.5, 0.52, 0.48), bounds=(0, 1))
    assert inside.interval() == Effect("share", (0.5, 0.52, 0.48)).interval()
    with pytest.raises(ValueError, match="within bounds"):
        Effect("share", (0.5, 1.2), bounds=(0, 1))
    with pytest.raises(ValueError, match="lo < hi"):
        Effect("share", (0.5, 0.6), bounds=(1, 0))
