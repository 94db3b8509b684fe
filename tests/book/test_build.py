"""The rendered book: `jupyter-book build` with warnings as errors, then its pages.

Building executes every notebook (cached in _build/.jupyter_cache), so this is slow;
`make test` runs it last.
"""

import json
import re

import pytest
import yaml

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


NOTEBOOK_CHAPTERS = [c for c in CHAPTERS if (ROOT / f"{c}.ipynb").exists()]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def _link(html: str, marker: str) -> str:
    """The href of the one <a> whose attributes contain `marker`."""
    hrefs = [m.group(1) for m in re.finditer(r"<a\s+href=\"([^\"]+)\"([^>]*)>", html, re.S)
             if marker in m.group(2)]
    assert len(hrefs) == 1, f"expected one link marked {marker!r}, found {hrefs}"
    return hrefs[0]


@pytest.mark.parametrize("chapter", NOTEBOOK_CHAPTERS)
def test_chapter_offers_its_notebook_and_colab(built, chapter):
    """The header's "download" button gives the chapter's .ipynb, and "Colab" opens the
    repository's copy of it, at the address _config.yml's repository names."""
    page = built / f"{chapter}.html"
    html = page.read_text(encoding="utf-8")
    download = _link(html, "btn-download-source-button")
    assert download.endswith(f"{chapter}.ipynb"), download
    served = (page.parent / download).resolve()
    assert served.is_file(), f"{chapter}: the download button points at a missing {download}"
    notebook = json.loads(served.read_text(encoding="utf-8"))
    source = json.loads((ROOT / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    assert notebook["cells"] == source["cells"], f"{chapter}: the download is not the chapter"
    repo = CONFIG["repository"]
    owner_name = repo["url"].removeprefix("https://github.com/").strip("/")
    colab = (f"{CONFIG['launch_buttons']['colab_url']}/github/{owner_name}/blob/"
             f"{repo['branch']}/{repo.get('path_to_book') or ''}{chapter}.ipynb")
    assert _link(html, 'title="Launch on Colab"') == colab


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_scripts_are_served_by_the_book(built, chapter):
    """No page loads JavaScript from another host; math and widgets use the vendored
    files (_ext/vendor_js.py), which exist in the build."""
    page = built / f"{chapter}.html"
    html = page.read_text(encoding="utf-8")
    sources = [s.split("?")[0] for s in re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html)]
    remote = [s for s in sources if "//" in s]
    assert not remote, f"{chapter} loads scripts from elsewhere: {remote}"
    for src in sources:
        assert (page.parent / src).resolve().is_file(), f"{chapter}: {src} is missing"
    if 'class="math' in html:
        assert any(s.endswith("_static/vendor/mathjax/tex-chtml.js") for s in sources), chapter
    if "application/vnd.jupyter.widget-state+json" in html:
        order = [s.rsplit("/", 1)[1] for s in sources if "/_static/vendor/" in f"/{s}"
                 and not s.endswith("tex-chtml.js")]
        assert order == ["require.js", "offline-setup.js", "embed-amd.js"], order
