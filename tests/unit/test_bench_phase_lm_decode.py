"""The decode benchmark: its KV-cache step is the transformer, its filled state is a state.

No timing is asserted: speed is measured by `python -m phaselib.bench phase-lm-decode`.
"""

import torch

from phaselib.bench import BENCHMARKS
from phaselib.bench.__main__ import main as bench_main
from phaselib.bench.io import read_results
from phaselib.bench.phase_lm_decode import filled_phase_state, kv_decode_step
from phaselib.phase_lm import PhaseLM, PhaseLMConfig
from phaselib.transformer import TinyTransformer, TransformerConfig


def test_phase_lm_decode_is_registered():
    assert BENCHMARKS["phase-lm-decode"] == "phaselib.bench.phase_lm_decode"


def test_kv_decode_step_equals_the_transformer_forward():
    torch.manual_seed(0)
    model = TinyTransformer(TransformerConfig(vocab_size=11, block_size=20, n_layer=2,
                                              n_head=3, n_embd=12)).eval()
    idx = torch.randint(11, (2, 17))
    cache = [(torch.zeros(2, 3, 20, 4), torch.zeros(2, 3, 20, 4)) for _ in model.blocks]
    with torch.no_grad():
        got = torch.stack([kv_decode_step(model, idx[:, t], t, cache) for t in range(17)], 1)
        want, _ = model(idx)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_filled_phase_state_has_the_state_of_a_real_stream():
    torch.manual_seed(0)
    model = PhaseLM(PhaseLMConfig(vocab_size=11, block_size=64, n_layer=2, n_embd=12,
                                  n_head=3, pyr_dim=4, window=3)).eval()
    filled = filled_phase_state(model, 40)
    with torch.no_grad():
        _, real = model.step(torch.zeros(1, dtype=torch.long))
        logits, after = model.step(torch.zeros(1, dtype=torch.long), filled)
    assert filled.t == 40 and after.t == 41 and logits.shape == (1, 11)
    assert filled.nbytes() == real.nbytes()


def test_command_line_writes_both_methods(tmp_path):
    out = tmp_path / "dec.json"
    rc = bench_main(["phase-lm-decode", "--out", str(out), "--min-t", "8", "--max-t", "32",
                     "--n-layer", "1", "--n-embd", "12", "--n-head", "3", "--pyr-dim", "4",
                     "--window", "3", "--steps", "2", "--repeats", "1"])
    assert rc == 0
    doc = read_results(out)
    assert "provenance" in doc and doc["meta"]["window"] == 3
    rows = doc["rows"]
    assert [(r["method"], r["T"]) for r in rows] == [
        (m, T) for T in (8, 32) for m in ("phase-lm", "transformer-kv")]
    kv = [r["state_bytes"] for r in rows if r["method"] == "transformer-kv"]
    assert kv == [2 * (T + 1) * 12 * 4 for T in (8, 32)]   # K and V, one layer, fp32
    for r in rows:
        assert r["pass"] == "decode" and r["time_s"] > 0 and r["state_bytes"] > 0
