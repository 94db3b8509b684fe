"""The build's per-chapter timing report: read from the execution cache, slowest first."""

from types import SimpleNamespace

import pytest

from phaselib.book.__main__ import main
from phaselib.book.timings import build_timings, format_timings


def _book(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: book/a\n  - file: book/b\n")
    (tmp_path / "book").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "book" / f"{name}.ipynb").write_text("{}")
    (tmp_path / "_build" / ".jupyter_cache").mkdir(parents=True)
    return tmp_path


def test_timings_are_the_cached_chapters_slowest_first(tmp_path, monkeypatch):
    import jupyter_cache

    root = _book(tmp_path)
    records = [SimpleNamespace(uri=str(root / "book" / n), data=d) for n, d in (
        ("a.ipynb", {"execution_seconds": 12.5}), ("b.ipynb", {"execution_seconds": 75.0}),
        ("c.ipynb", {"execution_seconds": 99.0}),   # not in _toc.yml: left out
        ("a.ipynb.bak", {}))]
    monkeypatch.setattr(jupyter_cache, "get_cache",
                        lambda path: SimpleNamespace(list_cache_records=lambda: records))
    rows = build_timings(root)
    assert rows == [("book/b.ipynb", 75.0), ("book/a.ipynb", 12.5)]
    text = format_timings(rows, budget=60)
    assert "book/b.ipynb" in text.splitlines()[1] and "over budget" in text.splitlines()[1]
    assert "over budget" not in text.splitlines()[2]
    assert "(1 of 2 chapters over 60 s)" in text


def test_timings_without_a_build_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    with pytest.raises(FileNotFoundError, match="build the book first"):
        build_timings(tmp_path)
    assert main(["--root", str(tmp_path), "timings"]) == 2
    assert "no execution cache" in capsys.readouterr().err
