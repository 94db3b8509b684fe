"""Chapters run outside the repository, from the wheel, as on a learner's runtime.

Build a wheel of the working tree (`pip wheel --no-deps`), install it into a fresh
virtual environment, copy chapters into empty folders and execute them there with
nbclient; then check, from inside each kernel, that `phaselib` came from the fresh
environment and not from the source tree. To stay offline and quick (no second
download of PyTorch), the fresh environment sees this environment's packages through a
`.pth` line naming its site-packages *directory*: that adds the directory to `sys.path`
but runs none of its `.pth` files, so this environment's editable install of phaselib
(an import hook installed by a `.pth` file) is not active there.

The wheel carries the book's results files (`book/<part>/results/**.json`, copied to
`phaselib/_results/<part>/` by setup.py's build hook), and a chapter reads them through
`phaselib.results_path`. Two cheap chapters run in full. Every chapter of _toc.yml that
reads results runs its first cells (setup, parameters, imports) and then its own
results reads, taken verbatim from it (each top-level statement that calls a reader,
with the chapter's imports and function definitions): running each up to its first
read would train its live models first, a minute or so per chapter on two cores.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
# Chapters executed from the first cell to the last.
FULL = [BOOK / "part4" / "transport.ipynb", BOOK / "back" / "reading-verdicts.ipynb"]
# What reads a results file in a chapter.
READERS = {"load_sweep", "show_provenance", "provenance_line", "results_path",
           "read_gpu_results", "read_run_results"}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="venv layout: Linux")

PROBE = ("import sys, phaselib, phaselib.notebook\n"
         "print('PHASELIB_FILE=' + phaselib.__file__)\n"
         "print('PREFIX=' + sys.prefix)\n")

# The chapter's reads, run in its kernel: [source, names it binds] each; a statement
# that needs a name computed by a cell not run here (NameError) is skipped and listed.
READS = """
import json as _json, pathlib as _pathlib
from phaselib.sweep import SweepResults as _SweepResults
_report = {"ran": [], "skipped": [], "paths": {}}
for _src, _names in _json.loads(%r):
    try:
        exec(_src, globals())
    except NameError as _e:
        _report["skipped"].append([_src, str(_e)])
        continue
    _report["ran"].append(_src)
    for _n in _names:
        _v = globals().get(_n)
        _v = _v.path if isinstance(_v, _SweepResults) else _v
        if isinstance(_v, _pathlib.PurePath):
            _report["paths"][_n] = str(_pathlib.Path(_v).resolve())
print("READS=" + _json.dumps(_report))
"""

EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3",
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def _toc_chapters() -> list[Path]:
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    files = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)\s*$", toc, flags=re.M)
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").is_file()]


def _code(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _is_read(stmt: ast.stmt) -> bool:
    return any(isinstance(n, ast.Call) and
               (getattr(n.func, "id", None) or getattr(n.func, "attr", None)) in READERS
               for n in ast.walk(stmt))


def _preamble(code: list[str]) -> int:
    """The number of leading code cells that set the chapter up: through the cell that
    calls `setup(` (the Setup cell, the parameters, the imports)."""
    return next(k for k, s in enumerate(code) if re.search(r"\bsetup\(", s)) + 1


def _reads(code: list[str]) -> list[tuple[str, list[str]]]:
    """Each later cell's imports, function definitions and results reads, in order:
    (source, the names a read binds)."""
    out = []
    for src in code[_preamble(code):]:
        try:
            tree = ast.parse(src)
        except SyntaxError:  # IPython syntax (magics): not a cell of plain reads
            continue
        for st in tree.body:
            read = _is_read(st)
            if read or isinstance(st, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
                targets = st.targets if isinstance(st, ast.Assign) else []
                names = [n.id for t in targets for n in ast.walk(t)
                         if isinstance(n, ast.Name)]
                out.append((ast.get_source_segment(src, st), names if read else []))
    return out


def _first_read(code: list[str]) -> tuple[int, str] | None:
    """(code cell, statement) of the chapter's first results read, or None."""
    for k, src in enumerate(code):
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for st in tree.body:
            if _is_read(st):
                return k, ast.get_source_segment(src, st)
    return None


