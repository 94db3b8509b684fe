"""Decision slots: a few persistent state vectors carried beside the residual stream.

Book: Part IV, "Decision slots". Each of K slots is a vector of size C. At position t a
layer may overwrite slot k with a new value written from the stream, or keep it, through
a gate g[t, k] in [0, 1]:

    s[t, k] = g[t, k] * write_k(x[t]) + (1 - g[t, k]) * s[t-1, k],    s[-1, k] = init_k

with g = sigmoid(gate(x)) (soft), or g = 1[gate(x) > 0] forward and the sigmoid's
gradient backward (hard, straight-through). The stream then reads the slots by attention
of x[t] over the K slot vectors of position t. The slots are a separate state: residual
updates never rewrite them, only the gate does, so a value written at t = 0 and never
gated again reaches t = 10_000 unchanged (exactly, with hard gates).

The recurrence is a linear scan s[t] = a[t] * s[t-1] + b[t] (a = 1 - g, b = g * write).
`slot_scan_reference` is the plain loop over T; `slot_scan` computes the same thing
in chunks: a Hillis-Steele scan inside each chunk, a loop over the T / chunk chunks.
Both are causal and O(T K C) work (the chunk size is a constant).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .taps import Tap

__all__ = ["matched_gru_hidden", "slot_scan", "slot_scan_reference", "DecisionSlots", "GRUState"]


def _check_scan(a, b, s0):
    check_float_tensor("a", a, min_ndim=3, shape_doc="of shape [B, T, ...]")
    check_float_tensor("b", b, min_ndim=3, shape_doc="of shape [B, T, ...]")
    check_float_tensor("s0", s0, shape_doc="of shape [...] or [B, ...]")
    if a.dim() != b.dim() or any(m not in (1, n) for m, n in zip(a.shape, b.shape)):
        raise ValueError(f"a must have the shape of b [B, T, ...] or one that broadcasts to "
                         f"it, got {tuple(a.shape)} and {tuple(b.shape)}")
    if s0.shape != b.shape[2:] and s0.shape != b.shape[:1] + b.shape[2:]:
        raise ValueError(f"s0 must have shape {tuple(b.shape[2:])} or {tuple(b.shape[:1] + b.shape[2:])}, "
                         f"got {tuple(s0.shape)}")


def slot_scan_reference(a: torch.Tensor, b: torch.Tensor, s0: torch.Tensor) -> torch.Tensor:
    """s[t] = a[t] * s[t-1] + b[t] with s[-1] = s0, as a loop: a, b [B, T, ...] -> [B, T, ...]."""
    _check_scan(a, b, s0)
    s = s0.expand(b.shape[:1] + b.shape[2:])
    out = []
    for t in range(a.shape[1]):
        s = a[:, t] * s + b[:, t]
        out.append(s)
    return torch.stack(out, 1)


def slot_scan(a: torch.Tensor, b: torch.Tensor, s0: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """The same recurrence as `slot_scan_reference`, in log2(chunk) + T / chunk tensor steps."""
    _check_scan(a, b, s0)
    check_positive_int("chunk", chunk)
    B, T = b.shape[:2]
    rest, ra = b.shape[2:], a.shape[2:]   # a may be broadcast over trailing dims (size 1)
    n = -(-T // chunk)
    pad = n * chunk - T
    if pad:  # identity steps (a = 1, b = 0) at the end change nothing before them
        a = F.pad(a, (0, 0) * len(ra) + (0, pad), value=1.0)
        b = F.pad(b, (0, 0) * len(rest) + (0, pad), value=0.0)
    A, S = a.reshape(a.shape[0], n, chunk, *ra), b.reshape(B, n, chunk, *rest)
    d = 1
    while d < chunk:  # inclusive scan within each chunk: S[i] is the state at i from a zero start
        A_sh = F.pad(A[:, :, :-d], (0, 0) * len(ra) + (d, 0), value=1.0)
        S_sh = F.pad(S[:, :, :-d], (0, 0) * len(rest) + (d, 0), value=0.0)
        A, S = A * A_sh, A * S_sh + S
        d *= 2
    s = s0.expand((B,) + rest)
    out = []
    for j in range(n):  # carry the state across chunks
        sj = A[:, j] * s.unsqueeze(1) + S[:, j]
        out.append(sj)
        s = sj[:, -1]
    return torch.cat(out, 1)[:, :T]


class DecisionSlots(nn.Module):
    """K gated, persistent slot vectors per sequence, written from and read by the stream.

    forward(x [B, T, C]) -> (read [B, T, C], slots [B, T, K, C]). With W_g: C -> K,
    W_w: C -> K*C, learned init [K, C] and W_q, W_o: C -> C,

        g[t]    = sigmoid(W_g x[t])                         (soft)
                  1[W_g x[t] > 0], sigmoid's gradient       (hard=True, straight-through)
        s[t, k] = g[t, k] W_w,k x[t] + (1 - g[t, k]) s[t-1, k],      s[-1] = init
        r[t]    = W_o sum_k softmax_k(W_q x[t] . s[t, k] / sqrt(C)) s[t, k]

    `read` is r, for the caller to add to the stream. Causal: position t uses x[:, :t+1].
    O(T K C^2) for the write projection, O(T K C) for the scan and the read. The gate's bias starts at
    `gate_bias` (-2: the slots start out mostly holding, not writing).
    """

    def __init__(self, n_embd: int, n_slots: int = 4, hard: bool = False, gate_bias: float = -2.0,
                 chunk: int = 32):
        super().__init__()
        check_positive_int("n_embd", n_embd)
        check_positive_int("n_slots", n_slots)
        check_positive_int("chunk", chunk)
        self.n_embd, self.n_slots, self.hard, self.chunk = n_embd, n_slots, bool(hard), chunk
        C, K = n_embd, n_slots
        self.gate = nn.Linear(C, K)
        self.write = nn.Linear(C, K * C, bias=False)
        self.init = nn.Parameter(0.02 * torch.randn(K, C))
        self.q, self.o = nn.Linear(C, C, bias=False), nn.Linear(C, C, bias=False)
        for m in (self.gate, self.write, self.q, self.o):
            nn.init.normal_(m.weight, std=0.02)
        nn.init.constant_(self.gate.bias, gate_bias)
        self.tap_gate = Tap()        # [B, T, K] the gate, 0 = hold, 1 = overwrite
        self.tap_slots = Tap()       # [B, T, K, C] the slot state after position t
        self.tap_read_weights = Tap()  # [B, T, K] how x[t] reads the slots

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """g [B, T, K]: soft sigmoid gates, or hard 0/1 gates with a straight-through gradient."""
        logits = self.gate(x)
        soft = torch.sigmoid(logits)
        if not self.hard:
            return soft
        return (logits > 0).to(soft.dtype) + (soft - soft.detach())  # exactly 0/1 forward

    def forward(self, x: torch.Tensor):
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, C]")
        B, T, C = x.shape
        if C != self.n_embd:
            raise ValueError(f"x must have C = n_embd = {self.n_embd} features, got shape {tuple(x.shape)}")
        K = self.n_slots
        g = self.tap_gate(self.gates(x)).unsqueeze(-1)              # [B, T, K, 1]
        w = self.write(x).view(B, T, K, C)
        s = self.tap_slots(slot_scan(1 - g, g * w, self.init, self.chunk))  # a broadcast over C
        # multiply-and-sum, not einsum: an einsum here runs B*T tiny matrix products
        scores = (self.q(x).unsqueeze(2) * s).sum(-1) / math.sqrt(C)
        att = self.tap_read_weights(torch.softmax(scores, -1))
        read = self.o((att.unsqueeze(-1) * s).sum(2))
        return read, s

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None):
        """One position at a time: x_t [B, C], state [B, K, C] or None (the initial slots)
        -> (read [B, C], state [B, K, C]). Stepping through x gives forward(x) at every t,
        with O(K C^2) work and O(K C) memory per token.
        """
        check_float_tensor("x_t", x_t, ndim=2, shape_doc="of shape [B, C]")
        B, C = x_t.shape
        if C != self.n_embd:
            raise ValueError(f"x_t must have C = n_embd = {self.n_embd} features, got shape {tuple(x_t.shape)}")
        if state is None:
            state = self.init.expand(B, self.n_slots, C)
        g = self.gates(x_t).unsqueeze(-1)                           # [B, K, 1]
        state = g * self.write(x_t).view(B, self.n_slots, C) + (1 - g) * state
        att = torch.softmax(torch.einsum("bc,bkc->bk", self.q(x_t), state) / math.sqrt(C), -1)
        return self.o(torch.einsum("bk,bkc->bc", att, state)), state

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, n_slots={self.n_slots}, hard={self.hard}"


class GRUState(nn.Module):
    """A GRU beside the stream with the state size of K slots: the slots' control.

    forward(x [B, T, C]) -> (read [B, T, C], state [B, T, H]): h[t] = GRU(x[t], h[t-1])
    with h of H = K*C numbers by default (as many as `DecisionSlots(C, K)` keeps),
    h[-1] = 0, and read = W_o h[t]. `hidden` sets H instead (`matched_gru_hidden` gives
    the H whose parameter count matches the slots'). A nonlinear, fully learned
    recurrence: it can hold a value as long as its update gates learn to, with no hard
    gate and no scan. Causal; O(T H (C + H)) work, computed step by step (nn.GRU).
    """

    def __init__(self, n_embd: int, n_slots: int = 4, hidden: int | None = None):
        super().__init__()
        check_positive_int("n_embd", n_embd)
        check_positive_int("n_slots", n_slots)
        if hidden is not None:
            check_positive_int("hidden", hidden)
        self.n_embd, self.n_slots = n_embd, n_slots
        self.hidden = n_slots * n_embd if hidden is None else hidden
        self.gru = nn.GRU(n_embd, self.hidden, batch_first=True)
        self.o = nn.Linear(self.hidden, n_embd, bias=False)
        nn.init.normal_(self.o.weight, std=0.02)
        self.tap_slots = Tap()       # [B, T, K*C] the state after position t

    def forward(self, x: torch.Tensor):
        check_float_tensor("x", x, ndim=3, shape_doc="of shape [B, T, C]")
        if x.shape[-1] != self.n_embd:
            raise ValueError(f"x must have C = n_embd = {self.n_embd} features, "
                             f"got shape {tuple(x.shape)}")
        h = self.tap_slots(self.gru(x)[0])
        return self.o(h), h

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, n_slots={self.n_slots} (state {self.hidden})"


def matched_gru_hidden(n_embd: int, n_slots: int) -> int:
    """The GRU state size H whose `GRUState` has as close as possible to as many
    parameters as `DecisionSlots(n_embd, n_slots)`: the parameter-matched control."""
    with torch.random.fork_rng(devices=[]):      # counting must not move the seed
        target = sum(p.numel() for p in DecisionSlots(n_embd, n_slots).parameters())

    def count(h):
        # nn.GRU: 3 gates of input and hidden weights and two biases; W_o: h x C.
        return 3 * (n_embd * h + h * h + 2 * h) + h * n_embd

    return min(range(1, n_slots * n_embd + 1), key=lambda h: (abs(count(h) - target), h))
