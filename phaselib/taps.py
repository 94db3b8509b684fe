"""Hook points for probing: identity modules placed where a tensor is made.

The idea is TransformerLens's `HookPoint`: a model writes `self.tap_pattern = Tap()` and
calls `x = self.tap_pattern(x)` where the tensor is born; `capture(model, names)` records
what passes through and always removes its hooks, even when the forward pass fails.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class Tap(nn.Identity):
    """An identity layer that marks a tensor worth looking at."""

    @property
    def active(self) -> bool:
        return bool(self._forward_hooks)


@contextmanager
def capture(model: nn.Module, names: list[str] | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of every `Tap` in `model` whose name is in `names` (all if None).

    Yields a dict filled as the model runs: `{name: tensor (detached)}`. Names are the
    module paths, e.g. `blocks.0.attn.tap_pattern`.
    """
    taps = {n: m for n, m in model.named_modules() if isinstance(m, Tap)}
    if names is not None:
        unknown = sorted(set(names) - set(taps))
        if unknown:
            raise ValueError(f"names has taps that model does not have: {unknown}; "
                             f"available: {sorted(taps)}")
        taps = {n: taps[n] for n in names}
    store: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: store.__setitem__(n, out.detach()))
               for n, m in taps.items()]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
