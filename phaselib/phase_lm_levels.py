"""The pyramid's levels as a layer's candidates: features per level, their linear maps,
and the compact form that never writes [B, T, L, C].

Book: Part IV, "The phase-transport language model" and "GPU kernels" ("Not
materialising what is selected"). `PhaseLM` (in `phase_lm`) uses:

  * `level_features(x, L, kind)`: "transport" is the causal dyadic pyramid
    (`pyramid.pyramid`, [B, T, L, P+1]); "mean_diff" the same blocks compared by the
    plain difference of their means, c[n-1] - c[n-2] ([B, T, L, P]), the ablation that
    tells what the transport (angle and log-length) adds over a linear feature.
  * `level_pairs(x, L, kind)`: the same features before they are handed to positions,
    one row per pair of blocks (about 2T rows, not T L).
  * `LevelFeatures`: features to candidates, one linear map per level; `compact` maps
    the pair rows instead, which is the same function at a fraction of the work, and
    returns them as `CompactCandidates`: a selection (`weighted_sum`) reads each level's
    rows where they apply, so the [B, T, L, C] candidates are never written.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_backend
from .kernels.pyramid.reference import block_centroids, gather_level
from .kernels.select import level_offsets
from .pyramid import pyramid, pyramid_mask

__all__ = ["FEATURES", "level_features", "level_pairs", "mean_diff_pyramid",
           "LevelFeatures", "CompactCandidates"]

FEATURES = ("transport", "mean_diff", "none")


def mean_diff_pyramid(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The pyramid's blocks compared by plain differences of their means:
    `[B, T, D] -> ([B, T, L, D], [T, L])`. At level l and position t, with n = (t+1) >> l
    completed blocks of size 2**l, the feature is c[n-1] - c[n-2] (zero while n < 2), the
    same blocks, the same mask and the same causality as `pyramid`, no transport."""
    B, T, D = x.shape
    feats = [x.new_zeros(B, T, D) if rows is None else gather_level(rows, T, level)
             for level, rows in enumerate(level_pairs(x, levels, "mean_diff"))]
    return torch.stack(feats, dim=2), pyramid_mask(T, levels, x.device)


def level_features(x: torch.Tensor, levels: int, kind: str = "transport"):
    """Features of every level, `[B, T, D] -> ([B, T, L, F], [T, L])`, F = D + 1 for
    "transport" (the pyramid) and D for "mean_diff" (`mean_diff_pyramid`)."""
    if kind == "transport":
        return pyramid(x, levels)
    if kind == "mean_diff":
        return mean_diff_pyramid(x, levels)
    raise ValueError(f"kind must be 'transport' or 'mean_diff', got {kind!r}")


def level_pairs(x: torch.Tensor, levels: int, kind: str = "transport"
                ) -> list[torch.Tensor | None]:
    """The features of each level before they are handed to positions: per level l the
    n_l - 1 pair rows [B, n_l - 1, F] (transport, or difference of means, of blocks k
    and k+1), None where the level has fewer than two blocks. `gather_level` gives pair
    row k to the 2**l positions whose latest complete blocks are k and k+1, so
    `level_features` is these rows repeated: about 2T rows instead of T L."""
    from .transport import transport
    if kind not in ("transport", "mean_diff"):
        raise ValueError(f"kind must be 'transport' or 'mean_diff', got {kind!r}")
    out = []
    for c in block_centroids(x, levels):
        if c.shape[1] < 2:
            out.append(None)
        elif kind == "transport":
            out.append(transport(c[:, :-1], c[:, 1:]))
        else:
            out.append(c[:, 1:] - c[:, :-1])
    return out


