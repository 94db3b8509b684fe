"""The near field in O(T window): blocked attention, never a [T, T] object.

Book: Part IV, "The phase-transport language model". T is cut into chunks of c >= window
positions (the last one padded). A query in chunk n can only see keys in chunk n and
chunk n - 1, since it looks back at most window - 1 <= c - 1 positions. So each chunk's
c queries attend to the 2c keys [chunk n-1 | chunk n] under the rows c..2c-1 of
`causal_mask(2c, window)` (the window mask of query c + i over key j of that pair, the
package's one mask), plus the distance bias; chunk 0 has no previous chunk. The scores
are [B, H, T/c, c, 2c]: O(T c) memory and O(T c dh) work. Equal, to rounding, to
`reference.near_field_reference`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...attention import causal_mask
from .reference import distance_bias

DEFAULT_CHUNK = 16


def near_field_banded(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      rel_bias: torch.Tensor, window: int,
                      chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """q, k, v [B, H, T, dh], rel_bias [H, window] -> [B, H, T, dh]; O(T window) memory.

    `chunk` is a lower bound on the chunk size; the size used is
    min(max(chunk, window), T), so a chunk always covers the window.
    """
    B, H, T, dh = q.shape
    c = min(max(chunk, window), T)
    n = -(-T // c)
    pad = n * c - T
    kc = F.pad(k, (0, 0, c, pad)).unfold(2, 2 * c, c)                  # [B, H, n, dh, 2c]
    vc = F.pad(v, (0, 0, c, pad)).unfold(2, 2 * c, c).transpose(-1, -2)  # [B, H, n, 2c, dh]
    qc = F.pad(q, (0, 0, 0, pad)).view(B, H, n, c, dh)
    scores = (qc @ kc) * dh ** -0.5                                    # [B, H, n, c, 2c]
    i = torch.arange(c, device=q.device)[:, None] + c                 # query row in the pair
    j = torch.arange(2 * c, device=q.device)[None, :]
    mask = causal_mask(2 * c, window, device=q.device)[c:]              # [c, 2c]
    bias = distance_bias(rel_bias, mask, i - j, q.dtype)               # [H, c, 2c]
    first = bias.clone()
    first[:, :, :c] = float("-inf")                                    # chunk 0: no previous
    bias = torch.cat([first[:, None], bias[:, None].expand(H, n - 1, c, 2 * c)], 1)
    att = torch.softmax(scores + bias, dim=-1)
    return (att @ vc).reshape(B, H, n * c, dh)[:, :, :T]
