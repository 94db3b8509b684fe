"""KV-cache arithmetic: how many bytes a decoder keeps per token, for published model shapes.

Book: Part II, "F2 Quadratic pairwise cost". While generating, a decoder keeps every
past key and value of every layer: 2 (K and V) x layers x KV heads x head dim numbers
per token. The cache grows linearly in the sequence length; what grows quadratically
is the attention *work* over it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["kv_cache_bytes", "ModelShape", "PUBLISHED_SHAPES", "GPU_MEMORY_GB", "max_tokens"]


def _check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def kv_cache_bytes(n_layers: int, n_kv_heads: int, head_dim: int, seq_len: int, batch: int = 1,
                   bytes_per_elem: int | float = 2) -> int:
    """Bytes of the keys and values cached for `batch` sequences of `seq_len` tokens.

    2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_elem
    (bytes_per_elem 2 for fp16/bf16, 1 for int8/fp8, 0.5 for 4-bit). Grouped-query and
    multi-query attention enter through n_kv_heads (the query heads do not count).
    """
    for name, val in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("head_dim", head_dim),
                      ("seq_len", seq_len), ("batch", batch)):
        _check_count(name, val)
    if isinstance(bytes_per_elem, bool) or not isinstance(bytes_per_elem, (int, float)) \
            or not bytes_per_elem > 0:
        raise ValueError(f"bytes_per_elem must be a positive number, got {bytes_per_elem!r}")
    total = 2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_elem
    return int(round(total))


@dataclass(frozen=True)
class ModelShape:
    """The attention shape of a published model (from its paper)."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    context: int          # the context length it was trained with
    params: float         # parameters, for the weights' own memory
    source: str           # bibliography key of the paper that gives the shape

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def kv_bytes(self, seq_len: int, batch: int = 1, bytes_per_elem: int | float = 2) -> int:
        return kv_cache_bytes(self.n_layers, self.n_kv_heads, self.head_dim, seq_len, batch,
                              bytes_per_elem)


# GPT-3: Brown et al. (2020), Table 2.1. Llama 2: Touvron et al. (2023), Table 1 and
# Section 2.2 (GQA with 8 KV heads for the 34B and 70B models; layer counts and widths as
# in Llama 1). Llama 3: Dubey et al. (2024), Table 3.
PUBLISHED_SHAPES: tuple[ModelShape, ...] = (
    ModelShape("GPT-3 175B", 96, 12288, 96, 96, 2048, 175e9, "brown2020gpt3"),
    ModelShape("Llama-2-7B", 32, 4096, 32, 32, 4096, 6.7e9, "touvron2023llama2"),
    ModelShape("Llama-2-70B", 80, 8192, 64, 8, 4096, 69e9, "touvron2023llama2"),
    ModelShape("Llama-3-8B", 32, 4096, 32, 8, 8192, 8.0e9, "dubey2024llama3"),
    ModelShape("Llama-3-70B", 80, 8192, 64, 8, 8192, 70.6e9, "dubey2024llama3"),
    # Added 2026-12-07 (stop 53): a referee found that the claims judged against "any
    # published shape" saw only the five above. GPT-3 Medium and Large: Brown et al.
    # (2020), Table 2.1, 16 heads each. OPT-175B: Zhang et al. (2022), Table 1, GPT-3's
    # shape. BLOOM-176B: BigScience (2022), Table 3, 70 layers of 14336 with 112 heads.
    # Qwen2-7B: Yang et al. (2024), Table 1, grouped-query with 4 KV heads.
    ModelShape("GPT-3 Medium", 24, 1024, 16, 16, 2048, 350e6, "brown2020gpt3"),
    ModelShape("GPT-3 Large", 24, 1536, 16, 16, 2048, 760e6, "brown2020gpt3"),
    ModelShape("OPT-175B", 96, 12288, 96, 96, 2048, 175e9, "zhang2022opt"),
    ModelShape("BLOOM-176B", 70, 14336, 112, 112, 2048, 176e9, "bigscience2022bloom"),
    ModelShape("Qwen2-7B", 28, 3584, 28, 4, 32768, 7.6e9, "yang2024qwen2"),
)

# Memory of one GPU as the vendor states it (GB): A100 40/80, H100 SXM and PCIe 80,
# H100 NVL 94, H200 141.
GPU_MEMORY_GB: dict[str, float] = {"A100 80GB": 80, "H100 (SXM/PCIe)": 80, "H100 NVL": 94,
                                   "H200": 141}


def max_tokens(shape: ModelShape, memory_bytes: float, *, bytes_per_elem: int | float = 2,
               weights: bool = True) -> int:
    """Tokens of KV cache that fit in `memory_bytes` (after the weights, at the same precision).

    0 when the weights alone do not fit. Ignores activations and fragmentation, so it is
    an upper bound.
    """
    left = memory_bytes - (shape.params * bytes_per_elem if weights else 0)
    per_token = shape.kv_bytes(1, 1, bytes_per_elem)
    return max(0, int(left // per_token))
