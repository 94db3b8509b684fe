"""The rendered pages in a real headless browser (Debian's chromium), offline.

Serves _build/html on 127.0.0.1 and opens every page of the table of contents in its own
chromium, driven through the DevTools protocol (tests/book/cdp.py), with every other host
unreachable. On each page: MathJax (served by the book, see _ext/vendor_js.py) typeset
every formula; no request left 127.0.0.1 and none failed; the console shows no error; no
cell shows an error output; every image loaded; every internal link points at a page and
anchor that exist; no code runs past the text column, no table is wider than it, a wide
figure (its cell tagged full-width) is drawn wider than the column, and no output is a
stray `False`, `True`, `None` or list of `None`, nor a line printing a list of `None` or a
dict holding `nan`. A screenshot of each page
goes to _build/screenshots/ (CI keeps that folder as an artifact). Skipped when no
chromium is installed (`.ci/run` installs it).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from .cdp import Browser
from .conftest import CHAPTERS, ROOT

# Debian's chromium (.ci/run installs it), or the Chrome of GitHub's runners.
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome", "google-chrome-stable"))), None)
# CI sets this so that a missing browser fails the tests instead of skipping them.
REQUIRED = bool(os.environ.get("BOOK_BROWSER_REQUIRED"))
ROOT_PAGE = re.search(r"^root:\s*(\S+)", (ROOT / "_toc.yml").read_text(), re.M).group(1)
PAGES = [ROOT_PAGE, *CHAPTERS]
SCREENSHOTS = ROOT / "_build" / "screenshots"
WIDGET_STATE = 'script[type="application/vnd.jupyter.widget-state+json"]'

pytestmark = pytest.mark.skipif(CHROMIUM is None and not REQUIRED,
                                reason="chromium is not installed")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(built):
    handler = functools.partial(_Quiet, directory=str(built))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# Everything the page checks need, read in one go once MathJax, the fonts, the images
# and the widgets are done.
REPORT_JS = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const images = Array.from(document.images);
  images.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  await document.fonts.ready;
  const maths = Array.from(document.querySelectorAll('span.math, div.math'));
  const main = document.querySelector('main') || document.body;
  const prose = main.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, mjx-container, textarea')
       .forEach(e => e.remove());
  return {
    title: (document.querySelector('h1') || {}).textContent || '',
    theme: document.documentElement.dataset.theme || '',
    maths: maths.length,
    untypeset: maths.filter(m => !m.querySelector('mjx-container'))
                    .map(m => m.textContent.slice(0, 80)),
    containers: document.querySelectorAll('mjx-container').length,
    merrors: Array.from(document.querySelectorAll('mjx-merror'))
                  .map(e => e.textContent.slice(0, 80)),
    raw: (prose.textContent.match(/\\\(|\\\[|\$\$|\\begin\{/g) || []).length,
    stderr: Array.from(document.querySelectorAll('.output.stderr, .output.traceback'))
                 .map(e => e.textContent),
    bodyText: document.body.innerText,
    images: images.map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
    figures: images.filter(i => /\.png$/.test(i.src)).length,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    widgetStates: document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-state+json"]').length,
    widgetViews: document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]').length,
    widgetsShown: document.querySelectorAll('.widget-subarea').length,
    // Reading comfort: code that runs past the text column, tables wider than it, and
    // outputs that are only a stray value (a checker's False, a list of None).
    column: (document.querySelector('article') || main).clientWidth,
    codeOverflow: Array.from(document.querySelectorAll(
        'div.cell_input pre, div.cell_output pre'))
      .filter(p => p.scrollWidth > p.clientWidth + 1)
      .map(p => p.textContent.split('\n')
                 .reduce((a, l) => l.length > a.length ? l : a, '').slice(0, 100)),
    wideTables: Array.from(main.querySelectorAll('table'))
      .map(t => Math.round(t.getBoundingClientRect().width)),
    // Figures of cells tagged full-width: their drawn width, to compare with the column.
    fullWidthFigures: Array.from(document.querySelectorAll(
        'div.cell.tag_full-width div.cell_output img'))
      .map(i => Math.round(i.getBoundingClientRect().width)),
    strayOutputs: Array.from(document.querySelectorAll('div.cell_output pre'))
      .map(p => p.textContent.trim())
      .filter(t => /^(True|False|None|\[(None, )*None\])$/.test(t)),
    // and raw Python values printed inside a line: a list of None, a dict holding nan.
    rawValues: Array.from(document.querySelectorAll('div.cell_output pre'))
      .flatMap(p => p.textContent.split('\n'))
      .filter(l => /\[(None, )*None\]|[\[{(,:] ?nan[,\]})]/.test(l))
      .map(l => l.trim().slice(0, 100)),
  };
})()
"""
ERROR_IN_OUTPUT = re.compile(r"Traceback|\b\w*(Error|Exception)\b")


@functools.cache
def _anchors(page: Path) -> frozenset[str]:
    html = page.read_text(encoding="utf-8", errors="replace")
    return frozenset(re.findall(r"\b(?:id|name)=\"([^\"]+)\"", html))


