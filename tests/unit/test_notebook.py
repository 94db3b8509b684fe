"""The chapters' setup helpers: glue hands myst-nb plain Python numbers."""

import numpy as np
import pytest
import torch

from phaselib.notebook import glue, plain, setup


@pytest.mark.parametrize("value, expected", [(np.float64(0.25), 0.25), (np.int64(7), 7),
                                             (np.float32(0.5), 0.5),
                                             (torch.tensor(3.0), 3.0),
                                             (torch.tensor([2]), 2)])
def test_plain_turns_numpy_and_torch_scalars_into_python_numbers(value, expected):
    out = plain(value)
    assert type(out) is type(expected) and out == expected


def test_plain_leaves_other_values_alone():
    t = torch.arange(3)
    assert plain(t) is t and plain("a b") == "a b" and plain([1, 2]) == [1, 2]


def test_glued_numpy_value_has_a_text_form_that_parses_as_a_number(monkeypatch):
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, v, display=False: seen.update({name: v}))
    glue("x", np.float64(0.125))
    assert float(repr(seen["x"])) == 0.125


def test_setup_refuses_cuda_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="device='cuda'"):
        setup(0, "cuda")
