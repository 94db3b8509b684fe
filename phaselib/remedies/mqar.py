"""Multi-query associative recall as Zoology sets it up, and the sweep over width.

Book: Part III, "The remedies, measured", section "Recall as Zoology measures it".
Zoology (Arora et al., 2023) made MQAR the test that separates attention from its
cheaper replacements. Its generator, rewritten here on a torch Generator:

- the first 2 n_pairs tokens are key-value pairs; keys are distinct tokens of
  [1, vocab/2), values distinct tokens of [vocab/2, vocab);
- each key is asked once more later, at position 2 n_pairs + 2 g, where the gaps g are
  drawn without replacement from 0 .. (T - 2 n_pairs)/2 - 1 with probability
  proportional to (g + 1)^(a - 1) (a = `power_a`, 0.01 as in the paper: most queries
  near the pairs, some far);
- every other position is a token drawn uniformly from the whole vocabulary (noise);
- the target at a query's position is its key's value; every other target is -1.

`mqar_baselines` computes what a model scores without recalling anything, on the data
as generated. `run_cell` trains one model (a Part III mixer in `RemedyLM`, or one of
Part IV's phase models) at one width and learning rate, and scores it on a validation
set (to choose the rate) and a test set (to report). The sweeps that run it are in
`mqar_sweeps`.
"""

from __future__ import annotations

import time

import torch

from ..rates import stored_best_rate
from ..train import TrainConfig, train

__all__ = ["SETTINGS", "mqar_zoology_batch", "mqar_baselines", "PHASE_MODELS",
           "build_mqar_model", "run_cell", "MQAR_MIXERS", "WIDTHS", "LRS", "STEPS",
           "BATCH", "VOCAB", "NEAR", "LAYER_SCALE", "mqar_test_batch"]

VOCAB = 256                      # Zoology uses 8192; the issue asks for 256 or more
SETTINGS = ((64, 4), (128, 8))   # (T, n_pairs), Zoology's two shortest
STEPS, BATCH = 1500, 64
WIDTHS = (32, 64, 128)
LRS = (1e-3, 3e-3, 1e-2)
N_VAL, N_TEST = 512, 1024