READING = [p for p in _toc_chapters() if _first_read(_code(json.loads(p.read_text())))]


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _build_wheel(tmp: Path) -> Path:
    """A wheel of the working tree, built from a copy (nothing written into it): the
    package, its build files and the book's results (for setup.py's hook)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "phaselib", src / "phaselib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_results"))
    for results in sorted(BOOK.glob("*/results")):
        shutil.copytree(results, src / results.relative_to(ROOT),
                        ignore=shutil.ignore_patterns("*.tmp"))
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q",
           "-w", str(tmp / "dist")]
    try:  # the build backend here is recent enough: no isolated build, no download
        ok = int(metadata.version("setuptools").split(".")[0]) >= 77
    except metadata.PackageNotFoundError:
        ok = False
    _run(cmd + (["--no-build-isolation"] if ok else []), cwd=tmp)
    wheels = list((tmp / "dist").glob("phaselib-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _fresh_venv(tmp: Path) -> tuple[Path, Path]:
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig"
                      ".get_paths()['purelib'])"]).stdout.strip())
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_this_envs_packages.pth").write_text("\n".join(sorted(here)) + "\n")
    return python, site


def _env(venv_python: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "JUPYTER_PATH")}
    env["PATH"] = f"{venv_python.parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, venv python, its site-packages, env, tmp): the wheel installed once."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(tmp)
    python, site = _fresh_venv(tmp)
    env = _env(python)
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
          "--ignore-installed", "--no-compile", str(wheel)], env=env, cwd=tmp)
    return wheel, python, site, env, tmp


def _execute(installed, chapter: Path, cells: list[dict], folder: str) -> list[dict]:
    """Execute `cells` (a chapter's, plus probes) in an empty folder with the wheel's
    environment; returns the executed code cells. The probe's fields are checked: the
    kernel imported phaselib from the fresh environment."""
    _, python, site, env, tmp = installed
    reader = tmp / "readers" / folder  # an empty folder: no repository around it
    reader.mkdir(parents=True)
    nb = json.loads(chapter.read_text())
    nb["cells"] = cells + [{"cell_type": "code", "execution_count": None,
                            "id": "probe", "metadata": {}, "outputs": [],
                            "source": PROBE}]
    (reader / chapter.name).write_text(json.dumps(nb))
    out = reader / "executed.ipynb"
    _run([str(python), "-c", EXECUTE, str(reader / chapter.name), str(reader),
          str(out)], env=env, cwd=reader)
    code = [c for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code)
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert errors == []
    fields = dict(line.split("=", 1) for line in _text(code[-1]).splitlines()
                  if "=" in line)
    where = Path(fields["PHASELIB_FILE"]).resolve()
    assert where.is_relative_to(site.resolve()), where
    assert not where.is_relative_to(ROOT.resolve()), where
    assert Path(fields["PREFIX"]).resolve() == (tmp / "venv").resolve()
    assert not any((reader / d).exists() for d in ("results", "book"))
    return code


def _text(cell: dict) -> str:
    """What a cell printed or displayed, as text."""
    out = []
    for o in cell["outputs"]:
        out.append("".join(o.get("text", "")))
        for kind in ("text/plain", "text/markdown"):
            out.append("".join(o.get("data", {}).get(kind, "")))
    return "\n".join(out)


def _results_files() -> dict[str, Path]:
    """{name in the wheel: the repository's file} for every results file of the book."""
    return {"phaselib/_results/" + "/".join((f.relative_to(BOOK).parts[0],
                                             *f.relative_to(BOOK).parts[2:])): f
            for f in sorted(BOOK.glob("*/results/**/*.json"))}


def test_the_wheel_carries_the_colab_extra_and_every_results_file(installed):
    wheel, _, site, _, _ = installed
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names
                           if n.endswith(".dist-info/METADATA"))).decode()
    colab = [line for line in meta.splitlines()
             if line.startswith("Requires-Dist:") and 'extra == "colab"' in line]
    assert "Provides-Extra: colab" in meta and len(colab) >= 4
    assert not any(x in line for line in colab for x in ("sphinx", "jupyter-book",
                                                         "myst", "nbval", "papermill"))
    assert (site / "phaselib" / "book" / "presets.toml").is_file()
    # The results: every file of book/<part>/results/ and nothing else, byte for byte.
    expected = _results_files()
    assert len(expected) >= 20 and {n.split("/")[2] for n in expected} >= {
        "part2", "part3", "part4", "part5"}
    assert sorted(n for n in names if n.startswith("phaselib/_results/")) == \
        sorted(expected)
    for name, src in expected.items():
        assert (site / name).read_bytes() == src.read_bytes(), name
    assert not any(n.startswith("book/") for n in names)
    # Every file of the package is in the wheel: its data files too (package-data).
    try:
        tracked = subprocess.run(["git", "ls-files", "phaselib"], cwd=ROOT, text=True,
                                 capture_output=True, timeout=60).stdout.split()
    except (OSError, subprocess.SubprocessError):
        tracked = []
    missing = [f for f in tracked if f not in names and (ROOT / f).is_file()]
    assert missing == [], f"package files not in the wheel (package-data?): {missing}"


