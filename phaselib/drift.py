"""How the residual stream of a trained TinyTransformer evolves in place, by layer.

Book: Part II, "F6 In-place evolution". The stream x_0 = wte(idx) + wpe(t) is updated
in place, x_{l+1} = x_l + attn_l(.) + mlp_l(.); this module reads it back
(`residual_streams`, layer 0 = x_0, layer l = after block l), measures how far it turns
from x_0 (`cosine`), what a linear probe still reads from it (`probe_by_layer`), and
moves information in and out of it: `inject` adds a vector to x_0, `patched` swaps one
position's stream at the input of a block. The logit lens lives in `phaselib.lens`;
the char model that F6 trains, the measurement of one model and the sweep `f6` live in
`phaselib.drift_runs`.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ._checks import check_float_tensor, check_long_tensor, check_positive_int
from .probes import fit_linear_probe
from .taps import capture
from .transformer import TinyTransformer

__all__ = ["cosine", "residual_streams", "inject", "patched", "probe_by_layer",
           "kl_rows", "late_correction", "tag_vectors", "drift_windows"]


def cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Cosine similarity along the last dimension: a, b [..., C] -> [...].

    Raises for mismatched shapes (no broadcasting); a zero vector has cosine 0."""
    check_float_tensor("a", a, min_ndim=1, shape_doc="of shape [..., C]")
    check_float_tensor("b", b, min_ndim=1, shape_doc="of shape [..., C]")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    num = (a * b).sum(-1)
    return num / (a.norm(dim=-1) * b.norm(dim=-1)).clamp(min=eps)


def _check_model(model) -> None:
    if not isinstance(model, TinyTransformer):
        raise TypeError(f"model must be a phaselib TinyTransformer, got "
                        f"{type(model).__name__}")


@contextmanager
def inject(model: TinyTransformer, delta: torch.Tensor):
    """Inside the block, x_0 becomes x_0 + delta (delta [B, 1, C] or [B, T, C]): a
    vector written into the stream at the input, one the model never saw in training."""
    _check_model(model)
    check_float_tensor("delta", delta, ndim=3, shape_doc="of shape [B, 1 or T, C]")
    h = model.tap_embed.register_forward_hook(lambda _m, _i, out: out + delta)
    try:
        yield
    finally:
        h.remove()


@contextmanager
def patched(model: TinyTransformer, layer: int, pos: int, stream: torch.Tensor):
    """Inside the block, the input of block `layer` has its position `pos` replaced by
    stream [B, C] (taken from another run); the other positions and blocks run as usual.
    layer = n_layer patches the output of the last block (what ln_f and head read)."""
    _check_model(model)
    L = model.cfg.n_layer
    if not 0 <= layer <= L:
        raise ValueError(f"layer must be in [0, n_layer={L}], got {layer}")
    check_float_tensor("stream", stream, ndim=2, shape_doc="of shape [B, C]")

    def swap(x):
        x = x.clone()
        x[:, pos] = stream
        return x

    if layer < L:
        target = model.blocks[layer]
    else:
        target = model.ln_f
    h = target.register_forward_pre_hook(lambda _m, args: (swap(args[0]),))
    try:
        yield
    finally:
        h.remove()


@torch.no_grad()
def residual_streams(model: TinyTransformer, idx: torch.Tensor):
    """(streams [L+1, B, T, C], logits [B, T, V]): x_0 and the stream after each
    block."""
    _check_model(model)
    L = model.cfg.n_layer
    names = ["tap_embed"] + [f"blocks.{l}.tap_resid_post" for l in range(L)]
    was = model.training
    model.eval()
    with capture(model, names) as taps:
        logits, _ = model(idx)
    model.train(was)
    return torch.stack([taps[n] for n in names]), logits


def probe_by_layer(streams: torch.Tensor, labels: torch.Tensor, *, n: int = 2000,
                   seed: int = 0) -> list[float]:
    """Held-out linear-probe accuracy of labels [B, T] (long) from each layer of
    streams [L+1, B, T, C], on n positions drawn at random (`seed`) -> L+1 floats."""
    check_float_tensor("streams", streams, ndim=4, shape_doc="of shape [L+1, B, T, C]")
    check_long_tensor("labels", labels, streams.shape[1:3])
    check_positive_int("n", n)
    flat = streams.flatten(1, 2)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(flat.shape[1], generator=g)[:n]
    y = labels.flatten()[pick].cpu()
    return [fit_linear_probe(flat[l, pick].float().cpu(), y, seed=seed)
            for l in range(flat.shape[0])]


def tag_vectors(n_tags: int, n_embd: int, norm: float, seed: int = 0) -> torch.Tensor:
    """[n_tags, n_embd] random directions (seeded) scaled to length `norm`."""
    check_positive_int("n_tags", n_tags)
    check_positive_int("n_embd", n_embd)
    if not norm > 0:
        raise ValueError(f"norm must be > 0, got {norm}")
    v = torch.randn(n_tags, n_embd, generator=torch.Generator().manual_seed(seed))
    return v / v.norm(dim=-1, keepdim=True) * norm


