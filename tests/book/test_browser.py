"""The rendered pages in a real headless browser (Debian's chromium).

Serves _build/html on 127.0.0.1 and loads pages with chromium, every other host made
unreachable (CI is offline; online, MathJax comes from a CDN and typesets the math).
The page's own JavaScript must have run, the math must be on the page for MathJax, and
every figure the page shows must be a real file. Skipped when no chromium is installed
(`.ci/run` installs it).
"""

import functools
import http.server
import re
import shutil
import subprocess
import tempfile
import threading

import pytest

from .conftest import CHAPTERS, ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOK_CHAPTERS = [c for c in CHAPTERS if (ROOT / f"{c}.ipynb").exists()]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


@pytest.fixture(scope="module")
def server(built):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("chapter", NOTEBOOK_CHAPTERS)
def test_chapter_renders_in_a_browser(built, server, chapter):
    dom = chromium("--virtual-time-budget=15000", "--dump-dom", f"{server}/{chapter}.html")
    assert "<h1" in dom, f"{chapter}: no title in the rendered page"
    assert re.search(r"<html[^>]+data-theme=\"(light|dark)\"", dom), f"{chapter}: the theme's script did not run"
    assert 'class="math' in dom, f"{chapter}: no math on the page for MathJax to typeset"
    images = re.findall(r"<img[^>]+src=\"([^\"]+\.png)\"", dom)
    assert images, f"{chapter}: the page shows no figure"
    page_dir = (built / chapter).parent
    for src in images:
        path = (page_dir / src).resolve()
        assert path.is_file() and path.stat().st_size > 1000, f"{chapter}: figure {src} is missing or empty"


def test_front_page_screenshot_is_not_blank(server, tmp_path):
    shot = tmp_path / "index.png"
    chromium("--window-size=1280,1600", "--virtual-time-budget=5000", f"--screenshot={shot}",
             f"{server}/index.html")
    assert shot.exists() and shot.stat().st_size > 20_000, "the screenshot of the front page is blank or missing"
