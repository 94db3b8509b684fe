"""The phase model's candidates and one selection, gathered and compact.

Book: Part IV, "GPU kernels", section "Not materialising what is selected".
`python -m phaselib.bench phase-features --out FILE.json [--device cuda]`.

What a layer of `PhaseLM` pays for its pyramid: the features of every level, their
per-level linear map and LayerNorm (`PhaseLM.candidates`), and one layer's selection
among the levels (`PhaseBlock._select_read`), forward and forward + backward, for an
input stream x [B, T, C]. Two ways to compute the same numbers:

* "gathered" (the default, `compact=False`): the pyramid hands every position its
  pair's features, [B, T, L, P+1], and the map and the LayerNorm run on all T L rows;
* "compact" (`compact=True`): the map and the LayerNorm run on each level's pair rows,
  about 2T of them, and the selection reads each level's rows where they apply
  (`CompactCandidates.weighted_sum`): no [B, T, L, C] tensor, forward or backward.

The gathered method then selects among [B, T, L, C] candidates. Time and memory come from the package's
one timer and one memory measurement (`timing`), at T = min_t, 2 min_t, ..., max_t.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from ..provenance import provenance
from .io import add_out_arguments, check_out, result_row, write_results
from .timing import MEMORY, TIMER, geometric_lengths, peak_bytes, time_call

__all__ = ["METHODS", "features_cost", "main"]

METHODS = {"gathered": False, "compact": True}


def features_cost(T: int, method: str, *, n_embd: int = 128, pyr_dim: int = 32,
                  batch: int = 1, repeats: int = 3, device="cpu", seed: int = 0
                  ) -> list[dict]:
    """Rows for one method at length T: forward and forward + backward of the candidates
    and one selection, time and peak bytes."""
    from ..phase_lm import PhaseLM, PhaseLMConfig

    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    device = torch.device(device)
    torch.manual_seed(seed)
    cfg = PhaseLMConfig(vocab_size=65, block_size=T, n_layer=1, n_embd=n_embd,
                        pyr_dim=pyr_dim, n_slots=0, compact=METHODS[method])
    model = PhaseLM(cfg).to(device)
    block = model.blocks[0]
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch, T, n_embd, generator=g, device=device, requires_grad=True)
    gout = torch.randn(batch, T, n_embd, generator=g, device=device)

    def layer():
        cand = model.compact_candidates(x) if METHODS[method] else model.candidates(x)
        return block._select_read(x, cand, None)

    def fwd():
        with torch.no_grad():
            return layer()

    def bwd():
        return torch.autograd.grad(layer(), x, gout)[0]

    return [result_row(method, p, T, time_call(fn, device, repeats),
                       peak_bytes(fn, device), levels=cfg.n_levels, n_embd=n_embd,
                       pyr_dim=pyr_dim, batch=batch)
            for p, fn in (("forward", fwd), ("forward+backward", bwd))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.bench phase-features",
                                description=__doc__.split("\n")[0])
    add_out_arguments(p)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--min-t", type=int, default=1024)
    p.add_argument("--max-t", type=int, default=16384)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--pyr-dim", type=int, default=32)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = p.parse_args(argv)
    check_out(a.out, a.allow_dirty)
    if a.min_t < 2 or a.max_t < a.min_t:
        p.error(f"need 2 <= --min-t <= --max-t, got {a.min_t} and {a.max_t}")
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda, but torch.cuda.is_available() is False here")
    torch.set_num_threads(a.threads)
    rows = []
    for T in geometric_lengths(a.min_t, a.max_t, 2):
        for method in METHODS:
            rows += features_cost(T, method, n_embd=a.n_embd, pyr_dim=a.pyr_dim,
                                  batch=a.batch, repeats=a.repeats, device=a.device)
            for r in rows[-2:]:
                print(f"{method:>9} {r['pass']:>16} T={T:>6} {r['time_s'] * 1e3:9.2f} ms "
                      f"{r['peak_bytes'] / 2**20:9.2f} MiB", flush=True)
    kind = "cuda" if a.device.startswith("cuda") else "cpu"
    command = "python -m phaselib.bench phase-features " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    path = write_results(a.out, "phase-features", rows, device=a.device,
                         provenance=provenance(command, [0], a.device),
                         allow_dirty=a.allow_dirty, n_embd=a.n_embd, pyr_dim=a.pyr_dim,
                         batch=a.batch, repeats=a.repeats,
                         threads=torch.get_num_threads(), timed=TIMER[kind],
                         memory=MEMORY[kind])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
