"""Where a results file of the book came from, in one line, and whether it is reproducible.

Every results file (`book/<part>/results/**.json`) records how it was made: a sweep
file per cell (`git_commit`, `git_dirty`, `created`, `machine`) and once for the file
(`provenance.command`); a benchmark file in `provenance` or at its top level; a training
run of the command line at its top level. `records(doc)` reads any of them into one list
of {commit, dirty, created, machine, command}; `provenance_line(path)` says it in one
line under a chapter's first figure from the file (`show_provenance`); `reproducibility
(path)` lists what stands between the file and a commit of main (the unit test
`test_results_reproducible` holds every file in the book to it).

A file may keep results computed before the dirty-tree guard (commit 4a85b44, 2026-12-04) only when it
says so, with its reason, in a top-level `legacy_dirty` record
({"reason": ..., "cells": N}): the number of such cells, so that none is added silently.
"""

from __future__ import annotations

import json
from pathlib import Path

from .results_files import results_path

__all__ = ["records", "cell_record", "provenance_line", "show_provenance",
           "reproducibility", "GUARD_DATE", "is_legacy"]

# Results created before this moment were written without the dirty-tree guard.
GUARD_DATE = "2026-12-04T00:10:00+00:00"


def _machine_words(m: dict) -> str:
    if not m:
        return "machine not recorded"
    where = m.get("gpu") or f"{m.get('processor', '?')} CPU"
    n = m.get("threads")
    threads = f", {n} thread{'' if n == 1 else 's'}" if n else ""
    return f"{where}{threads}, torch {m.get('torch', '?')}"


def records(doc: dict) -> list[dict]:
    """One {commit, dirty, created, machine, command, allow_dirty} per computed result in
    a results document of any of the book's formats (a sweep's cells, a benchmark, a
    command-line run)."""
    if not isinstance(doc, dict):
        raise TypeError(f"doc must be a results document (a dict), got {type(doc).__name__}")
    prov = doc.get("provenance") or {}
    if isinstance(doc.get("cells"), list):
        command = prov.get("command", "")
        return [cell_record(c, command) for c in doc["cells"]
                if c.get("status") == "done"]
    src = prov if "git_commit" in prov else doc
    return [{"commit": src.get("git_commit"), "dirty": src.get("git_dirty"),
             "created": src.get("created") or doc.get("created", ""),
             "machine": src.get("machine") or doc.get("machine", {}),
             "command": src.get("command") or doc.get("command", ""),
             "allow_dirty": bool(doc.get("allow_dirty") or src.get("allow_dirty"))}]


def cell_record(cell: dict, command: str = "") -> dict:
    """The record (as `records`) of one cell of a sweep's results document; `command`
    is the document's."""
    return {"commit": cell.get("git_commit"), "dirty": cell.get("git_dirty"),
            "created": cell.get("created", ""), "machine": cell.get("machine", {}),
            "command": command, "allow_dirty": bool(cell.get("allow_dirty"))}


def is_legacy(r: dict) -> bool:
    """Whether a record (from `records`) is a dirty result from before the guard."""
    return bool(r["dirty"]) and str(r["created"]) < GUARD_DATE and not r["allow_dirty"]


def provenance_line(path: str | Path) -> str:
    """One line of Markdown: the file, its commit(s), date(s), command and machine (the
    file as `results_path` finds it: `path`, or the copy shipped with phaselib)."""
    path = results_path(path, missing_ok=True)
    if not path.is_file():
        return f"*Provenance:* `{path.name}` has not been computed yet."
    doc = json.loads(path.read_text(encoding="utf-8"))
    recs = records(doc)
    if not recs:
        return f"*Provenance:* `{path.name}` holds no finished result yet."
    commits = sorted({str(r["commit"])[:7] for r in recs})
    days = sorted({str(r["created"])[:10] for r in recs})
    n = len(recs)
    what = f"{n} results" if n > 1 else "computed"
    at = (f"commit `{commits[0]}`" if len(commits) == 1 else
          f"{len(commits)} commits (`{commits[0]}` ... `{commits[-1]}`)")
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    dirty = sum(bool(r["dirty"]) for r in recs)
    how = ("flagged dirty before the guard (the file's legacy_dirty says why they stay)"
           if "legacy_dirty" in doc else "from uncommitted code")
    flag = f"; {dirty} of them {how}" if dirty and n > 1 else (
        f"; {how}" if dirty else "")
    machines = sorted({_machine_words(r["machine"]) for r in recs})
    machine = machines[0] if len(machines) == 1 else f"{len(machines)} machine settings"
    command = recs[0]["command"]
    command = command if len(command) <= 90 else command[:87] + "..."
    return (f"*Provenance:* `{path.name}`, {what} at {at}, {when}{flag}; "
            f"`{command}`; {machine}.")


def show_provenance(path: str | Path):
    """Display `provenance_line(path)` as Markdown in a notebook (printed elsewhere)."""
    line = provenance_line(path)
    try:
        from IPython.display import Markdown, display
    except ImportError:
        print(line)
        return line
    display(Markdown(line))
    return line


def reproducibility(path: str | Path, in_main) -> list[str]:
    """What keeps a results file from being reproducible from main: a result without a
    commit, at a commit not in main's history (`in_main(commit) -> bool`), or from a
    dirty tree; legacy dirty results pass only as the file's `legacy_dirty` record
    declares them (its count equal to the number of such results, each created before
    GUARD_DATE). Returns one message per problem (empty when there is none)."""
    path = results_path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    recs = records(doc)
    problems = []
    for c in sorted({str(r["commit"]) for r in recs}):
        if c == "None" or len(c) != 40:
            problems.append(f"{path}: a result records no git commit")
        elif not in_main(c):
            problems.append(f"{path}: commit {c[:12]} is not in main's history")
    dirty = [r for r in recs if r["dirty"]]
    legacy = doc.get("legacy_dirty")
    new = [r for r in dirty if not is_legacy(r)]
    if new:
        problems.append(f"{path}: {len(new)} result(s) written from a dirty tree after the "
                        f"guard (allow_dirty): re-run them from a clean commit")
    old = len(dirty) - len(new)
    if legacy is None:
        if old:
            problems.append(f"{path}: {old} result(s) from a dirty tree, computed before "
                            f"the guard, and no legacy_dirty record saying why they stay")
    elif not (isinstance(legacy, dict) and str(legacy.get("reason", "")).strip()):
        problems.append(f"{path}: legacy_dirty needs a reason")
    elif legacy.get("cells") != old:
        problems.append(f"{path}: legacy_dirty says {legacy.get('cells')} result(s), the "
                        f"file has {old}: update or remove the record")
    return problems
