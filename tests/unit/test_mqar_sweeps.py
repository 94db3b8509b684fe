"""The MQAR sweeps of Part III: which rates each model of the binding test tries."""

import pytest


def test_the_binding_grid_grew_only_for_models_at_an_edge_and_only_there():
    from phaselib.remedies.mqar import LRS
    from phaselib.remedies.mqar_sweeps import (BINDING_GRIDS, BINDING_OUT, RECALL_OUT,
                                               binding, rate_grid)

    assert rate_grid("fused-conv", BINDING_OUT) == LRS            # chose inside LRS
    assert min(rate_grid("fused", BINDING_OUT)) < min(LRS)        # best at the bottom
    assert max(rate_grid("linear-conv", "/x/" + BINDING_OUT)) > max(LRS)
    assert rate_grid("fused", RECALL_OUT) == LRS == rate_grid("fused")
    with pytest.raises(ValueError, match="model must be one of"):
        rate_grid("mqa-conv", BINDING_OUT)
    cells = binding().cells
    # Every rate cell comes before every cell that reads its model's choice.
    first_best = next(i for i, c in enumerate(cells) if c["lr"] == "best")
    assert all(c["lr"] == "best" for c in cells[first_best:])
    assert sorted(c["lr"] for c in cells if c["model"] == "fused" and c["seed"] == 0) \
        == sorted(BINDING_GRIDS["fused"])


def test_each_table_row_checked_past_its_edge_lies_at_that_edge_in_mqar_recall():
    from phaselib.rate_edges import audit
    from phaselib.remedies.mqar_sweeps import RECALL_EDGE, RECALL_PHASE_MODELS

    edge = {m.params["model"]: m for m in audit("mqar-recall") if m.edge}
    for model, lr in RECALL_EDGE.items():
        m = edge[model]
        assert (lr > max(m.rates)) == (m.edge == "high"), model
        assert lr > max(m.rates) or lr < min(m.rates), model
    # With Part IV's models (checked since stop 43), every model of mqar-recall at an
    # edge has a check past it.
    assert set(edge) <= set(RECALL_EDGE) | set(RECALL_PHASE_MODELS)