def _check_int(name: str, v, lo: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")


def gap_probs(space: int, power_a: float) -> torch.Tensor:
    """p(g) proportional to (g + 1)^(power_a - 1), g = 0 .. space - 1 (float64)."""
    g = torch.arange(1, space + 1, dtype=torch.float64)
    p = g ** (power_a - 1.0)
    return p / p.sum()


def mqar_zoology_batch(batch: int, T: int = 64, n_pairs: int = 4, vocab: int = VOCAB, *,
                       power_a: float = 0.01, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """x, y [batch, T] long: Zoology's MQAR (see the module docstring)."""
    _check_int("batch", batch, 1)
    _check_int("n_pairs", n_pairs, 1)
    _check_int("T", T, 4 * n_pairs)
    if T % 2:
        raise ValueError(f"T must be even, got {T}")
    if not isinstance(vocab, int) or vocab // 2 - 1 < n_pairs:
        raise ValueError(f"vocab must be an int with vocab // 2 - 1 >= "
                         f"n_pairs={n_pairs} distinct keys, got {vocab!r}")
    if not isinstance(power_a, (int, float)) or power_a <= 0:
        raise ValueError(f"power_a must be a positive number, got {power_a!r}")
    half = vocab // 2
    keys = 1 + torch.rand(batch, half - 1, generator=generator).argsort(-1)[:, :n_pairs]
    vals = half + torch.rand(batch, vocab - half,
                             generator=generator).argsort(-1)[:, :n_pairs]
    ctx = torch.stack([keys, vals], -1).flatten(1)                 # k1 v1 k2 v2 ...
    space = (T - 2 * n_pairs) // 2
    p = gap_probs(space, float(power_a)).float().expand(batch, space)
    gaps = torch.multinomial(p, n_pairs, replacement=False, generator=generator)
    x = torch.randint(vocab, (batch, T), generator=generator)
    x[:, :2 * n_pairs] = ctx
    pos = 2 * n_pairs + 2 * gaps                                    # query positions
    x.scatter_(1, pos, keys)
    y = torch.full((batch, T), -1, dtype=torch.long)
    y.scatter_(1, pos, vals)
    return x, y


def mqar_baselines(x: torch.Tensor, y: torch.Tensor, n_pairs: int,
                   window: int | None = None) -> dict:
    """What a model scores without binding keys to values, on these sequences.

    - "pair_values": guess uniformly among the values of the pairs (1 / n_pairs here,
      since the values are distinct; computed, not assumed);
    - "seen_values": guess uniformly among the distinct value-range tokens before the
      query, noise included (what a model that knows only "answer a value" can do);
    - "most_frequent": always answer the most frequent value-range token before the
      query (ties broken uniformly), the baseline the issue asked for;
    - "within_window" (when `window` is given): the share of queries whose value token
      lies less than `window` positions back, so a sliding window can see it.
    Each is an expected accuracy over every query in (x, y)."""
    if x.shape != y.shape or x.dim() != 2:
        raise ValueError(f"x and y must be [B, T] of one shape, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if not (y >= 0).any():
        raise ValueError("y has no query targets (every entry is -1)")
    half = int(x[:, 1:2 * n_pairs:2].min())              # the smallest value token
    pair_hits, seen, freq = [], [], []
    for b, t in (y >= 0).nonzero().tolist():
        target = int(y[b, t])
        pvals = x[b, 1:2 * n_pairs:2].tolist()
        pair_hits.append(pvals.count(target) / len(pvals))
        before = x[b, :t]
        vals = before[before >= half]
        uniq, counts = vals.unique(return_counts=True)
        seen.append(float((uniq == target).any()) / max(1, len(uniq)))
        top = uniq[counts == counts.max()]
        freq.append(float((top == target).any()) / len(top))
    out = {"pair_values": sum(pair_hits) / len(pair_hits),
           "seen_values": sum(seen) / len(seen),
           "most_frequent": sum(freq) / len(freq), "queries": len(pair_hits)}
    if window is not None:
        q = y >= 0
        out["within_window"] = float((value_distance(x, y, n_pairs)[q] < window)
                                     .float().mean())
    return out


# The entrants. Part III's mixers run in `RemedyLM` (2 layers, 4 heads, a learned
# position table); Part IV's phase models are `PhaseLM`s of the same depth and width,
# with the window of 8 tokens Part IV uses ("phase-window"), without it ("phase"), and
# the window alone, no pyramid and no slots ("window-only").
# Each also comes with the short convolution that Zoology's recall models carry, added
# to the embeddings ("-conv", `PhaseLMConfig.short_conv`), as Part III's recall column
# gives every remedy one.
PHASE_MODELS = {"phase": {}, "phase-window": {"window": 8},
                "window-only": {"window": 8, "features": "none", "n_slots": 0}}
# The ablation of the windowed model (`mqar_sweeps.ABLATION_RULE`): the window with the
# pyramid but no slots, with the slots but no pyramid, and the whole model with a
# LayerScale gain of LAYER_SCALE on what the levels and the slots add to the stream.
LAYER_SCALE = 0.05   # at initialisation the additions are then smaller than a token's
#                      embedding (rms 0.017 against 0.024; without it 0.34)
PHASE_MODELS |= {"phase-window-noslots": {"window": 8, "n_slots": 0},
                 "window-slots": {"window": 8, "features": "none"},
                 "phase-window-ls": {"window": 8, "layer_scale": LAYER_SCALE},
                 # the same gain started ten times smaller (`mqar_start.START_RULE`)
                 "phase-window-ls-small": {"window": 8, "layer_scale": LAYER_SCALE / 10}}
PHASE_MODELS |= {f"{m}-conv": kw | {"short_conv": 4} for m, kw in PHASE_MODELS.items()}
MQAR_MIXERS = ("fused", "linear", "linear-conv", "window", "ssm", "ssm-selective",
               "landmark-retrieval", "lsh", "phase", "phase-window", "window-only")


def build_mqar_model(model: str, width: int, T: int, vocab: int = VOCAB,
                     n_layer: int = 2) -> torch.nn.Module:
    """A fresh 2-layer entrant `model` (a MQAR_MIXERS name or any Part III mixer key) of
    width `width` for sequences of T tokens."""
    _check_int("width", width, 8)
    if model in PHASE_MODELS:
        from ..models import build_model
        return build_model("phase", vocab, block_size=T, n_layer=n_layer, n_embd=width,
                           **PHASE_MODELS[model])
    from .model import RemedyConfig, RemedyLM
    if width % 4:
        raise ValueError(f"width must be a multiple of the 4 heads, got {width}")
    return RemedyLM(RemedyConfig(vocab_size=vocab, mixer=model, block_size=T,
                                 n_layer=n_layer, n_head=4, n_embd=width))


def value_distance(x: torch.Tensor, y: torch.Tensor, n_pairs: int) -> torch.Tensor:
    """[B, T] long: at each query, how far back its value token stands in the pairs
    (t - position of the value); 0 elsewhere."""
    vals = x[:, 1:2 * n_pairs:2]                                        # [B, n_pairs]
    slot = (y.unsqueeze(-1) == vals.unsqueeze(1)).float().argmax(-1)    # [B, T]
    t = torch.arange(y.shape[1]).expand_as(y)
    return torch.where(y >= 0, t - (2 * slot + 1), torch.zeros_like(y))


def _scores(model, x, y, n_pairs: int, near: int) -> dict:
    """Accuracy over every query, and split by whether the value lies < `near` back
    (x and y on the CPU; the model on any device)."""
    dev = next(model.parameters()).device
    with torch.no_grad():
        pred = model(x.to(dev))[0].argmax(-1).cpu()
    q = y >= 0
    hit = (pred == y) & q
    dist = value_distance(x, y, n_pairs)
    near_q = q & (dist < near)
    far_q = q & (dist >= near)
    frac = lambda m: float(hit[m].sum()) / max(1, int(m.sum()))  # noqa: E731
    return {"acc": frac(q), "acc_near": frac(near_q), "acc_far": frac(far_q),
            "near_share": float(near_q.sum()) / float(q.sum())}


NEAR = 16    # the window mixer's reach per layer at T = 64 (block_size / 4)


def mqar_test_batch(seed: int, T: int = 64, n_pairs: int = 4):
    """(x, y): the N_TEST test sequences that `run_cell` scores for `seed` (a generator
    of their own, so every cell of a seed is scored on the same sequences)."""
    return mqar_zoology_batch(N_TEST, T, n_pairs,
                              generator=torch.Generator().manual_seed(30_000 + seed))


def run_cell(model: str, width: int, lr, seed: int, T: int = 64, n_pairs: int = 4,
             steps: int = STEPS, batch: int = BATCH, out: str | None = None,
             curve_every: int = 0, device: str = "cpu") -> dict:
    """Train `model` at `width` on MQAR (T, n_pairs) for `steps` x `batch` sequences
    from `seed` and score it on N_VAL validation and N_TEST test sequences (each from
    its own generator). `lr` a float, or "best": the seed-0 rate with the best
    validation accuracy of the model's grid there (`mqar_sweeps.rate_grid`), read from
    `out` (the sweep's results file). `curve_every` > 0
    also records the validation accuracy every that many steps ("acc_curve"). The data
    are drawn on the CPU, so a cell's batches are the same on every `device`."""
    _check_int("seed", seed, 0)
    if lr == "best":
        if out is None:
            raise ValueError("lr='best' needs out, the results file of the rate cells")
        from .mqar_sweeps import rate_grid
        lr = stored_best_rate(out, "val_acc", rate_grid(model, out), higher=True,
                              model=model, width=width, T=T, n_pairs=n_pairs)
    if not isinstance(lr, float) or lr <= 0:
        raise ValueError(f"lr must be a positive float or 'best', got {lr!r}")
    _check_int("curve_every", curve_every, 0)
    t0, w0 = time.process_time(), time.perf_counter()
    torch.manual_seed(seed)
    net = build_mqar_model(model, width, T).to(device)
    g = torch.Generator().manual_seed(seed)
    val = mqar_zoology_batch(N_VAL, T, n_pairs,
                             generator=torch.Generator().manual_seed(20_000 + seed))

    def batch_at(step):
        x, y = mqar_zoology_batch(batch, T, n_pairs, generator=g)
        return x.to(device), y.to(device)

    hist = train(net, batch_at,
                 TrainConfig(steps=steps, lr=lr, progress=False, eval_every=curve_every),
                 eval_fn=(lambda m: _scores(m, *val, n_pairs, NEAR)["acc"])
                 if curve_every else None)
    net.eval()
    test = mqar_test_batch(seed, T, n_pairs)
    res = _scores(net, *test, n_pairs, NEAR)
    res["val_acc"] = _scores(net, *val, n_pairs, NEAR)["acc"]
    res |= {"lr": lr, "steps": steps, "batch": batch, "params": sum(
        p.numel() for p in net.parameters()),
        "train_loss": sum(hist.loss[-50:]) / len(hist.loss[-50:]),
        "loss_curve": [round(sum(hist.loss[i:i + 50]) / len(hist.loss[i:i + 50]), 4)
                       for i in range(0, steps, 50)],
        "cpu_seconds": time.process_time() - t0}
    if curve_every:
        res |= {"acc_curve": [[int(k), round(a, 4)]
                              for k, a in zip(hist.eval_step, hist.eval)],
                "wall_seconds": time.perf_counter() - w0}
    return res
