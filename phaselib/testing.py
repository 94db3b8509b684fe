"""Comparing a kernel with its reference: one relative-error measure for tests and chapters.

In the manner of flash-linear-attention: the error of `out` against `ref` is
rms(ref - out) / rms(ref), computed in float64, after checking that `out` has no NaN or
inf. A ratio, because fp16/bf16 kernels are judged by how much of the signal they lose,
whatever the scale of the tensor; `assert_close_elementwise` adds a bound at every
element, so that a few wrong rows cannot hide in the average.
"""

from __future__ import annotations

import torch

__all__ = ["rel_rms_error", "assert_close", "assert_close_elementwise",
           "tiny_random_transformer"]


def rel_rms_error(ref: torch.Tensor, out: torch.Tensor) -> float:
    """rms(ref - out) / rms(ref) as a float (0.0 when both are exactly zero).

    Raises ValueError when the shapes differ; NaN or inf in `out` gives inf."""
    if not isinstance(ref, torch.Tensor) or not isinstance(out, torch.Tensor):
        raise TypeError(f"ref and out must be tensors, got {type(ref).__name__} and "
                        f"{type(out).__name__}")
    if ref.shape != out.shape:
        raise ValueError(f"ref and out must have the same shape, got {tuple(ref.shape)} "
                         f"and {tuple(out.shape)}")
    r = ref.detach().to("cpu", torch.float64)
    o = out.detach().to("cpu", torch.float64)
    if not torch.isfinite(o).all():
        return float("inf")
    num = (r - o).pow(2).mean().sqrt().item() if r.numel() else 0.0
    den = r.pow(2).mean().sqrt().item() if r.numel() else 0.0
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return num / den


def assert_close(name: str, ref: torch.Tensor, out: torch.Tensor, ratio: float = 1e-5) -> float:
    """Fail unless rel_rms_error(ref, out) < ratio, with the figure in the message.

    NaN/inf in `out` fails first and says so. Returns the error (for a chapter to glue)."""
    if not isinstance(out, torch.Tensor) or not torch.isfinite(out.detach()).all():
        raise AssertionError(f"{name}: the output has NaN or inf")
    err = rel_rms_error(ref, out)
    if not err < ratio:
        raise AssertionError(f"{name}: rms(ref - out) / rms(ref) = {err:.3g} >= {ratio:g}")
    return err


def assert_close_elementwise(name: str, ref: torch.Tensor, out: torch.Tensor,
                             rtol: float, atol: float) -> dict:
    """Fail unless |out - ref| <= atol * rms(ref) + rtol * |ref| at *every* element (and
    out is finite), naming the worst element: a few wrong rows, which a global rms ratio
    forgives, fail here. `phaselib.kernels.tolerance.tolerance` gives (rtol, atol) per
    dtype. Returns the record of `phaselib.kernels.tolerance.compare`."""
    from .kernels.tolerance import compare

    rec = compare(name, ref, out, rtol, atol)
    if not rec["passed"]:
        if "error" in rec:
            raise AssertionError(f"{name}: {rec['error']}")
        raise AssertionError(
            f"{name}: |out - ref| exceeds atol * rms(ref) + rtol * |ref| "
            f"(rtol {rtol:g}, atol {atol:g}) by a factor {rec['worst']:.3g} at index "
            f"{rec['worst_index']}; max |out - ref| = {rec['max_abs_err']:.3g}")
    return rec


def tiny_random_transformer(seed: int = 0, n_layer: int = 3):
    """A TinyTransformer of width 10 over 11 tokens (block 13), in eval mode, with
    weights drawn N(0, 0.5) instead of the 0.02 init, so that every layer changes the
    stream: the test bed of the residual-stream measurements (F6)."""
    from .transformer import TinyTransformer, TransformerConfig

    torch.manual_seed(seed)
    m = TinyTransformer(TransformerConfig(vocab_size=11, block_size=13, n_layer=n_layer,
                                          n_head=2, n_embd=10))
    for p in m.parameters():
        p.data.normal_(0, 0.5)
    return m.eval()