@pytest.mark.parametrize("chapter", FULL, ids=lambda p: p.stem)
def test_a_chapter_runs_from_the_wheel_in_an_empty_folder(installed, chapter):
    cells = json.loads(chapter.read_text())["cells"]
    code = _execute(installed, chapter, cells, f"full-{chapter.stem}")
    # The setup cell found phaselib installed (so it ran no pip) and setup() said
    # what the chapter runs on.
    printed = "".join(_text(c) for c in code)
    assert "Running on CPU" in printed or "Running on GPU" in printed
    assert "not been computed" not in printed and "is missing" not in printed


def test_the_chapters_that_read_results_are_found():
    names = {p.stem for p in READING}
    assert {"f5-context-collapse", "selection", "phase-lm", "remedies",
            "reading-verdicts"} <= names, names


@pytest.mark.parametrize("chapter", READING, ids=lambda p: p.stem)
def test_a_chapter_reads_its_results_from_the_wheel(installed, chapter):
    _, _, site, _, _ = installed
    cells = json.loads(chapter.read_text())["cells"]
    code = _code({"cells": cells})
    n = _preamble(code)
    last = [i for i, c in enumerate(cells) if c["cell_type"] == "code"][n - 1]
    reads = _reads(code)
    first = _first_read(code)
    assert first is not None and (first[0] < n or any(s == first[1] for s, _ in reads))
    reads_cell = {"cell_type": "code", "execution_count": None, "id": "reads",
                  "metadata": {}, "outputs": [], "source": READS % json.dumps(reads)}
    done = _execute(installed, chapter, cells[:last + 1] + [reads_cell],
                    f"reads-{chapter.stem}")
    text = _text(done[-2])
    report = json.loads(next(line for line in text.splitlines()
                             if line.startswith("READS="))[len("READS="):])
    # The chapter's first read ran (in its first cells or here), and the files read
    # are the wheel's copies.
    assert first[0] < n or first[1] in report["ran"], report["skipped"]
    shipped = (site / "phaselib" / "_results").resolve()
    for name, path in report["paths"].items():
        assert Path(path).exists(), f"{chapter.name}: {name} = {path} does not exist"
        assert Path(path).is_relative_to(shipped), (name, path)
    printed = "".join(_text(c) for c in done)
    assert "not been computed" not in printed and "is missing" not in printed
    assert "Running on CPU" in printed or "Running on GPU" in printed
