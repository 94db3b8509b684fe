"""Memory and time of a PhaseLM forward pass: the banded near field against the masked one.

Book: Part IV, "The phase-transport language model". `python -m phaselib.bench near-field
--out FILE.json [--max-t 16384 --window 8 --n-embd 128 --n-head 4]`.

One-layer PhaseLM (block_size = T, so log2 T pyramid levels), one forward pass under
`torch.no_grad()` on a [1, T] batch, at each T in powers of four up to --max-t. Methods:
"banded" (the model as it is: `near_field_banded`, no [T, T] object), "masked" (the same
weights with the near field computed by `near_field_reference`, the [H, T, T] bias and
full attention; run only up to --max-t-masked, and timed once: it is slow) and
"no-window" (window 0: what the rest of the model costs). Rows are `io.result_row`s, pass "forward": `time_s` from
`timing.time_call`, `peak_bytes` (what the call allocates above what was allocated
before it: the extra memory of one forward pass) from `timing.peak_bytes`.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from ..phase_lm import PhaseLM, PhaseLMConfig
from ..provenance import provenance
from .io import add_out_arguments, check_out, result_row, write_results
from .timing import MEMORY, TIMER, geometric_lengths, peak_bytes, time_call

__all__ = ["one_layer_model", "forward_cost", "run", "main"]

METHODS = ("banded", "masked", "no-window")


def one_layer_model(T: int, window: int = 8, n_embd: int = 128, n_head: int = 4,
                    pyr_dim: int = 32, vocab_size: int = 65, seed: int = 0) -> PhaseLM:
    """A one-layer PhaseLM with block_size T, in eval mode."""
    torch.manual_seed(seed)
    cfg = PhaseLMConfig(vocab_size=vocab_size, block_size=T, n_layer=1, n_embd=n_embd,
                        n_head=n_head, pyr_dim=pyr_dim, window=window)
    return PhaseLM(cfg).eval()


def forward_cost(T: int, method: str = "banded", window: int = 8, *, repeats: int = 3,
                 device="cpu", seed: int = 0, **model_kw) -> dict:
    """Time and peak memory of one no-grad forward pass over [1, T] tokens: a result row."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    model = one_layer_model(T, 0 if method == "no-window" else window, seed=seed,
                            **model_kw).to(device)
    if method == "masked":
        for block in model.blocks:
            block.near.forward = block.near.reference     # the [H, T, T] twin
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(model.cfg.vocab_size, (1, T), generator=g).to(device)

    @torch.no_grad()
    def call():
        return model(idx)[0]

    mem = peak_bytes(call, device)
    return result_row(method, "forward", T, time_call(call, device, repeats), mem,
                      window=0 if method == "no-window" else window,
                      n_levels=model.cfg.n_levels)


def run(ts: list[int], window: int = 8, *, max_t_masked: int = 16384, repeats: int = 3,
        device="cpu", **model_kw) -> list[dict]:
    rows = []
    for T in ts:
        for method in METHODS:
            if method == "masked" and T > max_t_masked:
                continue
            rows.append(forward_cost(T, method, window, device=device, **model_kw,
                                     repeats=1 if method == "masked" else repeats))
            r = rows[-1]
            print(f"{method:>9}  T={T:>6}  {r['time_s'] * 1e3:9.1f} ms  "
                  f"{r['peak_bytes'] / 2**20:9.1f} MiB", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.bench near-field",
                                description=__doc__.split("\n")[0])
    add_out_arguments(p)
    p.add_argument("--min-t", type=int, default=256)
    p.add_argument("--max-t", type=int, default=16384)
    p.add_argument("--max-t-masked", type=int, default=16384,
                   help="longest T for the masked twin (it needs O(T^2) memory)")
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--pyr-dim", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    check_out(a.out, a.allow_dirty)
    if a.min_t < 2 or a.max_t < a.min_t:
        p.error(f"need 2 <= --min-t <= --max-t, got {a.min_t} and {a.max_t}")
    if a.window < 1 or a.n_embd % a.n_head:
        p.error(f"need --window >= 1 and --n-embd divisible by --n-head, got "
                f"{a.window}, {a.n_embd}, {a.n_head}")
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    kw = dict(n_embd=a.n_embd, n_head=a.n_head, pyr_dim=a.pyr_dim)
    rows = run(geometric_lengths(a.min_t, a.max_t, 4), a.window, max_t_masked=a.max_t_masked,
               repeats=a.repeats, device=a.device, **kw)
    kind = "cuda" if a.device.startswith("cuda") else "cpu"
    command = "python -m phaselib.bench near-field " + shlex.join(sys.argv[1:] if argv is None
                                                                   else argv)
    path = write_results(a.out, "near-field", rows, allow_dirty=a.allow_dirty,
                         device=a.device,
                         provenance=provenance(command, [0], a.device), window=a.window,
                         n_layer=1, batch=1, threads=torch.get_num_threads(), **kw,
                         timed=TIMER[kind] + "; one no-grad forward pass",
                         memory=MEMORY[kind])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
