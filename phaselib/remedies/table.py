"""The remedies-by-failures table, generated from data, and seed 003's beside it.

Book: Part III, "The remedies, measured". `verdicts.json` (beside this file) holds one
verdict per (remedy, failure mode) with the chapter and label of its evidence; a cell
that a remedy does not override takes the failure's "common" entry. `load_table()`
reads it into `Cell`s, `table_html` / `table_markdown` render it with links relative
to the page that shows it, `seed003_cells()` maps seed 003's marks onto our rows and
`disagreements()` lists the cells where the two differ. A column computed from results
rather than stored (the recall column, `recall.recall_column`) joins the table with
`with_column`.
"""

from __future__ import annotations

import html
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VERDICTS", "BASES", "DATA", "Cell", "Table", "load_table", "with_column",
           "table_html", "table_markdown", "seed003_cells", "disagreements",
           "verdict_counts", "cost_verdict"]

VERDICTS = ("helps", "partly", "no effect", "makes worse", "inconclusive",
            "not measured")
BASES = ("measured", "construction")
DATA = Path(__file__).resolve().parent / "verdicts.json"
_MARK = {"helps": "✓", "partly": "±", "no effect": "–", "makes worse": "✗",
         "inconclusive": "~", "not measured": "?"}
_CSS = {"helps": "remedy-helps", "partly": "remedy-partly", "no effect": "remedy-none",
        "makes worse": "remedy-worse", "inconclusive": "remedy-inconclusive",
        "not measured": "remedy-untested"}


@dataclass(frozen=True)
class Cell:
    """One verdict: remedy, failure ("F1".."F9"), verdict (one of VERDICTS), basis
    (one of BASES), chapter (a path without suffix, "book/part2/f5-context-collapse"),
    label (a MyST label in it, or None), note (one line)."""

    remedy: str
    failure: str
    verdict: str
    basis: str
    chapter: str
    label: str | None
    note: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"cell ({self.remedy}, {self.failure}): verdict must be one "
                             f"of {VERDICTS}, got {self.verdict!r}")
        if self.basis not in BASES:
            raise ValueError(f"cell ({self.remedy}, {self.failure}): basis must be one "
                             f"of {BASES}, got {self.basis!r}")
        if not isinstance(self.chapter, str) or not self.chapter.startswith("book/"):
            raise ValueError(f"cell ({self.remedy}, {self.failure}): chapter must be a "
                             f"path like 'book/part2/f5-context-collapse', got "
                             f"{self.chapter!r}")

    def href(self, page: str) -> str:
        """The evidence's address from `page` (a chapter path without suffix), as the
        built site has it: relative, `.html`, with the label's anchor."""
        target = posixpath.relpath(self.chapter, posixpath.dirname(page)) + ".html"
        return target + (f"#{self.label}" if self.label else "")


@dataclass(frozen=True)
class Table:
    """rows: {remedy: display name}; cols: {failure: display name}; cells[(r, f)]."""

    rows: dict
    cols: dict
    cells: dict

    def __post_init__(self):
        missing = [(r, f) for r in self.rows for f in self.cols if (r, f) not in self.cells]
        if missing:
            raise ValueError(f"cells must cover every (remedy, failure); missing {missing}")

    def verdict(self, remedy: str, failure: str) -> str:
        return self.cells[(remedy, failure)].verdict


def load_table(path: str | Path | None = None) -> Table:
    """The table in `path` (default: the package's verdicts.json)."""
    doc = json.loads(Path(path or DATA).read_text(encoding="utf-8"))
    rows, cols = doc["remedies"], doc["failures"]
    unknown = sorted(set(doc["verdicts"]) - set(rows))
    if unknown:
        raise ValueError(f"verdicts name remedies that are not rows: {unknown}")
    cells = {}
    for r in rows:
        own = doc["verdicts"].get(r, {})
        for f in cols:
            entry = own.get(f, doc["common"].get(f))
            if entry is None:
                raise ValueError(f"no verdict for ({r}, {f}) and no common one for {f}")
            cells[(r, f)] = Cell(remedy=r, failure=f, **entry)
    return Table(rows, cols, cells)


