"""Training speed of the language models: forward + backward + AdamW step, per step.

Book: Part IV, "The phase-transport language model". `python -m phaselib.bench lm-speed
[--out book/part4/results/lm_speed.json --threads 1 --repeats 7 --variants ...]`.

For each variant of `lm_sweep.VARIANTS` (default: all) and each block in --blocks
(default 64, 256, 1024), one model of the sweep's shape is trained on random tokens
with the same number of tokens per step at every block (batch = 1024 / block). After one
warm-up step, --repeats steps are timed one by one; a row records the median CPU
seconds of the process per step (`time.process_time`, which counts this process's work
only, so it is the measure that survives a shared, loaded machine when --threads is 1),
the median wall seconds per step, and tokens per CPU second and per wall second. The
sweep "lm" turns these CPU times into equal-time budgets.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time

import torch

from ..lm_sweep import SPEED_PATH, TOKENS_PER_STEP, VARIANTS, variant_model
from ..provenance import provenance
from .io import add_out_arguments, check_out, write_results

__all__ = ["step_times", "run", "main"]


def step_times(variant: str, block: int, *, repeats: int = 7, vocab_size: int = 69,
               tokens: int = TOKENS_PER_STEP, seed: int = 0, device: str = "cpu") -> dict:
    """One row: median CPU and wall seconds of one training step of `variant` (on CUDA
    the wall time is taken after synchronising, and is the one to read)."""
    device = torch.device(device)
    torch.manual_seed(seed)
    model = variant_model(variant, vocab_size, block).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = max(1, tokens // block)
    g = torch.Generator().manual_seed(seed)
    x, y = (torch.randint(vocab_size, (batch, block), generator=g).to(device)
            for _ in range(2))
    model.train()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()

    step()                                                 # warm-up
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    c, w = statistics.median(cpu), statistics.median(wall)
    n = batch * block
    return {"variant": variant, "block": block, "batch": batch, "tokens_per_step": n,
            "params": model.num_params(), "cpu_s_per_step": c, "wall_s_per_step": w,
            "tokens_per_cpu_s": n / c, "tokens_per_wall_s": n / w,
            "cpu_s_all": [round(v, 5) for v in cpu]}


def run(variants, blocks, repeats: int = 7, device: str = "cpu") -> list[dict]:
    rows = []
    for block in blocks:
        for v in variants:
            r = step_times(v, block, repeats=repeats, device=device)
            rows.append(r)
            print(f"{v:>13}  block {block:5d}  {r['cpu_s_per_step'] * 1e3:8.1f} ms CPU/step"
                  f"  {r['tokens_per_cpu_s']:8.0f} tokens/CPU-s  "
                  f"({r['wall_s_per_step'] * 1e3:.0f} ms wall)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.bench lm-speed",
                                description=__doc__.split("\n")[0])
    add_out_arguments(p, default=SPEED_PATH)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--blocks", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda (time per step: wall)")
    a = p.parse_args(argv)
    check_out(a.out, a.allow_dirty)
    if a.repeats < 1 or any(b < 2 or TOKENS_PER_STEP % b for b in a.blocks):
        p.error(f"need --repeats >= 1 and blocks that divide {TOKENS_PER_STEP}")
    torch.set_num_threads(a.threads)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda, but torch.cuda.is_available() is False here")
    rows = run(a.variants, a.blocks, a.repeats, a.device)
    command = "python -m phaselib.bench lm-speed " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    path = write_results(a.out, "lm-speed", rows, allow_dirty=a.allow_dirty,
                         provenance=provenance(command, [0], a.device), device=a.device,
                         threads=torch.get_num_threads(), repeats=a.repeats,
                         tokens_per_step=TOKENS_PER_STEP,
                         timed="time.process_time and time.perf_counter around one "
                               "forward + backward + AdamW step, median of repeats")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
