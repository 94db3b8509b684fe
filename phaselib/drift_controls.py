"""Controls for F6's measurements of the residual stream: what each instrument sees when
the effect is planted, or when the history is taken away without leaving the model's
distribution.

Book: Part II, "F6 In-place evolution". The measurements themselves are in
`phaselib.drift`; these functions reuse its windows (`drift_windows`) and hooks:

- `history_neutral`: the late-correction control with the last position's history
  averaged out (the mean stream of reference windows ending in the same token), a stream
  the model has seen, where the bare embedding is not one;
- `span_attention`: how much of each block's attention, from the last position, falls on
  the span the correction changes;
- `tag_legibility`: the injected tag's probe accuracy by layer for tags of several
  lengths, and a planted loss of legibility (a share of the windows carry another tag at
  the top) that the same probe must see;
- `planted_hijack`: the share of windows whose top-1 becomes a token when the context
  just before is written to predict it, the bomb instrument's positive control;
- `context_loss`: the next-token loss at the last position with a bomb, with the same
  span of other text, and with all the context before the gap replaced (the context
  lost by construction, the measure's positive control).
"""

from __future__ import annotations

import torch

from ._checks import check_positive_int
from .drift import (inject, kl_rows, patched, probe_by_layer, residual_streams,
                    tag_vectors)
from .taps import capture
from .transformer import TinyTransformer

__all__ = ["history_neutral", "span_attention", "tag_legibility", "planted_hijack",
           "context_loss", "untrained_like"]


def _check_model(model) -> None:
    if not isinstance(model, TinyTransformer):
        raise TypeError(f"model must be a phaselib TinyTransformer, got "
                        f"{type(model).__name__}")


@torch.no_grad()
def history_neutral(model: TinyTransformer, corrected: torch.Tensor,
                    uncorrected: torch.Tensor, reference: torch.Tensor) -> dict:
    """`late_correction`'s "recovered" with a neutral history instead of a misleading one.

    For l = 0..L the last position's stream at the input of block l is replaced by the
    mean stream, at layer l and the last position, of the reference windows [N, T] that
    end in the same token: the token is kept, its history averaged out. Windows whose
    last token no reference window ends in are left out. Returns {"recovered": [L+1]
    floats, 1 - mean KL(p_corr || p_hybrid_l) / mean KL(p_corr || p_unc) over the kept
    windows, "kept": their number}. At l = 0 the mean equals x_0 (recovered 1); the gap
    between l = 1 and l = L is what blocks 1..L-1 add by reading the true context."""
    _check_model(model)
    if corrected.shape != uncorrected.shape or corrected.dim() != 2:
        raise ValueError(f"corrected and uncorrected must both have shape [B, T], got "
                         f"{tuple(corrected.shape)} and {tuple(uncorrected.shape)}")
    if reference.dim() != 2 or reference.shape[1] != corrected.shape[1]:
        raise ValueError(f"reference must have shape [N, T={corrected.shape[1]}], got "
                         f"{tuple(reference.shape)}")
    V = model.cfg.vocab_size
    s_r, _ = residual_streams(model, reference)                  # [L+1, N, T, C]
    last = reference[:, -1]
    count = torch.bincount(last, minlength=V)
    means = torch.zeros(s_r.shape[0], V, s_r.shape[-1], dtype=s_r.dtype,
                        device=s_r.device).index_add_(1, last, s_r[:, :, -1])
    means = means / count.clamp(min=1)[None, :, None]
    keep = count[corrected[:, -1]] > 0
    if not keep.any():
        raise ValueError("no reference window ends in any of the windows' last tokens")
    x, wrong = corrected[keep], uncorrected[keep]
    _, lg_c = residual_streams(model, x)
    _, lg_u = residual_streams(model, wrong)
    p_c = lg_c[:, -1]
    total = kl_rows(p_c, lg_u[:, -1]).mean()
    rec = []
    for l in range(s_r.shape[0]):
        with patched(model, l, -1, means[l][x[:, -1]]):
            lg_h = model(x)[0][:, -1]
        rec.append(float(1 - kl_rows(p_c, lg_h).mean() / total))
    return {"recovered": rec, "kept": int(keep.sum())}


@torch.no_grad()
def span_attention(model: TinyTransformer, x: torch.Tensor, span: int) -> list[float]:
    """[L] floats: the attention weight, from the last position, that block l puts on the
    `span` positions just before it (mean over windows and heads). Uniform attention
    over the T positions it sees would put span / T there."""
    _check_model(model)
    check_positive_int("span", span)
    if not span < x.shape[1]:
        raise ValueError(f"span must be shorter than the windows (T={x.shape[1]}), got "
                         f"{span}")
    names = [f"blocks.{l}.attn.tap_pattern" for l in range(model.cfg.n_layer)]
    was = model.training
    model.eval()
    with capture(model, names) as taps:
        model(x)
    model.train(was)
    return [float(taps[n][:, :, -1, -1 - span:-1].sum(-1).mean()) for n in names]


