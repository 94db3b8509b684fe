"""Token bombs against the number of heads: seed 000's third prediction.

Book: Part V, "The seeds' three predictions". The essay predicts that more attention
heads give "more resistance to token bombs (more capacity)" and that the resistance
"plateaus as heads become redundant". We train the in-context task of
`phaselib.predictions.icl` at a fixed width with 1, 2, 4, ... heads, then attack each
model with a bomb: `m` copies of one token that carries no information about the
answer, inserted at random places among the examples. Any token but a pair token of the
asked key qualifies, including the query token of the asked key itself, the token most
like the final query. Any answer the bomb changes is a hit. For each model the bomb is
the worst one: the token whose copies flip the most answers on a search batch; its
success rate is then measured on fresh sequences.

Test sequences: `n_base` clean rounds (no noise), in `n_shown` of which the final
query's key (always key 0) is shown with its value, then the final query.
"""

from __future__ import annotations

import torch

from .._checks import check_positive_int
from .icl import ICLTask

__all__ = ["bomb_batch", "bomb_candidates", "worst_bomb", "bomb_success"]


def bomb_batch(task: ICLTask, batch: int, n_base: int, n_shown: int, bomb: int, m: int,
               generator: torch.Generator):
    """Clean and bombed versions of the same `batch` sequences: (clean idx [B, 2 n_base +
    1], bombed idx [B, 2 n_base + m + 1], answer [B]). The final query asks key 0; the
    bomb token is inserted m times at random places before it."""
    check_positive_int("batch", batch)
    check_positive_int("n_base", n_base)
    if not 1 <= n_shown <= n_base:
        raise ValueError(f"n_shown must be in 1..n_base={n_base}, got {n_shown}")
    if m < 0:
        raise ValueError(f"m must be >= 0, got {m}")
    if bomb not in bomb_candidates(task):
        raise ValueError(f"bomb must be a token that carries no answer (not a pair token "
                         f"of key 0, below vocab_size={task.vocab_size}), got {bomb}")
    g = generator
    table = torch.randint(task.n_values, (batch, task.n_keys), generator=g)
    keys = torch.randint(1, task.n_keys, (batch, n_base), generator=g)
    where = torch.rand(batch, n_base, generator=g).argsort(1)[:, :n_shown]
    keys.scatter_(1, where, 0)
    values = table.gather(1, keys)
    body = torch.stack([task.query_token(keys), keys * task.n_values + values], 2)
    body = body.flatten(1)                                              # [B, 2 n_base]
    final = task.query_token(torch.zeros(batch, 1, dtype=torch.long))
    clean = torch.cat([body, final], 1)
    n = body.shape[1]
    order = torch.rand(batch, n + m, generator=g).argsort(1)
    is_bomb = order >= n                     # m random slots, the body in order around
    src = (torch.cumsum(~is_bomb, 1) - 1).clamp_min(0)
    mixed = torch.where(is_bomb, torch.full_like(src, bomb), body.gather(1, src))
    return clean, torch.cat([mixed, final], 1), table[:, 0]


def bomb_candidates(task: ICLTask) -> list[int]:
    """Every token that tells nothing about key 0's value."""
    informative = set(range(task.n_values))          # pair tokens (0, v)
    return [t for t in range(task.vocab_size) if t not in informative]


@torch.no_grad()
def _answers(model, idx):
    return model(idx)[0][:, -1].argmax(-1)


@torch.no_grad()
def worst_bomb(model, task: ICLTask, *, n_base: int, n_shown: int, m: int,
               batch: int = 128, seed: int = 0) -> int:
    """The token whose m copies flip the most of the model's answers (search batch)."""
    best, best_hits = None, -1.0
    for token in bomb_candidates(task):
        g = torch.Generator().manual_seed(seed + 4000)
        clean, bombed, _ = bomb_batch(task, batch, n_base, n_shown, token, m, g)
        hits = (_answers(model, clean) != _answers(model, bombed)).float().mean().item()
        if hits > best_hits:
            best, best_hits = token, hits
    return best


@torch.no_grad()
def bomb_success(model, task: ICLTask, bomb: int, *, n_base: int,
                 n_shown: int, ms: list[int], batch: int = 512, seed: int = 0) -> dict:
    """Clean accuracy, and for each m the share of clean-correct answers the bomb flips."""
    out = {"m": list(ms), "success": [], "clean_accuracy": None}
    for m in ms:
        g = torch.Generator().manual_seed(seed + 5000)
        clean, bombed, answer = bomb_batch(task, batch, n_base, n_shown, bomb, m, g)
        a_clean, a_bomb = _answers(model, clean), _answers(model, bombed)
        right = a_clean == answer
        out["clean_accuracy"] = right.float().mean().item()
        out["success"].append((right & (a_bomb != answer)).float().sum().item()
                              / max(int(right.sum()), 1))
    return out
