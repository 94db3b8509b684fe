"""Synthetic sequence tasks, generated on the fly from a seeded generator.

Each returns `(x, y)` long tensors of shape [B, T] for next-token training; positions
whose target cannot be known from the past carry the target -1 (ignored by the loss).
New generators are appended at the end of this file, one function each.
"""

from __future__ import annotations

import torch

def repeat_copy_batch(batch: int, n: int, vocab: int, *,
                      generator: torch.Generator | None = None,
                      device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """A random sequence of n tokens, then the same n tokens again: [B, 2n-1] inputs.

    Book: Part I. The first half is unpredictable (targets -1); in the second half each
    next token is the one exactly n positions back, so a head can find it by position
    alone: a fixed-offset copy, not an induction task (no content matching is needed).
    Tokens are drawn without repetition inside a sequence when vocab >= n, so a
    content-free guess among the first-half tokens not yet repeated already does far
    better than chance over the vocabulary (`repeat_copy_baselines`).
    """
    if vocab < 2 or n < 2:
        raise ValueError(f"repeat_copy_batch needs vocab >= 2 and n >= 2, got vocab={vocab}, "
                         f"n={n}")
    if vocab >= n:
        first = torch.rand(batch, vocab, generator=generator).argsort(-1)[:, :n]
    else:
        first = torch.randint(vocab, (batch, n), generator=generator)
    seq = torch.cat([first, first], dim=1)
    x, y = seq[:, :-1].clone(), seq[:, 1:].clone()
    y[:, : n - 1] = -1
    return x.to(device), y.to(device)


def repeat_copy_baselines(n: int, vocab: int) -> dict:
    """Loss (nats per target) and accuracy of guessers that do not copy, on the second
    half of `repeat_copy_batch` (tokens without repetition, vocab >= n):

    "vocab": uniform over the vocabulary (log vocab); "first_half": uniform over the n
    tokens of the first half (log n); "unrepeated": uniform over the first-half tokens not
    yet repeated (n - i candidates at the i-th target), the best guess that knows which
    tokens occurred but not their order. Returns {name: (loss, accuracy)}.
    """
    import math

    if n < 2 or vocab < n:
        raise ValueError(f"repeat_copy_baselines needs n >= 2 and vocab >= n, got n={n}, "
                         f"vocab={vocab}")
    left = range(n, 0, -1)
    return {"vocab": (math.log(vocab), 1 / vocab),
            "first_half": (math.log(n), 1 / n),
            "unrepeated": (sum(math.log(k) for k in left) / n,
                           sum(1 / k for k in left) / n)}


def letter_count_examples(words: list[str], encode_word, encode_letter, base_vocab: int, n: int, *,
                          max_count: int = 3, generator: torch.Generator | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """"How many times does letter c occur in word w?" with the word in any tokenization.

    Book: Part II, "F1 Tokenization fixes the atoms". Each example is the query letter
    (`encode_letter(c) -> int`, an id below `base_vocab`), then the word's tokens
    (`encode_word(w) -> [(id, piece), ...]`, the pieces spelling w), then an "=" token.
    Every word token's target is the count of c so far (up to the end of its piece),
    and the "=" token's target the count in the whole word, capped at `max_count`. The
    "=", answer and padding tokens get ids after `base_vocab`, the same for every
    tokenization, so two models differ only in how the word and the letter reach them.
    Half the queries ask for a letter of the word, half for a random letter (often
    absent). Returns (x [n, T], y [n, T], vocab_size); right-padded, y = -1 on padding
    and on the letter.
    """
    if not words or n < 1 or max_count < 1:
        raise ValueError(f"need words, n >= 1 and max_count >= 1, got {len(words)} words, n={n}, "
                         f"max_count={max_count}")
    letters = "abcdefghijklmnopqrstuvwxyz"
    eq, ans0 = base_vocab, base_vocab + 1
    pad = ans0 + max_count + 1
    wi = torch.randint(len(words), (n,), generator=generator).tolist()
    coin = torch.rand(n, generator=generator).tolist()
    pick = torch.rand(n, generator=generator).tolist()
    rows, targets = [], []
    for i, c, p in zip(wi, coin, pick):
        w = words[i]
        pool = sorted(set(w.lower()) & set(letters)) if c < 0.5 else letters
        letter = pool[int(p * len(pool))] if pool else letters[int(p * 26)]
        pieces = list(encode_word(w))
        if "".join(piece for _, piece in pieces) != w:
            raise ValueError(f"encode_word({w!r}) must return (id, piece) pairs whose pieces spell the word")
        ids, tgt, seen = [int(encode_letter(letter))], [-1], 0
        for tid, piece in pieces:
            seen += piece.lower().count(letter)
            ids.append(int(tid))
            tgt.append(ans0 + min(seen, max_count))
        rows.append(ids + [eq])
        targets.append(tgt + [ans0 + min(seen, max_count)])
    return (*_pad_rows(rows, targets, pad), pad + 1)


def mode_batch(batch: int, T: int, vocab: int = 8, *, generator: torch.Generator | None = None,
               device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """A mode token at position 0 fixes a rule for the whole sequence: [B, T] inputs.

    Vocabulary: content tokens 0 .. vocab-1 and the two mode tokens vocab (mode 0, "copy")
    and vocab + 1 (mode 1, "add one"); vocab + 2 in all. Positions 1 .. T-1 hold uniform
    random content tokens v, and their targets (transduction, not next-token) are v in
    mode 0 and (v + 1) mod vocab in mode 1; position 0's target is -1. Without the mode
    the best a model can do is 50%; the mode is `x[:, 0] - vocab`. Needs no position, so a
    model without position embeddings can be run at any T.

    Book: Part IV, "Decision slots".
    """
    if vocab < 2 or T < 2:
        raise ValueError(f"mode_batch needs vocab >= 2 and T >= 2, got vocab={vocab}, T={T}")
    mode = torch.randint(2, (batch, 1), generator=generator)
    tok = torch.randint(vocab, (batch, T - 1), generator=generator)
    x = torch.cat([vocab + mode, tok], dim=1)
    y = torch.cat([torch.full((batch, 1), -1), (tok + mode) % vocab], dim=1)
    return x.to(device), y.to(device)


def mode_switch_batch(batch: int, T: int, vocab: int = 8, *,
                      generator: torch.Generator | None = None,
                      device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """`mode_batch` with the mode set anywhere and later changed: [B, T] inputs.

    A first mode token sits at a random position p1 in [0, T/8), a second one at a
    random p2 in [T/2, 5T/8) and always names the other mode. Targets before p1 are -1
    (no rule yet); from p1 + 1 to p2 they follow the first mode; after p2, the second.
    The mode tokens' own targets are -1. A key at position 0 (an attention sink) holds
    a content token in most sequences, and a memory must both keep a choice and let a
    later token overwrite it. Needs T >= 16.

    Book: Part IV, "Decision slots".
    """
    if vocab < 2 or T < 16:
        raise ValueError(f"mode_switch_batch needs vocab >= 2 and T >= 16, got "
                         f"vocab={vocab}, T={T}")
    first = torch.randint(2, (batch,), generator=generator)
    p1 = torch.randint(0, T // 8, (batch,), generator=generator)
    p2 = torch.randint(T // 2, 5 * T // 8, (batch,), generator=generator)
    x = torch.randint(vocab, (batch, T), generator=generator)
    rows = torch.arange(batch)
    x[rows, p1] = vocab + first
    x[rows, p2] = vocab + 1 - first
    t = torch.arange(T)[None, :]
    mode = torch.where(t > p2[:, None], 1 - first[:, None], first[:, None])
    y = (x + mode) % vocab
    y[(t <= p1[:, None]) | (t == p2[:, None])] = -1
    return x.to(device), y.to(device)


def dyadic_copy_batch(batch: int, T: int, vocab: int = 16, n_levels: int = 5, *,
                      generator: torch.Generator | None = None,
                      device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy the token 2**k positions back, with k announced by a marker at position 0: [B, T].

    Vocabulary: content tokens 0 .. vocab-1 and markers vocab + k for k in 0 .. n_levels-1
    (vocab + n_levels in all); k is drawn per sequence. Target at t (transduction) is
    x[t - 2**k] when t - 2**k >= 1, else -1. The right scale changes from one sequence to
    the next; the level is `x[:, 0] - vocab`.

    Book: Part IV, "Selection, the open problem".
    """
    if vocab < 2 or n_levels < 1 or T < 2 ** (n_levels - 1) + 2:
        raise ValueError(f"dyadic_copy_batch needs vocab >= 2, n_levels >= 1 and T >= 2**(n_levels-1) + 2, "
                         f"got vocab={vocab}, n_levels={n_levels}, T={T}")
    k = torch.randint(n_levels, (batch,), generator=generator)
    tok = torch.randint(vocab, (batch, T - 1), generator=generator)
    x = torch.cat([vocab + k[:, None], tok], dim=1)
    t = torch.arange(T)
    src = t[None, :] - 2 ** k[:, None]                        # [B, T] where to copy from
    y = torch.where(src >= 1, x.gather(1, src.clamp(min=0)), torch.full_like(x, -1))
    return x.to(device), y.to(device)


def multiscale_batch(batch: int, T: int, vocab: int, scales: tuple[int, ...] = (1, 4, 16), *,
                     generator: torch.Generator | None = None, device=None,
                     return_scales: bool = False):
    """Sequences whose next token is set by a pattern at one of several scales: [B, T].

    Each sequence draws a scale s from `scales`. At s = 1 the rule is local: each token is
    the successor of the one before (x[t+1] = x[t] + 1 mod vocab). At s > 1 the first s
    tokens are random and the sequence then repeats with period s (x[t] = x[t-s]), so the
    answer sits s positions back. Targets before position max(scales) - 1 are -1 (the
    longest period has not been seen once yet), so every scored position is predictable
    once the scale is recognised. With return_scales, also returns s: [B] long.

    Book: Part II, "F3 No intrinsic multi-scale structure".
    """
    scales = tuple(int(s) for s in scales)
    S = max(scales) if scales else 0
    if not scales or min(scales) < 1 or vocab < 2 or T < S + 2:
        raise ValueError(f"multiscale_batch needs scales >= 1, vocab >= 2 and T >= max(scales) + 2, "
                         f"got scales={scales}, vocab={vocab}, T={T}")
    s = torch.tensor(scales)[torch.randint(len(scales), (batch,), generator=generator)]
    seq = torch.randint(vocab, (batch, T + 1), generator=generator)
    t = torch.arange(T + 1)
    succ = (seq[:, :1] + t[None, :]) % vocab                     # s == 1: counting
    period = torch.gather(seq, 1, t[None, :] % s[:, None])       # s > 1: repeat the first s
    seq = torch.where((s == 1)[:, None], succ, period)
    x, y = seq[:, :-1].clone(), seq[:, 1:].clone()
    y[:, : S - 1] = -1
    out = (x.to(device), y.to(device))
    return (*out, s.to(device)) if return_scales else out


def needle_batch(batch: int, n_ctx: int, n_values: int = 8, n_distractors: int = 32, *,
                 generator: torch.Generator | None = None, device=None):
    """One relevant token among n_ctx - 1 distractors, then a query: [B, n_ctx + 1].

    Vocabulary: values 0 .. n_values-1, distractors n_values .. n_values+n_distractors-1,
    and the query token n_values + n_distractors (vocab = n_values + n_distractors + 1).
    The context holds n_ctx - 1 random distractors and one value at a random position;
    the last token is the query, and its target, the only one scored, is the value. The
    answer needs no position, only content, so the same model can be run at any n_ctx.

    Book: Part II, "F5 Dynamic context collapse" (token bombs, length generalisation).
    """
    if n_ctx < 1 or n_values < 1 or n_distractors < 1:
        raise ValueError(f"needle_batch needs n_ctx, n_values, n_distractors >= 1, got "
                         f"{n_ctx}, {n_values}, {n_distractors}")
    ctx = n_values + torch.randint(n_distractors, (batch, n_ctx), generator=generator)
    where = torch.randint(n_ctx, (batch,), generator=generator)
    value = torch.randint(n_values, (batch,), generator=generator)
    ctx[torch.arange(batch), where] = value
    query = torch.full((batch, 1), n_values + n_distractors)
    x = torch.cat([ctx, query], dim=1)
    y = torch.full_like(x, -1)
    y[:, -1] = value
    return x.to(device), y.to(device)


def reversal_examples(words: list[str], encode_word, base_vocab: int, n: int, *,
                      generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """"Spell word w backwards", one letter per answer position, in any tokenization.

    Book: Part II, "F1 Tokenization fixes the atoms". Each example is the word's tokens
    (`encode_word(w) -> [(id, piece), ...]`, ids below `base_vocab`), an "=" token, then
    the reversed word's letters fed back (teacher forcing): the target at "=" is the last
    letter, and at each fed-back letter the next letter of the reversal. Only the answer
    positions carry targets, so two tokenizations are scored at the same places. "=" is
    `base_vocab`, letter c is `base_vocab + 1 + "abc...z".index(c)`, padding after them.
    Words must be lower-case a-z. Returns (x [n, T], y [n, T], vocab_size).
    """
    letters = "abcdefghijklmnopqrstuvwxyz"
    if not words or n < 1:
        raise ValueError(f"need words and n >= 1, got {len(words)} words, n={n}")
    bad = [w for w in words if not w or any(ch not in letters for ch in w)]
    if bad:
        raise ValueError(f"words must be non-empty lower-case a-z, got {bad[0]!r}")
    eq = base_vocab
    pad = base_vocab + 1 + len(letters)
    wi = torch.randint(len(words), (n,), generator=generator).tolist()
    rows, targets = [], []
    for i in wi:
        w = words[i]
        pieces = list(encode_word(w))
        if "".join(piece for _, piece in pieces) != w:
            raise ValueError(f"encode_word({w!r}) must return (id, piece) pairs whose "
                             f"pieces spell the word")
        answer = [eq + 1 + letters.index(ch) for ch in reversed(w)]
        rows.append([int(t) for t, _ in pieces] + [eq] + answer[:-1])
        targets.append([-1] * len(pieces) + answer)
    return (*_pad_rows(rows, targets, pad), pad + 1)


def _pad_rows(rows: list[list[int]], targets: list[list[int]], pad: int):
    """(x [n, T], y [n, T]): rows padded with `pad`, targets with -1 (ignored by the
    loss), T the longest row."""
    T = max(len(r) for r in rows)
    x = torch.full((len(rows), T), pad, dtype=torch.long)
    y = torch.full((len(rows), T), -1, dtype=torch.long)
    for j, (r, t) in enumerate(zip(rows, targets)):
        x[j, : len(r)] = torch.tensor(r)
        y[j, : len(t)] = torch.tensor(t)
    return x, y
