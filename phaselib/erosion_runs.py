"""The F9 experiments: local skills through training, and memorisation by size.

Book: Part II, "F9 Local patterns erode". `run_curves` trains one character model and
scores it at checkpoints with every measurement of `phaselib.erosion`
(`checkpoint_metrics`); `run_memorise` trains on text with a held-out passage inserted
and measures how much of it the model reproduces. Each runs one seed; `sweep` is the
precomputed sweep `f9` (`python -m phaselib.sweep f9`).
"""

from __future__ import annotations

import math
import re

import torch

from .data import CharTokenizer, load_shakespeare, random_windows, split_text
from .erosion import (PLAYS, SPEECHES, association_score, continuation_length,
                      corpus_vocab, greedy_repetition, held_windows, in_word_mask,
                      letter_mask, local_accuracy, paired_difference_se,
                      real_word_share, repetition_rate, with_copies)
from .train import TrainConfig, evaluate_loss, train
from .transformer import TinyTransformer, TransformerConfig

__all__ = ["make_model", "checkpoint_metrics", "run_curves", "run_memorise", "run_cell",
           "MEM_SIZES", "MEM_COPIES", "MEM_LENGTHS", "MEM_FEW_COPIES",
           "MEM_LONG_AT_MOST", "MEM_RULES", "MEM_LONG_ADDED_SEEDS",
           "MEM_PASSAGE_CHARS", "sweep"]


