"""Questions about letters, asked of a character model and of a BPE model (chapter F1).

Book: Part II, "F1 Tokenization fixes the atoms". The same TinyTransformer is trained on
the same questions about words, once with the word spelled in characters and once in
BPE tokens, and tested on words it never saw. Three tasks: "presence" (does letter c
occur in w), "count" (how many times, capped at 3) and "reversal" (spell w backwards).
`targets="dense"` trains the letter tasks with a target at every word token (the running
count, as `letter_count_examples` builds it); `targets="answer"` keeps only the target at
"=", so both tokenizations get exactly one training signal per question. `sweep()` runs
every task over seeds for `python -m phaselib.sweep f1`.
"""

from __future__ import annotations

import functools

import torch

from .tasks import letter_count_examples, reversal_examples

__all__ = ["LETTERS", "TASKS", "RATES", "REGISTERED_RATES", "ADDED_RATES", "NEXT_RATE",
           "RATES_EXTENDED", "RATES_OUT", "split_words", "validation_words",
           "tokenizations", "answer_only", "answer_accuracy", "run_letter_task", "run_f1",
           "run_f1_rate", "sweep", "sweep_rates"]

LETTERS = "abcdefghijklmnopqrstuvwxyz"
TASKS = {"presence": 1, "count": 3, "reversal": None}   # task: max_count
# The rate sweep's grid. The rule registered REGISTERED_RATES: the chapter's rate (6e-3)
# and a factor of three either side. Three of its six models chose the lowest; one step
# below it (7e-4, sweep `rate-edges`, seed 0) reversal with characters did better, by
# little. Fixed 2026-12-07 (stop 50) before any run at its rates: the grid extends
# downward by ADDED_RATES for every model; if any model's seed-0 best then lies at the
# new bottom, NEXT_RATE joins for every model (one step, no more); seeds 1-4 then re-run
# at each model's best of the whole grid, and the verdict reads it, whatever it gives.
REGISTERED_RATES = (2e-3, 6e-3, 1.8e-2)
ADDED_RATES = (7e-4,)
NEXT_RATE = 2e-4
RATES_EXTENDED = "2026-12-07"
# Run at ADDED_RATES: reversal with characters took 7e-4, the new bottom, on seed 0, so
# by the rule NEXT_RATE joins the grid.
RATES = (NEXT_RATE,) + ADDED_RATES + REGISTERED_RATES
RATES_OUT = "book/part2/results/f1_rates.json"


def split_words(counts, seed: int, *, min_len: int = 3, max_len: int = 10,
                test_share: float = 0.2) -> tuple[list[str], list[str]]:
    """Lower-case a-z word types of `counts` with min_len..max_len letters, split at
    random (seeded) into (train_words, test_words), test_share of them held out."""
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    types = sorted({w.lower() for w in counts if min_len <= len(w) <= max_len
                    and all(ch in LETTERS for ch in w.lower())})
    if len(types) < 2:
        raise ValueError(f"counts has {len(types)} usable word types; need at least 2")
    perm = torch.randperm(len(types), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, int(len(types) * test_share))
    test = [types[i] for i in perm[:n_test].tolist()]
    train = [types[i] for i in perm[n_test:].tolist()]
    return train, test


def validation_words(train_words, seed: int, share: float = 0.1
                     ) -> tuple[list[str], list[str]]:
    """(train, val): `share` of `train_words` held out at random (seeded) to choose a
    learning rate on, so the test words of `split_words` stay the ones scored."""
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    if len(train_words) < 2:
        raise ValueError(f"train_words must hold at least 2 words, got {len(train_words)}")
    g = torch.Generator().manual_seed(10_000 + seed)
    perm = torch.randperm(len(train_words), generator=g).tolist()
    n_val = max(1, int(len(train_words) * share))
    return ([train_words[i] for i in perm[n_val:]],
            [train_words[i] for i in perm[:n_val]])


def tokenizations(bpe) -> dict:
    """name -> (encode_word, encode_letter, base_vocab) for characters and for `bpe`
    (a `tokenizers.Tokenizer` trained GPT-2 style, words with a leading space)."""
    from .tokenize import word_pieces

    def bpe_word(w):
        return list(zip(bpe.encode(" " + w).ids, word_pieces(bpe, w)))

    return {"characters": (lambda w: [(LETTERS.index(ch), ch) for ch in w],
                           LETTERS.index, len(LETTERS)),
            "BPE": (bpe_word, bpe.token_to_id, bpe.get_vocab_size())}


def answer_only(x: torch.Tensor, y: torch.Tensor, base: int) -> torch.Tensor:
    """y with every target removed (-1) except at the "=" token (id `base`)."""
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    return torch.where(x == base, y, torch.full_like(y, -1))


