"""Reading comfort (issue 11): every chapter in _toc.yml reads well on the rendered page.

For each notebook listed in the table of contents:
- code lines are at most 88 characters (the first "# Setup:" cell is exempt: its
  install line is rewritten by hand for every chapter);
- a code cell that draws a figure is folded (`hide-input`, `hide-cell` or
  `remove-input`), unless it is an exercise stub or a solution;
- every figure has a title and both axis labels, set in the cell itself or by one of
  the package's plot helpers that sets them (checked below by calling the helpers);
- the cell after a figure is markdown: the figure's caption;
- no name imported from phaselib is defined again in the chapter (a local function of
  the same name once shadowed a sweep's registered measure).

A notebook that another helper is still fixing may be listed in XFAIL with the reason;
the mark is strict, so the entry must go once the notebook passes.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MAX_COLS = 88
FOLDED = {"hide-input", "hide-cell", "remove-input"}

# Notebooks that do not meet a check yet, each with its reason: {(check, path): why}.
XFAIL: dict[tuple[str, str], str] = {
}

# A cell makes a figure when it shows one or creates one.
FIGURE = re.compile(r"plt\.show\(|plt\.subplots\(|plt\.figure\(|\.subplots\(")
TITLE = re.compile(r"set_title\(|suptitle\(|plt\.title\(|\btitle\s*=")
XLABEL = re.compile(r"set_xlabel\(|plt\.xlabel\(|\bxlabel\s*=")
YLABEL = re.compile(r"set_ylabel\(|plt\.ylabel\(|\bylabel\s*=")
# Plot helpers of the package that label the axes they draw on (what each sets; a title
# is given to plot_attention as its `title=` argument, which TITLE sees).
HELPERS = {
    "plot_attention": {"xlabel", "ylabel"},
    "plot_cost": {"title", "xlabel", "ylabel"},
    "plot_bandwidth": {"title", "xlabel", "ylabel"},
    "plot_time": {"xlabel", "ylabel"},
    "plot_memory": {"xlabel", "ylabel"},
}


def toc_chapters() -> list[str]:
    """Every `file:` of the table of contents, in order (without suffix)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def toc_notebooks() -> list[Path]:
    return [ROOT / f"{f}.ipynb" for f in toc_chapters() if (ROOT / f"{f}.ipynb").exists()]


NOTEBOOKS = toc_notebooks()


def code_cells(nb: Path) -> list[tuple[int, dict, str]]:
    """(index, cell, source) of every code cell, in order."""
    cells = json.loads(nb.read_text())["cells"]
    return [(i, c, "".join(c["source"])) for i, c in enumerate(cells)
            if c["cell_type"] == "code"]


def is_setup(src: str) -> bool:
    return src.lstrip().startswith("# Setup:")


def is_exercise(src: str) -> bool:
    """An exercise stub (raises NotImplementedError / calls a checker) or a solution."""
    return (src.lstrip().startswith("# Solution") or "NotImplementedError" in src
            or re.search(r"\bcheck_\w+\(", src) is not None)


def figure_cells(nb: Path) -> list[tuple[int, dict, str]]:
    return [(i, c, s) for i, c, s in code_cells(nb)
            if FIGURE.search(s) and not is_setup(s)]


def params(check: str):
    out = []
    for nb in NOTEBOOKS:
        rel = str(nb.relative_to(ROOT))
        why = XFAIL.get((check, rel))
        marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
        out.append(pytest.param(nb, id=rel, marks=marks))
    return out


def test_the_toc_lists_notebooks():
    assert len(NOTEBOOKS) >= 10, f"only {len(NOTEBOOKS)} notebooks found through _toc.yml"


def test_xfail_entries_name_listed_notebooks():
    listed = {str(nb.relative_to(ROOT)) for nb in NOTEBOOKS}
    stale = [path for _, path in XFAIL if path not in listed]
    assert not stale, f"XFAIL names notebooks that are not in _toc.yml: {stale}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda nb: str(nb.relative_to(ROOT)))
