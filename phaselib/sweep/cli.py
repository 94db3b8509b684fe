"""The command line: `python -m phaselib.sweep [verify | merge] NAME ... [options]`."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..provenance import DirtyTreeError, cpu_capability, cpu_model
from .core import SWEEPS, get_spec, run_sweep, select_cells
from .store import merge_sweep_files
from .verify import OTHER_MODEL_RTOL, verify_sweep


def results_exists(path: str) -> bool:
    """Whether a sweep's results file is in the book or shipped with the package."""
    from ..results_files import results_path
    try:
        return results_path(path).exists()
    except FileNotFoundError:
        return False

__all__ = ["main", "parse_only"]


def parse_only(p: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    """--only KEY=VALUE items as a dict (argparse's usage error on a malformed one, and
    on a key given twice: the items are ANDed, so a second value would never match)."""
    only = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--only takes KEY=VALUE, got {item!r}")
        if key in only:
            p.error(f"--only {key} given twice ({key}={only[key]}, {key}={value}): one "
                    f"value per key; run the sweep once per value")
        only[key] = value
    return only


def _names(p: argparse.ArgumentParser, names: list[str]) -> list[str]:
    names = list(SWEEPS) if names == ["all"] else names
    if not names:
        p.error("name a sweep (or all); --list shows them")
    unknown = [n for n in names if n not in SWEEPS]
    if unknown:
        p.error(f"unknown sweep(s) {unknown}; known: {', '.join(SWEEPS)}")
    return names


def verify_main(args: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m phaselib.sweep verify",
        description="Re-run cells of a sweep at HEAD and compare them with the stored "
                    "results (nothing is written). Exit status 1 if any cell differs.")
    p.add_argument("names", nargs="*", help=f"sweeps: {', '.join(SWEEPS)}, or all")
    p.add_argument("--cells", type=int, default=1,
                   help="how many cells of each sweep, the cheapest first (default 1)")
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                   help="re-run the cells with this parameter value instead (repeatable)")
    p.add_argument("--out", help="results file to compare with (one sweep only)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="skip a sweep whose cheapest cell took longer than this when "
                        "stored (a time budget; default: none)")
    a = p.parse_args(args)
    names = _names(p, a.names)
    if a.cells < 1:
        p.error(f"--cells must be at least 1, got {a.cells}")
    if a.out and len(names) > 1:
        p.error("--out needs exactly one sweep")
    only = parse_only(p, a.only)
    bad, other, here, compared = [], [], set(), set()
    for name in names:
        spec = get_spec(name)
        if a.names == ["all"] and not a.out and not results_exists(spec.out):
            # a sweep meant for a GPU, not yet run: nothing stored to compare with
            print(f"verify {name}: no results file {spec.out} yet; skipped")
            continue
        chosen = None
        if only:
            try:
                chosen = select_cells(spec, only).cells
            except ValueError as e:
                p.error(str(e))
        checks = verify_sweep(spec, path=a.out, cells=a.cells, only=chosen,
                              max_seconds=a.max_seconds)
        bad += [f"{name} {c.key}" for c in checks if not c.ok]
        other += [f"{name} {c.key}" for c in checks if c.other_cpu]
        here |= {name for c in checks if c.here}
        compared |= {name for c in checks}
    if compared:
        far = sorted(compared - here)
        print(f"verify: {len(here)} of the {len(compared)} sweeps re-run compared a cell "
              f"computed on this CPU ({cpu_capability()}, {cpu_model()}) to the bit"
              + (f"; the others' cells were computed on other (or unrecorded) CPUs: "
                 f"{', '.join(far)}" if far
                 else ""))
    if bad:
        print(f"verify: {len(bad)} cell(s) no longer reproduce their stored results:")
        for b in bad:
            print(f"  {b}")
        return 1
    if other:
        print(f"verify: {len(other)} cell(s) differ but were computed on a CPU of another "
              f"(or an unrecorded) vector capability or model than this one "
              f"({cpu_capability()}, {cpu_model()}), so they cannot be compared to the "
              f"bit here (the lines above say which lie within a relative "
              f"{OTHER_MODEL_RTOL:g}); verify them on such a CPU: {', '.join(other)}")
    print(f"verify: every cell re-run reproduces its stored result or was computed on "
          f"another CPU ({', '.join(names)})")
    return 0


def merge_main(args: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m phaselib.sweep merge",
        description="Merge the results files of one sweep run in parallel parts (each "
                    "with its own --out) into one file; a cell in two parts: the later "
                    "part wins.")
    p.add_argument("name", help=f"the sweep: {', '.join(SWEEPS)}")
    p.add_argument("parts", nargs="+", help="the parts' results files")
    p.add_argument("--out", help="the merged file (default: the sweep's own)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="write into the book from uncommitted code")
    a = p.parse_args(args)
    name = _names(p, [a.name])[0]
    out = a.out or get_spec(name).out
    try:
        path = merge_sweep_files(name, a.parts, out, allow_dirty=a.allow_dirty)
    except ValueError as e:
        p.error(str(e))
    print(f"merged {len(a.parts)} part(s) into {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["verify"]:
        return verify_main(args[1:])
    if args[:1] == ["merge"]:
        return merge_main(args[1:])
    p = argparse.ArgumentParser(
        prog="python -m phaselib.sweep",
        description="Run seed sweeps that pick up where they stopped; "
                    "`python -m phaselib.sweep verify --help` checks them.")
    p.add_argument("names", nargs="*", help=f"sweeps to run: {', '.join(SWEEPS)}, or all")
    p.add_argument("--list", action="store_true", help="list the sweeps and their files")
    p.add_argument("--seeds", type=int, nargs="+", help="override the sweep's seeds")
    p.add_argument("--out", help="results file (one sweep only; default: the sweep's own)")
    p.add_argument("--device", help="device for sweeps that take one (e.g. cuda)")
    p.add_argument("--force", action="store_true", help="re-run finished cells too")
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                   help="run only the cells with this parameter value (repeatable), "
                        "e.g. --only block=1024")
    p.add_argument("--rerun-stale", action="store_true",
                   help="re-run finished cells computed at another git commit or from "
                        "a dirty tree")
    p.add_argument("--rerun-legacy", action="store_true",
                   help="re-run only the finished cells flagged dirty before the guard "
                        "(the results file's legacy_dirty record counts them)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="write into the book from uncommitted code (cells are marked "
                        "allow_dirty: no commit reproduces them)")
    a = p.parse_args(args)
    if a.list:
        for name in SWEEPS:
            try:
                spec = get_spec(name)
                print(f"{name:6s} {len(spec.cells):3d} cells -> {spec.out}  {spec.description}")
            except ImportError as e:
                print(f"{name:6s} (not available: {e})")
        return 0
    names = _names(p, a.names)
    if a.out and len(names) > 1:
        p.error("--out needs exactly one sweep")
    only = parse_only(p, a.only)
    command = "python -m phaselib.sweep " + shlex.join(args)
    failed = 0
    for name in names:
        spec = get_spec(name, a.seeds, a.device)
        try:
            spec = select_cells(spec, only)
        except ValueError as e:
            p.error(str(e))
        try:
            s = run_sweep(spec, out=a.out, command=command, force=a.force,
                          rerun_stale=a.rerun_stale, rerun_legacy=a.rerun_legacy,
                          device=a.device or "cpu",
                          allow_dirty=a.allow_dirty)
        except KeyboardInterrupt:
            return 130
        except DirtyTreeError as e:
            p.error(str(e))
        failed += len(s["failed"])
    return 1 if failed else 0
