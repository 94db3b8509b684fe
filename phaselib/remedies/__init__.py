"""The remedies of Part III as functions, each beside a plain reference twin.

Every attention-like remedy is `name(q, k, v, ..., *, scale=None)` with q [B, H, T, dh],
k, v [B, Hkv, T, dh] (Hkv = H except for grouped/multi-query attention; every remedy
here accepts Hkv dividing H), causal, returning [B, H, T, dv]. Where it decodes with a
cache or a state: `init_<name>_state(...)`, `prefill_<name>_state(k, v, ...)` (the
state after a prompt) and `<name>_step(q_t, k_t, v_t, state) -> (out_t, state)`, equal
to the batch function at every position; `state.nbytes()` is what the state holds.

remedy       batch (twin)                                    decode
fused        fused_causal (fused_reference)                  the KV cache of gqa
GQA, MQA     gqa_attention, mqa_attention (gqa_reference)    gqa_step
window       sink_attention(window, n_sink) (sink_reference) sink_step
block means  landmark_attention(block) = block_mean_attention
             (landmark_reference)                            landmark_step
Landmark     landmark_retrieval_attention(block, top_k)
 Attention   (landmark_retrieval_reference)                  -
centroids    cluster_attention(block, n_clusters) = centroid_attention
             (cluster_reference)                             cluster_step
LSH routing  lsh_attention(rotation) (lsh_reference)         -
FMM          fmm_attention(window, far_keys) (fmm_reference) fmm_step
linear       linear_attention (linear_attention_parallel)    linear_attention_step
SSM          ssm_scan(x, a, b, c) (ssm_reference)            ssm_step(x_t, ..., state)
selective    selective_scan(u, delta, A, b, c, d_skip)
 SSM (S6)    (selective_reference)                           SelectiveSSMMixer.step
short conv   causal_conv1d(x, weight) (causal_conv1d_reference)   ShortConv.step

`exact_attention` is the exact causal attention the approximations are compared with.
The chapter's modules (mixers, tasks, table) live beside these in this package.
"""

from ..efficient_attention import (LinearAttentionState, elu_feature_map,
                                   linear_attention, linear_attention_parallel,
                                   linear_attention_recurrent, linear_attention_step,
                                   lowrank_attention, sliding_window_attention,
                                   sliding_window_reference)
from ._common import exact_attention, expand_kv
from .cluster import (ClusterState, centroid_attention, centroid_reference,
                      cluster_attention, cluster_reference, cluster_step,
                      init_cluster_state, kmeans_keys, prefill_cluster_state)
from .fmm import (FMMState, far_field, fmm_attention, fmm_reference, fmm_step,
                  init_fmm_state, prefill_fmm_state)
from .fused import fused_attention, fused_causal, fused_reference
from .gqa import (KVCache, cache_bytes_per_token, gqa_attention, gqa_reference,
                  gqa_step, init_gqa_state, mqa_attention, prefill_gqa_state)
from .landmark import (LandmarkState, block_mean_attention, block_mean_reference,
                       init_landmark_state, landmark_attention, landmark_reference,
                       landmark_step, prefill_landmark_state)
from .lsh import lsh_attention, lsh_buckets, lsh_mask, lsh_reference, lsh_rotation
from .retrieval import landmark_retrieval_attention, landmark_retrieval_reference
from .selective import (SelectiveSSMMixer, SelectiveState, selective_reference,
                        selective_scan)
from .shortconv import ShortConv, causal_conv1d, causal_conv1d_reference
from .sinks import (SinkCache, init_sink_state, prefill_sink_state, sink_attention,
                    sink_mask, sink_reference, sink_step)
from .ssm import (SSMState, init_ssm_state, prefill_ssm_state, ssm_reference, ssm_scan,
                  ssm_step)

__all__ = [
    "exact_attention", "expand_kv",
    # linear / kernel attention, Linformer projection (phaselib.efficient_attention)
    "LinearAttentionState", "elu_feature_map", "linear_attention",
    "linear_attention_parallel", "linear_attention_recurrent", "linear_attention_step",
    "lowrank_attention", "sliding_window_attention", "sliding_window_reference",
    # fused
    "fused_attention", "fused_causal", "fused_reference",
    # grouped / multi-query attention and the KV cache
    "KVCache", "cache_bytes_per_token", "gqa_attention", "gqa_reference", "gqa_step",
    "init_gqa_state", "mqa_attention", "prefill_gqa_state",
    # sliding window with attention sinks
    "SinkCache", "init_sink_state", "prefill_sink_state", "sink_attention", "sink_mask",
    "sink_reference", "sink_step",
    # block means (pooling; the functions' old name is "landmark")
    "LandmarkState", "init_landmark_state", "landmark_attention", "landmark_reference",
    "landmark_step", "prefill_landmark_state", "block_mean_attention",
    "block_mean_reference",
    # Landmark Attention: landmarks choose blocks, exact tokens are read
    "landmark_retrieval_attention", "landmark_retrieval_reference",
    # k-means centroids of completed blocks (compression; old name "cluster")
    "ClusterState", "cluster_attention", "cluster_reference", "cluster_step",
    "init_cluster_state", "kmeans_keys", "prefill_cluster_state",
    "centroid_attention", "centroid_reference",
    # routing by content with exact keys (Reformer's LSH buckets)
    "lsh_attention", "lsh_buckets", "lsh_mask", "lsh_reference", "lsh_rotation",
    # banded plus low-rank (FMMformer)
    "FMMState", "far_field", "fmm_attention", "fmm_reference", "fmm_step",
    "init_fmm_state", "prefill_fmm_state",
    # a diagonal linear recurrence (state space / retention) with a parallel scan
    "SSMState", "init_ssm_state", "prefill_ssm_state", "ssm_reference", "ssm_scan",
    "ssm_step",
    # the selective state space (Mamba's S6) and its mixer
    "SelectiveSSMMixer", "SelectiveState", "selective_reference", "selective_scan",
    # short causal convolution (H3, Zoology/Based, Mamba)
    "ShortConv", "causal_conv1d", "causal_conv1d_reference",
]
