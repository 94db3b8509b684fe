"""python -m phaselib.book {run,sync-setup,check-setup,presets,timings,student-copy}:
see `--help`."""

from __future__ import annotations

import argparse
import sys

from .run import (PRESETS_FILE, BookRunError, load_presets, plan_run, run_chapters,
                  summary)
from .setup_cell import check_setup_cells, setup_cell_source, sync_setup
from .student import StudentCopyError, student_copy
from .timings import BUDGET_S, build_timings, format_timings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phaselib.book",
                                description="The book's chapters from the command line "
                                            "(run from the repository root).")
    p.add_argument("--root", default=".", help="the book's root (with _toc.yml)")
    # --root is also taken after the command (`run --root OUT`), as readers type it.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--root", default=argparse.SUPPRESS,
                       help="the book's root (with _toc.yml); default .")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name, **kw):
        return sub.add_parser(name, parents=[after], **kw)

    r = command("run", help="execute chapters with papermill at a preset")
    r.add_argument("chapters", nargs="*", metavar="CHAPTER",
                   help="e.g. part4/transport or transport (default: every chapter)")
    r.add_argument("--preset", default="cpu", help="a preset of presets.toml "
                   "(cpu: the chapters' defaults; gpu: larger runs on a CUDA GPU)")
    r.add_argument("--out", default=None,
                   help="output folder (default _build/runs/PRESET)")
    r.add_argument("--presets-file", default=str(PRESETS_FILE), help=argparse.SUPPRESS)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    command("sync-setup", help="rewrite every chapter's first code cell to the "
                   "setup-cell template (the URL from _config.yml)")
    command("check-setup", help="list chapters whose setup cell differs")
    command("presets", help="list the presets and what they change")
    t = command("timings", help="each chapter's execution time in the last "
                       "book build (from its cache), the slowest first")
    t.add_argument("--budget", type=float, default=BUDGET_S,
                   help="seconds a chapter's default run should fit in (marked above)")
    c = command("student-copy", help="write every chapter without its solution "
                       "cells into OUT, with the results files the chapters read")
    c.add_argument("out", metavar="OUT", help="an empty folder outside book/ (for "
                   "example _build/student)")
    c.add_argument("--force", action="store_true",
                   help="write into OUT even if it is not empty")
    args = p.parse_args(argv)

    if args.command == "sync-setup":
        changed = sync_setup(args.root)
        print(f"setup cell rewritten in {len(changed)} notebook(s)"
              + "".join(f"\n  {c}" for c in changed))
        return 0
    if args.command == "check-setup":
        bad = check_setup_cells(args.root)
        if bad:
            print("setup cell differs from the template in:\n  " + "\n  ".join(bad)
                  + "\nrun: python -m phaselib.book sync-setup")
            return 1
        print("every setup cell is the template:\n" + setup_cell_source(args.root))
        return 0
    if args.command == "presets":
        for name, spec in load_presets().items():
            print(f"{name}: {spec.get('description', '')}")
            for ch, params in spec.get("chapters", {}).items():
                print(f"  {ch}: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
        return 0

    if args.command == "student-copy":
        try:
            copied = student_copy(args.root, args.out, force=args.force)
        except (StudentCopyError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        n, removed = len(copied), sum(c.removed for c in copied)
        print(f"{n} chapter{'s' * (n != 1)} written to {args.out} without "
              f"{removed} solution cell{'s' * (removed != 1)}, with book/*/results "
              "and _toc.yml")
        return 0

    if args.command == "timings":
        try:
            print(format_timings(build_timings(args.root), args.budget))
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0

    try:
        plan = plan_run(args.preset, args.chapters, args.root,
                        load_presets(args.presets_file))
        out = args.out or f"{args.root}/_build/runs/{args.preset}"
        results = run_chapters(plan, out, progress=not args.no_progress)
    except BookRunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
