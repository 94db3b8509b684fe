"""lm-speed: one row per variant and block, with CPU and wall times per step."""

import json

import pytest

from phaselib import lm_sweep
from phaselib.bench import lm_speed

pytestmark = pytest.mark.usefixtures("one_thread")


def test_rows_time_a_training_step_and_the_file_has_provenance(tmp_path, monkeypatch):
    monkeypatch.setattr(lm_sweep, "SHAPE", dict(n_layer=1, n_embd=16, n_head=2))
    out = tmp_path / "s.json"
    assert lm_speed.main(["--out", str(out), "--blocks", "64", "128", "--repeats", "2",
                          "--variants", "transformer", "phase-window"]) == 0
    doc = json.loads(out.read_text())
    assert doc["provenance"]["command"].startswith("python -m phaselib.bench lm-speed")
    rows = {(r["variant"], r["block"]): r for r in doc["rows"]}
    assert set(rows) == {(v, b) for v in ("transformer", "phase-window") for b in (64, 128)}
    for r in rows.values():
        assert r["cpu_s_per_step"] > 0 and r["tokens_per_step"] == 1024
        assert r["tokens_per_cpu_s"] == pytest.approx(1024 / r["cpu_s_per_step"])
    assert rows[("phase-window", 128)]["batch"] == 8


def test_blocks_that_do_not_divide_the_tokens_per_step_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        lm_speed.main(["--out", str(tmp_path / "x.json"), "--blocks", "100"])
