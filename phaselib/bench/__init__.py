"""Benchmarks: `python -m phaselib.bench NAME [options]` writes JSON results to a file.

Each benchmark is a module in this package with a `main(argv)` function registered in
BENCHMARKS below; `phaselib.bench.io` reads and writes the result files the book plots.
Speed is measured here, never in timed unit tests.
"""

BENCHMARKS: dict[str, str] = {
    # name: module path (imported on demand)
    "streaming": "phaselib.bench.streaming",
    "pyramid": "phaselib.bench.kernels",
    "pyramid-bandwidth": "phaselib.bench.pyramid_bandwidth",
    "attention": "phaselib.bench.attention",
}