@torch.no_grad()
def tag_legibility(model: TinyTransformer, x: torch.Tensor, tags: torch.Tensor,
                   norm: float, scales=(0.1, 0.25, 0.5, 1.0), *, n_tags: int = 4,
                   planted: float = 0.2, n_probe: int = 2000, seed: int = 0) -> dict:
    """The injected tag's held-out probe accuracy by layer, for tags of several lengths.

    Tag k is tag_vectors(n_tags, C, scale * norm, seed)[k] added to x_0 of every window
    (tags [B] per window; with scale 1 and norm the mean |x_0| this is `measure_drift`'s
    tag). "probe": {scale: [L+1] floats}. The positive control "planted_top": the probe
    at the top for the scale-1 tag when a random share `planted` of the windows carry
    another tag (the labels stay the true ones): a loss of legibility of about `planted`
    put there by construction, which the probe must see."""
    _check_model(model)
    if not 0 < planted < 1:
        raise ValueError(f"planted must be in (0, 1), got {planted}")
    labels = tags[:, None].expand_as(x).contiguous()
    out = {"scales": list(scales), "probe": {}}
    for scale in scales:
        vecs = tag_vectors(n_tags, model.cfg.n_embd, norm * scale, seed=seed).to(x.device)
        with inject(model, vecs[tags][:, None, :]):
            s, _ = residual_streams(model, x)
        out["probe"][scale] = probe_by_layer(s, labels, n=n_probe, seed=seed)
    g = torch.Generator().manual_seed(seed)
    swap = torch.rand(len(tags), generator=g) < planted
    other = (tags.cpu() + torch.randint(1, n_tags, (len(tags),), generator=g)) % n_tags
    carried = torch.where(swap, other, tags.cpu()).to(tags.device)
    vecs = tag_vectors(n_tags, model.cfg.n_embd, norm, seed=seed).to(x.device)
    with inject(model, vecs[carried][:, None, :]):
        s, _ = residual_streams(model, x)
    out["planted_top"] = probe_by_layer(s[-1:], labels, n=n_probe, seed=seed)[0]
    out["planted_share"] = float(swap.double().mean())
    return out


@torch.no_grad()
def planted_hijack(model: TinyTransformer, x: torch.Tensor, context: list[int],
                   token: int) -> float:
    """The share of windows x [B, T] whose top-1 next token at the last position is
    `token` once the last len(context) tokens are overwritten by `context`, minus the
    share on the clean windows: the bomb's hijack instrument, on a context written to
    predict `token`."""
    _check_model(model)
    if not 1 <= len(context) <= x.shape[1]:
        raise ValueError(f"context must hold 1 to T={x.shape[1]} tokens, got "
                         f"{len(context)}")
    _, lg = residual_streams(model, x)
    planted = x.clone()
    planted[:, -len(context):] = torch.tensor(context, dtype=x.dtype, device=x.device)
    _, lg_p = residual_streams(model, planted)
    clean = (lg[:, -1].argmax(-1) == token).double().mean()
    return float((lg_p[:, -1].argmax(-1) == token).double().mean() - clean)


@torch.no_grad()
def context_loss(model: TinyTransformer, x: torch.Tensor, y: torch.Tensor,
                 others: torch.Tensor, bomb: int, *, length: int = 8,
                 gap: int = 8) -> dict:
    """What a bomb costs the prediction: the mean next-token loss (nats) at the last
    position of windows x [B, T] (next tokens y [B]), "clean"; with `length` copies of
    `bomb` ending `gap` real tokens before the last position, "bomb"; with the same
    span taken from others [B, T] (other real text), "other"; and with every token
    before those last `gap` + 1 taken from others, "lost": the context removed, the
    local tokens kept."""
    _check_model(model)
    if x.dim() != 2 or others.shape != x.shape or y.shape != x.shape[:1]:
        raise ValueError(f"x and others must have shape [B, T] and y shape [B], got "
                         f"{tuple(x.shape)}, {tuple(others.shape)} and {tuple(y.shape)}")
    T = x.shape[1]
    check_positive_int("length", length)
    if not (isinstance(gap, int) and 0 <= gap) or gap + length + 1 > T:
        raise ValueError(f"gap must be an int >= 0 with gap + length + 1 <= T={T}, got "
                         f"gap={gap!r}, length={length}")
    lo, hi = T - 1 - gap - length, T - 1 - gap
    bombed, other, lost = x.clone(), x.clone(), x.clone()
    bombed[:, lo:hi] = bomb
    other[:, lo:hi] = others[:, lo:hi]
    lost[:, :hi] = others[:, :hi]
    out = {}
    for name, w in (("clean", x), ("bomb", bombed), ("other", other), ("lost", lost)):
        _, lg = residual_streams(model, w)
        out[name] = float(torch.nn.functional.cross_entropy(lg[:, -1], y))
    return out


def untrained_like(model: TinyTransformer, seed: int) -> TinyTransformer:
    """A fresh TinyTransformer of `model`'s config, initialised under `seed` and never
    trained (eval mode, on `model`'s device): the stack whose blocks have not yet
    rewritten the stream."""
    _check_model(model)
    torch.manual_seed(seed)
    dev = next(model.parameters()).device
    return TinyTransformer(model.cfg).to(dev).eval()