def answer_accuracy(model, x: torch.Tensor, y: torch.Tensor, task: str, base: int,
                    device="cpu") -> dict:
    """Held-out scores at the answer only. Letter tasks: the share of "=" positions whose
    most likely answer token (among the answers) is right. Reversal: the share of letters
    right under teacher forcing, and of words with every letter right."""
    with torch.no_grad():
        logits = model(x.to(device))[0].cpu()
    if task == "reversal":
        lo, hi = base + 1, base + 1 + len(LETTERS)
        keep = y >= 0
        pred = logits[..., lo:hi].argmax(-1) + lo
        right = (pred == y) | ~keep
        return {"letters": (pred == y)[keep].float().mean().item(),
                "words": right.all(dim=1).float().mean().item()}
    at_eq = x == base
    lo, hi = base + 1, base + 2 + TASKS[task]
    pred = logits[at_eq][:, lo:hi].argmax(-1) + lo
    return {"answer": (pred == y[at_eq]).float().mean().item()}


def _examples(task, words, tok, n, generator):
    enc_word, enc_letter, base = tok
    if task == "reversal":
        return reversal_examples(words, enc_word, base, n, generator=generator)
    return letter_count_examples(words, enc_word, enc_letter, base, n,
                                 max_count=TASKS[task], generator=generator)


def _pad_to(x, y, T, pad):
    if x.shape[1] == T:
        return x, y
    px = torch.full((x.shape[0], T - x.shape[1]), pad, dtype=x.dtype)
    return torch.cat([x, px], 1), torch.cat([y, torch.full_like(px, -1)], 1)


def run_letter_task(train_words, test_words, tok, *, task: str = "presence",
                    targets: str = "dense", seed: int = 0, steps: int = 500,
                    batch: int = 128, lr: float = 6e-3, n_layer: int = 2, n_head: int = 2,
                    n_embd: int = 64, n_eval: int = 4000, val_words=None,
                    device="cpu") -> dict:
    """Train one TinyTransformer on `task` in tokenization `tok` (from `tokenizations`)
    and score it at the answer on training words ("seen") and held-out words ("unseen");
    with `val_words`, also on those ("val_", the words a learning rate is chosen on).

    The block size covers the longest example of every set it scores or trains on, so
    any seed runs; `longer` counts held-out examples longer than every training example
    (their "=" sits at a position the model was never trained at).
    """
    from .train import TrainConfig, train
    from .transformer import TinyTransformer, TransformerConfig

    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    if targets not in ("dense", "answer"):
        raise ValueError(f"targets must be 'dense' or 'answer', got {targets!r}")
    base = tok[2]
    g = torch.Generator().manual_seed(seed + 1)
    x_tr, y_tr, vocab = _examples(task, train_words, tok, steps * batch, g)
    x_te, y_te, _ = _examples(task, test_words, tok, n_eval,
                              torch.Generator().manual_seed(seed + 2))
    x_se, y_se, _ = _examples(task, train_words, tok, n_eval,
                              torch.Generator().manual_seed(seed + 3))
    sets = [(x_tr, y_tr), (x_te, y_te), (x_se, y_se)]
    if val_words is not None:
        sets.append(_examples(task, val_words, tok, n_eval,
                              torch.Generator().manual_seed(seed + 4))[:2])
    pad = vocab - 1
    longer = int(((x_te != pad).sum(1) > (x_tr != pad).sum(1).max()).sum())
    T = max(x.shape[1] for x, _ in sets)
    (x_tr, y_tr), (x_te, y_te), (x_se, y_se), *rest = (_pad_to(a, b, T, pad)
                                                       for a, b in sets)
    if rest:
        (x_va, y_va), = rest
    if targets == "answer" and task != "reversal":
        y_tr = answer_only(x_tr, y_tr, base)
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=vocab, block_size=T, n_layer=n_layer,
                            n_head=n_head, n_embd=n_embd)
    model = TinyTransformer(cfg).to(device)
    xb, yb = x_tr.view(steps, batch, -1), y_tr.view(steps, batch, -1)
    train(model, lambda s: (xb[s].to(device), yb[s].to(device)),
          TrainConfig(steps=steps, lr=lr, progress=False))
    model.eval()
    seen = answer_accuracy(model, x_se, y_se, task, base, device)
    unseen = answer_accuracy(model, x_te, y_te, task, base, device)
    out = {f"seen_{k}": v for k, v in seen.items()}
    out.update({f"unseen_{k}": v for k, v in unseen.items()})
    if val_words is not None:
        val = answer_accuracy(model, x_va, y_va, task, base, device)
        out.update({f"val_{k}": v for k, v in val.items()})
    if task != "reversal":
        ans = y_te[x_te == base]
        out["majority"] = torch.bincount(ans - ans.min()).max().item() / len(ans)
    out.update(params=model.num_params(), longer=longer, block_size=T)
    return out


