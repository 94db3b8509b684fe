"""The remedies-by-failures table: complete, allowed verdicts, live links, rendering."""

import json
import re
from pathlib import Path

import pytest

from phaselib.remedies.table import (DATA, VERDICTS, Cell, Table, disagreements,
                                     load_table, seed003_cells, table_html, table_markdown,
                                     verdict_counts)

ROOT = Path(__file__).resolve().parents[2]


def _toc_files() -> set[str]:
    return set(re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text()))


def test_every_cell_has_an_allowed_verdict_for_every_remedy_and_failure():
    t = load_table()
    assert len(t.rows) == 10 and list(t.cols) == [f"F{i}" for i in range(1, 10)]
    assert len(t.cells) == 90
    assert all(c.verdict in VERDICTS for c in t.cells.values())


def test_every_evidence_link_points_at_a_chapter_in_the_toc_and_an_existing_label():
    toc = _toc_files()
    for c in load_table().cells.values():
        assert c.chapter in toc, f"{c.remedy}/{c.failure}: {c.chapter} is not in _toc.yml"
        if c.label:
            nb = (ROOT / f"{c.chapter}.ipynb").read_text(encoding="utf-8")
            assert f"({c.label})=" in nb, f"{c.chapter} has no label {c.label}"


def test_html_of_a_hand_built_two_by_two_table():
    cells = {("a", "F1"): Cell("a", "F1", "helps", "measured", "book/part3/x", "x-l", "n1"),
             ("a", "F2"): Cell("a", "F2", "no effect", "construction", "book/part2/y",
                               None, "n2"),
             ("b", "F1"): Cell("b", "F1", "makes worse", "measured", "book/part3/x", None,
                               "n3"),
             ("b", "F2"): Cell("b", "F2", "not measured", "measured", "book/part2/y",
                               "y-l", "n<4>")}
    t = Table({"a": "Alpha", "b": "Beta"}, {"F1": "One", "F2": "Two"}, cells)
    h = table_html(t, "book/part3/x")
    assert h.count("<tr") == 3 and h.count("<td") == 4
    assert '<a href="x.html#x-l">helps</a>' in h
    assert '<a href="../part2/y.html">no effect</a>&dagger;' in h
    assert 'title="n&lt;4&gt;"' in h
    assert h.index("Alpha") < h.index("Beta")
    md = table_markdown(t, "book/part3/x")
    assert md.splitlines() == [
        "| Remedy | F1 | F2 |", "|---|---|---|",
        "| Alpha | [✓ helps](x.html#x-l) | [– no effect](../part2/y.html)† |",
        "| Beta | [✗ makes worse](x.html) | [? not measured](../part2/y.html#y-l) |"]


def test_a_missing_cell_or_an_unknown_verdict_is_refused():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Cell("a", "F1", "great", "measured", "book/x", None, "")
    with pytest.raises(ValueError, match="basis must be one of"):
        Cell("a", "F1", "helps", "vibes", "book/x", None, "")
    with pytest.raises(ValueError, match="missing"):
        Table({"a": "A"}, {"F1": "1", "F2": "2"},
              {("a", "F1"): Cell("a", "F1", "helps", "measured", "book/x", None, "")})


def test_a_data_file_without_a_common_entry_is_refused(tmp_path):
    doc = json.loads(DATA.read_text(encoding="utf-8"))
    del doc["common"]["F1"]
    p = tmp_path / "v.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=r"no verdict for \(fused, F1\)"):
        load_table(p)


def test_seed003_maps_onto_our_rows_and_the_disagreements_are_real_differences():
    t = load_table()
    seed = seed003_cells()
    assert seed[("ssm", "F2")] == "helps" and seed[("window", "F4")] == "no effect"
    assert not any(f == "F9" for _, f in seed)
    d = disagreements(t, seed)
    assert d, "expected at least one cell where the evidence differs from seed 003"
    for r, f, ours, theirs in d:
        assert ours != theirs and ours == t.verdict(r, f) and ours != "not measured"


def test_verdict_counts_add_up_to_the_cells():
    t = load_table()
    n = verdict_counts(t)
    assert set(n) == set(VERDICTS) and sum(n.values()) == len(t.cells)


def test_cost_verdict_reads_state_growth_and_peak_memory():
    from phaselib.remedies.table import cost_verdict

    slopes = {"exact": {"forward_peak": 2.0}, "fused": {"forward_peak": 1.0},
              "slow": {"forward_peak": 1.9}, "ring": {"state_bytes": 0.0},
              "gqa": {"state_bytes": 1.0}, "kv-cache": {"state_bytes": 1.0},
              "big": {"state_bytes": 1.0}}
    rows = [{"method": m, "pass": "decode", "T": L, "state_bytes": b * L}
            for L in (8, 16) for m, b in (("gqa", 2), ("kv-cache", 4), ("big", 4),
                                          ("ring", 0.1))]
    assert cost_verdict("ring", slopes, rows) == "helps"
    assert cost_verdict("gqa", slopes, rows) == "partly"
    assert cost_verdict("big", slopes, rows) == "no effect"
    assert cost_verdict("fused", slopes, rows) == "partly"
    assert cost_verdict("slow", slopes, rows) == "no effect"
    with pytest.raises(ValueError, match="not in the benchmark"):
        cost_verdict("nope", slopes, rows)
