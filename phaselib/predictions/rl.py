"""A reinforcement-learning ceiling: seed 000's first prediction, at toy scale.

Book: Part V, "Seed 000's three predictions, tested". The essay predicts that "RL can
improve tasks within the same routing profile family" and "cannot enable tasks requiring
new profiles". We pre-train a tiny transformer (supervised) on a family of tasks, then
fine-tune it with REINFORCE (a reward of 1 for the right answer, a running-mean
baseline) on a new task of the same family and on a task of a held-out family, and
compare the gains in greedy accuracy.

Tasks act on residues mod `m`: a sequence is [task token, x] and the answer is y.
Family "shift": y = (x + c) mod m. Family "reflect": y = (c - x) mod m, which reverses
the order of the residues, so no shift computes it. Pre-training sees the shifts
`pretrain_shifts`; the new task within the family is the shift `new_shift` (a task
token never seen in pre-training); the held-out task is the reflection `reflect_c`.
Vocabulary: residues 0..m-1, then one token per task (pre-training shifts, the new
shift, the reflection). The policy is the softmax over the residue logits at x.

In that family the new shift has a task token pre-training never showed, so the
pre-trained policy is confidently wrong on it and sampling finds no reward: it tests
exploration more than the family. `ComposedFamily` makes the within-family task
reachable: a shift is named by two pieces, [hi token h, lo token l, x] -> (x + 4h + l)
mod m; pre-training sees every pair but the held-out ones (each piece still seen in
other pairs), and the new tasks are the held-out pairs, as a shift (within the family)
or as a reflection (c - x) mod m with c = 4h + l (across it), from the same prompt.
Both families give `inputs(task, x)`, `answers(task, x)` and `pretrain_batch`, which
`pretrain`, `greedy_accuracy` and `reinforce` use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import check_positive_int
from ..train import TrainConfig, train
from ..transformer import TinyTransformer, TransformerConfig

__all__ = ["RLFamily", "ComposedFamily", "task_answers", "reinforce_loss", "pretrain",
           "greedy_accuracy", "reinforce"]


@dataclass(frozen=True)
class RLFamily:
    m: int = 16
    pretrain_shifts: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    new_shift: int = 13
    reflect_c: int = 5

    def __post_init__(self):
        check_positive_int("m", self.m)
        shifts = list(self.pretrain_shifts) + [self.new_shift, self.reflect_c]
        if not all(isinstance(c, int) and 0 <= c < self.m for c in shifts):
            raise ValueError(f"shifts and reflect_c must be ints in 0..m-1={self.m - 1}, "
                             f"got {shifts}")
        if self.new_shift in self.pretrain_shifts:
            raise ValueError(f"new_shift must not be a pre-training shift, got "
                             f"{self.new_shift} in {self.pretrain_shifts}")

    @property
    def tasks(self) -> list[tuple[str, int]]:
        """Every task, in token order: the pre-training shifts, the new shift, the
        reflection."""
        return ([("shift", c) for c in self.pretrain_shifts] + [("shift", self.new_shift),
                                                                 ("reflect", self.reflect_c)])

    @property
    def vocab_size(self) -> int:
        return self.m + len(self.tasks)

    block_size = 2

    def token(self, task: tuple[str, int]) -> int:
        if task not in self.tasks:
            raise ValueError(f"task must be one of {self.tasks}, got {task!r}")
        return self.m + self.tasks.index(task)

    def inputs(self, task, x: torch.Tensor) -> torch.Tensor:
        """[task token, x] for each residue in x: [B, 2]."""
        return torch.stack([torch.full_like(x, self.token(task)), x], 1)

    def answers(self, task, x: torch.Tensor) -> torch.Tensor:
        return task_answers(self, task, x)

    def pretrain_batch(self, g: torch.Generator, batch: int):
        """A supervised batch of the pre-training shifts: (idx [B, 2], targets [B, 2],
        -1 where no loss is taken)."""
        shifts = torch.tensor(self.pretrain_shifts)
        c = shifts[torch.randint(len(shifts), (batch,), generator=g)]
        x = torch.randint(self.m, (batch,), generator=g)
        idx = torch.stack([self.m + torch.searchsorted(shifts, c), x], 1)
        targets = torch.stack([torch.full_like(x, -1), (x + c) % self.m], 1)
        return idx, targets


@dataclass(frozen=True)
class ComposedFamily:
    """Shifts named by two pieces: [hi token h, lo token l, x] -> (x + n_lo h + l) % m.

    Pre-training sees every pair (h, l) but `held_out`; a held-out pair's tokens each
    appear in other pairs, so its shift is a new composition of known pieces. Tasks:
    ("shift", h, l), the family's rule, and ("reflect", h, l): (c - x) mod m with
    c = n_lo h + l, which reverses the residues' order (no shift computes it). The
    default holds out one pair per hi and per lo token (a diagonal), so each piece is
    still seen with three others."""

    m: int = 16
    n_hi: int = 4
    n_lo: int = 4
    held_out: tuple[tuple[int, int], ...] = ((0, 1), (1, 3), (2, 0), (3, 2))
    block_size = 3

    def __post_init__(self):
        for name in ("m", "n_hi", "n_lo"):
            check_positive_int(name, getattr(self, name))
        if not self.held_out or not all(
                isinstance(p, tuple) and len(p) == 2 and 0 <= p[0] < self.n_hi
                and 0 <= p[1] < self.n_lo for p in self.held_out):
            raise ValueError(f"held_out must be a non-empty tuple of (h, l) pairs with "
                             f"0 <= h < n_hi={self.n_hi} and 0 <= l < "
                             f"n_lo={self.n_lo}, got {self.held_out!r}")
        if len(self.pairs) == 0:
            raise ValueError("held_out leaves no pair for pre-training")

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """The pre-training pairs, in order."""
        return [(h, l) for h in range(self.n_hi) for l in range(self.n_lo)
                if (h, l) not in self.held_out]

    @property
    def vocab_size(self) -> int:
        return self.m + self.n_hi + self.n_lo

    def shift(self, h, l):
        return (self.n_lo * h + l) % self.m

    def _check(self, task):
        if not (isinstance(task, tuple) and len(task) == 3
                and task[0] in ("shift", "reflect") and 0 <= task[1] < self.n_hi
                and 0 <= task[2] < self.n_lo):
            raise ValueError(f"task must be ('shift' or 'reflect', h < {self.n_hi}, "
                             f"l < {self.n_lo}), got {task!r}")

    def inputs(self, task, x: torch.Tensor) -> torch.Tensor:
        """[hi token, lo token, x] for each residue in x: [B, 3]."""
        self._check(task)
        _, h, l = task
        return torch.stack([torch.full_like(x, self.m + h),
                            torch.full_like(x, self.m + self.n_hi + l), x], 1)

    def answers(self, task, x: torch.Tensor) -> torch.Tensor:
        self._check(task)
        kind, h, l = task
        c = self.shift(h, l)
        return (x + c) % self.m if kind == "shift" else (c - x) % self.m

    def pretrain_batch(self, g: torch.Generator, batch: int):
        """A supervised batch of the pre-training pairs' shifts: (idx [B, 3],
        targets [B, 3], -1 where no loss is taken)."""
        pairs = torch.tensor(self.pairs)
        i = torch.randint(len(pairs), (batch,), generator=g)
        x = torch.randint(self.m, (batch,), generator=g)
        h, l = pairs[i, 0], pairs[i, 1]
        idx = torch.stack([self.m + h, self.m + self.n_hi + l, x], 1)
        skip = torch.full_like(x, -1)
        return idx, torch.stack([skip, skip, (x + self.n_lo * h + l) % self.m], 1)


def task_answers(fam: RLFamily, task: tuple[str, int], x: torch.Tensor) -> torch.Tensor:
    """The right answer y for each residue in x."""
    kind, c = task
    if kind == "shift":
        return (x + c) % fam.m
    if kind == "reflect":
        return (c - x) % fam.m
    raise ValueError(f"task kind must be 'shift' or 'reflect', got {kind!r}")


def reinforce_loss(logits: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
                   baseline: float) -> torch.Tensor:
    """REINFORCE with a baseline: -mean((r - b) log pi(a)). logits [B, A], actions [B]
    long, rewards [B] float."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be [B, A], got shape {tuple(logits.shape)}")
    if actions.shape != logits.shape[:1] or rewards.shape != logits.shape[:1]:
        raise ValueError(f"actions and rewards must be [B={logits.shape[0]}], got "
                         f"{tuple(actions.shape)} and {tuple(rewards.shape)}")
    logp = torch.log_softmax(logits, -1).gather(1, actions[:, None])[:, 0]
    return -((rewards - baseline) * logp).mean()


