"""The remedies of Part III as functions, each beside a plain reference twin.

Every attention-like remedy is `name(q, k, v, ..., *, scale=None)` with q [B, H, T, dh],
k, v [B, Hkv, T, dh] (Hkv = H except for grouped/multi-query attention; every remedy
here accepts Hkv dividing H), causal, returning [B, H, T, dv]. Where it decodes with a
cache or a state: `init_<name>_state(...)`, `prefill_<name>_state(k, v, ...)` (the
state after a prompt) and `<name>_step(q_t, k_t, v_t, state) -> (out_t, state)`, equal
to the batch function at every position; `state.nbytes()` is what the state holds.

remedy     batch (twin)                                    decode
fused      fused_causal (fused_reference)                  the KV cache of gqa, Hkv = H
GQA, MQA   gqa_attention, mqa_attention (gqa_reference)    gqa_step
window     sink_attention(window, n_sink) (sink_reference) sink_step
landmarks  landmark_attention(block) (landmark_reference)  landmark_step
clusters   cluster_attention(block, n_clusters) (cluster_reference)   cluster_step
FMM        fmm_attention(window) (fmm_reference)           fmm_step
linear     linear_attention (linear_attention_parallel)    linear_attention_step
SSM        ssm_scan(x, a, b, c) (ssm_reference)            ssm_step(x_t, a, b, c, state)

`exact_attention` is the exact causal attention the approximations are compared with.
The chapter's modules (mixers, tasks, table) live beside these in this package.
"""

from ..efficient_attention import (LinearAttentionState, elu_feature_map,
                                   linear_attention, linear_attention_parallel,
                                   linear_attention_recurrent, linear_attention_step,
                                   lowrank_attention, sliding_window_attention,
                                   sliding_window_reference)
from ._common import exact_attention, expand_kv
from .cluster import (ClusterState, cluster_attention, cluster_reference, cluster_step,
                      init_cluster_state, kmeans_keys, prefill_cluster_state)
from .fmm import (FMMState, far_field, fmm_attention, fmm_reference, fmm_step,
                  init_fmm_state, prefill_fmm_state)
from .fused import fused_attention, fused_causal, fused_reference
from .gqa import (KVCache, cache_bytes_per_token, gqa_attention, gqa_reference,
                  gqa_step, init_gqa_state, mqa_attention, prefill_gqa_state)
from .landmark import (LandmarkState, init_landmark_state, landmark_attention,
                       landmark_reference, landmark_step, prefill_landmark_state)
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
    # causal landmarks (block means)
    "LandmarkState", "init_landmark_state", "landmark_attention", "landmark_reference",
    "landmark_step", "prefill_landmark_state",
    # k-means clusters of completed blocks
    "ClusterState", "cluster_attention", "cluster_reference", "cluster_step",
    "init_cluster_state", "kmeans_keys", "prefill_cluster_state",
    # banded plus low-rank (FMMformer)
    "FMMState", "far_field", "fmm_attention", "fmm_reference", "fmm_step",
    "init_fmm_state", "prefill_fmm_state",
    # a diagonal linear recurrence (state space / retention) with a parallel scan
    "SSMState", "init_ssm_state", "prefill_ssm_state", "ssm_reference", "ssm_scan",
    "ssm_step",
]
