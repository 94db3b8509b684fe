"""Local skills through training, a learned association, and memorisation (Part II, F9).

Book: Part II, "F9 Local patterns erode". A character model is scored at checkpoints
through ordinary training (`phaselib.train.train` with an `eval_fn`) on

- the global held-out loss (nats per character, `evaluate_loss`);
- next-character accuracy *inside words* (previous and target character both letters)
  and its loss, against the same at all other positions (`local_accuracy`);
- the share of sampled words that are words of the training text (`real_word_share`);
- the share of word bigrams of a sample already seen earlier in it (`repetition_rate`);
- how much more likely a speaker "Nurse:" is after a speech by Romeo than after the same
  speech by a character of another play (`association_score`, in nats).

`continuation_length` counts how many characters of a passage a model reproduces
greedily from a prompt taken from it; `with_copies` inserts a passage into a training
text. `run_curves` and `run_memorise` run one seed of each experiment; `sweep` is the
precomputed sweep `f9` (`python -m phaselib.sweep f9`).
"""

from __future__ import annotations

import math
import random
import re
import string

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_tensor, check_positive_int
from .data import CharTokenizer, load_shakespeare, random_windows, split_text
from .train import TrainConfig, evaluate_loss, train
from .transformer import TinyTransformer, TransformerConfig

__all__ = ["PLAYS", "SPEECHES", "CONTROLS", "letter_mask", "in_word_mask",
           "local_accuracy", "words", "corpus_vocab", "real_word_share",
           "repetition_rate", "sequence_logprob", "association_score",
           "greedy_repetition", "exact_prefix_length", "continuation_length",
           "with_copies", "erosion", "first_crossing", "make_model", "run_curves",
           "run_memorise", "sweep"]

PLAYS = ("romeo-and-juliet", "hamlet", "macbeth", "othello")
# Neutral speeches: the association probe changes only the speaker's name before them.
SPEECHES = (("Good night, good night.", "What news?"),
            ("Come hither, sir.", "I pray you."),
            ("What say you?", "Farewell, my lord."),
            ("Peace, I say.", "O, speak again."))
# Pairs of speakers of the other three plays.
CONTROLS = (("Hamlet", "Horatio"), ("Macbeth", "Banquo"), ("Othello", "Iago"))
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def letter_mask(tok: CharTokenizer) -> torch.Tensor:
    """[V] bool: which token ids of a character tokenizer are ASCII letters."""
    return torch.tensor([c in string.ascii_letters for c in tok.chars])


