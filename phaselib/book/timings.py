"""How long each chapter took to execute in the last book build, from its cache.

`jupyter-book build` executes every chapter through jupyter-cache (`_config.yml`:
`execute.cache`) and records each notebook's execution time there. `build_timings`
reads those records back, so `make book` can end with one table: every chapter's
seconds, the slowest first, and which exceed the budget of a default run (a chapter
should run top to bottom in about a minute on two cores; the sweeps hold the heavy
work).
"""

from __future__ import annotations

from pathlib import Path

from .toc import toc_notebooks

__all__ = ["BUDGET_S", "build_timings", "format_timings"]

BUDGET_S = 60.0  # seconds a chapter's default run should fit in, on two cores
CACHE = "_build/.jupyter_cache"


def build_timings(root: str | Path = ".", cache: str | Path | None = None
                  ) -> list[tuple[str, float]]:
    """(chapter, execution seconds) of every chapter of `_toc.yml` that the cache holds,
    the slowest first. Raises FileNotFoundError when there is no cache (no build yet)."""
    root = Path(root).resolve()
    path = Path(cache) if cache is not None else root / CACHE
    if not path.is_dir():
        raise FileNotFoundError(f"no execution cache at {path}: build the book first "
                                "(make book)")
    try:
        from jupyter_cache import get_cache
    except ImportError as e:  # the docs extra brings it with jupyter-book
        raise ImportError("build_timings needs jupyter-cache (pip install "
                          "'phaselib[docs]')") from e
    chapters = {(root / rel).resolve(): str(rel) for rel in toc_notebooks(root)}
    rows = {}
    for rec in get_cache(str(path)).list_cache_records():
        name = chapters.get(Path(rec.uri).resolve())
        seconds = (rec.data or {}).get("execution_seconds")
        if name is not None and seconds is not None:
            rows[name] = float(seconds)
    return sorted(rows.items(), key=lambda r: -r[1])


def format_timings(rows: list[tuple[str, float]], budget: float = BUDGET_S) -> str:
    """The timings as a table, each chapter over `budget` seconds marked."""
    if not rows:
        return "no chapter timings in the cache"
    width = max(len(name) for name, _ in rows)
    over = [name for name, s in rows if s > budget]
    lines = [f"{'chapter':{width}s}  seconds"]
    lines += [f"{name:{width}s}  {s:7.1f}" + ("  over budget" if s > budget else "")
              for name, s in rows]
    lines.append(f"{'total':{width}s}  {sum(s for _, s in rows):7.1f}  "
                 f"({len(over)} of {len(rows)} chapters over {budget:.0f} s)")
    return "\n".join(lines)
