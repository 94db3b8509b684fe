"""How long each exercise of the book takes, and how hard it is: data for the course.

`ESTIMATES[chapter][number] = (minutes, difficulty)`, keyed like the catalogue
(`catalog.Exercise.chapter` and `.number`). Minutes are for a student who has read the
chapter up to the exercise; for an open exercise they include its runs on a laptop CPU
(or the GPU it asks for) and a short write-up. Difficulty:

1. direct: the statement says what to compute; a few lines, one pitfall at most;
2. needs an idea or care: a formula to find, edge cases, shapes or numerics to get
   right;
3. a small project: several steps, training runs or an unfamiliar tool; expect a second
   sitting.

They are estimates, made by reading each exercise, its checker and its solution, not
timings of students. `tests/unit/test_course.py` fails when an exercise of the catalogue
has no estimate or an estimate names an exercise that no longer exists.
"""

from __future__ import annotations

DIFFICULTY = {1: "direct", 2: "needs an idea or care", 3: "a small project"}

ESTIMATES: dict[str, dict[int, tuple[int, int]]] = {
    "book/part1/attention-from-scratch": {
        1: (5, 1),     # one lower-triangular bool matrix
        2: (20, 1),    # scale, -inf mask, softmax: the chapter's six lines, batched
        3: (240, 3),   # open: a generator, long training runs, reading the heads
    },
    "book/part2/f1-tokenization": {
        1: (10, 1),    # a running sum of piece lengths
        2: (15, 1),    # suffix order, lower case, stem of three letters in the lexicon
        3: (120, 3),   # open: two trainings, then scoring by place inside a token
    },
    "book/part2/f2-quadratic-cost": {
        1: (5, 1),     # the formula, with the factor 2 for keys and values
        2: (10, 1),    # two broadcast comparisons; the off-by-one at the window's edge
        3: (60, 2),    # open: one benchmark on a GPU, two plots, reading slopes
    },
    "book/part2/f3-multiscale": {
        1: (30, 2),    # diagonals of [T, T], the queries from `start` on, the mean
        2: (20, 2),    # when do two aligned blocks of 2**l hold the same tokens?
    },
    "book/part2/f4-partitions": {
        1: (10, 1),    # block of the first and of the last character (end exclusive)
        2: (20, 2),    # snap forward, keep 0, drop duplicates and anything past n
        3: (150, 3),   # open: overlap in the batches and the scoring, several k, seeds
    },
    "book/part2/f5-context-collapse": {
        1: (15, 2),    # rewrite as a sigmoid of delta - log n; n = 0 gives exactly 1
        2: (10, 1),    # xlogy, or a mask for the zeros
        3: (45, 2),    # open: a prediction by hand, then a search with read_accuracy
    },
    "book/part2/f6-drift": {
        1: (15, 2),    # the least-squares row is the mean row
        2: (15, 1),    # the final LayerNorm, then the head
    },
    "book/part2/f7-preconditioning": {
        1: (15, 2),    # one line of advanced indexing, -1 at t = 0
        2: (20, 2),    # between-class over total sum of squares, unequal class sizes
        3: (150, 3),   # open: a second tag in the task and the model, probes by layer
    },
    "book/part2/f8-continuous-decoders": {
        1: (5, 1),     # torch.where, keeping the [N, 1] shape
        2: (30, 2),    # two linear interpolations and every way of never crossing
        3: (120, 2),   # open: two small models on a 16-entry table, read between
    },
    "book/part2/f9-local-erosion": {
        1: (10, 1),    # a boolean mask of letter pairs, then argmax accuracy
        2: (15, 1),    # bigrams seen before; the empty text
        3: (240, 3),   # open: prompts, sampling, a larger model trained (a GPU helps)
    },
    "book/part3/remedies": {
        1: (10, 1),    # repeat_interleave, not repeat: which head reads which group
        2: (10, 1),    # the window's mask or-ed with the first n_sink columns
    },
    "book/part4/transport": {
        1: (25, 2),    # atan2 of the sine and cosine, not arccos
        2: (25, 2),    # the tangent direction scaled by the angle, then the log ratio
        3: (40, 2),    # open: a written comparison, checked on a few vectors
    },
    "book/part4/pyramid": {
        1: (20, 2),    # completed blocks from (t + 1) >> level, -1 before two of them
        2: (40, 2),    # block means gathered at the last completed block, causally
    },
    "book/part4/streaming": {
        1: (20, 2),    # one level plus one per trailing one bit of t
        2: (30, 2),    # a running sum, published when a block completes
    },
    "book/part4/slots": {
        1: (15, 2),    # a cumulative product of 1 - g from position 1 on
        2: (20, 2),    # the recurrence in a loop; gates broadcast over C
    },
    "book/part4/selection": {
        1: (40, 2),    # sort, cumulative sums, the support size, gather the threshold
        2: (15, 2),    # hard - soft.detach() + soft
    },
    "book/part4/phase-lm": {
        1: (10, 1),    # bincount, then the entropy of the non-zero frequencies
        2: (5, 1),     # a causal band of width w
        3: (40, 2),    # window bookkeeping: every target once, enough context each
    },
    "book/part4/gpu-kernels": {
        1: (5, 1),     # a running sum of T >> level
        2: (20, 2),    # invert "t reads pair ((t + 1) >> level) - 2"
        3: (60, 3),    # a Triton kernel and its launcher, masks, a 2-D grid
    },
    "book/part5/predictions": {
        1: (15, 1),    # counts per value, the smallest on a tie, -1 when unseen
        2: (15, 2),    # log-softmax gathered at the actions; the sign of the loss
        3: (240, 3),   # open: a sparser task, a rule written first, two starts, seeds
    },
    "book/part5/claims-ledger": {
        1: (15, 1),    # counts per seed over the decided verdicts
        2: (360, 3),   # open: a record written first, runs over seeds, a control
    },
    "book/back/reading-verdicts": {
        1: (20, 1),    # the rule as stated, with t_quantile
        2: (60, 2),    # open: solve for n by hand, then a sweep with more seeds
    },
}


def estimate(chapter: str, number: int) -> tuple[int, int] | None:
    """(minutes, difficulty) of exercise `number` of `chapter`, or None."""
    return ESTIMATES.get(chapter, {}).get(number)


def format_minutes(minutes: int) -> str:
    """"20 min" up to two hours, then hours to the half: "2.5 h", "4 h"."""
    if minutes < 120:
        return f"{minutes} min"
    hours = round(minutes / 30) / 2
    return f"{hours:g} h"
