"""The book's precomputed results files, found wherever a chapter runs.

A chapter reads its results as `results/<name>.json`, relative to its own folder: in
the repository (a chapter's working folder is `book/<part>/`) that is the file
`book/<part>/results/<name>.json`, the one copy that the sweeps write. Outside the
repository (Colab, a wheel installed in an empty folder) there is no such folder, so
the wheel carries a copy of every results file as package data,
`phaselib/_results/<part>/<name>.json` (copied by the build hook in setup.py).

`results_path(path)` resolves a path to read: `path` itself when it exists (relative
to the working folder), else the copy that came with phaselib: the wheel's
`_results/<part>/`, or, in a source checkout (an editable install),
`book/<part>/results/` of the checkout. Only the part of `path` after its last
`results` folder is looked up; the part (`part2`, ...) is the folder before `results`
when it names one (`../part2/results/f5.json`), else `part=`, else the one part whose
results hold the file (an error if several do). A file found nowhere raises
FileNotFoundError naming both places and, where known, the command that writes it.
Writers (the sweeps, the benchmarks) do not use this: they write into the repository.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePath

__all__ = ["results_path", "shipped_results", "PACKAGED", "CHECKOUT"]

_HERE = Path(__file__).resolve().parent
# In a wheel: one folder per part, e.g. _results/part2/f5.json.
PACKAGED = _HERE / "_results"
# In a source checkout: the book itself, book/<part>/results/.
CHECKOUT = _HERE.parent / "book"


def shipped_results() -> dict[str, Path]:
    """{part: folder} of the results that came with phaselib: the wheel's
    `_results/<part>/`, or in a source checkout `book/<part>/results/` (empty when
    neither exists)."""
    if PACKAGED.is_dir():
        return {d.name: d for d in sorted(PACKAGED.iterdir()) if d.is_dir()}
    if (CHECKOUT.parent / "_toc.yml").is_file() and CHECKOUT.is_dir():
        return {d.parent.name: d for d in sorted(CHECKOUT.glob("*/results"))
                if d.is_dir()}
    return {}


def _split(path: PurePath) -> tuple[str | None, PurePath | None]:
    """(the folder before the last `results` folder of `path`, or None; the rest of
    `path` after it, or None when `path` has no `results` folder)."""
    parts = path.parts
    idx = [i for i, p in enumerate(parts[:-1]) if p == "results"]
    if not idx:
        return None, None
    i = idx[-1]
    before = parts[i - 1] if i > 0 else None
    return before, PurePath(*parts[i + 1:])


def _command(found: list[Path], rel: PurePath) -> str:
    """How the missing file is made: the provenance command of a copy elsewhere, else
    the sweep of the same name, else where to look."""
    from .results_provenance import records  # no cycle at import time

    for f in found:
        try:
            recs = records(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if recs and recs[0]["command"]:
            return recs[0]["command"]
    from .sweep.core import SWEEPS

    if rel.suffix == ".json" and rel.stem in SWEEPS and len(rel.parts) == 1:
        return f"python -m phaselib.sweep {rel.stem}"
    return ""


def results_path(path: str | PurePath, part: str | None = None, *,
                 missing_ok: bool = False) -> Path:
    """The file (or folder) to read for the results path `path`: `path` itself if it
    exists, else the copy shipped with phaselib (see the module docstring). `part`
    (e.g. "part2") picks the book part when `path` does not name it.

    Raises FileNotFoundError when neither exists (unless `missing_ok`: then `path` is
    returned as given, for a caller that reads a file only if present), and ValueError
    when several parts ship the file and neither `path` nor `part` says which."""
    given = Path(path)
    if given.exists():
        return given
    shipped = shipped_results()
    before, rel = _split(PurePath(path))
    if part is not None and shipped and part not in shipped:
        raise ValueError(f"part must be one of {sorted(shipped)}, got {part!r}")
    if part not in shipped:
        part = before if before in shipped else None
    if rel is None:
        candidates = {}
    elif part is not None:
        candidates = {part: shipped[part] / rel}
    else:
        candidates = {p: d / rel for p, d in shipped.items() if (d / rel).exists()}
    hits = {p: f for p, f in candidates.items() if f.exists()}
    if len(hits) > 1:
        raise ValueError(f"{path}: the results of {sorted(hits)} all hold "
                         f"{rel.as_posix()}; say which with part=")
    if hits:
        return next(iter(hits.values()))
    if missing_ok:
        return given
    if rel is None:
        where = "no shipped copy is looked for (the path has no results/ folder)"
        command = ""
    else:
        pattern = (shipped[part] / rel if part is not None else
                   PACKAGED / "*" / rel if PACKAGED.is_dir() else
                   CHECKOUT / "*" / "results" / rel)
        where = (f"nor among the results shipped with phaselib ({pattern})" if shipped
                 else "and this installation of phaselib ships no results")
        elsewhere = {p: d / rel for p, d in shipped.items() if (d / rel).is_file()}
        if elsewhere:
            where += f"; the results of {sorted(elsewhere)} hold it"
        command = _command(list(elsewhere.values()), rel)
    how = (f"regenerate it with `{command}`" if command else
           "run the sweep that writes it (python -m phaselib.sweep --list)")
    raise FileNotFoundError(f"{path} does not exist: not at {given.absolute()}, "
                            f"{where}; {how}")
