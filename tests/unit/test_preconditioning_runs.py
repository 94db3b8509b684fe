"""Tests for phaselib.preconditioning_runs: one trained cell of F7 end to end, and the
sweep."""

import math

import pytest

from phaselib.preconditioning_runs import (RATES, TAG_RATES, best_rate_cells, run_cell,
                                          sweep)


def test_trained_model_uses_the_tag(one_thread):
    res = run_cell(0, 1, "input", steps=150, T=8)
    assert len(res["probe"]) == 2 and len(res["share"]) == 2
    # Without the tag no model can beat 1 / n_tags = 0.25 on this task.
    assert res["acc"] > 0.6
    assert res["probe"][0] > 0.95  # the tag is in x_0 by construction
    # The answer needs the previous token, which x_0 at t does not hold; the top does.
    assert res["probe_answer"][-1] > 0.3 > res["probe_answer"][0]  # chance: 1/16
    # the rate is chosen on sequences of its own: a loss near the test loss, not it
    assert res["val_loss"] != res["loss"] and abs(res["val_loss"] - res["loss"]) < 0.2


def test_sweep_cells_cover_seeds_depths_variants():
    spec = sweep(seeds=(0, 1))
    assert spec.out == "book/part2/results/f7.json"
    assert len(spec.cells) == 2 * 3 * 3 * len(TAG_RATES)
    assert {c["lr"] for c in spec.cells} == set(TAG_RATES)
    # The tag sweep's grid grew upward from the registered RATES (stop 51).
    assert TAG_RATES[:len(RATES)] == RATES and min(TAG_RATES[len(RATES):]) > max(RATES)
    assert sorted({c["seed"] for c in sweep().cells}) == [0, 1, 2, 3, 4]   # the default
    assert {(c["depth"], c["variant"]) for c in spec.cells} >= {(8, "slots"), (2, "input")}


def test_erasure_of_the_tag_costs_accuracy_and_a_sham_erasure_does_not(one_thread):
    from phaselib.preconditioning import measure_tag
    from phaselib.preconditioning_runs import erased_accuracy, train_tagged

    model, perms, hist = train_tagged(0, 1, "input", steps=150, T=8)
    # run_cell is train_tagged then measure_tag: the same model, the same numbers.
    assert run_cell(0, 1, "input", steps=150, T=8)["loss"] == pytest.approx(
        measure_tag(model, perms, T=8, seed=10_000)["loss"], abs=1e-6)
    plain = erased_accuracy(model, perms, 1, T=8)           # layer = depth: no erasure
    assert plain > 0.6
    # One block: it needs the tag, so erasing it at its input drops to the blind ceiling.
    assert erased_accuracy(model, perms, 0, T=8) < 0.45
    assert erased_accuracy(model, perms, 0, sham=True, T=8) > plain - 0.05
    with pytest.raises(ValueError, match="layer must be in"):
        erased_accuracy(model, perms, 2, T=8)


def test_each_model_is_kept_at_the_rate_of_lowest_validation_loss():
    n = len(TAG_RATES)      # a diverged run (NaN) ranks last
    rows = [{"seed": 0, "depth": 2, "variant": "input", "lr": lr, "val_loss": v,
             "loss": 9.0} for lr, v in zip(TAG_RATES, [0.5, 0.2] + [0.3] * (n - 2))]
    rows += [{"seed": 1, "depth": 2, "variant": "input", "lr": lr, "val_loss": v,
              "loss": 0.0} for lr, v in zip(TAG_RATES, [0.1] + [0.2] * (n - 2) + [math.nan])]
    best = best_rate_cells(rows)
    assert best[0, 2, "input"]["lr"] == TAG_RATES[1]
    assert best[1, 2, "input"]["lr"] == TAG_RATES[0]
    with pytest.raises(ValueError, match="each rate of"):
        best_rate_cells(rows[:2])


def test_lookup_cell_measures_use_by_layer(one_thread):
    from phaselib.preconditioning_runs import run_lookup_cell

    res = run_lookup_cell(0, 1, "input", 3e-3, steps=500, plant=0)
    assert res["acc"] > 0.6 and res["lr"] == 3e-3
    # The tag is needed after the lookup: erased at block 0's input (the only block),
    # accuracy falls to the tag-blind 1 / n_tags; a sham erasure costs nothing.
    assert res["erased"][0] < 0.35 and res["erased"][1] > 0.6   # [1]: none erased
    assert res["sham"][0] > res["erased"][1] - 0.05     # noise of the random means
    assert res["probe_seq"][0] > 0.95 and res["probe_seq_train"][0] > 0.95
    assert res["recall_step"] is not None and res["recall_step"] < 500
    # The planted loss: the tag erased from what block 0 reads. The probe on the
    # embedding, before the erasure, reads what it read; after block 0 it falls from
    # the clean model's reading to near chance (1 / n_tags), and so does the task.
    planted = res["planted"]
    assert planted["block"] == 0 and planted["probe_seq"][0] == res["probe_seq"][0]
    assert res["probe_seq"][1] > 0.8 and planted["probe_seq"][1] < 0.4
    assert planted["acc"] < 0.35
    with pytest.raises(ValueError, match="needs out"):
        run_lookup_cell(0, 1, "input", "best")


