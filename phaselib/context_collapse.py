"""The F5 experiments: a retrieval head under token bombs, and attention entropy by position.

Book: Part II, "F5 Dynamic context collapse". `train_needle` trains the chapter's
one-layer, one-head, attention-only model on `needle_batch` (one value among distractors)
at one context length or at a mix of lengths, with the standard softmax scale or the
length-aware one (attn_scale="log_n"); `measure_needle` reads the query's weights on the
value, its own key and the distractors, and the accuracy, at a test length;
`readout_check` asks, where the head fails, whether the value is lost or the read-out
biased. `entropy_growth` summarises how each head's entropy follows the uniform bound
log(t+1). `sweep` runs them over seeds for the chapter (`python -m phaselib.sweep f5`).
"""

from __future__ import annotations

import torch

from ._checks import check_float_tensor, check_positive_int
from .tasks import needle_batch
from .taps import capture
from .train import TrainConfig, train
from .transformer import TinyTransformer, TransformerConfig

__all__ = ["NEEDLE_DEFAULTS", "train_needle", "measure_needle", "readout_check",
           "first_failure",
           "entropy_growth", "run_cell", "sweep"]

NEEDLE_DEFAULTS = dict(n_values=8, n_distractors=32, n_embd=32, steps=300, batch=64,
                       max_len=1024, test_batch=128)


def train_needle(seed: int, attn_scale: str = "standard", train_lengths=(32,), *,
                 device="cpu", **hp) -> TinyTransformer:
    """A one-layer, one-head, attention-only model trained on needle_batch.

    Position embeddings are zeroed and frozen (the task needs none), so the model runs at
    any length up to max_len. Each training batch draws its context length from
    `train_lengths` (one length: every batch has it).
    """
    p = {**NEEDLE_DEFAULTS, **hp}
    lengths = [int(n) for n in train_lengths]
    if not lengths or min(lengths) < 1 or max(lengths) > p["max_len"]:
        raise ValueError(f"train_lengths must be non-empty ints in [1, max_len={p['max_len']}], "
                         f"got {train_lengths!r}")
    vocab = p["n_values"] + p["n_distractors"] + 1
    cfg = TransformerConfig(vocab_size=vocab, block_size=p["max_len"] + 1, n_layer=1, n_head=1,
                            n_embd=p["n_embd"], mlp=False, attn_scale=attn_scale)
    torch.manual_seed(seed)
    model = TinyTransformer(cfg).to(device)
    model.wpe.weight.data.zero_()
    model.wpe.weight.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed + 2)
    pick = torch.Generator().manual_seed(seed + 3)

    def batch(step):
        n = lengths[0] if len(lengths) == 1 else lengths[int(torch.randint(
            len(lengths), (1,), generator=pick))]
        return needle_batch(p["batch"], n, p["n_values"], p["n_distractors"], generator=gen,
                            device=device)

    train(model, batch, TrainConfig(steps=p["steps"], progress=False))
    return model