def in_word_mask(x: torch.Tensor, y: torch.Tensor,
                 letters: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: positions whose input x (the previous character) and target y are
    both letters, i.e. predictions made inside a word."""
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long:
            raise TypeError(f"{name} must be a long tensor of token ids [B, T]")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape [B, T], got "
                         f"{tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if not isinstance(letters, torch.Tensor) or letters.dtype != torch.bool \
            or letters.dim() != 1:
        raise TypeError("letters must be a 1-D bool tensor [V] (see letter_mask)")
    return letters[x] & letters[y]


def local_accuracy(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                   letters: torch.Tensor) -> dict:
    """Argmax accuracy and mean loss (nats) inside words and at all other positions.

    logits [B, T, V]; x, y [B, T] long (y = x shifted by one); letters [V] bool. Returns
    {"in_word_acc", "in_word_loss", "in_word_n", "other_acc", "other_loss", "other_n"}
    (NaN where a group is empty).
    """
    check_float_tensor("logits", logits, ndim=3, shape_doc="[B, T, V]")
    inside = in_word_mask(x, y, letters)
    if logits.shape[:2] != x.shape or logits.shape[-1] != len(letters):
        raise ValueError(f"logits must be [B, T, V] = [{x.shape[0]}, {x.shape[1]}, "
                         f"{len(letters)}], got {tuple(logits.shape)}")
    hit = (logits.argmax(-1) == y).double()
    ce = F.cross_entropy(logits.flatten(0, 1).double(), y.flatten(), reduction="none")
    ce = ce.view(y.shape)
    out = {}
    for name, m in (("in_word", inside), ("other", ~inside)):
        n = int(m.sum())
        out[f"{name}_acc"] = hit[m].mean().item() if n else math.nan
        out[f"{name}_loss"] = ce[m].mean().item() if n else math.nan
        out[f"{name}_n"] = n
    return out


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased: runs of letters, inner apostrophes kept."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [w.lower() for w in _WORD.findall(text)]


def corpus_vocab(text: str) -> frozenset[str]:
    """The set of (lower-cased) words of `text`."""
    return frozenset(words(text))


def real_word_share(text: str, vocab) -> float:
    """Share of the words of `text` that are in `vocab` (NaN when it has no words)."""
    ws = words(text)
    return sum(w in vocab for w in ws) / len(ws) if ws else math.nan


def repetition_rate(text: str, n: int = 2) -> float:
    """Share of the word n-grams of `text` that already occurred earlier in it (NaN when
    it has no n-gram). Real text repeats some ("my lord"); a looping sampler, many."""
    check_positive_int("n", n)
    ws = words(text)
    grams = [tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)]
    if not grams:
        return math.nan
    seen, rep = set(), 0
    for g in grams:
        rep += g in seen
        seen.add(g)
    return rep / len(grams)


@torch.no_grad()
def sequence_logprob(model: nn.Module, tok: CharTokenizer, prompt: str,
                     target: str) -> float:
    """log p(target | prompt) in nats: the sum over the target's characters."""
    if not prompt or not target:
        raise ValueError("prompt and target must be non-empty strings")
    dev = next(model.parameters()).device
    ids = tok.encode(prompt + target).to(dev)
    block = model.cfg.block_size
    if len(ids) - 1 > block:
        raise ValueError(f"prompt + target must fit in block_size + 1 = {block + 1} "
                         f"characters, got {len(ids)}")
    model.eval()
    logits, _ = model(ids[None, :-1])
    logp = torch.log_softmax(logits[0].double(), -1)
    pos = torch.arange(len(prompt) - 1, len(ids) - 1, device=dev)
    return logp[pos, ids[len(prompt):]].sum().item()


def _prompt(names, speeches) -> str:
    return "".join(f"{n}:\n{s}\n\n" for n, s in zip(names, speeches))


def association_score(model: nn.Module, tok: CharTokenizer, names=("Romeo", "Juliet"),
                      target: str = "Nurse:", controls=CONTROLS,
                      speeches=SPEECHES) -> float:
    """How much more likely (nats) the next speaker is `target` after speeches by
    `names` than after the same speeches by the speakers of each control: the mean
    over `speeches` (tuples, one speech per name) of log p(target | names speaking)
    minus the mean over `controls` (tuples of names) of log p(target | control
    speaking)."""
    if not controls or not speeches:
        raise ValueError("controls and speeches must be non-empty")
    if any(len(c) != len(names) for c in controls) or \
            any(len(s) != len(names) for s in speeches):
        raise ValueError(f"every control and every speech tuple must have len(names) = "
                         f"{len(names)} entries")
    diffs = []
    for s in speeches:
        lp = sequence_logprob(model, tok, _prompt(names, s), target)
        lc = [sequence_logprob(model, tok, _prompt(c, s), target) for c in controls]
        diffs.append(lp - sum(lc) / len(lc))
    return sum(diffs) / len(diffs)


def exact_prefix_length(a: str, b: str) -> int:
    """How many leading characters `a` and `b` share."""
    if not isinstance(a, str) or not isinstance(b, str):
        raise TypeError("a and b must be str")
    n = 0
    for ca, cb in zip(a, b):
        if ca != cb:
            break
        n += 1
    return n


@torch.no_grad()
def continuation_length(model: nn.Module, tok: CharTokenizer, passage: str,
                        prompt_len: int = 32) -> int:
    """Characters of `passage` after its first `prompt_len` that greedy decoding from
    those reproduces exactly (0 .. len(passage) - prompt_len)."""
    check_positive_int("prompt_len", prompt_len)
    if len(passage) <= prompt_len:
        raise ValueError(f"passage must be longer than prompt_len={prompt_len}, "
                         f"got {len(passage)} characters")
    dev = next(model.parameters()).device
    model.eval()
    idx = tok.encode(passage[:prompt_len])[None].to(dev)
    out = model.generate(idx, len(passage) - prompt_len, top_k=1)
    return exact_prefix_length(tok.decode(out[0, prompt_len:].tolist()),
                               passage[prompt_len:])


def with_copies(text: str, passage: str, copies: int, seed: int = 0) -> str:
    """`text` with `copies` copies of `passage` inserted at random line starts."""
    check_positive_int("copies", copies)
    lines = text.split("\n")
    rng = random.Random(seed)
    spots = [rng.randrange(len(lines) + 1) for _ in range(copies)]
    for at in sorted(spots, reverse=True):
        lines.insert(at, passage.rstrip("\n"))
    return "\n".join(lines)


def erosion(metric, loss, higher_is_better: bool = True) -> float:
    """The largest fall of `metric` below its best value so far, taken at checkpoints
    where `loss` reaches a new low: how much a local skill got worse while the global
    loss improved (0.0 when it never did). Sequences of one length, in training
    order."""
    if len(metric) != len(loss) or len(metric) < 2:
        raise ValueError(f"metric and loss must be sequences of one length >= 2, got "
                         f"{len(metric)} and {len(loss)}")
    sign = 1.0 if higher_is_better else -1.0
    best_m, best_l, worst = sign * metric[0], loss[0], 0.0
    for m, l in zip(metric[1:], loss[1:]):
        if l < best_l:
            worst = max(worst, best_m - sign * m)
            best_l = l
        best_m = max(best_m, sign * m)
    return worst


def first_crossing(values, threshold: float) -> int | None:
    """Index of the first value >= threshold after which every value stays >= it (the
    point where a score crosses for good), or None if the last value is below it."""
    idx = None
    for i, v in enumerate(values):
        if v >= threshold:
            idx = i if idx is None else idx
        else:
            idx = None
    return idx


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


@torch.no_grad()
def greedy_repetition(model: nn.Module, tok: CharTokenizer, prompts, n_chars: int = 200,
                      n: int = 2) -> float:
    """Mean repetition_rate (word n-grams) of greedy continuations of `prompts` (strings
    of one length, continued together); a continuation without n-grams counts 0."""
    if not prompts or len({len(p) for p in prompts}) != 1:
        raise ValueError("prompts must be a non-empty list of strings of one length")
    dev = next(model.parameters()).device
    model.eval()
    idx = torch.stack([tok.encode(p) for p in prompts]).to(dev)
    out = model.generate(idx, n_chars, top_k=1)[:, idx.shape[1]:]
    rates = [repetition_rate(tok.decode(row.tolist()), n) for row in out]
    return sum(0.0 if math.isnan(r) else r for r in rates) / len(rates)


def _chunks(text: str, n: int = 8, size: int = 232) -> list[str]:
    return [text[i * size:(i + 1) * size] for i in range(n)]


def checkpoint_metrics(model, tok, held_ids, vocab, letters, *, prompts, n_samples=8,
                       sample_chars=240, seed=0, block=64) -> dict:
    """Every metric of the chapter at one checkpoint (see the module docstring)."""
    dev = next(model.parameters()).device
    model.eval()
    n = (len(held_ids) - 1) // block * block
    x = held_ids[:n].view(-1, block).to(dev)
    y = held_ids[1:n + 1].view(-1, block).to(dev)
    with torch.no_grad():
        logits, _ = model(x)
    out = local_accuracy(logits, x, y, letters.to(dev))
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
    sample metrics measured on held-out text itself}."""
    torch.manual_seed(seed)
    _, tok, tr, he = _data()
    held = tok.encode(he[:held_chars])
    vocab, letters = corpus_vocab(tr), letter_mask(tok)
    model = make_model(tok.vocab_size, n_layer, n_embd, block).to(device)
    rows = []

    def eval_fn(m):
        rows.append(checkpoint_metrics(m, tok, held, vocab, letters, seed=seed,
                                       block=block,
                                       prompts=[c[:32] for c in _chunks(he)]))
        return rows[-1]["loss"]

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


def run_memorise(seed: int = 0, n_layer: int = 1, n_embd: int = 32, steps: int = 600,
                 copies: int = 64, passage_chars: int = 200, prompt_len: int = 32,
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


def sweep(seeds=(0, 1, 2)):
    """Sweep `f9`: every metric through 1500 steps of a 2-layer, 64-wide model; and the
    exact continuation of a passage inserted 256 or 1024 times, at three model sizes."""
    from .sweep import SweepSpec

    cells = [{"seed": s, "kind": "curves"} for s in seeds]
    cells += [{"seed": s, "kind": "memorise", "n_layer": L, "n_embd": E, "copies": c}
              for s in seeds for L, E in MEM_SIZES for c in MEM_COPIES]
    return SweepSpec(name="f9", out="book/part2/results/f9.json", cells=cells,
                     run=run_cell,
                     description="F9: local skills, held-out loss and the "
                     "Romeo-Nurse association through training; memorisation by size")