def test_lookup_sweep_runs_seed_zero_at_every_rate_first():
    from phaselib.preconditioning_runs import LOOKUP_OUT, sweep_lookup

    cells = sweep_lookup().cells
    assert len(cells) == 9 * len(RATES) + 9 * 4
    first = cells[:9 * len(RATES)]
    assert {c["seed"] for c in first} == {0} and {c["lr"] for c in first} == set(RATES)
    assert all(c["lr"] == "best" and c["out"] == LOOKUP_OUT for c in cells[27:])


def test_long_follow_up_is_depth_eight_at_one_rate_and_a_longer_budget():
    from phaselib.preconditioning_runs import (LONG_STEPS, LOOKUP_STEPS,
                                              sweep_lookup_long)

    cells = sweep_lookup_long().cells
    assert len(cells) == 5 * 3 and LONG_STEPS > LOOKUP_STEPS
    assert {(c["depth"], c["lr"], c["steps"]) for c in cells} == {(8, 3e-3, LONG_STEPS)}


def test_a_withheld_tag_delays_its_use_by_construction(one_thread):
    from phaselib.preconditioning_runs import train_tagged

    model, perms, hist = train_tagged(0, 1, "input", steps=300, T=8, task="lookup",
                                      withhold=200)
    assert model.tag_gate == 1.0                      # given back after training
    # Before step 200 the tag is zero in the input: no step there can use it, so the
    # 20-step mean loss stays above ln(n_tags) - 0.3 (blind: at best ln 4 = 1.39).
    assert min(hist.loss[19:200]) > 1.0
    with pytest.raises(ValueError, match="withhold"):
        train_tagged(0, 1, "input", steps=5, T=8, withhold=-1)


def test_delay_sweep_chooses_rates_on_seed_zero_and_judges_new_seeds():
    from phaselib.preconditioning_runs import DELAY_SEEDS, PLANT, sweep_delay

    cells = sweep_delay().cells
    n_plant = len(DELAY_SEEDS)
    assert len(cells) == 5 * len(RATES) + 5 * len(DELAY_SEEDS) + n_plant
    assert {c["seed"] for c in cells[:5 * len(RATES)]} == {0}
    assert {c["seed"] for c in cells[5 * len(RATES):]} == set(DELAY_SEEDS)
    assert 0 not in DELAY_SEEDS and {c["withhold"] for c in cells} == {0, PLANT}
    # The probe's control: the input-only models of depth 8 again, each seed judged,
    # with the tag erased at block 0's input; no other cell plants anything.
    planted = [c for c in cells if "plant" in c]
    assert planted == cells[-n_plant:]
    assert {(c["depth"], c["variant"], c["plant"], c["lr"]) for c in planted} == {
        (8, "input", 0, "best")}
    assert sorted(c["seed"] for c in planted) == sorted(DELAY_SEEDS)


def test_tag_erased_removes_the_class_means_and_then_lets_go():
    import torch

    from phaselib.preconditioning import TASKS
    from phaselib.preconditioning_runs import tag_erased, train_tagged
    from phaselib.taps import capture

    model, perms, _ = train_tagged(0, 2, "input", steps=1, T=8, task="lookup")
    model.eval()
    (idx, tags), _ = TASKS["lookup"](512, 8, perms,
                                     generator=torch.Generator().manual_seed(7))
    t0 = model.cfg.tag_from

    def class_means(x):
        return torch.stack([x[tags == k][:, t0:].mean((0, 1)) for k in range(4)])

    def spread():
        with torch.no_grad(), capture(model, ["block_in.1"]) as taps:
            model((idx, tags))
        m = class_means(taps["block_in.1"])
        return float((m - m.mean(0)).norm(dim=1).max())

    before = spread()
    # The means are measured on the same sequences (seed 7, first batch): erased there,
    # the class means of what block 1 reads coincide up to rounding.
    with tag_erased(model, perms, 1, T=8, seed=7, task="lookup"):
        during = spread()
    assert before > 0.1 and during < 1e-4 * before
    assert spread() == before                                   # the hooks are gone
    with pytest.raises(ValueError, match="layer must be"):
        with tag_erased(model, perms, 2, T=8, task="lookup"):
            pass


