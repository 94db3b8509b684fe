"""KV-cache arithmetic against hand-computed values for published shapes."""

import pytest

from phaselib.kvcache import PUBLISHED_SHAPES, kv_cache_bytes, max_tokens


def shape(name):
    return next(s for s in PUBLISHED_SHAPES if s.name == name)


def test_kv_cache_bytes_is_the_product_formula():
    # K and V: 2 * 3 layers * 5 heads * 7 dims * 11 tokens * batch 2 * 4 bytes = 18,480
    assert kv_cache_bytes(3, 5, 7, 11, batch=2, bytes_per_elem=4) == 18_480


def test_gpt3_175b_caches_4_5_mib_per_token_in_fp16():
    s = shape("GPT-3 175B")
    assert s.head_dim == 128
    assert s.kv_bytes(1) == 2 * 96 * 96 * 128 * 2 == 4_718_592
    assert s.kv_bytes(32768) == 154_618_822_656  # about 155 GB, not 48 GB


def test_grouped_query_attention_divides_the_cache_by_the_group_size():
    mha = kv_cache_bytes(32, 32, 128, 4096)
    gqa = kv_cache_bytes(32, 8, 128, 4096)
    assert mha == 4 * gqa
    assert shape("Llama-3-8B").kv_bytes(8192) == 8192 * 131072


def test_cache_is_linear_in_length_and_batch():
    assert kv_cache_bytes(2, 2, 8, 200, batch=3) == 6 * kv_cache_bytes(2, 2, 8, 100)


def test_max_tokens_is_zero_when_the_weights_do_not_fit():
    assert max_tokens(shape("GPT-3 175B"), 141e9) == 0
    n = max_tokens(shape("Llama-3-8B"), 80e9)
    assert shape("Llama-3-8B").kv_bytes(n) <= 80e9 - 8.0e9 * 2 < shape("Llama-3-8B").kv_bytes(n + 1)


@pytest.mark.parametrize("kw,err", [({"n_layers": 0}, ValueError), ({"seq_len": 1.5}, TypeError),
                                    ({"bytes_per_elem": 0}, ValueError), ({"batch": True}, TypeError)])
def test_bad_arguments_raise(kw, err):
    args = {"n_layers": 2, "n_kv_heads": 2, "head_dim": 8, "seq_len": 4} | kw
    (name,) = kw
    with pytest.raises(err, match=f"{name} must be"):
        kv_cache_bytes(**args)