def kl_rows(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(softmax(p) || softmax(q)) in nats over the last axis: [..., V] -> [...]."""
    check_float_tensor("logits_p", logits_p, min_ndim=1, shape_doc="of shape [..., V]")
    check_float_tensor("logits_q", logits_q, min_ndim=1, shape_doc="of shape [..., V]")
    if logits_p.shape != logits_q.shape:
        raise ValueError(f"logits_p and logits_q must have the same shape, got "
                         f"{tuple(logits_p.shape)} and {tuple(logits_q.shape)}")
    lp, lq = F.log_softmax(logits_p.double(), -1), F.log_softmax(logits_q.double(), -1)
    return (lp.exp() * (lp - lq)).sum(-1)


@torch.no_grad()
def late_correction(model: TinyTransformer, corrected: torch.Tensor,
                    uncorrected: torch.Tensor) -> dict:
    """How much of a correction can still reach the prediction when it arrives late.

    corrected, uncorrected [B, T] long differ only before the last position (the
    correction is in `corrected`). For l = 0..L, the hybrid run is the corrected one
    with the last position's stream at the input of block l taken from the
    uncorrected run: that position carries the uncorrected "momentum" of layers < l,
    and only blocks >= l can read the correction. Returns {"total": mean
    KL(p_corr || p_unc) in nats, "recovered": [L+1] floats, 1 - mean
    KL(p_corr || p_hybrid_l) / total}: 1 at l = 0 (nothing swapped), 0 at l = L (the
    uncorrected output); and the control "recovered_blank", the same with the last
    position's stream at block l reset to its bare embedding x_0 (no history, right
    or wrong), which can go below 0."""
    _check_model(model)
    for name, t in (("corrected", corrected), ("uncorrected", uncorrected)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.dim() != 2:
            raise ValueError(f"{name} must be a long tensor of shape [B, T], got "
                             f"{getattr(t, 'dtype', t)} "
                             f"{tuple(getattr(t, 'shape', ()))}")
    if corrected.shape != uncorrected.shape:
        raise ValueError(f"corrected and uncorrected must have the same shape, got "
                         f"{tuple(corrected.shape)} and {tuple(uncorrected.shape)}")
    if not torch.equal(corrected[:, -1], uncorrected[:, -1]):
        raise ValueError("corrected and uncorrected must share their last token")
    s_c, lg_c = residual_streams(model, corrected)
    s_u, lg_u = residual_streams(model, uncorrected)
    p_c, p_u = lg_c[:, -1], lg_u[:, -1]
    total = kl_rows(p_c, p_u).mean()
    if total <= 0:
        raise ValueError("corrected and uncorrected give the same prediction "
                         "(total KL 0)")
    L = model.cfg.n_layer
    rec, blank = [], []
    for l in range(L + 1):
        for out, src in ((rec, s_u[l]), (blank, s_c[0])):
            with patched(model, l, -1, src[:, -1]):
                lg_h = model(corrected)[0][:, -1]
            out.append(float(1 - kl_rows(p_c, lg_h).mean() / total))
    return {"total": float(total), "recovered": rec, "recovered_blank": blank}


@torch.no_grad()
def bomb_effect(model: TinyTransformer, windows: torch.Tensor, others: torch.Tensor,
                bomb: int, *, length: int = 8, gaps=(0, 4, 8, 16)) -> dict:
    """A "token bomb": `length` copies of token `bomb` written over windows [B, T] so
    that `gap` real tokens separate it from the last position; the control writes the
    same span from others [B, T] (other real text) instead. Per gap (lists):
    "hijack" share of windows whose top-1 next token at the last position is `bomb`
    (clean: "hijack_clean"), "kl_bomb" / "kl_control" mean KL(clean || changed) of the
    last prediction in nats, "shift_bomb" / "shift_control" [gap][layer] the mean
    relative change ||h' - h|| / ||h|| of the last position's stream by layer."""
    _check_model(model)
    if windows.shape != others.shape or windows.dim() != 2:
        raise ValueError(f"windows and others must both have shape [B, T], got "
                         f"{tuple(windows.shape)} and {tuple(others.shape)}")
    T = windows.shape[1]
    if max(gaps) + length + 1 > T:
        raise ValueError(f"gaps and length must fit in T={T}: max(gaps) + length + 1 = "
                         f"{max(gaps) + length + 1}")
    s_c, lg_c = residual_streams(model, windows)
    out = {"gaps": list(gaps), "hijack_clean": float((lg_c[:, -1].argmax(-1) == bomb)
                                                     .double().mean()),
           "hijack": [], "kl_bomb": [], "kl_control": [], "shift_bomb": [],
           "shift_control": []}
    for g in gaps:
        lo, hi = T - 1 - g - length, T - 1 - g
        for kind in ("bomb", "control"):
            x = windows.clone()
            x[:, lo:hi] = bomb if kind == "bomb" else others[:, lo:hi]
            s, lg = residual_streams(model, x)
            out[f"kl_{kind}"].append(float(kl_rows(lg_c[:, -1], lg[:, -1]).mean()))
            d = (s[:, :, -1] - s_c[:, :, -1]).norm(dim=-1) / s_c[:, :, -1].norm(dim=-1)
            out[f"shift_{kind}"].append(d.mean(1).tolist())
            if kind == "bomb":
                hit = (lg[:, -1].argmax(-1) == bomb).double().mean()
                out["hijack"].append(float(hit))
    return out


def drift_windows(va: torch.Tensor, T: int, *, n_windows: int = 256, n_tags: int = 4,
                  seed: int = 0, device=None):
    """(x [B, T], y [B, T], other [B, T], tags [B]): the held-out windows every F6
    measurement of `seed` uses (`measure_drift`), their next tokens, other windows (the
    misleading text) and a random tag per window, drawn in this order from one generator
    (10_000 + seed), so that a later measurement can reuse exactly the same windows."""
    from .data import random_windows

    g = torch.Generator().manual_seed(10_000 + seed)
    x, y = random_windows(va, T, n_windows, generator=g, device=device)
    other, _ = random_windows(va, T, n_windows, generator=g, device=device)
    tags = torch.randint(n_tags, (n_windows,), generator=g).to(device)
    return x, y, other, tags
