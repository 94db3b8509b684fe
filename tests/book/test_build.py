"""The rendered book: `jupyter-book build` with warnings as errors, then its pages.

Building executes every notebook (cached in _build/.jupyter_cache), so this is slow;
`make test` runs it last.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
CHAPTERS = re.findall(r"file:\s*([^\s#]+)", (ROOT / "_toc.yml").read_text())


@pytest.fixture(scope="module")
def built():
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", str(ROOT), "--warningiserror", "--keep-going"],
                            cwd=ROOT, capture_output=True, text=True)
    log = result.stdout[-20000:] + result.stderr[-20000:]
    assert result.returncode == 0, f"jupyter-book build failed:\n{log}"
    return log


def test_book_builds_with_warnings_as_errors(built):
    assert (HTML / "index.html").exists()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_is_rendered(built, chapter):
    page = HTML / f"{chapter}.html"
    assert page.exists(), f"{page} was not built"
    html = page.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" not in html, f"{chapter} shows an error"
    if (ROOT / f"{chapter}.ipynb").exists():
        assert re.search(r"<img[^>]+src=\"[^\"]*\.png\"", html), f"{chapter} has no figure"
        assert "cell_output" in html, f"{chapter} was not executed"
