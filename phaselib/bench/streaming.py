"""Per-token cost of decoding: the streaming pyramid against attention with a KV cache.

Book: Part IV, "Streaming". `python -m phaselib.bench streaming --out FILE.json
[--max-t 65536 --dim 64 --device cpu]`.

Stepping a stream 64k times to reach a long context is slow, and says nothing the cost of
one step at that length does not. So, at each context length T, the state is *filled*
as it would be after T tokens (random values: the arithmetic does not depend on them)
and only the next steps are timed:

  * attention: a KV cache of T keys and values [B, H, T, dh], one new query attends to
    all of them (`phaselib.attention.attention`), and the new key and value are written
    into the preallocated cache. Work and memory grow with T.
  * window: sliding-window attention, a ring buffer of the last `window` keys and
    values; the new query attends to min(T + 1, window) of them. Work and memory stop
    growing at T = window.
  * linear: causal linear attention {katharopoulos2020transformers} in its recurrent
    form, a [dh, dh] state and a [dh] normaliser per head, updated by the new key and
    value and read by the query: constant work and memory whatever T.
  * pyramid: a `PyramidState` with t = T and random rings; `steps` consecutive
    `pyramid_step` calls, averaged, since how many levels a token completes depends on
    the bits of t (on average fewer than two). Levels = default_levels(T), log2 T. The
    row's `readout_numbers` is L (D + 1), the features each step hands out: the step's
    work is a constant number of level updates *plus* that read-out, O(D log T).

Only the mixing is timed: the projections that make q, k, v (or the pyramid's input)
are the same on both sides and are left out. Rows are `io.result_row`s, pass "decode":
`time_s` is seconds per token (the one timer, `timing.time_call`), `peak_bytes` what one
call allocates (`timing.peak_bytes`), and `state_bytes` what the method keeps between
tokens.
"""

from __future__ import annotations

import argparse

import torch

from ..attention import attention
from .._levels import default_levels
from ..kernels.pyramid.streaming import PyramidState
from ..streaming import pyramid_step
from .io import add_out_arguments, check_out, result_row, write_results
from .timing import MEMORY, TIMER, geometric_lengths, peak_bytes, time_call

__all__ = ["context_lengths", "attention_decode_cost", "window_decode_cost",
           "linear_decode_cost", "linear_attention_step", "pyramid_decode_cost", "run", "main", "DEFAULT_WINDOW",
           "METHODS"]

DEFAULT_WINDOW = 1024   # keys a sliding window keeps


def context_lengths(min_t: int = 256, max_t: int = 65536) -> list[int]:
    """Powers of four from min_t up to max_t (max_t itself always included)."""
    return geometric_lengths(min_t, max_t, 4)


def _cache_decode_cost(method: str, T: int, n: int, slot: int, causal: bool, dim: int,
                       heads: int, batch: int, repeats: int, device, seed: int,
                       **extra) -> dict:
    """Time one decode step against a cache of `n` keys and values: the new pair is
    written at `slot`, and one query attends to all n. The row of `method`."""
    device = torch.device(device)
    g = torch.Generator(device=device).manual_seed(seed)
    dh = dim // heads
    cache_k = torch.randn(batch, heads, n, dh, generator=g, device=device)
    cache_v = torch.randn(batch, heads, n, dh, generator=g, device=device)
    q, k_t, v_t = (torch.randn(batch, heads, 1, dh, generator=g, device=device)
                   for _ in range(3))

    def step():
        cache_k[:, :, slot:slot + 1] = k_t          # write the new key and value
        cache_v[:, :, slot:slot + 1] = v_t
        out, _ = attention(q, cache_k, cache_v, causal=causal)
        return out

    nbytes = (cache_k.numel() + cache_v.numel()) * cache_k.element_size()
    return result_row(method, "decode", T, time_call(step, device, repeats),
                      peak_bytes(step, device), state_bytes=nbytes, dim=dim, heads=heads,
                      batch=batch, **extra)


@torch.no_grad()
def attention_decode_cost(T: int, dim: int = 64, heads: int = 1, batch: int = 1, *,
                          repeats: int = 5, device="cpu", seed: int = 0) -> dict:
    """Time one decode step against a KV cache already holding T tokens: the new key
    and value are appended at position T and the query attends to all T + 1.

    Returns a result row of method "attention"; state_bytes is the cache (keys and
    values) after this step, T + 1 tokens.
    """
    return _cache_decode_cost("attention", T, T + 1, T, True, dim, heads, batch,
                              repeats, device, seed)


@torch.no_grad()
def window_decode_cost(T: int, dim: int = 64, heads: int = 1, batch: int = 1, *,
                       window: int = DEFAULT_WINDOW, repeats: int = 5, device="cpu",
                       seed: int = 0) -> dict:
    """Time one decode step of sliding-window attention after T tokens: the new key and
    value overwrite the oldest slot of a ring buffer of `window`, and the query attends
    to the min(T + 1, window) keys it holds (order does not matter without positions
    inside the mixing). Result row of method "window"; state_bytes is the buffer."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    n = min(T + 1, window)
    return _cache_decode_cost("window", T, n, T % n, False, dim, heads, batch, repeats,
                              device, seed, window=window)


def linear_attention_step(S: torch.Tensor, z: torch.Tensor, q: torch.Tensor,
                          k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One step of causal linear attention, updating the state in place: `S [..., dh, dh]`
    and `z [..., dh]` take the new key and value `k, v [..., dh]`, and the output for the
    query `q [..., dh]` is returned."""
    fk = torch.nn.functional.elu(k) + 1
    fq = torch.nn.functional.elu(q) + 1
    S.add_(fk.unsqueeze(-1) * v.unsqueeze(-2))
    z.add_(fk)
    return (fq.unsqueeze(-2) @ S).squeeze(-2) / (fq * z).sum(-1, keepdim=True)


