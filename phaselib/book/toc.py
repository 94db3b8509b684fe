"""Where the book's chapters and its repository URL are written down, read without YAML
(a learner's install has no PyYAML): `_config.yml` and `_toc.yml` at the book's root."""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["repository_url", "toc_notebooks", "chapter_name", "read_notebook",
           "write_notebook"]


def repository_url(root: str | Path = ".") -> str:
    """`repository.url` of `<root>/_config.yml`: the one place the repository lives."""
    path = Path(root) / "_config.yml"
    if not path.is_file():
        raise FileNotFoundError(f"no _config.yml in {Path(root).resolve()}: run this "
                                "from the repository root or pass root=")
    in_repository = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^repository:\s*(#.*)?$", line):
            in_repository = True
        elif in_repository and line and not line[0].isspace():
            break
        elif in_repository:
            m = re.match(r"^\s+url:\s*([\"']?)([^\"'#\s]+)\1", line)
            if m:
                return m.group(2)
    raise ValueError(f"{path} has no repository.url")


def toc_notebooks(root: str | Path = ".") -> list[Path]:
    """The notebooks listed in `<root>/_toc.yml`, in the book's order (Markdown pages
    are left out). Paths are relative to `root`."""
    toc = Path(root) / "_toc.yml"
    if not toc.is_file():
        raise FileNotFoundError(f"no _toc.yml in {Path(root).resolve()}")
    out = []
    for m in re.finditer(r"^\s*-?\s*(?:file|root):\s*(\S+)\s*$",
                         toc.read_text(encoding="utf-8"), flags=re.M):
        entry = m.group(1).strip("\"'")
        path = Path(entry if entry.endswith(".ipynb") else entry + ".ipynb")
        if (Path(root) / path).is_file():
            out.append(path)
    return out


def chapter_name(path: str | Path) -> str:
    """`book/part4/transport.ipynb` -> `part4/transport` (how chapters are named)."""
    p = Path(path).with_suffix("")
    parts = p.parts[1:] if p.parts and p.parts[0] == "book" else p.parts
    return "/".join(parts)


def read_notebook(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_notebook(nb: dict, path: str | Path) -> None:
    """Write as nbformat/jupytext do (indent 1, sorted keys, UTF-8, final newline), so
    an unchanged notebook is rewritten byte for byte."""
    text = json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    Path(path).write_text(text, encoding="utf-8")