def test_every_cell_has_a_unique_id(nb):
    # nbformat 4.5 requires a cell id; a cell added without one validates with a
    # warning today and will be an error in later nbformat versions.
    doc = json.loads(nb.read_text())
    ids = [c.get("id") for c in doc["cells"]]
    missing = [i for i, x in enumerate(ids) if not x]
    assert not missing, f"{nb.name}: cells without an id: {missing}"
    assert len(set(ids)) == len(ids), f"{nb.name}: a cell id appears twice"


@pytest.mark.parametrize("nb", params("lines"))
def test_code_lines_fit_the_page(nb):
    long = []
    for i, _, src in code_cells(nb):
        if is_setup(src):
            continue
        long += [f"cell {i}, line {n + 1}: {len(line)} columns"
                 for n, line in enumerate(src.split("\n")) if len(line) > MAX_COLS]
    assert not long, f"{nb.name}: code lines over {MAX_COLS} columns: {long}"


@pytest.mark.parametrize("nb", params("folded"))
def test_figure_cells_are_folded(nb):
    open_ = [i for i, c, s in figure_cells(nb)
             if not is_exercise(s) and not FOLDED & set(c.get("metadata", {}).get("tags", []))]
    assert not open_, (f"{nb.name}: cells {open_} draw a figure but are not tagged "
                       f"hide-input (split the computation into its own cell)")


def labels_set(src: str) -> set[str]:
    found = {name for name, rx in (("title", TITLE), ("xlabel", XLABEL), ("ylabel", YLABEL))
             if rx.search(src)}
    for helper, sets in HELPERS.items():
        if re.search(rf"\b{helper}\(", src):
            found |= sets
    return found


@pytest.mark.parametrize("nb", params("labels"))
def test_figures_have_a_title_and_axis_labels(nb):
    missing = {i: sorted({"title", "xlabel", "ylabel"} - labels_set(s))
               for i, _, s in figure_cells(nb)}
    missing = {i: m for i, m in missing.items() if m}
    assert not missing, f"{nb.name}: figure cells without {missing}"


def _caption_index(cells, i):
    """Where a figure's caption should be: the next cell, or the one after the figure's
    provenance line (a code cell that only shows where its results file came from)."""
    j = i + 1
    if (j < len(cells) and cells[j]["cell_type"] == "code"
            and "show_provenance(" in "".join(cells[j]["source"])):
        j += 1
    return j


@pytest.mark.parametrize("nb", params("caption"))
def test_figures_have_a_caption_after_them(nb):
    cells = json.loads(nb.read_text())["cells"]
    bare = []
    for i, _, s in figure_cells(nb):
        j = _caption_index(cells, i)
        if not is_exercise(s) and (j >= len(cells) or cells[j]["cell_type"] != "markdown"
                                   or not "".join(cells[j]["source"]).strip()):
            bare.append(i)
    assert not bare, f"{nb.name}: figure cells {bare} are not followed by a caption"


# The checks above are regular expressions; these tests keep them honest.

def test_labels_are_found_in_a_cell_that_sets_them():
    src = 'fig, ax = plt.subplots()\nax.set(xlabel="T (tokens)", ylabel="s", title="t")'
    assert labels_set(src) == {"title", "xlabel", "ylabel"}
    assert labels_set("fig, ax = plt.subplots()\nax.plot([1, 2])") == set()


def test_exercises_and_setup_are_recognised():
    assert is_exercise("# Solution\ndef f(x):\n    return x\nassert check_f(f)")
    assert is_exercise("def f(x):\n    raise NotImplementedError\n")
    assert not is_exercise("fig, ax = plt.subplots()\nplt.show()")
    assert is_setup("# Setup: on a fresh Colab runtime this installs phaselib\n")


def _axes():
    fig, ax = plt.subplots()
    return fig, ax


