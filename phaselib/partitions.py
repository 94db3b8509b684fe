"""Geometric and text-aligned partitions of a character stream, and block-local models on them.

Book: Part II, "F4 Geometric, not semantic partitions". A partition is a sorted array of
block start offsets beginning with 0; block i covers [starts[i], starts[i+1]). A
block-local model sees only its own block: every block begins with a BOS token and the
context is reset there. The chapter's trained models and its sweep are in
`partitions_runs`.
"""

from __future__ import annotations

import re

import numpy as np
import torch

__all__ = ["word_spans", "line_spans", "cut_mask", "cut_share", "expected_cut_share",
           "geometric_starts", "aligned_starts", "shuffled_starts", "block_lengths",
           "block_batch", "loss_by_offset", "loss_by_char", "near_boundary",
           "budget_batch", "partition_starts", "PARTITIONS"]

_WORD = re.compile(r"[A-Za-z']+")
_LINE = re.compile(r"[^\n]+")


def _spans(pattern, text: str) -> np.ndarray:
    return np.array([m.span() for m in pattern.finditer(text)], dtype=np.int64).reshape(-1, 2)


def word_spans(text: str) -> np.ndarray:
    """[N, 2] (start, end) character offsets of the words (letters and apostrophes) of text."""
    return _spans(_WORD, text)


def line_spans(text: str) -> np.ndarray:
    """[N, 2] (start, end) offsets of the non-empty lines of text (newlines excluded)."""
    return _spans(_LINE, text)


def _check_size(size) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")


def cut_mask(spans: np.ndarray, size: int, offset: int = 0) -> np.ndarray:
    """[N] bool: True where a span crosses a boundary of the blocks [offset + k size, ...).

    A span [s, e) is cut when its first and last characters fall in different blocks.
    """
    _check_size(size)
    spans = np.asarray(spans)
    if spans.ndim != 2 or spans.shape[1] != 2:
        raise ValueError(f"spans must have shape [N, 2], got {spans.shape}")
    s, e = spans[:, 0] - offset, spans[:, 1] - 1 - offset
    return np.floor_divide(s, size) != np.floor_divide(e, size)


def cut_share(spans: np.ndarray, size: int) -> float:
    """The share of spans that blocks of `size` characters (starting at 0) cut."""
    return float(cut_mask(spans, size).mean()) if len(spans) else 0.0


def expected_cut_share(lengths, size: int) -> float:
    """The share a block grid at a uniformly random offset cuts: mean of min(1, (L-1)/size)."""
    _check_size(size)
    L = np.asarray(lengths, dtype=float)
    return float(np.minimum(1.0, (L - 1) / size).mean())


def geometric_starts(n: int, size: int) -> np.ndarray:
    """Block starts 0, size, 2 size, ... for a stream of n characters."""
    _check_size(size)
    return np.arange(0, n, size, dtype=np.int64)


def aligned_starts(n: int, size: int, unit_starts: np.ndarray, max_len: int | None = None) -> np.ndarray:
    """Move every geometric start forward to the next unit start (a word or a line).

    Keeps about n / size blocks, so the mean block length stays about `size`, but no
    block starts inside a unit. Blocks longer than `max_len` are cut geometrically.
    """
    _check_size(size)
    g = geometric_starts(n, size)
    u = np.asarray(unit_starts, dtype=np.int64)
    i = np.searchsorted(u, g)
    snapped = np.where(i < len(u), u[np.minimum(i, len(u) - 1)], n)
    starts = np.unique(np.concatenate([[0], snapped[snapped < n]]))
    if max_len is not None:
        _check_size(max_len)
        ends = np.append(starts[1:], n)
        extra = [np.arange(s + max_len, e, max_len) for s, e in zip(starts, ends) if e - s > max_len]
        if extra:
            starts = np.unique(np.concatenate([starts, *extra]))
    return starts


