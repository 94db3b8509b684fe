"""Every rule registered in code before its sweep ran is stated unchanged (threshold,
direction, effect and unit) by the claim record the chapter judges it with."""

import importlib

import pytest

from phaselib.claims import load_claims

REGISTERED = [("phaselib.preconditioning_runs", "CHAIN_RULES"),
              ("phaselib.preconditioning_runs", "CHAIN_DEPTH_RULES"),
              ("phaselib.branching_runs", "SWITCH_RULES"),
              ("phaselib.branching_balance", "BALANCE_RULES"),
              ("phaselib.multiscale_runs", "STEPS_RULES"),
              ("phaselib.partitions_runs", "SAME_RULES"),
              ("phaselib.drift_runs", "CONTEXT_RULES"),
              ("phaselib.drift_runs", "CONTEXT_LARGE_RULES"),
              ("phaselib.erosion_runs", "MEM_RULES"),
              ("phaselib.engineered_bombs", "BOMB_RULES")]


@pytest.mark.parametrize("module, name", REGISTERED, ids=[n for _, n in REGISTERED])
def test_the_records_judge_each_registered_sweep_by_its_rules(module, name):
    rules = getattr(importlib.import_module(module), name)
    claims = load_claims()
    for claim_id, parts in rules.items():
        for part, rule in parts.items():
            assert claims[claim_id].rules[part] == rule, (claim_id, part)
