import pytest
import torch

from phaselib.exercises import check_logit_lens, check_rank_one_residual


def test_rank_one_residual_checker_accepts_the_mean_row_and_rejects_the_zero_row():
    def right(X):
        r = X - X.mean(-2, keepdim=True)
        return r.flatten(-2).norm(dim=-1) / X.flatten(-2).norm(dim=-1)

    def wrong(X):  # forgets the mean: always 1
        return X.flatten(-2).norm(dim=-1) / X.flatten(-2).norm(dim=-1)

    def stub(X):
        raise NotImplementedError

    assert check_rank_one_residual(right) is True
    with pytest.raises(AssertionError, match="subtract the mean row"):
        check_rank_one_residual(wrong)
    assert check_rank_one_residual(stub) is False


def test_logit_lens_checker_accepts_ln_then_head_and_rejects_head_alone():
    def right(model, streams):
        return model.head(model.ln_f(streams))

    def wrong(model, streams):
        return model.head(streams)

    assert check_logit_lens(right) is True
    with pytest.raises(AssertionError, match="skips the final LayerNorm"):
        check_logit_lens(wrong)
    with pytest.raises(AssertionError, match="logit lens"):
        check_logit_lens(lambda m, s: torch.zeros(s.shape[:-1] + (13,)))
