"""lm-seeds: the amendment's cells are the lm sweep's cells of the models its part
reads, at new seeds only."""

from phaselib import lm_seeds, lm_sweep
from phaselib.claims import claim_rule
from phaselib.sweep import get_spec


def test_each_cell_is_an_lm_cell_of_the_same_model_at_a_new_seed():
    lm_cells = lm_sweep.sweep().cells
    lm_seeds_seen = {c["seed"] for c in lm_cells}
    spec = get_spec("lm-seeds")
    assert spec.out == lm_seeds.OUT and spec.out != lm_sweep.OUT
    assert len(spec.cells) == len(lm_seeds.SEEDS) * len(lm_seeds.MODELS)
    for c in spec.cells:
        assert c["seed"] not in lm_seeds_seen
        twin = {**c, "seed": 0}
        assert twin in lm_cells, c            # same parameters but the seed
    assert {c["variant"] for c in spec.cells} == {"transformer", "transformer-rope",
                                                  "phase", "phase-window"}


def test_the_amendment_names_a_part_the_record_has():
    a = lm_seeds.AMENDMENT
    assert claim_rule(a["claim"], a["part"]).threshold < 0   # a rule the record holds
    assert a["seeds"][:3] == (0, 1, 2) and set(lm_seeds.SEEDS) <= set(a["seeds"])
