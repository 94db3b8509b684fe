"""The three tasks of chapter F7: a tag that permutes a token, given at every position,
or only at the queries of a lookup or of a chain of two lookups.

Book: Part II, "F7 Preconditioning decays with depth". `tag_perms` draws one
permutation of the values per tag; `TASKS` names the batch makers ("previous":
`tag_task_batch`, "lookup": `lookup_task_batch`, "chain": `chain_task_batch`);
`task_shape` gives a task's model vocabulary and the first tagged position.
`phaselib.preconditioning` describes the tasks and the model that reads them (and
re-exports these names).
"""

from __future__ import annotations

import torch

from ._checks import check_positive_int

__all__ = ["TASKS", "QUERY_TASKS", "tag_perms", "tag_task_batch", "lookup_task_batch",
           "chain_task_batch", "task_shape"]


def tag_perms(n_tags: int, vocab: int, seed: int = 0) -> torch.Tensor:
    """[n_tags, vocab] long: perms[k, v] = pi[(rho[v] + k) % vocab] for random
    permutations pi, rho (seeded). Each row is a permutation, and for every token v the
    n_tags outputs perms[:, v] are distinct: without the tag, the best guess of the
    output from the token is right 1 / n_tags of the time."""
    check_positive_int("n_tags", n_tags)
    check_positive_int("vocab", vocab)
    if not 2 <= n_tags <= vocab:
        raise ValueError(f"n_tags must be in [2, vocab={vocab}] (distinct outputs per "
                         f"token), got {n_tags}")
    g = torch.Generator().manual_seed(seed)
    pi, rho = torch.randperm(vocab, generator=g), torch.randperm(vocab, generator=g)
    k = torch.arange(n_tags)[:, None]
    return pi[(rho[None, :] + k) % vocab]


def _check_perms(perms) -> None:
    if (not isinstance(perms, torch.Tensor) or perms.dtype != torch.long
            or perms.dim() != 2):
        raise TypeError(f"perms must be a long tensor of shape [K, V], got "
                        f"{getattr(perms, 'dtype', type(perms).__name__)} "
                        f"{tuple(getattr(perms, 'shape', ()))}")
    want = torch.arange(perms.shape[1])
    if not (perms.sort(-1).values.cpu() == want).all():
        raise ValueError("perms must hold a permutation of range(V) in every row")


def tag_task_batch(batch: int, T: int, perms: torch.Tensor, *,
                   generator: torch.Generator | None = None, device=None):
    """((idx [B, T], tags [B]), y [B, T]): random tokens and tags; y[:, t] =
    perms[tag, idx[:, t-1]] for t >= 1, and -1 (ignored) at t = 0.

    perms [K, V] long holds one permutation of range(V) per tag (`tag_perms`: the K
    permutations map each token to K different outputs, so every target needs the tag).
    """
    check_positive_int("batch", batch)
    check_positive_int("T", T)
    if T < 2:
        raise ValueError(f"T must be >= 2 (one token of context and one target), "
                         f"got {T}")
    _check_perms(perms)
    K, V = perms.shape
    idx = torch.randint(V, (batch, T), generator=generator)
    tags = torch.randint(K, (batch,), generator=generator)
    y = torch.full((batch, T), -1, dtype=torch.long)
    y[:, 1:] = perms.cpu()[tags[:, None], idx[:, :-1]]
    return (idx.to(device), tags.to(device)), y.to(device)


def _query_batch(batch: int, T: int, perms: torch.Tensor, hops: int, generator,
                 device):
    """The query tasks' batch: a context of C = T // 2 values, then C query tokens
    V + i; a query's target is perms[tag, v] for v found by `hops` lookups from
    position i (each value but the last names the next position)."""
    check_positive_int("batch", batch)
    check_positive_int("T", T)
    if T < 4 or T % 2:
        raise ValueError(f"T must be even and >= 4 (a context and as many queries), "
                         f"got {T}")
    _check_perms(perms)
    K, V = perms.shape
    C = T // 2
    if hops > 1 and V != C:
        raise ValueError(f"perms must have T // 2 = {C} columns for the chain task (its "
                         f"values point at context positions), got {V}")
    ctx = torch.randint(V, (batch, C), generator=generator)
    where = torch.randint(C, (batch, T - C), generator=generator)
    tags = torch.randint(K, (batch,), generator=generator)
    idx = torch.cat([ctx, V + where], 1)
    value = where
    for _ in range(hops):
        value = ctx.gather(1, value)
    y = torch.full((batch, T), -1, dtype=torch.long)
    y[:, C:] = perms.cpu()[tags[:, None], value]
    return (idx.to(device), tags.to(device)), y.to(device)


def lookup_task_batch(batch: int, T: int, perms: torch.Tensor, *,
                      generator: torch.Generator | None = None, device=None):
    """((idx [B, T], tags [B]), y [B, T]): the lookup task. With C = T // 2 and V the
    perms' width: idx[:, :C] are values drawn from range(V) (the context; targets -1),
    and idx[:, t] for t >= C is a query token V + i naming context position i (drawn
    uniformly); its target is perms[tag, idx[:, i]]. The model's vocabulary is V + C.
    Without the tag the best accuracy is 1 / K; without the lookup, 1 / V."""
    return _query_batch(batch, T, perms, 1, generator, device)


def chain_task_batch(batch: int, T: int, perms: torch.Tensor, *,
                     generator: torch.Generator | None = None, device=None):
    """((idx [B, T], tags [B]), y [B, T]): the chain task, two lookups in a row. With
    C = T // 2, perms [K, C] (the values are context positions): idx[:, :C] are
    pointers drawn from range(C) (the context; targets -1), and idx[:, t] for t >= C is
    a query token C + i naming context position i; its target is perms[tag, ctx[j]]
    with j = ctx[i]: the value found by following the pointer at i once more. The
    second value reaches the query only through a second attention step, so the tag can
    act in block 1's MLP at the earliest. Without the tag the best accuracy is 1 / K."""
    return _query_batch(batch, T, perms, 2, generator, device)


TASKS = {"previous": tag_task_batch, "lookup": lookup_task_batch,
         "chain": chain_task_batch}
QUERY_TASKS = ("lookup", "chain")   # a context, then queries that carry the tag


def task_shape(task: str, vocab: int, T: int) -> tuple[int, int]:
    """(the model's vocabulary size, tag_from) for `task` with `vocab` values and length
    T: "previous" uses the values alone and tags every position; "lookup" and "chain"
    add T // 2 query tokens and tag the queries only ("chain" needs vocab = T // 2)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
    if task == "chain" and vocab != T // 2:
        raise ValueError(f"vocab must equal T // 2 = {T // 2} for the chain task (its "
                         f"values point at context positions), got {vocab}")
    return (vocab, 0) if task == "previous" else (vocab + T // 2, T // 2)
