"""The book is built once per test session, by whichever test needs it first.

`BOOK_REUSE_BUILD=1` skips the build and tests the _build/html that is there (to iterate
on a page test; CI never sets it).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
CHAPTERS = re.findall(r"file:\s*([^\s#]+)", (ROOT / "_toc.yml").read_text())


@pytest.fixture(scope="session")
def built() -> Path:
    """Run `jupyter-book build` with warnings as errors; return the html folder."""
    if os.environ.get("BOOK_REUSE_BUILD") and (HTML / "index.html").is_file():
        return HTML
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", str(ROOT), "--warningiserror", "--keep-going"],
                            cwd=ROOT, capture_output=True, text=True)
    log = result.stdout[-20000:] + result.stderr[-20000:]
    assert result.returncode == 0, f"jupyter-book build failed:\n{log}"
    return HTML
