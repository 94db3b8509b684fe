"""The logit lens: read every layer's residual stream through the model's own head.

Book: Part II, "F6 In-place evolution". For a pre-norm TinyTransformer the output is
head(ln_f(x_L)); the lens applies the same head(ln_f(.)) to x_l at every layer l, as if
the model stopped there (nostalgebraist 2020). At l = L it is the model's logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import check_float_tensor, check_long_tensor
from .transformer import TinyTransformer

__all__ = ["logit_lens", "lens_stats"]


@torch.no_grad()
def logit_lens(model: TinyTransformer, streams: torch.Tensor) -> torch.Tensor:
    """head(ln_f(streams)): streams [L+1, B, T, C] -> logits [L+1, B, T, V]."""
    if not isinstance(model, TinyTransformer):
        raise TypeError(f"model must be a phaselib TinyTransformer, got "
                        f"{type(model).__name__}")
    check_float_tensor("streams", streams, min_ndim=2, shape_doc="of shape [..., C]")
    C = model.cfg.n_embd
    if streams.shape[-1] != C:
        raise ValueError(f"streams must have last dimension n_embd={C}, got "
                         f"{tuple(streams.shape)}")
    return model.head(model.ln_f(streams))


@torch.no_grad()
def lens_stats(lens: torch.Tensor, targets: torch.Tensor) -> dict:
    """Per layer l, from lens logits [L+1, B, T, V] and targets [B, T] (long):
    "loss" (cross-entropy of the lens at l against the targets, nats), "agree" (share
    of positions whose top-1 at l is the final layer's top-1) and "kl" (mean
    KL(final || lens at l), nats). Lists of L+1 floats; agree[L] = 1, kl[L] = 0."""
    check_float_tensor("lens", lens, ndim=4, shape_doc="of shape [L+1, B, T, V]")
    check_long_tensor("targets", targets, lens.shape[1:3])
    logp = F.log_softmax(lens.double(), -1)
    final = logp[-1]
    top = final.argmax(-1)
    out = {"loss": [], "agree": [], "kl": []}
    for lp in logp:
        out["loss"].append(float(F.nll_loss(lp.flatten(0, 1), targets.flatten())))
        out["agree"].append(float((lp.argmax(-1) == top).double().mean()))
        out["kl"].append(float((final.exp() * (final - lp)).sum(-1).mean()))
    return out