def make_model(vocab_size: int, n_layer: int, n_embd: int,
               block: int = 64) -> TinyTransformer:
    """A TinyTransformer with one head per 32 channels."""
    cfg = TransformerConfig(vocab_size, block, n_layer, max(1, n_embd // 32), n_embd)
    return TinyTransformer(cfg)


def _data(plays=PLAYS):
    text = load_shakespeare(list(plays))
    tok = CharTokenizer(text)
    tr, he = split_text(text)
    return text, tok, tr, he


def _batches(data: torch.Tensor, block: int, batch: int, seed: int, dev):
    g = torch.Generator().manual_seed(seed)
    return lambda step: random_windows(data, block, batch, generator=g, device=dev)


def _chunks(text: str, n: int = 8, size: int = 232) -> list[str]:
    return [text[i * size:(i + 1) * size] for i in range(n)]


def checkpoint_metrics(model, tok, held_ids, vocab, letters, *, prompts, n_samples=8,
                       sample_chars=240, seed=0, block=64) -> dict:
    """Every metric of the chapter at one checkpoint (see the module docstring), and
    "in_word_hits": the held-out in-word positions' hits [n] (for a paired noise
    floor between checkpoints)."""
    dev = next(model.parameters()).device
    model.eval()
    x, y = (t.to(dev) for t in held_windows(held_ids, block))
    with torch.no_grad():
        logits, _ = model(x)
    out = local_accuracy(logits, x, y, letters.to(dev))
    out["in_word_hits"] = (logits.argmax(-1) == y)[in_word_mask(x, y, letters.to(dev))]
    out["loss"] = evaluate_loss(model, held_ids, block)
    g = torch.Generator(device=dev).manual_seed(seed)
    start = tok.encode("\n").expand(n_samples, 1).to(dev)
    ids = model.generate(start, sample_chars, generator=g)
    texts = [tok.decode(r[1:].tolist()) for r in ids]
    out["real_word_share"] = real_word_share(" ".join(texts), vocab)
    out["repetition"] = greedy_repetition(model, tok, prompts)
    out["association"] = association_score(model, tok)
    out["association_control"] = association_score(
        model, tok, names=("Hamlet",), target="Horatio:", speeches=tuple(
            (a,) for a, _ in SPEECHES), controls=(("Romeo",), ("Macbeth",), ("Iago",)))
    out["sample"] = texts[0][:160]
    return out


def run_curves(seed: int = 0, steps: int = 1500, eval_every: int = 100,
               n_layer: int = 2,
               n_embd: int = 64, block: int = 64, batch: int = 32, lr: float = 1e-2,
               held_chars: int = 16384, device: str = "cpu",
               progress: bool = False) -> dict:
    """Train one character model on PLAYS and score it at step 0 and every `eval_every`
    steps. Returns {"step": [...], metric: [...] for each metric, "n_params", "ref": the
    sample metrics measured on held-out text itself}. "in_word_paired_se" is the paired
    standard error of the change of in-word accuracy since the previous checkpoint
    (same held-out positions; NaN at step 0)."""
    torch.manual_seed(seed)
    _, tok, tr, he = _data()
    held = tok.encode(he[:held_chars])
    vocab, letters = corpus_vocab(tr), letter_mask(tok)
    model = make_model(tok.vocab_size, n_layer, n_embd, block).to(device)
    rows, prev_hits = [], []

    def eval_fn(m):
        row = checkpoint_metrics(m, tok, held, vocab, letters, seed=seed, block=block,
                                 prompts=[c[:32] for c in _chunks(he)])
        hits = row.pop("in_word_hits").cpu()
        row["in_word_paired_se"] = (math.nan if not rows else
                                    paired_difference_se(hits, prev_hits[-1]))
        prev_hits[:] = [hits]
        rows.append(row)
        return row["loss"]

    eval_fn(model)
    cfg = TrainConfig(steps=steps, lr=lr, eval_every=eval_every, progress=progress)
    train(model, _batches(tok.encode(tr), block, batch, seed, device), cfg, eval_fn)
    res = {k: [r[k] for r in rows] for k in rows[0]}
    res["step"] = [0] + list(range(eval_every, steps + 1, eval_every))
    if res["step"][-1] != steps:
        res["step"].append(steps)
    chunks = [c[32:] for c in _chunks(he)]
    res["ref"] = {"real_word_share": real_word_share(" ".join(chunks), vocab),
                  "repetition": sum(map(repetition_rate, chunks)) / len(chunks)}
    res["n_params"] = model.num_params()
    return res


MEM_PASSAGE_CHARS = 200      # the passage's length in characters unless a cell names one


def run_memorise(seed: int = 0, n_layer: int = 1, n_embd: int = 32, steps: int = 600,
                 copies: int = 64, passage_chars: int = MEM_PASSAGE_CHARS,
                 prompt_len: int = 32,
                 block: int = 64, batch: int = 32, lr: float = 1e-2,
                 device: str = "cpu",
                 progress: bool = False) -> dict:
    """Train on PLAYS' training text with a held-out passage inserted `copies` times;
    return the exact greedy continuation length of that passage and of a control
    passage (held out, never inserted), and the loss on each (nats per character)."""
    torch.manual_seed(seed)
    _, tok, tr, he = _data()
    starts = [m.start() + 1 for m in re.finditer("\n", he)]
    a = next(s for s in starts if s >= len(he) // 3)
    b = next(s for s in starts if s >= 2 * len(he) // 3)
    passage, control = he[a:a + passage_chars], he[b:b + passage_chars]
    data = tok.encode(with_copies(tr, passage, copies, seed))
    model = make_model(tok.vocab_size, n_layer, n_embd, block).to(device)
    cfg = TrainConfig(steps=steps, lr=lr, progress=progress)
    train(model, _batches(data, block, batch, seed, device), cfg)
    out = {"n_params": model.num_params(), "passage": passage, "control": control}
    for key, p in (("passage", passage), ("control", control)):
        out[f"{key}_len"] = continuation_length(model, tok, p, prompt_len)
        out[f"{key}_loss"] = evaluate_loss(model, tok.encode(p), block)
    out["max_len"] = passage_chars - prompt_len
    return out


def run_cell(kind: str, **kw) -> dict:
    if kind == "curves":
        return run_curves(**kw)
    if kind == "memorise":
        return run_memorise(**kw)
    raise ValueError(f"kind must be 'curves' or 'memorise', got {kind!r}")


# (n_layer, n_embd): about 4k, 14k and 100k parameters
MEM_SIZES = ((1, 16), (1, 32), (2, 64))
MEM_COPIES = (256, 1024)


# Added later (registered before they ran): the largest model at a longer passage with
# the copies of the smaller count, and at the default passage with fewer copies.
MEM_LENGTHS = (400, 800, 1600)       # characters, at MEM_COPIES[0] copies
MEM_FEW_COPIES = (16, 64)            # at the default MEM_PASSAGE_CHARS
# Added 2026-12-07 (stop 54), registered before they ran. A referee found passage
# length not isolated (at MEM_COPIES[0] copies no passage is recalled, whatever its
# length) and the record's quote cut before its reason, "to memorize a sufficiently
# large passage the model must have enough dimensions and depth". So: the largest model
# on a passage four times the default, inserted MEM_COPIES[-1] times, the copies at
# which the default passage is recalled. The copies are held; the passage's share of
# the training text is larger, which should help recall, not hurt it.
MEM_LONG_AT_MOST = (4 * MEM_PASSAGE_CHARS,)   # characters, at MEM_COPIES[-1] copies
MEM_RULES = {"f9-memorisation-100m": {"recall of a longer passage at the most copies": {
    "effect": "share of a passage four times the default length after its prompt that "
              "the largest model reproduces exactly, inserted the most times (the "
              "copies of the positive control, so a larger share of the text); judged "
              "as an absence of memorisation, with the same model's recall of the "
              "default passage at the most copies as its positive control",
    "unit": "of the passage", "threshold": 0.5, "direction": -1,
    "registered": "2026-12-07"}}}
# Amended 2026-12-07 (stop 54), after the five seeds of MEM_LONG_AT_MOST had been read
# (three reproduced the whole passage, two little of it: an interval straddling the
# threshold) and before any run on these: five more seeds of that cell alone. The
# part reads all ten, whatever they give, and the chapter shows the five-seed reading.
MEM_LONG_ADDED_SEEDS = (5, 6, 7, 8, 9)


def sweep(seeds=(0, 1, 2, 3, 4)):
    """Sweep `f9`: every metric through 1500 steps of a 2-layer, 64-wide model; and the
    exact continuation of a passage inserted 256 or 1024 times, at three model sizes.
    Five seeds: at three, the memorisation verdict's interval straddled its threshold.

    Added later, registered before they ran: the largest model on passages of
    MEM_LENGTHS characters inserted MEM_COPIES[0] times (each character seen as often
    as in the 200-character cells, the passage longer), and on the 200-character
    passage inserted MEM_FEW_COPIES times (duplication shares nearer natural text). The
    record f9-memorisation-100m gains two parts judged as absences of memorisation
    (`judge_absence`, threshold: half the passage): the recall share at the longest
    passage, and at the fewest copies; their positive control is the same model's
    recall of the 200-character passage at the most copies. Added last (stop 54), the
    same model on MEM_LONG_AT_MOST at MEM_COPIES[-1] copies (MEM_RULES)."""
    from .sweep import SweepSpec

    cells = [{"seed": s, "kind": "curves"} for s in seeds]
    cells += [{"seed": s, "kind": "memorise", "n_layer": L, "n_embd": E, "copies": c}
              for s in seeds for L, E in MEM_SIZES for c in MEM_COPIES]
    L, E = MEM_SIZES[-1]
    cells += [{"seed": s, "kind": "memorise", "n_layer": L, "n_embd": E,
               "copies": MEM_COPIES[0], "passage_chars": n}
              for s in seeds for n in MEM_LENGTHS]
    cells += [{"seed": s, "kind": "memorise", "n_layer": L, "n_embd": E, "copies": c}
              for s in seeds for c in MEM_FEW_COPIES]
    cells += [{"seed": s, "kind": "memorise", "n_layer": L, "n_embd": E,
               "copies": MEM_COPIES[-1], "passage_chars": n}
              for s in dict.fromkeys((*seeds, *MEM_LONG_ADDED_SEEDS))
              for n in MEM_LONG_AT_MOST]
    return SweepSpec(name="f9", out="book/part2/results/f9.json", cells=cells,
                     run=run_cell,
                     description="F9: local skills, held-out loss and the "
                     "Romeo-Nurse association through training; memorisation by size, "
                     "passage length and copies")
