"""A chapter runs outside the repository, from the wheel, as on a learner's runtime.

Build a wheel of the working tree (`pip wheel --no-deps`), install it into a fresh
virtual environment, copy one chapter into an empty folder and execute it there with
nbclient; then check, from inside that kernel, that `phaselib` came from the fresh
environment and not from the source tree. To stay offline and quick (no second
download of PyTorch), the fresh environment sees this environment's packages through a
`.pth` line naming its site-packages *directory*: that adds the directory to `sys.path`
but runs none of its `.pth` files, so this environment's editable install of phaselib
(an import hook installed by a `.pth` file) is not active there.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = ROOT / "book" / "part4" / "transport.ipynb"

PROBE = ("import sys, phaselib, phaselib.notebook\n"
         "print('PHASELIB_FILE=' + phaselib.__file__)\n"
         "print('PREFIX=' + sys.prefix)\n")

EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3",
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _build_wheel(tmp: Path) -> Path:
    """A wheel of the working tree, built from a copy (nothing written into it)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "phaselib", src / "phaselib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="venv layout: Linux")
def test_a_chapter_runs_from_the_wheel_in_an_empty_folder(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist()
                           if n.endswith(".dist-info/METADATA"))).decode()
    colab = [line for line in meta.splitlines()
             if line.startswith("Requires-Dist:") and 'extra == "colab"' in line]
    assert "Provides-Extra: colab" in meta and len(colab) >= 4
    assert not any(x in line for line in colab for x in ("sphinx", "jupyter-book",
                                                         "myst", "nbval", "papermill"))
    python, site = _fresh_venv(tmp_path)
    env = _env(python)
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
          "--ignore-installed", "--no-compile", str(wheel)], env=env, cwd=tmp_path)
    assert (site / "phaselib" / "book" / "presets.toml").is_file()

    reader = tmp_path / "reader"  # an empty folder: no repository around it
    reader.mkdir()
    nb = json.loads(CHAPTER.read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "probe",
                        "metadata": {}, "outputs": [], "source": PROBE})
    (reader / CHAPTER.name).write_text(json.dumps(nb))
    out = reader / "executed.ipynb"
    _run([str(python), "-c", EXECUTE, str(reader / CHAPTER.name), str(reader),
          str(out)], env=env, cwd=reader)

    done = json.loads(out.read_text())
    code = [c for c in done["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code)
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert errors == []
    text = "".join(o.get("text", "") if isinstance(o.get("text", ""), str)
                   else "".join(o["text"]) for o in code[-1]["outputs"])
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    where = Path(fields["PHASELIB_FILE"]).resolve()
    assert where.is_relative_to(site.resolve()), where
    assert not where.is_relative_to(ROOT.resolve()), where
    assert Path(fields["PREFIX"]).resolve() == (tmp_path / "venv").resolve()
    # The setup cell found phaselib installed (so it ran no pip) and setup() said
    # what the chapter runs on.
    printed = "".join("".join(o.get("text", "")) for c in code for o in c["outputs"])
    assert "Running on CPU" in printed or "Running on GPU" in printed
