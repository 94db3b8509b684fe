"""Kernels, one folder per operation (the layout of flash-linear-attention).

Each folder holds `reference.py`, the plain PyTorch twin that is the ground truth, and,
where there is one, `triton.py` (the GPU kernel and its launcher) and `streaming.py`
(the one-token-at-a-time path). The public functions in `phaselib.transport`,
`phaselib.pyramid` and `phaselib.streaming` choose between them. `checks.py` compares
every kernel with its twin (what `python -m phaselib.bench gpu-check` runs), and every
launch enters its tensors' CUDA device (`_launch.launch_device`).
"""
