"""Every `literalinclude` of the book names a file that exists and, with `:pyobject:`,
an object defined in it: a module split that moves a class breaks the build otherwise,
and only the full book build (minutes) would say so."""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p for p in (ROOT / "book").rglob("*")
               if p.suffix in (".ipynb", ".md") and ".ipynb_checkpoints" not in p.parts
               and "_build" not in p.parts)
INCLUDE = re.compile(r"```\{literalinclude\}\s+(\S+)\s*\n((?::[\w-]+:.*\n)*)")


def page_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        text = "\n".join("".join(c["source"]) for c in cells)
    return text


def defines(source: str, dotted: str) -> bool:
    """Whether `source` defines the class or function `dotted` (e.g. "A.forward")."""
    body = ast.parse(source).body
    for name in dotted.split("."):
        found = [n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef,
                                                   ast.AsyncFunctionDef))
                 and n.name == name]
        if not found:
            return False
        body = found[0].body
    return True


def broken_includes(page: Path, text: str) -> list[str]:
    out = []
    for m in INCLUDE.finditer(text):
        target = (page.parent / m.group(1)).resolve()
        if not target.is_file():
            out.append(f"{m.group(1)}: no such file")
            continue
        obj = re.search(r":pyobject:\s*(\S+)", m.group(2))
        if obj and not defines(target.read_text(encoding="utf-8"), obj.group(1)):
            out.append(f"{m.group(1)}: no {obj.group(1)}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_literalinclude_names_what_exists(page):
    assert not broken_includes(page, page_text(page))


def test_the_check_sees_a_moved_object(tmp_path):
    mod = tmp_path / "m.py"
    mod.write_text("class A:\n    def forward(self):\n        pass\n")
    page = tmp_path / "p.md"
    good = "```{literalinclude} m.py\n:pyobject: A.forward\n```\n"
    assert broken_includes(page, good) == []
    assert broken_includes(page, good.replace("A.forward", "B")) == ["m.py: no B"]
    assert broken_includes(page, good.replace("m.py", "n.py")) == ["n.py: no such file"]