def with_column(table: Table, key: str, name: str, cells: dict) -> Table:
    """`table` with one more column `key` (shown as `name`), its cells {remedy: Cell},
    one for every row, each naming `key` as its failure."""
    if key in table.cols:
        raise ValueError(f"key must be a new column, but {key!r} is one already")
    missing = sorted(set(table.rows) - set(cells))
    extra = sorted(set(cells) - set(table.rows))
    if missing or extra:
        raise ValueError(f"cells must have one Cell per row of the table; missing "
                         f"{missing}, not rows {extra}")
    wrong = [r for r, c in cells.items() if (c.remedy, c.failure) != (r, key)]
    if wrong:
        raise ValueError(f"cells of rows {wrong} must name their row and {key!r}")
    return Table(table.rows, {**table.cols, key: name},
                 {**table.cells, **{(r, key): c for r, c in cells.items()}})


def table_html(table: Table, page: str) -> str:
    """The table as HTML: a row per remedy, a column per failure, each cell its verdict
    linked to its evidence (relative to `page`); a dagger marks 'by construction'."""
    e = html.escape
    head = "".join(f'<th title="{e(n)}">{e(f)}</th>' for f, n in table.cols.items())
    out = ['<table class="remedies-table table"><thead><tr><th>Remedy</th>'
           f"{head}</tr></thead><tbody>"]
    for r, name in table.rows.items():
        tds = []
        for f in table.cols:
            c = table.cells[(r, f)]
            dag = "&dagger;" if c.basis == "construction" else ""
            tds.append(f'<td class="{_CSS[c.verdict]}" data-verdict="{e(c.verdict)}" '
                       f'title="{e(c.note)}"><a href="{e(c.href(page))}">'
                       f"{e(c.verdict)}</a>{dag}</td>")
        out.append(f'<tr data-remedy="{e(r)}"><th>{e(name)}</th>{"".join(tds)}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def table_markdown(table: Table, page: str) -> str:
    """The same table as Markdown (a mark per verdict, each linked to its evidence)."""
    lines = ["| Remedy | " + " | ".join(table.cols) + " |",
             "|---" * (len(table.cols) + 1) + "|"]
    for r, name in table.rows.items():
        cells = []
        for f in table.cols:
            c = table.cells[(r, f)]
            dag = "†" if c.basis == "construction" else ""
            cells.append(f"[{_MARK[c.verdict]} {c.verdict}]({c.href(page)}){dag}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed003_cells(path: str | Path | None = None) -> dict:
    """{(remedy, failure): seed 003's verdict in our words} for every row of ours that a
    row of seed 003's table covers (F1..F8; seed 003's table has no F9 column)."""
    doc = json.loads(Path(path or DATA).read_text(encoding="utf-8"))
    legend = doc["seed003"]["legend"]
    out = {}
    for row in doc["seed003"]["rows"].values():
        for r in row["ours"]:
            for f, mark in row["marks"].items():
                out[(r, f)] = legend[mark]
    return out


def disagreements(table: Table, seed: dict) -> list[tuple[str, str, str, str]]:
    """(remedy, failure, ours, seed 003's) for each cell both fill where they differ;
    cells we did not measure are left out (no evidence to disagree with)."""
    out = []
    for (r, f), theirs in seed.items():
        c = table.cells.get((r, f))
        if c is None or c.verdict == "not measured" or c.verdict == theirs:
            continue
        out.append((r, f, c.verdict, theirs))
    return sorted(out, key=lambda t: (list(table.rows).index(t[0]), t[1]))


def verdict_counts(table: Table) -> dict:
    """{verdict: number of cells}, every verdict present."""
    n = {v: 0 for v in VERDICTS}
    for c in table.cells.values():
        n[c.verdict] += 1
    return n


def cost_verdict(method: str, slopes: dict, rows: list[dict]) -> str:
    """The F2 verdict a cost benchmark (`python -m phaselib.bench remedies`) gives a
    method, from memory, which does not jitter as time does:

    - "helps": its decode state does not grow with the context (log-log slope < 0.5);
    - "partly": it grows, but the state at the longest context is smaller than the KV
      cache's ("kv-cache"), or (no decode pass) its forward peak memory grows at least
      half a power of T more slowly than the written-out matrix's ("exact");
    - "no effect": otherwise.
    """
    if method not in slopes:
        raise ValueError(f"method {method!r} is not in the benchmark's slopes "
                         f"{sorted(slopes)}")
    s = slopes[method]
    if s.get("state_bytes") is not None:
        if s["state_bytes"] < 0.5:
            return "helps"
        dec = [r for r in rows if r["pass"] == "decode"]
        L = max(r["T"] for r in dec)
        size = {r["method"]: r["state_bytes"] for r in dec if r["T"] == L}
        return "partly" if size[method] < size["kv-cache"] else "no effect"
    peak, exact = s.get("forward_peak"), slopes["exact"]["forward_peak"]
    return "partly" if peak is not None and peak < exact - 0.5 else "no effect"