def test_chain_sweep_chooses_rates_on_seed_zero_and_judges_new_seeds():
    from phaselib.preconditioning_runs import (CHAIN_OUT, CHAIN_PLANT,
                                               CHAIN_PLANT_FIRST, CHAIN_RATES,
                                               CHAIN_SEEDS, CHAIN_STEPS, sweep_chain)

    cells = sweep_chain().cells
    # the registered grid, extended downward (stop 50's registered step)
    assert CHAIN_RATES[-3:] == RATES and min(CHAIN_RATES) < min(RATES)
    assert len(cells) == 5 * len(CHAIN_RATES) + 5 * len(CHAIN_SEEDS)
    assert {c["seed"] for c in cells[:5 * len(CHAIN_RATES)]} == {0}
    assert {c["seed"] for c in cells[5 * len(CHAIN_RATES):]} == set(CHAIN_SEEDS)
    assert 0 not in CHAIN_SEEDS and len(CHAIN_SEEDS) >= 5
    assert {(c["depth"], c["steps"]) for c in cells} == {(8, CHAIN_STEPS)}
    # the positive controls are the re-injected route with a late tag, and only it;
    # the judged one plants its tag after the first (see CHAIN_PLANT)
    assert {(c["variant"], c["withhold"]) for c in cells} == {
        ("input", 0), ("every", 0), ("slots", 0), ("every", CHAIN_PLANT_FIRST),
        ("every", CHAIN_PLANT)}
    assert 0 < CHAIN_PLANT_FIRST < CHAIN_PLANT < CHAIN_STEPS
    assert {c["out"] for c in cells if c["lr"] == "best"} == {CHAIN_OUT}


def test_a_chain_cell_needs_the_tag_after_block_zero(one_thread):
    """A short chain cell is measured like a lookup cell (use by block, the lookup
    step), on a model of the chain task's shape: 8 pointers and 8 query tokens."""
    from phaselib.preconditioning import TaggedConfig, TaggedTransformer
    from phaselib.preconditioning_runs import run_chain_cell

    r = run_chain_cell(0, 2, "input", 3e-3, steps=30)
    assert r["lr"] == 3e-3 and len(r["erased"]) == 3 and len(r["sham"]) == 2
    assert "recall_step" in r and len(r["probe_seq"]) == 3
    shape = TaggedConfig(vocab_size=16, n_tags=4, block_size=16, n_layer=2, n_embd=32,
                         tag_from=8)
    assert r["params"] == TaggedTransformer(shape).num_params()
    lookup = TaggedConfig(vocab_size=24, n_tags=4, block_size=16, n_layer=2, n_embd=32,
                          tag_from=8)
    assert r["params"] != TaggedTransformer(lookup).num_params()
    with pytest.raises(ValueError, match="lr"):
        run_chain_cell(0, 2, "input", "fast", steps=3)


def test_the_depth_two_chain_arm_mirrors_the_chain_sweep_but_for_its_depth():
    """f7-chain-depth (registered before its runs) runs the chain sweep's input-only
    and re-injected routes and its planted control at depth two: the same budget, rates
    and seeds, seed 0 at every rate and the others at its choice."""
    from phaselib.preconditioning_runs import (CHAIN_DEPTH_RULES, CHAIN_PLANT,
                                               CHAIN_RATES, CHAIN_RULES, CHAIN_SEEDS,
                                               CHAIN_STEPS)
    from phaselib.sweep import get_spec

    depth2, depth8 = get_spec("f7-chain-depth").cells, get_spec("f7-chain").cells
    models = {(c["variant"], c["withhold"]) for c in depth2}
    assert models == {("input", 0), ("every", 0), ("every", CHAIN_PLANT)}
    assert models < {(c["variant"], c["withhold"]) for c in depth8}
    assert {c["depth"] for c in depth2} == {2} and {c["depth"] for c in depth8} == {8}
    assert {c["steps"] for c in depth2} == {CHAIN_STEPS}
    rate_cells = [c for c in depth2 if c["seed"] == 0]
    assert sorted(c["lr"] for c in rate_cells) == sorted(CHAIN_RATES * len(models))
    assert sorted(c["seed"] for c in depth2 if c["lr"] == "best") == sorted(
        CHAIN_SEEDS * len(models))
    # The depth part is judged like the chain's other solve-step parts.
    new = CHAIN_DEPTH_RULES["f7-dissipates-with-depth"]["deeper is worse, two hops"]
    old = CHAIN_RULES["f7-dissipates-with-depth"]["re-injection helps, two hops"]
    assert (new["threshold"], new["unit"], new["direction"]) == (
        old["threshold"], old["unit"], old["direction"])


def test_deepest_use_reads_the_deepest_costly_erasure():
    from phaselib.preconditioning_runs import deepest_use

    # rows: erased at blocks 0, 1, 2, then untouched
    rows = [[0.25, 0.30, 0.99, 1.0],     # blocks 0 and 1 cost; block 2 (0.01) does not
            [0.25, 1.00, 0.90, 1.0],     # block 2 costs 0.10: deepest is 2
            [0.97, 0.99, 1.00, 1.0]]     # nothing costs more than the margin
    assert deepest_use(rows) == [1, 2, -1]
    assert deepest_use(rows, margin=0.2) == [1, 0, -1]   # block 2 now under it
    with pytest.raises(ValueError, match="erased"):
        deepest_use([0.25, 1.0])
    with pytest.raises(ValueError, match="margin"):
        deepest_use(rows, margin=-0.1)
