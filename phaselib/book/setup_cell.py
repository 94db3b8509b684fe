"""The canonical first code cell of every chapter: install phaselib where it is missing.

One template, filled with `_config.yml`'s `repository.url` (the one place the URL is
written) and the learner extra. `sync_setup` rewrites every chapter's first code cell to
it; `check_setup_cells` lists the chapters that differ (a test fails on any).
"""

from __future__ import annotations

from pathlib import Path

from .toc import read_notebook, repository_url, toc_notebooks, write_notebook

__all__ = ["TEMPLATE", "EXTRA", "setup_cell_source", "sync_setup", "check_setup_cells"]

EXTRA = "colab"  # pyproject.toml's light extra: what the chapters import, no book tools

TEMPLATE = '''\
# Setup: on Colab (or any runtime without phaselib) install it from the repository.
import importlib, importlib.util, subprocess, sys

if importlib.util.find_spec("phaselib") is None:
    url = "git+{url}"
    try:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                               f"phaselib[{extra}] @ {{url}}"])
    except subprocess.CalledProcessError:
        msg = (f"Could not install phaselib from {{url}}: set url above to the "
               "book's repository, or upload a phaselib wheel and run "
               "!pip install phaselib-*.whl; then run this cell again.")
        raise SystemExit(msg) from None
    importlib.invalidate_caches()'''

MARKER = "# Setup:"  # how a chapter's first code cell is recognised as the setup cell


def setup_cell_source(root: str | Path = ".", url: str | None = None) -> str:
    """The setup cell's text for the book at `root` (or for `url` when given)."""
    url = repository_url(root) if url is None else url
    return TEMPLATE.format(url=url, extra=EXTRA)


def _lines(text: str) -> list[str]:
    """A notebook cell's `source` as nbformat writes it: lines, each but the last with
    its newline."""
    return text.splitlines(keepends=True)


def _first_code_cell(nb: dict, path: Path) -> dict:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            return cell
    raise ValueError(f"{path} has no code cell")


def check_setup_cells(root: str | Path = ".") -> list[str]:
    """The chapters of `_toc.yml` whose first code cell differs from the template."""
    want = setup_cell_source(root)
    bad = []
    for rel in toc_notebooks(root):
        cell = _first_code_cell(read_notebook(Path(root) / rel), rel)
        if "".join(cell.get("source", [])) != want:
            bad.append(str(rel))
    return bad


def sync_setup(root: str | Path = ".") -> list[str]:
    """Rewrite the first code cell of every notebook in `_toc.yml` to the template;
    returns the notebooks changed. Ids, metadata and every other cell are kept; a
    notebook already in step is not rewritten. A first code cell that is not a setup
    cell (does not start with "# Setup:") stops everything before anything is written.
    """
    want = _lines(setup_cell_source(root))
    notebooks = {rel: read_notebook(Path(root) / rel) for rel in toc_notebooks(root)}
    strange = [str(rel) for rel, nb in notebooks.items()
               if not "".join(_first_code_cell(nb, rel).get("source", []))
               .lstrip().startswith(MARKER)]
    if strange:
        raise ValueError("the first code cell of these notebooks is not a setup cell "
                         f"(it must start with {MARKER!r}); add one by hand first: "
                         + ", ".join(strange))
    changed = []
    for rel, nb in notebooks.items():
        cell = _first_code_cell(nb, rel)
        if cell.get("source") == want:
            continue
        cell["source"] = want
        write_notebook(nb, Path(root) / rel)
        changed.append(str(rel))
    return changed