def pretrain(fam, *, seed: int = 0, steps: int = 600, batch: int = 64,
             n_embd: int = 64, n_layer: int = 2, n_head: int = 4,
             lr: float = 3e-3) -> TinyTransformer:
    """Supervised pre-training on the family's pre-training tasks (`fam.pretrain_batch`:
    the shifts of an `RLFamily`, the pairs of a `ComposedFamily`); steps=0 returns the
    untrained model (the control)."""
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=fam.vocab_size, block_size=fam.block_size,
                            n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    model = TinyTransformer(cfg)
    if steps == 0:
        return model.eval()
    g = torch.Generator().manual_seed(seed + 6000)

    def get_batch(step):
        return fam.pretrain_batch(g, batch)

    train(model, get_batch, TrainConfig(steps=steps, lr=lr, progress=False))
    return model.eval()


@torch.no_grad()
def greedy_accuracy(model, fam, task) -> float:
    """Share of the m inputs whose greedy answer is right (exact: every input once)."""
    x = torch.arange(fam.m)
    pred = model(fam.inputs(task, x))[0][:, -1, :fam.m].argmax(-1)
    return (pred == fam.answers(task, x)).float().mean().item()


def reinforce(model, fam, task, *, steps: int = 300, batch: int = 64,
              lr: float = 1e-3, seed: int = 0, every: int = 25) -> dict:
    """Fine-tune `model` in place on `task` with REINFORCE (reward 1 when the sampled
    answer is right, baseline: running mean reward). Returns greedy accuracy every
    `every` steps (step 0 included) and the mean reward per step."""
    check_positive_int("steps", steps)
    g = torch.Generator().manual_seed(seed + 7000)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    out = {"step": [0], "accuracy": [greedy_accuracy(model, fam, task)], "reward": []}
    baseline = 1.0 / fam.m
    model.train()
    for step in range(1, steps + 1):
        x = torch.randint(fam.m, (batch,), generator=g)
        logits = model(fam.inputs(task, x))[0][:, -1, :fam.m]
        with torch.no_grad():
            a = torch.multinomial(torch.softmax(logits, -1), 1, generator=g)[:, 0]
            r = (a == fam.answers(task, x)).float()
        loss = reinforce_loss(logits, a, r, baseline)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        baseline = 0.9 * baseline + 0.1 * r.mean().item()
        out["reward"].append(r.mean().item())
        if step % every == 0 or step == steps:
            model.eval()
            out["step"].append(step)
            out["accuracy"].append(greedy_accuracy(model, fam, task))
            model.train()
    model.eval()
    return out