def broken_links(links: list[str], origin: str, html_root: Path) -> list[str]:
    """Links into the site whose page (or anchor on that page) does not exist."""
    broken = []
    for link in links:
        url = urllib.parse.urlsplit(link)
        if f"{url.scheme}://{url.netloc}" != origin:
            continue
        target = html_root / urllib.parse.unquote(url.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{link}: no such file")
        elif url.fragment and target.suffix == ".html":
            if urllib.parse.unquote(url.fragment) not in _anchors(target):
                broken.append(f"{link}: no such anchor")
    return broken


def open_page(url: str) -> Browser:
    assert CHROMIUM, "no chromium or chrome on PATH, and BOOK_BROWSER_REQUIRED is set"
    browser = Browser(CHROMIUM)
    try:
        browser.goto(url)
        # Widgets render after the load event (require.js, then the state scripts).
        browser.wait_until(f"""!document.querySelector('{WIDGET_STATE}') ||
            document.querySelectorAll('.widget-subarea').length >=
            document.querySelectorAll(
              'script[type="application/vnd.jupyter.widget-view+json"]').length""")
    except BaseException:
        browser.close()
        raise
    return browser


@pytest.mark.parametrize("page", PAGES)
def test_page_in_an_offline_browser(built, server, page):
    assert (built / f"{page}.html").is_file(), f"{page}.html was not built"
    with open_page(f"{server}/{page}.html") as browser:
        report = browser.eval(REPORT_JS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SCREENSHOTS / f"{Path(page).name}.png")
        # Headless chromium asks for /favicon.ico by itself when a page names no icon.
        requests = [u for u in browser.requests() if u != f"{server}/favicon.ico"]
        failed = [f for f in browser.failed_requests()
                  if not f.startswith(f"{server}/favicon.ico:")]
        console = [c for c in browser.console_errors()
                   if not c.endswith(f" {server}/favicon.ico")]

    assert report["title"].strip(), f"{page}: no title"
    assert report["theme"] in ("light", "dark"), f"{page}: the theme's script did not run"
    # Math: every formula typeset by the book's own MathJax, none left raw or in error.
    assert not report["untypeset"], f"{page}: formulas not typeset: {report['untypeset']}"
    assert report["containers"] == report["maths"], (
        f"{page}: {report['containers']} typeset formulas for {report['maths']} formulas")
    assert not report["merrors"], f"{page}: MathJax errors: {report['merrors']}"
    assert report["raw"] == 0, f"{page}: raw TeX delimiters left in the text"
    # Offline: nothing left 127.0.0.1 and nothing failed to load.
    outside = [u for u in requests
               if not u.startswith((server + "/", "data:", "blob:", "about:"))]
    assert not outside, f"{page}: requests left 127.0.0.1: {outside[:5]}"
    assert not failed, f"{page}: failed requests: {failed[:5]}"
    assert not console, f"{page}: console errors: {console[:5]}"
    # No error output, no broken image, no broken internal link.
    errors = [s[:200] for s in report["stderr"] if ERROR_IN_OUTPUT.search(s)]
    assert not errors, f"{page}: error output on the page: {errors}"
    assert "Traceback (most recent call last)" not in report["bodyText"], f"{page} shows a traceback"
    assert "Error displaying widget" not in report["bodyText"], f"{page}: a widget failed"
    if report["widgetViews"]:  # widgets saved with the page are drawn, with no kernel
        assert report["widgetStates"] == 1, f"{page}: widgets without their saved state"
        assert report["widgetsShown"] == report["widgetViews"], f"{page}: widgets not drawn"
    broken_images = [i["src"][:120] for i in report["images"] if not i["ok"]]
    assert not broken_images, f"{page}: images that did not load: {broken_images}"
    # Reading comfort: nothing runs past the text column, no stray value is shown.
    assert not report["codeOverflow"], (
        f"{page}: code wider than the column: {report['codeOverflow'][:3]}")
    wide = [w for w in report["wideTables"] if w > report["column"] + 1]
    assert not wide, f"{page}: tables {wide} px wide in a {report['column']} px column"
    # A wide figure (tagged full-width) is drawn wider than the text column, not shrunk
    # into it; the theme widens such cells on screens of 992 px and more.
    narrow = [w for w in report["fullWidthFigures"] if w <= report["column"]]
    assert not narrow, (f"{page}: full-width figures drawn {narrow} px wide in a "
                        f"{report['column']} px column")
    assert not report["strayOutputs"], (
        f"{page}: stray outputs (end the cell with ';'): {report['strayOutputs'][:5]}")
    assert not report["rawValues"], (
        f"{page}: raw Python values in printed output (say 'never', or print a table): "
        f"{report['rawValues'][:5]}")
    broken = broken_links(report["links"], server, built)
    assert not broken, f"{page}: broken internal links: {broken[:5]}"
    if (ROOT / f"{page}.ipynb").exists():
        assert report["maths"] > 0 and report["containers"] > 0, f"{page}: no formula typeset"
        assert report["figures"] > 0, f"{page}: the page shows no figure"
    shot = SCREENSHOTS / f"{Path(page).name}.png"
    assert shot.stat().st_size > 20_000, f"{page}: the screenshot is blank"


# The explorers of phaselib.widgets: controls jslinked to a Stack of precomputed frames.
EXPLORER_PAGES = [c for c in CHAPTERS if (ROOT / f"{c}.ipynb").exists()
                  and "phaselib.widgets" in (ROOT / f"{c}.ipynb").read_text(encoding="utf-8")]
CONTROLS_JS = """(i => Array.from(document.querySelectorAll('.phaselib-explorer')[i]
    .querySelectorAll('.noUi-handle, select, .widget-toggle-buttons'))
    .filter(e => !e.closest('.phaselib-frames')))"""
FRAME_JS = """(i => {
    const f = document.querySelectorAll('.phaselib-explorer')[i]
      .querySelector('.phaselib-frames');
    return f ? f.innerHTML : null; })"""


def move_control(browser: Browser, explorer: int, control: int) -> None:
    """Move one control one step as a reader would, with real input events through
    DevTools: arrow keys on a slider's handle, a click on another toggle button; or the
    next option of a drop-down."""
    kind, a, b = browser.eval(f"""(() => {{
        const c = {CONTROLS_JS}({explorer})[{control}];
        c.scrollIntoView({{block: 'center'}});
        if (c.tagName === 'SELECT') {{
          c.selectedIndex = (c.selectedIndex + 1) % c.options.length;
          c.dispatchEvent(new Event('change', {{bubbles: true}}));
          return ['select', c.selectedIndex, c.options.length];
        }}
        if (c.classList.contains('widget-toggle-buttons')) {{
          const other = c.querySelector('.widget-toggle-button:not(.mod-active)');
          const r = other.getBoundingClientRect();
          return ['click', r.x + r.width / 2, r.y + r.height / 2];
        }}
        c.focus();
        return ['slider', c.getAttribute('aria-valuenow'), c.getAttribute('aria-valuemax')];
      }})()""")
    if kind == "slider":
        key, code = ("ArrowLeft", 37) if float(a) >= float(b) else ("ArrowRight", 39)
        for event in ("keyDown", "keyUp"):
            browser.send("Input.dispatchKeyEvent", type=event, key=key, code=key,
                         windowsVirtualKeyCode=code, nativeVirtualKeyCode=code)
    elif kind == "click":
        for event in ("mousePressed", "mouseReleased"):
            browser.send("Input.dispatchMouseEvent", type=event, x=a, y=b,
                         button="left", clickCount=1)


def _wait_for_change(browser: Browser, explorer: int, before: str, timeout=5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        after = browser.eval(f"{FRAME_JS}({explorer})")
        if after != before or time.monotonic() > deadline:
            return after
        time.sleep(0.05)


@pytest.mark.parametrize("page", EXPLORER_PAGES)
def test_explorer_controls_change_the_visible_frame(built, server, page):
    """Every control of every explorer, moved with no kernel, changes the frame shown."""
    with open_page(f"{server}/{page}.html") as browser:
        n = browser.eval("document.querySelectorAll('.phaselib-explorer').length")
        assert n > 0, f"{page} uses phaselib.widgets but shows no explorer"
        moved = 0
        for i in range(n):
            controls = browser.eval(f"{CONTROLS_JS}({i}).length")
            assert controls > 0, f"{page}: explorer {i} shows no control"
            for k in range(controls):
                before = browser.eval(f"{FRAME_JS}({i})")
                time.sleep(0.2)
                assert browser.eval(f"{FRAME_JS}({i})") == before, (
                    f"{page}: explorer {i} changes on its own; the test could not tell")
                assert before and re.search(r"<(svg|img|table)", before), (
                    f"{page}: explorer {i} shows no frame")
                move_control(browser, i, k)
                after = _wait_for_change(browser, i, before)
                assert after != before, f"{page}: explorer {i}, control {k} did not change the frame"
                moved += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SCREENSHOTS / f"{Path(page).name}-explorer.png")  # moved
        console = [c for c in browser.console_errors()
                   if not c.endswith(f" {server}/favicon.ico")]
    assert moved > 0
    assert not console, f"{page}: console errors while moving the controls: {console[:5]}"


def test_broken_links_finds_missing_pages_and_anchors(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "p.html").write_text('<h2 id="sec-1">x</h2><a name="old">')
    origin = "http://127.0.0.1:8000"
    links = [f"{origin}/a/p.html", f"{origin}/a/p.html#sec-1", f"{origin}/a/p.html#old",
             f"{origin}/a/p.html#sec-2", f"{origin}/a/q.html", "https://example.org/x#y",
             f"{origin}/a/"]
    assert broken_links(links, origin, tmp_path) == [
        f"{origin}/a/p.html#sec-2: no such anchor", f"{origin}/a/q.html: no such file",
        f"{origin}/a/: no such file"]
