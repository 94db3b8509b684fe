"""Per-token latency and state size of generation: PhaseLM.step against a KV-cache transformer.

Book: Part IV, "The phase-transport language model". `python -m phaselib.bench
phase-lm-decode --out FILE.json [--max-t 65536 --n-layer 4 --n-embd 128 --window 8]`.

Whole models, one token each, batch 1, no-grad, at each context length T in powers of
four up to --max-t. As in `bench.streaming`, the state is *filled* as it would be after
T tokens (random values: the arithmetic does not depend on them) instead of stepping
T times, and only the next `steps` tokens are timed:

  * "phase-lm": `PhaseLM.step` from a `PhaseLMState` with t = T: the pyramid's rings
    (`bench.streaming.filled_state`, block_size = T so log2 T levels), K slots, and per
    layer a ring of the last `window` keys and values. Its size grows with log T only.
  * "transformer-kv": `TinyTransformer` of the same width and depth with a key/value
    cache holding T tokens per layer ([B, H, T, dh]); each step embeds the token, writes
    its key and value and attends over the cache (`kv_decode_step`). Work and state grow
    with T.

Rows are `io.result_row`s, pass "decode": `time_s` seconds per token (`timing.time_call`
over `steps` tokens, divided), `peak_bytes` what one step allocates, `state_bytes` what
the model keeps between tokens.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch
import torch.nn.functional as F

from ..kernels.near_field import NearFieldState
from ..phase_lm import PhaseLM, PhaseLMConfig, PhaseLMState
from ..provenance import provenance
from ..transformer import TinyTransformer, TransformerConfig
from .io import add_out_arguments, check_out, result_row, write_results
from .streaming import context_lengths, filled_state
from .timing import MEMORY, TIMER, peak_bytes, time_call

__all__ = ["filled_phase_state", "kv_decode_step", "phase_decode_cost",
           "transformer_decode_cost", "run", "main"]


def filled_phase_state(model: PhaseLM, T: int, batch: int = 1, *, seed: int = 0,
                       device="cpu") -> PhaseLMState:
    """A PhaseLMState as it is after T tokens, with random contents."""
    cfg = model.cfg
    g = torch.Generator(device=device).manual_seed(seed)
    pyr = filled_state(T, cfg.pyr_dim, cfg.n_levels, batch, device=device, seed=seed)
    slots = None
    if model.slots is not None:
        slots = torch.randn(batch, cfg.n_slots, cfg.n_embd, generator=g, device=device)
    near = []
    for block in model.blocks:
        if block.near is None:
            near.append(None)
            continue
        shape = (batch, cfg.n_head, cfg.window, cfg.n_embd // cfg.n_head)
        near.append(NearFieldState(T, torch.randn(shape, generator=g, device=device),
                                   torch.randn(shape, generator=g, device=device)))
    conv = None
    if model.conv is not None:
        conv = torch.randn(batch, cfg.short_conv - 1, cfg.n_embd, generator=g,
                           device=device)
    return PhaseLMState(T, pyr, slots, near, conv)


def _copy(st: PhaseLMState) -> PhaseLMState:
    p = st.pyramid
    pyr = type(p)(p.t, p.ring.clone(), p.pending.clone(), p.features.clone())
    return PhaseLMState(st.t, pyr, st.slots, list(st.near), st.conv)


def kv_decode_step(model: TinyTransformer, idx_t: torch.Tensor, pos: int,
                   cache: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """One token of a TinyTransformer with a KV cache: idx_t [B] at position `pos` ->
    logits [B, V]. cache: per layer (K, V) [B, H, >= pos+1, dh]; row pos is written."""
    B, C = idx_t.shape[0], model.cfg.n_embd
    x = model.wte(idx_t) + model.wpe.weight[pos]
    for block, (kc, vc) in zip(model.blocks, cache):
        H = block.attn.n_head
        q, k, v = block.attn.qkv(block.ln_1(x)).view(B, 3, H, C // H).unbind(1)
        kc[:, :, pos], vc[:, :, pos] = k, v
        y = F.scaled_dot_product_attention(q[:, :, None], kc[:, :, :pos + 1],
                                           vc[:, :, :pos + 1])
        x = x + block.attn.proj(y.reshape(B, C))
        if block.mlp is not None:
            x = x + block.mlp(block.ln_2(x))
    return model.head(model.ln_f(x))


@torch.no_grad()
def phase_decode_cost(T: int, *, steps: int = 8, repeats: int = 3, device="cpu", seed: int = 0,
                      **cfg) -> dict:
    """Seconds per token of `PhaseLM.step` from a state that has seen T tokens: a row."""
    torch.manual_seed(seed)
    model = PhaseLM(PhaseLMConfig(block_size=T, **cfg)).to(device).eval()
    base = filled_phase_state(model, T, device=device, seed=seed)
    toks = torch.randint(model.cfg.vocab_size, (steps, 1), device=device)

    def run_steps(n=steps):
        st = _copy(base)
        for i in range(n):
            _, st = model.step(toks[i], st)

    per = time_call(run_steps, device, repeats) / steps
    return result_row("phase-lm", "decode", T, per, peak_bytes(lambda: run_steps(1), device),
                      state_bytes=base.nbytes(), n_levels=model.cfg.n_levels)


@torch.no_grad()
def transformer_decode_cost(T: int, *, steps: int = 8, repeats: int = 3, device="cpu",
                            seed: int = 0, **cfg) -> dict:
    """Seconds per token of a KV-cache TinyTransformer with T tokens cached: a row."""
    torch.manual_seed(seed)
    model = TinyTransformer(TransformerConfig(block_size=T + steps, **cfg)).to(device).eval()
    H, C = model.cfg.n_head, model.cfg.n_embd
    g = torch.Generator(device=device).manual_seed(seed)
    cache = [tuple(torch.randn(1, H, T + steps, C // H, generator=g, device=device)
                   for _ in range(2)) for _ in model.blocks]
    toks = torch.randint(model.cfg.vocab_size, (steps, 1), device=device)

    def run_steps(n=steps):
        for i in range(n):
            kv_decode_step(model, toks[i], T + i, cache)

    per = time_call(run_steps, device, repeats) / steps
    state = sum(k[:, :, :T + 1].numel() + v[:, :, :T + 1].numel() for k, v in cache) * 4
    return result_row("transformer-kv", "decode", T, per,
                      peak_bytes(lambda: run_steps(1), device), state_bytes=state)


def run(ts: list[int], *, steps: int = 8, repeats: int = 3, device="cpu", window: int = 8,
        pyr_dim: int = 32, n_slots: int = 4, **common) -> list[dict]:
    rows = []
    for T in ts:
        rows.append(phase_decode_cost(T, steps=steps, repeats=repeats, device=device,
                                      window=window, pyr_dim=pyr_dim, n_slots=n_slots,
                                      **common))
        rows.append(transformer_decode_cost(T, steps=steps, repeats=repeats, device=device,
                                            **common))
        for r in rows[-2:]:
            print(f"{r['method']:>14}  T={T:>6}  {r['time_s'] * 1e3:8.2f} ms/token  "
                  f"{r['state_bytes'] / 2**10:10.1f} KiB", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.bench phase-lm-decode",
                                description=__doc__.split("\n")[0])
    add_out_arguments(p)
    p.add_argument("--min-t", type=int, default=256)
    p.add_argument("--max-t", type=int, default=65536)
    p.add_argument("--vocab-size", type=int, default=65)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--pyr-dim", type=int, default=32)
    p.add_argument("--n-slots", type=int, default=4)
    p.add_argument("--steps", type=int, default=8, help="tokens timed per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    check_out(a.out, a.allow_dirty)
    if a.min_t < 2 or a.max_t < a.min_t:
        p.error(f"need 2 <= --min-t <= --max-t, got {a.min_t} and {a.max_t}")
    if a.n_embd % a.n_head:
        p.error(f"--n-embd must be divisible by --n-head, got {a.n_embd} and {a.n_head}")
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    common = dict(vocab_size=a.vocab_size, n_layer=a.n_layer, n_embd=a.n_embd, n_head=a.n_head)
    rows = run(context_lengths(a.min_t, a.max_t), steps=a.steps, repeats=a.repeats,
               device=a.device, window=a.window, pyr_dim=a.pyr_dim, n_slots=a.n_slots,
               **common)
    kind = "cuda" if a.device.startswith("cuda") else "cpu"
    command = "python -m phaselib.bench phase-lm-decode " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    path = write_results(a.out, "phase-lm-decode", rows, allow_dirty=a.allow_dirty,
                         device=a.device,
                         provenance=provenance(command, [0], a.device), **common,
                         window=a.window, pyr_dim=a.pyr_dim, n_slots=a.n_slots, batch=1,
                         steps=a.steps, repeats=a.repeats, threads=torch.get_num_threads(),
                         timed=TIMER[kind] + "; per token, whole model, no grad",
                         memory=MEMORY[kind])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