@torch.no_grad()
def measure_needle(model: TinyTransformer, n: int, seed: int, *, n_values: int = 8,
                   n_distractors: int = 32, test_batch: int = 128, chunk: int = 32) -> dict:
    """Mean weights of the last query on the value, its own key and the distractors, and
    the accuracy of the retrieved value, on test_batch contexts of n keys:
    {"value", "self", "distractors", "acc"}."""
    check_positive_int("n", n)
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed + 1000 + n)
    w_val, w_self, w_dis, correct = [], [], [], []
    for _ in range(max(1, test_batch // chunk)):
        x, y = needle_batch(chunk, n, n_values, n_distractors, generator=g, device=dev)
        with capture(model, ["blocks.0.attn.tap_pattern"]) as taps:
            logits, _ = model(x)
        w = taps["blocks.0.attn.tap_pattern"][:, 0, -1]          # [chunk, n + 1], last query
        is_val = x < n_values
        w_val.append((w * is_val).sum(-1))
        w_self.append(w[:, -1])
        w_dis.append(w[:, :-1].sum(-1) - (w[:, :-1] * is_val[:, :-1]).sum(-1))
        correct.append(logits[:, -1].argmax(-1) == y[:, -1])

    def mean(xs):
        return torch.cat(xs).float().mean().item()

    return {"value": mean(w_val), "self": mean(w_self), "distractors": mean(w_dis),
            "acc": mean(correct)}


@torch.no_grad()
def readout_check(model: TinyTransformer, n: int, seed: int, *, n_values: int = 8,
                  n_distractors: int = 32, batch: int = 256) -> dict:
    """The trained head's answer at n keys, and the same answer with one bias removed.

    On `batch` contexts of n keys: "acc", the argmax accuracy over the value classes;
    "top", the share of answers that go to the most frequent class; "margin", the mean
    logit of the right value minus the best wrong one (negative: the wrong one wins).
    "acc_centred" is the accuracy after subtracting one vector per length, the mean of
    the value logits over a separate calibration batch at the same n (no label is used):
    when it is high where "acc" is low, the value is still in the output and a constant
    offset, not a loss of information, is what fails. "acc_vocab" is the argmax
    accuracy over the whole vocabulary, as `measure_needle` scores it, and "outside" the
    share of those answers that are not a value class at all (a key or a distractor
    token): a head can fail there while its value logits still rank the right value
    first.
    """
    check_positive_int("n", n)
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed + 2000 + n)

    def last_logits():
        x, y = needle_batch(batch, n, n_values, n_distractors, generator=g, device=dev)
        return model(x)[0][:, -1], y[:, -1]

    calib = last_logits()[0][:, :n_values]
    full, y = last_logits()                                      # [batch, vocab]
    logits = full[:, :n_values]                                  # [batch, n_values]
    answer = logits.argmax(-1)
    right = logits.gather(1, y[:, None])[:, 0]
    wrong = logits.masked_fill(torch.nn.functional.one_hot(y, n_values).bool(),
                               float("-inf")).max(-1).values
    centred = (logits - calib.mean(0)).argmax(-1)
    answer_vocab = full.argmax(-1)
    return {"acc": (answer == y).float().mean().item(),
            "top": torch.bincount(answer, minlength=n_values).max().item() / batch,
            "margin": (right - wrong).mean().item(),
            "acc_centred": (centred == y).float().mean().item(),
            "acc_vocab": (answer_vocab == y).float().mean().item(),
            "outside": (answer_vocab >= n_values).float().mean().item()}


def first_failure(lengths, acc, level: float = 0.9):
    """The first length (in the given order) whose accuracy is below `level`, else None."""
    lengths, acc = list(lengths), list(acc)
    if len(lengths) != len(acc):
        raise ValueError(f"lengths and acc must have the same length, got {len(lengths)} "
                         f"and {len(acc)}")
    return next((n for n, a in zip(lengths, acc) if a < level), None)


def entropy_growth(entropy: torch.Tensor, t0: int) -> torch.Tensor:
    """Entropy gained from position t0 to the last, per unit of log(t+1): `[..., T] -> [...]`.

    1 for a head that keeps spreading evenly over every key (the uniform row), 0 for a head
    whose spread stopped growing; negative when it sharpens.
    """
    check_float_tensor("entropy", entropy, min_ndim=1, shape_doc="of shape [..., T]")
    T = entropy.shape[-1]
    if isinstance(t0, bool) or not isinstance(t0, int) or not 0 <= t0 < T - 1:
        raise ValueError(f"t0 must be an int in [0, T - 1) = [0, {T - 1}), got {t0!r}")
    span = torch.log(torch.tensor((T) / (t0 + 1), dtype=entropy.dtype))
    return (entropy[..., -1] - entropy[..., t0]) / span


CHAR_DEFAULTS = dict(play="romeo-and-juliet", char_len=64, char_steps=600, char_embd=64,
                     char_lr=5e-3, char_batch=32, eval_windows=128)
TEST_LENGTHS = [32, 64, 128, 256, 512, 1024]


def _char_cell(seed: int, device="cpu", **hp) -> dict:
    import torch.nn.functional as F

    from .data import CharTokenizer, load_shakespeare, random_windows, split_text
    from .dilution import attention_entropy

    p = {**CHAR_DEFAULTS, **hp}
    text = load_shakespeare([p["play"]])
    train_text, held_text = split_text(text)
    tok = CharTokenizer(text)
    d_train, d_held = tok.encode(train_text), tok.encode(held_text)
    cfg = TransformerConfig(vocab_size=tok.vocab_size, block_size=p["char_len"], n_layer=2,
                            n_head=4, n_embd=p["char_embd"])
    torch.manual_seed(seed)
    model = TinyTransformer(cfg).to(device)
    gen = torch.Generator().manual_seed(seed)
    train(model, lambda s: random_windows(d_train, p["char_len"], p["char_batch"],
                                          generator=gen, device=device),
          TrainConfig(steps=p["char_steps"], lr=p["char_lr"], progress=False))
    x, y = random_windows(d_held, p["char_len"], p["eval_windows"],
                          generator=torch.Generator().manual_seed(seed + 1), device=device)
    with torch.no_grad(), capture(model) as taps:
        logits, _ = model(x)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    ent = torch.stack([attention_entropy(taps[f"blocks.{i}.attn.tap_pattern"]).mean(0)
                       for i in range(cfg.n_layer)]).cpu()                 # [L, H, T]
    t0 = p["char_len"] // 4 - 1
    return {"growth": entropy_growth(ent, t0).tolist(), "t0": t0,
            "entropy_last": ent[..., -1].tolist(),
            "loss_by_pos": loss.view(y.shape).mean(0).cpu().tolist()}


def run_cell(seed: int, kind: str, attn_scale: str = "standard", train_lengths=(32,),
             device="cpu") -> dict:
    """One F5 sweep cell: kind "needle" (train, then measure at TEST_LENGTHS) or "char"."""
    if kind == "char":
        return _char_cell(seed, device)
    if kind != "needle":
        raise ValueError(f"kind must be 'needle' or 'char', got {kind!r}")
    model = train_needle(seed, attn_scale, train_lengths, device=device)
    res = {str(n): measure_needle(model, n, seed) for n in TEST_LENGTHS}
    out = {"by_length": res}
    if attn_scale == "log_n":
        out["s"] = model.blocks[0].attn.log_n_s.item()
    return out


def sweep(seeds=(0, 1, 2), device: str = "cpu"):
    """The F5 sweep: the retrieval head trained at n = 32 (standard and s log n) and at
    mixed lengths 8..128 (standard), measured at 32..1024; the char model's entropy."""
    from .sweep import SweepSpec

    cells = []
    for s in seeds:
        cells += [{"seed": s, "kind": "needle", "attn_scale": "standard", "train_lengths": [32]},
                  {"seed": s, "kind": "needle", "attn_scale": "log_n", "train_lengths": [32]},
                  {"seed": s, "kind": "needle", "attn_scale": "standard",
                   "train_lengths": [8, 16, 32, 64, 128]},
                  {"seed": s, "kind": "char"}]
    return SweepSpec(name="f5", out="book/part2/results/f5.json", cells=cells,
                     run=lambda **c: run_cell(device=device, **c),
                     description="F5: needle retrieval at 32..1024 keys (trained at 32, "
                                 "standard and s log n; standard at mixed lengths 8..128) "
                                 "and char-model entropy growth, 3 seeds")