@functools.lru_cache(maxsize=2)
def _corpus_bpe(vocab_size: int):
    from .data import load_shakespeare, split_text
    from .tokenize import train_bpe, word_counts

    train_text, _ = split_text(load_shakespeare())
    return train_bpe(train_text, vocab_size), word_counts(train_text)


def run_f1(seed: int, task: str, targets: str, steps: int = 500, task_vocab: int = 2048,
           bpe_only: bool = False, device="cpu") -> dict:
    """One cell of the F1 sweep: both tokenizations on `task` (only BPE when
    `bpe_only`); {"characters": ..., "BPE": ...} with the scores of `run_letter_task`."""
    torch.set_num_threads(1)
    bpe, counts = _corpus_bpe(task_vocab)
    train_words, test_words = split_words(counts, seed)
    return {name: run_letter_task(train_words, test_words, tok, task=task,
                                  targets=targets, seed=seed, steps=steps, device=device)
            for name, tok in tokenizations(bpe).items()
            if not (bpe_only and name != "BPE")}


# The longer budget of the reversal control: four times the chapter's steps, for the
# BPE model only (the character model already spells almost every word at 500).
LONG_STEPS = 2000


def sweep(seeds=(0, 1, 2, 3, 4), device: str = "cpu"):
    """The F1 sweep, characters vs BPE-2048 at 500 steps, chapter-sized models: presence
    with dense targets (first three seeds: the chapter's own run, not judged), presence
    and counting with answer-only targets and reversal (every seed), and reversal for
    the BPE model at `LONG_STEPS` (first three seeds: does the spelling table get
    learned with a longer budget?)."""
    from .sweep import SweepSpec

    cells = [{"seed": s, "task": "presence", "targets": "dense"} for s in seeds[:3]]
    cells += [{"seed": s, "task": t, "targets": "answer"} for s in seeds
              for t in ("presence", "count", "reversal")]
    cells += [{"seed": s, "task": "reversal", "targets": "answer", "steps": LONG_STEPS,
               "bpe_only": True} for s in seeds[:3]]
    return SweepSpec(name="f1", out="book/part2/results/f1.json", cells=cells,
                     run=lambda **c: run_f1(device=device, **c),
                     description="F1: characters vs BPE on letter questions about unseen "
                                 "words (presence dense/answer-only, count, reversal; "
                                 "reversal at a longer budget)")


def run_f1_rate(seed: int, task: str, tokenization: str, lr, *, steps: int = 500,
                out: str | None = None, task_vocab: int = 2048, device="cpu") -> dict:
    """One cell of the rate sweep: one tokenization ("characters" or "BPE") on `task`
    with answer-only targets at rate `lr`, trained on the training words less a tenth
    held out (`validation_words`) and scored on those ("val_") and on the test words of
    `split_words` ("unseen_"). lr="best": the rate of RATES whose seed-0 cell of the
    same task and tokenization in the results file `out` has the best validation score
    ("val_score": the answer accuracy, or per letter for reversal)."""
    from .rates import resolve_rate

    torch.set_num_threads(1)
    lr = resolve_rate(lr, out, "val_score", RATES, higher=True, task=task,
                      tokenization=tokenization)
    bpe, counts = _corpus_bpe(task_vocab)
    toks = tokenizations(bpe)
    if tokenization not in toks:
        raise ValueError(f"tokenization must be one of {sorted(toks)}, "
                         f"got {tokenization!r}")
    train_words, test_words = split_words(counts, seed)
    train_words, val_words = validation_words(train_words, seed)
    res = run_letter_task(train_words, test_words, toks[tokenization], task=task,
                          targets="answer", seed=seed, steps=steps, lr=lr,
                          val_words=val_words, device=device)
    score = res["val_letters"] if task == "reversal" else res["val_answer"]
    return res | {"val_score": score, "lr": lr}


def sweep_rates(seeds=(0, 1, 2, 3, 4), out: str = RATES_OUT, device: str = "cpu"):
    """The F1 rate sweep (`python -m phaselib.sweep f1-rates`), registered before it
    ran: each tokenization on each answer-only task, seed 0 at every rate of RATES,
    seeds 1-4 at seed 0's best by validation score (`rates.rates_then_best`), 500 steps.
    The verdict of f1-reconstruct-atoms reads these cells."""
    from .rates import rates_then_best
    from .sweep import SweepSpec

    base = [{"task": t, "tokenization": n} for t in TASKS for n in ("characters", "BPE")]
    return SweepSpec(name="f1-rates", out=out,
                     cells=rates_then_best(base, RATES, seeds, out),
                     run=lambda **c: run_f1_rate(device=device, **c),
                     description=f"F1 at each tokenization's best of {len(RATES)} "
                                 "rates: answer-only presence, count and reversal, "
                                 "rates chosen on validation words (seed 0), five "
                                 "seeds")