@torch.no_grad()
def linear_decode_cost(T: int, dim: int = 64, heads: int = 1, batch: int = 1, *,
                       repeats: int = 5, device="cpu", seed: int = 0) -> dict:
    """Time one decode step of causal linear attention in recurrent form, with the
    feature map elu + 1: S += phi(k)^T v, z += phi(k), out = phi(q) S / (phi(q) . z).
    The state after T tokens is random (the arithmetic does not depend on it). Result
    row of method "linear"; state_bytes is S and z, the same at every T."""
    device = torch.device(device)
    g = torch.Generator(device=device).manual_seed(seed)
    dh = dim // heads
    S = torch.randn(batch, heads, dh, dh, generator=g, device=device)
    z = torch.rand(batch, heads, dh, generator=g, device=device) + T
    q, k_t, v_t = (torch.randn(batch, heads, dh, generator=g, device=device)
                   for _ in range(3))

    def step():
        return linear_attention_step(S, z, q, k_t, v_t)

    nbytes = (S.numel() + z.numel()) * S.element_size()
    return result_row("linear", "decode", T, time_call(step, device, repeats),
                      peak_bytes(step, device), state_bytes=nbytes, dim=dim, heads=heads,
                      batch=batch)


def filled_state(T: int, dim: int, levels: int, batch: int = 1, *, device="cpu",
                 seed: int = 0) -> PyramidState:
    """A PyramidState as it is after T tokens, with random centroids in its rings."""
    g = torch.Generator(device=device).manual_seed(seed)
    st = PyramidState.zeros(batch, levels, dim, device=device)
    st.ring.copy_(torch.randn(st.ring.shape, generator=g, device=device))
    st.pending.copy_(torch.randn(st.pending.shape, generator=g, device=device))
    st.features.copy_(torch.randn(st.features.shape, generator=g, device=device))
    st.t = T
    return st


@torch.no_grad()
def pyramid_decode_cost(T: int, dim: int = 64, batch: int = 1, levels: int | None = None, *,
                        steps: int = 64, repeats: int = 5, device="cpu", seed: int = 0) -> dict:
    """Time `steps` consecutive pyramid steps from a state that has seen T tokens.

    Returns a result row of method "pyramid": time_s is the time per step over those
    steps (median of `repeats`), state_bytes the state's size, and levels.
    """
    device = torch.device(device)
    L = default_levels(T) if levels is None else levels
    g = torch.Generator(device=device).manual_seed(seed + 1)
    xs = torch.randn(steps, batch, dim, generator=g, device=device)
    base = filled_state(T, dim, L, batch, device=device, seed=seed)

    def run_steps(n=steps):
        st = PyramidState(base.t, base.ring.clone(), base.pending.clone(), base.features.clone())
        for i in range(n):
            _, st = pyramid_step(xs[i], st)

    # The three clones are a few kilobytes, negligible next to `steps` steps.
    per = time_call(run_steps, device, repeats) / steps
    return result_row("pyramid", "decode", T, per, peak_bytes(lambda: run_steps(1), device),
                      state_bytes=base.nbytes(), dim=dim, levels=L, batch=batch,
                      readout_numbers=L * (dim + 1))


METHODS = ("attention", "window", "linear", "pyramid")


def run(ts: list[int], dim: int = 64, heads: int = 1, batch: int = 1, *, repeats: int = 5,
        steps: int = 64, window: int = DEFAULT_WINDOW, device="cpu") -> list[dict]:
    """The four methods (METHODS) at every context length in `ts`: result rows."""
    rows = []
    for T in ts:
        rows.append(attention_decode_cost(T, dim, heads, batch, repeats=repeats, device=device))
        rows.append(window_decode_cost(T, dim, heads, batch, window=window, repeats=repeats,
                                       device=device))
        rows.append(linear_decode_cost(T, dim, heads, batch, repeats=repeats, device=device))
        rows.append(pyramid_decode_cost(T, dim, batch, steps=steps, repeats=repeats, device=device))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.bench streaming", description=__doc__.split("\n")[0])
    add_out_arguments(p)
    p.add_argument("--min-t", type=int, default=256)
    p.add_argument("--max-t", type=int, default=65536)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=64, help="pyramid steps timed per repeat")
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                   help="keys kept by the sliding-window row")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    check_out(a.out, a.allow_dirty)
    if a.min_t < 1 or a.max_t < a.min_t:
        p.error(f"need 1 <= --min-t <= --max-t, got {a.min_t} and {a.max_t}")
    if a.dim < 2 or a.dim % a.heads:
        p.error(f"--dim must be >= 2 and divisible by --heads, got {a.dim} and {a.heads}")
    if a.window < 1:
        p.error(f"--window must be >= 1, got {a.window}")
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    ts = context_lengths(a.min_t, a.max_t)
    rows = run(ts, a.dim, a.heads, a.batch, repeats=a.repeats, steps=a.steps,
               window=a.window, device=a.device)
    path = write_results(a.out, "streaming", rows, allow_dirty=a.allow_dirty,
                         device=a.device, dim=a.dim, heads=a.heads,
                         batch=a.batch, steps=a.steps, window=a.window, repeats=a.repeats,
                         threads=torch.get_num_threads(),
                         timed=TIMER["cuda" if a.device.startswith("cuda") else "cpu"]
                         + "; per decode step; mixing only (no projections)",
                         memory=MEMORY["cuda" if a.device.startswith("cuda") else "cpu"])
    for r in rows:
        print(f"{r['method']:>9}  T={r['T']:>7}  {r['time_s'] * 1e6:9.1f} us/token  "
              f"{r['state_bytes'] / 2**10:10.1f} KiB")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