@dataclass
class CompactCandidates:
    """The candidates [B, T, L, C] as the rows they repeat: level l (blocks of s = 2^l)
    gives position t its row `empty[l]` [C] while no pair of its blocks is finished
    (t < 2s - 1, or every t when `rows[l]` is None), then row k of `rows[l]`
    [B, n, C] at positions (k + 2) s - 1 ... (k + 3) s - 2. About 2T rows in all,
    not T L.

    `weighted_sum(w)` is sum_l w[..., l] * candidates[..., l, :] and `mean()` the mean
    over the levels, computed from the rows, so neither the forward nor the backward
    holds the [B, T, L, C] tensor; `materialise()` writes it, for a tap or a check.

    How `weighted_sum` runs. Count positions from u = t + 1: level l then changes rows
    exactly at the multiples of s, so over a tile of S = 2^FINE positions every level
    l >= FINE holds one row. The coarse levels are one batched product per tile,
    [S, L - FINE] weights times the tile's [L - FINE, C] rows (T / S tiles, a gather of
    T (L - FINE) C / S numbers); each fine level is one product of its runs of s weights
    with their rows. That is FINE + 1 passes over [B, T, C] whatever L, where summing
    level by level makes L of them; the multiply-adds stay T L C."""

    FINE = 4                      # levels below this are summed one by one

    rows: list
    empty: torch.Tensor          # [L, C]
    T: int
    B: int

    def _runs(self, level: int, m: int) -> torch.Tensor:
        """The row each run u // s = 0 .. m - 1 of level l reads, [B, m, C]: `empty`
        for runs 0 and 1 (or all, where the level has no pair), then the pair rows
        (run k + 2 reads row k), then zeros (runs past T, whose weights are zero)."""
        rows, empty = self.rows[level], self.empty[level]
        if rows is None:
            return empty.expand(self.B, m, -1)
        pad = rows.new_zeros(self.B, max(0, m - 2 - rows.shape[1]), rows.shape[2])
        return torch.cat([empty.expand(self.B, 2, -1), rows, pad], dim=1)[:, :m]

    def packed(self) -> torch.Tensor:
        """Every level's runs, one level after the other: [B, R, C], level l from row
        `kernels.select.level_offsets(T, L)[l]`, (T >> l) + 1 rows (the table the
        selection kernel reads)."""
        return torch.cat([self._runs(level, (self.T >> level) + 1)
                          for level in range(len(self.rows))], dim=1)

    def weighted_sum(self, w: torch.Tensor, backend: str = "auto") -> torch.Tensor:
        """w [B, T, L] -> [B, T, C]: the selection among the levels. `backend` "auto"
        runs the Triton kernel (`kernels.select`) on CUDA and the tiles below elsewhere;
        "reference" the tiles, "triton" the kernel."""
        if tuple(w.shape) != (self.B, self.T, len(self.rows)):
            raise ValueError(f"w must have shape [B, T, L] = [{self.B}, {self.T}, "
                             f"{len(self.rows)}], got {tuple(w.shape)}")
        if check_backend(backend, w) == "triton":
            from .kernels.select.triton import select_triton
            return select_triton(w, self.packed())
        B, T, L = w.shape
        fine = min(self.FINE, L)
        S = 1 << fine
        U = -(-(T + 1) // S) * S                      # u = 0 .. U - 1, a whole tile
        wu = F.pad(w, (0, 0, 1, U - T - 1))           # [B, U, L], weight of u = t + 1
        out = None
        if fine < L:
            tile = torch.arange(U // S, device=w.device)
            rows = [self._runs(level, -(-U >> level))[:, tile >> (level - fine)]
                    for level in range(fine, L)]           # each [B, U / S, C]
            rows = torch.stack(rows, dim=2)               # [B, U / S, L - fine, C]
            out = (wu[:, :, fine:].reshape(B, U // S, S, L - fine) @ rows).reshape(
                B, U, -1)                             # [B, U / S, S, C] -> [B, U, C]
        for level in range(fine):
            s = 1 << level
            part = (wu[:, :, level].reshape(B, U // s, s, 1)
                    * self._runs(level, U // s)[:, :, None, :]).reshape(B, U, -1)
            out = part if out is None else out.add_(part)
        return out[:, 1:T + 1]

    def mean(self) -> torch.Tensor:
        """[B, T, C]: the mean of the candidates over the levels."""
        L = len(self.rows)
        return self.weighted_sum(self.empty.new_full((self.B, self.T, L), 1.0 / L))

    def materialise(self) -> torch.Tensor:
        """The candidates [B, T, L, C] themselves: position t reads row (t + 1) >> l of
        level l's runs in `packed()`."""
        table, L = self.packed(), len(self.rows)
        u = torch.arange(1, self.T + 1, device=table.device)
        off = level_offsets(self.T, L)
        return torch.stack([table[:, off[level] + (u >> level)] for level in range(L)],
                           dim=2)


class LevelFeatures(nn.Module):
    """Pyramid features to candidates: `[B, T, L, F], [T, L] -> [B, T, L, C]`, one linear
    map per level, and a learned vector per level where the level is masked (too early).

    `compact(pairs, T, norm)` computes the same candidates, normalised by `norm`, from
    the pair rows of `level_pairs`: it maps and normalises each level's n_l - 1 rows
    once, then hands them to the positions, instead of mapping T rows per level. The
    numbers agree to rounding (the sums run in another order)."""

    def __init__(self, n_levels: int, in_dim: int, n_embd: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_levels, in_dim, n_embd) * 0.02)
        self.bias = nn.Parameter(torch.zeros(n_levels, n_embd))
        self.empty = nn.Parameter(torch.zeros(n_levels, n_embd))

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        cand = torch.einsum("btlp,lpc->btlc", feats, self.weight) + self.bias
        return torch.where(mask[None, :, :, None], cand, self.empty)

    def compact(self, pairs: list[torch.Tensor | None], T: int, norm: nn.Module,
                batch: int) -> CompactCandidates:
        """`norm(forward(feats, mask))` from the per-level pair rows, as
        `CompactCandidates` (their `materialise()` is the [B, T, L, C] tensor)."""
        if len(pairs) != self.weight.shape[0]:
            raise ValueError(f"pairs must hold one entry per level "
                             f"({self.weight.shape[0]}), got {len(pairs)}")
        rows = [None if r is None else norm(r @ self.weight[level] + self.bias[level])
                for level, r in enumerate(pairs)]                   # [B, n_l - 1, C]
        return CompactCandidates(rows, norm(self.empty), T, batch)