def test_plot_helpers_label_what_they_draw():
    """Every helper in HELPERS sets what HELPERS says it sets."""
    import torch

    from phaselib.bench import attention as bench_attention
    from phaselib.bench.kernels import plot_bandwidth, plot_cost
    from phaselib.plots import plot_attention

    got = {}
    fig, ax = _axes()
    plot_attention(ax, torch.rand(4, 4))
    got["plot_attention"] = ax
    doc = {"machine": {"device": "cpu"},
           "rows": [{"method": m, "pass": "forward+backward", "T": t,
                     "time_s": 1e-3 * t, "peak_bytes": 100 * t, "fraction_of_copy": 0.5}
                    for m in ("pyramid", "sdpa") for t in (8, 16)]}
    fig2, ax2 = _axes()
    plot_cost(ax2, doc)
    got["plot_cost"] = ax2
    bw = {"machine": {"device": "cpu"},
          "rows": [{"pass": p, "T": t, "fraction_of_copy": 0.5}
                   for p in ("forward", "backward") for t in (8, 16)]}
    fig3, ax3 = _axes()
    plot_bandwidth(ax3, bw)
    got["plot_bandwidth"] = ax3
    results = [{"method": "naive", "T": t, "time_s": 1e-4 * t * t, "peak_bytes": 10 * t * t}
               for t in (64, 128, 256)]
    for name in ("plot_time", "plot_memory"):
        figx, axx = _axes()
        getattr(bench_attention, name)(axx, results, methods=("naive",))
        got[name] = axx
    try:
        for name, sets in HELPERS.items():
            ax_ = got[name]
            have = {"title": ax_.get_title(), "xlabel": ax_.get_xlabel(),
                    "ylabel": ax_.get_ylabel()}
            empty = [k for k in sets if not have[k]]
            assert not empty, f"{name} does not set {empty}"
    finally:
        plt.close("all")


def test_plot_attention_draws_its_colour_scale_when_asked():
    import torch

    from phaselib.plots import plot_attention

    fig, ax = _axes()
    plot_attention(ax, torch.rand(4, 4), colorbar=True)
    bars = [a for a in fig.axes if a is not ax]
    assert len(bars) == 1 and bars[0].get_ylabel() == "attention weight"
    with pytest.raises(ValueError, match="weights must be a"):
        plot_attention(ax, torch.rand(4))


def _module_level_names(node) -> list[str]:
    """Names a statement binds in the notebook's namespace: def and class names, and
    every name stored (assignments, tuple unpacking, for and with targets, annotated
    assignments), but not inside a function, class, lambda or comprehension."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                         ast.GeneratorExp)):
        return []
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return [node.id]
    return [n for child in ast.iter_child_nodes(node) for n in _module_level_names(child)]


def _imported_and_defined(nb: Path) -> tuple[set, dict]:
    """Names a chapter imports from phaselib, and {name: [cell, ...]} of the names its
    cells bind at module level (`_module_level_names`). IPython lines (% and !) are
    dropped before parsing."""
    imported, defined = set(), {}
    for i, _, src in code_cells(nb):
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                         for line in src.split("\n"))
        tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "phaselib"):
                imported |= {a.asname or a.name for a in node.names}
        for stmt in tree.body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                continue
            for name in _module_level_names(stmt):
                defined.setdefault(name, []).append(i)
    return imported, defined


def test_the_shadow_check_sees_a_redefined_import(tmp_path):
    nb = tmp_path / "x.ipynb"
    cells = [{"cell_type": "code",
              "source": ["from phaselib.x import a, b as c, e, f, g, h\n"]},
             {"cell_type": "code", "source": ["def a(r):\n", "    e = r\n",
                                              "    return [h for h in r]\n"]},
             {"cell_type": "code", "source": ["%time d = 1\n", "x, c = 1, 2\n"]},
             {"cell_type": "code", "source": ["for e in range(2):\n", "    pass\n",
                                              "f: int = 3\n", "with open('x') as g:\n",
                                              "    pass\n"]}]
    nb.write_text(json.dumps({"cells": cells}))
    imported, defined = _imported_and_defined(nb)
    assert imported == {"a", "c", "e", "f", "g", "h"}
    assert {k: v for k, v in defined.items() if k in imported} == {
        "a": [1], "c": [2], "e": [3], "f": [3], "g": [3]}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda nb: str(nb.relative_to(ROOT)))
def test_a_chapter_does_not_redefine_a_name_it_imports_from_phaselib(nb):
    imported, defined = _imported_and_defined(nb)
    both = {name: defined[name] for name in sorted(imported & set(defined))}
    assert not both, f"{nb.name}: imported from phaselib and defined again: {both}"
