"""Benchmarks: `python -m phaselib.bench NAME [options]` writes JSON results to a file.

Each benchmark is a module in this package with a `main(argv)` function registered in
BENCHMARKS below; `phaselib.bench.io` reads and writes the result files the book plots.
Speed is measured here, never in timed unit tests. On a machine with a GPU, run
`python -m phaselib.bench gpu-check` first: the kernel tests on CUDA and the GPU
benchmarks, written where the GPU-kernels chapter reads them.
"""

BENCHMARKS: dict[str, str] = {
    # name: module path (imported on demand)
    "streaming": "phaselib.bench.streaming",
    "pyramid": "phaselib.bench.kernels",
    "pyramid-bandwidth": "phaselib.bench.pyramid_bandwidth",
    "attention": "phaselib.bench.attention",
    "gpu-check": "phaselib.bench.gpu_check",
    "near-field": "phaselib.bench.near_field",
    "phase-lm-decode": "phaselib.bench.phase_lm_decode",
    "lm-speed": "phaselib.bench.lm_speed",
    "remedies": "phaselib.bench.remedies",
    "phase-features": "phaselib.bench.phase_features",
}
