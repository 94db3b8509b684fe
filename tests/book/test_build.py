"""The rendered book: `jupyter-book build` with warnings as errors, then its pages.

Building executes every notebook (cached in _build/.jupyter_cache), so this is slow;
`make test` runs it last.
"""

import re

import pytest

from .conftest import CHAPTERS, ROOT


def test_book_builds_with_warnings_as_errors(built):
    assert (built / "index.html").exists()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_is_rendered(built, chapter):
    page = built / f"{chapter}.html"
    assert page.exists(), f"{page} was not built"
    html = page.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" not in html, f"{chapter} shows an error"
    if (ROOT / f"{chapter}.ipynb").exists():
        assert re.search(r"<img[^>]+src=\"[^\"]*\.png\"", html), f"{chapter} has no figure"
        assert "cell_output" in html, f"{chapter} was not executed"
