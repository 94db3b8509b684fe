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


def test_glue_in_the_book_returns_nothing_to_show(monkeypatch):
    """A cell that ends in glue(...) must not print the value under the prose."""
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, v, display=False: seen.update({name: v}))
    assert glue("y", 0.5) is None and seen == {"y": 0.5}


def test_setup_refuses_cuda_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="device='cuda'"):
        setup(0, "cuda")


def test_setup_prints_one_line_naming_the_cpu_threads_and_versions(capsys):
    n = torch.get_num_threads()
    try:
        dev = setup(3, "cpu", threads=1)
    finally:
        torch.set_num_threads(n)
    out = capsys.readouterr().out
    assert dev == torch.device("cpu")
    assert out.count("\n") == 1
    assert out.startswith("Running on CPU, 1 thread, seed 3 | ")
    assert f"torch {torch.__version__}" in out and "phaselib 0.1.0" in out


def test_setup_picks_the_gpu_when_present_and_names_it(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: f"Fake H100 #{i}")
    dev = setup(0, "auto")
    out = capsys.readouterr().out
    assert dev.type == "cuda"
    assert out.startswith("Running on GPU Fake H100 #0 (cuda:0), seed 0 | torch ")


def test_setup_can_stay_quiet(capsys):
    setup(0, "cpu", verbose=False)
    assert capsys.readouterr().out == ""


def test_setup_says_colab_when_on_colab(monkeypatch, capsys):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    setup(0, "cpu")
    assert ", Colab, seed 0 | " in capsys.readouterr().out


def test_cpu_threads_sets_the_count_inside_and_restores_it_after_an_error():
    from phaselib.notebook import cpu_threads
    before = torch.get_num_threads()
    inside = 2 if before == 1 else 1
    with cpu_threads(inside):
        assert torch.get_num_threads() == inside
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        with cpu_threads(inside):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        with cpu_threads(0):
            pass
