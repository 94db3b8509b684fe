"""Checkers for Part II, "F6 In-place evolution"."""

from __future__ import annotations

import torch

from ..drift import residual_streams
from ..lens import logit_lens
from ..rank_collapse import rank_one_residual
from ..transformer import TinyTransformer, TransformerConfig
from ._common import assert_close, attempted, passed

__all__ = ["check_rank_one_residual", "check_logit_lens"]


def check_rank_one_residual(fn) -> bool:
    """fn(X [..., n, d] float) -> [...]: ||X - 1 x*^T||_F / ||X||_F with x* the best
    row, i.e. the relative distance of X to the nearest matrix of identical rows."""
    g = torch.Generator().manual_seed(0)
    row = torch.randn(1, 5, generator=g, dtype=torch.float64)
    cases = {
        "identical rows (distance 0)": row.expand(4, 5).clone(),
        "the 2 x 2 identity (1 / sqrt 2)": torch.eye(2, dtype=torch.float64),
        "rows u_i x^T with u = (1, -1): rank one, not identical rows (1)":
            torch.outer(torch.tensor([1.0, -1.0], dtype=torch.float64), row[0]),
        "a batch [3, 7, 5] of random matrices": torch.randn(3, 7, 5, generator=g,
                                                            dtype=torch.float64) + 2.0,
    }
    for name, X in cases.items():
        ok, got = attempted(fn, X)
        if not ok:
            return False
        want = rank_one_residual(X)
        if isinstance(got, torch.Tensor) and got.shape == want.shape and \
                name.startswith("id") and \
                torch.allclose(got.double(), torch.ones_like(want)):
            raise AssertionError(f"{name}: got 1, expected 0; subtract the mean row, "
                                 f"not 0")
        assert_close(f"rank_one_residual on {name}", got, want, atol=1e-6)
    return passed("rank_one_residual")


def check_logit_lens(fn) -> bool:
    """fn(model TinyTransformer, streams [L+1, B, T, C]) -> [L+1, B, T, V]: every
    layer's stream read through the model's final LayerNorm and head."""
    torch.manual_seed(0)
    model = TinyTransformer(TransformerConfig(vocab_size=13, block_size=9, n_layer=3,
                                              n_head=2, n_embd=8)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    idx = torch.randint(13, (2, 9), generator=torch.Generator().manual_seed(1))
    streams, logits = residual_streams(model, idx)
    ok, got = attempted(fn, model, streams)
    if not ok:
        return False
    want = logit_lens(model, streams)
    if isinstance(got, torch.Tensor) and got.shape == want.shape and \
            torch.allclose(got, model.head(streams), atol=1e-5):
        raise AssertionError("the lens skips the final LayerNorm: read head(ln_f(x_l))")
    assert_close("logit lens", got, want, atol=1e-5)
    assert_close("logit lens at the last layer (the model's logits)", got[-1], logits,
                 atol=1e-5)
    return passed("logit_lens")