def shuffled_starts(starts: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """The same block lengths in a random order, laid from 0: a geometric control with the
    length distribution of `starts` but boundaries that ignore the text."""
    lengths = block_lengths(starts, n)
    rng = np.random.default_rng(seed)
    return np.concatenate([[0], np.cumsum(rng.permutation(lengths))[:-1]]).astype(np.int64)


def block_lengths(starts: np.ndarray, n: int) -> np.ndarray:
    """[K] lengths of the blocks that `starts` make of n characters."""
    starts = np.asarray(starts, dtype=np.int64)
    return np.diff(np.append(starts, n))


def block_batch(data: torch.Tensor, starts: np.ndarray, idx, bos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocks `idx` as block-local examples: x = [BOS, c_0 .. c_{L-2}], y = [c_0 .. c_{L-1}].

    Every character of a block is a target, the first one predicted from BOS alone.
    Right-padded with BOS, targets -1 there. Returns (x [b, Lmax], y [b, Lmax]).
    """
    n = len(data)
    ends = np.append(np.asarray(starts)[1:], n)
    idx = list(idx)
    L = max(int(ends[i] - starts[i]) for i in idx)
    x = torch.full((len(idx), L), bos, dtype=torch.long)
    y = torch.full((len(idx), L), -1, dtype=torch.long)
    for r, i in enumerate(idx):
        s, e = int(starts[i]), int(ends[i])
        x[r, 1: e - s] = data[s: e - 1]
        y[r, : e - s] = data[s: e]
    return x, y


@torch.no_grad()
def loss_by_offset(model, data: torch.Tensor, starts: np.ndarray, bos: int, *, batch: int = 256,
                   max_offset: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Summed cross-entropy (nats) and counts by offset in the block, over every block.

    Returns (loss_sum [M], count [M]); loss_sum.sum() / count.sum() is the mean loss per
    character of the whole stream under this partition (every character is counted once).
    The batches go to the device of the model's parameters (or of `data` when the model
    has none); the sums come back to the CPU as numpy arrays.
    """
    import torch.nn.functional as F

    model.eval()
    p = next(model.parameters(), None)
    device = data.device if p is None else p.device
    ends = np.append(np.asarray(starts)[1:], len(data))
    M = int((ends - starts).max()) if max_offset is None else max_offset
    tot, cnt = np.zeros(M), np.zeros(M)
    for b in range(0, len(starts), batch):
        x, y = block_batch(data, starts, range(b, min(b + batch, len(starts))), bos)
        logits, _ = model(x.to(device))
        y = y.to(logits.device)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=-1,
                             reduction="none").view(y.shape)
        valid = (y >= 0).float()
        m = min(M, y.shape[1])
        tot[:m] += (ce * valid).sum(0)[:m].cpu().numpy()
        cnt[:m] += valid.sum(0)[:m].cpu().numpy()
    return tot, cnt


@torch.no_grad()
def loss_by_char(model, data: torch.Tensor, starts: np.ndarray, bos: int, *,
                 batch: int = 256) -> np.ndarray:
    """[n] cross-entropy (nats) of every character of `data` [n] under the partition
    `starts`, at its place in the stream: the same characters can then be scored under
    any partition. Summed by offset in the block it gives `loss_by_offset`."""
    import torch.nn.functional as F

    model.eval()
    p = next(model.parameters(), None)
    device = data.device if p is None else p.device
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.append(starts[1:], len(data))
    out = np.full(len(data), np.nan)
    for b in range(0, len(starts), batch):
        idx = range(b, min(b + batch, len(starts)))
        x, y = block_batch(data, starts, idx, bos)
        logits, _ = model(x.to(device))
        ce = F.cross_entropy(logits.flatten(0, 1).float(),
                             y.to(logits.device).flatten(), ignore_index=-1,
                             reduction="none").view(y.shape).cpu().numpy()
        for r, i in enumerate(idx):
            out[starts[i]: ends[i]] = ce[r, : ends[i] - starts[i]]
    return out


def near_boundary(n: int, partitions, k: int) -> np.ndarray:
    """[n] bool: True for the characters within the first `k` of a block in any of
    `partitions` (arrays of block starts). Scoring every partition's model on this one
    set compares the cost of boundaries on the same characters."""
    _check_size(k)
    mask = np.zeros(n, dtype=bool)
    for starts in partitions:
        s = np.asarray(starts, dtype=np.int64)
        ends = np.append(s[1:], n)
        for j in range(k):
            inside = s + j < ends
            mask[(s + j)[inside]] = True
    return mask


def budget_batch(data: torch.Tensor, starts: np.ndarray, n_chars: int, bos: int, *,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random blocks holding exactly `n_chars` scored characters: (x [b, Lmax], y [b, Lmax]).

    Blocks are drawn uniformly (with replacement) until their lengths reach n_chars; the
    targets of the last block past the budget are set to -1. So every partition trains on
    the same number of characters per step, whatever its block lengths.
    """
    _check_size(n_chars)
    lengths = block_lengths(starts, len(data))
    idx, total = [], 0
    while total < n_chars:
        draw = torch.randint(len(lengths), (max(1, n_chars // int(lengths.mean())),),
                             generator=generator).tolist()
        for i in draw:
            if total >= n_chars:
                break
            idx.append(i)
            total += int(lengths[i])
    x, y = block_batch(data, starts, idx, bos)
    over = total - n_chars
    if over:
        L = int(lengths[idx[-1]])
        y[-1, L - over: L] = -1
    return x, y


def partition_starts(text: str, block: int, name: str, *, seed: int = 0) -> np.ndarray:
    """The F4 chapter's partitions of `text`, about `block` characters per block:
    "geometric", "word-aligned", "line-aligned", and the controls "word lengths, shuffled"
    and "line lengths, shuffled" (the aligned partition's lengths in random order)."""
    n, cap = len(text), 2 * block
    if name == "geometric":
        return geometric_starts(n, block)
    unit = name.split()[0].replace("-aligned", "")
    if unit not in ("word", "line") or name not in (f"{unit}-aligned",
                                                     f"{unit} lengths, shuffled"):
        raise ValueError(f"name must be one of {PARTITIONS}, got {name!r}")
    spans = word_spans(text) if unit == "word" else line_spans(text)
    aligned = aligned_starts(n, block, spans[:, 0], max_len=cap)
    return aligned if name.endswith("aligned") else shuffled_starts(aligned, n, seed=seed)


PARTITIONS = ("geometric", "word-aligned", "line-aligned", "word lengths, shuffled",
              "line lengths, shuffled")
