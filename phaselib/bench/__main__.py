"""Command line: `python -m phaselib.bench NAME --out results.json [options]`."""

from __future__ import annotations

import importlib
import sys

from ..provenance import DirtyTreeError
from . import BENCHMARKS


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        names = ", ".join(sorted(BENCHMARKS)) or "(none yet)"
        print(f"usage: python -m phaselib.bench NAME [options]\nbenchmarks: {names}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    try:
        return module.main(argv[1:]) or 0
    except DirtyTreeError as e:
        print(f"python -m phaselib.bench {argv[0]}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
