"""`python -m phaselib.book run`: presets checked against the chapters before anything
runs; chapters executed with papermill, a failure reported with its cell while the
others still run. Execution is tested on tiny notebooks; the real chapters only for the
checks, which execute nothing."""

import json
from pathlib import Path

import pytest
import torch

from phaselib.book.__main__ import main
from phaselib.book.run import (BookRunError, load_presets, notebook_parameters,
                               plan_run, resolve_chapters)

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------ checks on the real book

@pytest.mark.parametrize("preset", ["cpu", "gpu"])
def test_every_preset_names_real_chapters_and_real_parameters(preset):
    plan = plan_run(preset, [], ROOT)
    assert len(plan.chapters) >= 10 and "part4/transport" in plan.chapters


def test_the_cpu_preset_is_the_defaults_and_the_gpu_preset_scales_up():
    presets = load_presets()
    assert set(presets) == {"cpu", "gpu"}
    cpu = plan_run("cpu", [], ROOT)
    assert all(p == {} for p in cpu.parameters.values()) and not cpu.needs_cuda
    gpu = plan_run("gpu", ["phase-lm"], ROOT)
    assert gpu.needs_cuda
    params = gpu.parameters["part4/phase-lm"]
    defaults = notebook_parameters(ROOT / "book/part4/phase-lm.ipynb")
    assert params["device"] == "cuda"
    assert params["steps"] > int(defaults["steps"])
    assert params["n_embd"] > int(defaults["n_embd"])


def test_an_unknown_preset_stops_with_the_list_of_presets():
    with pytest.raises(BookRunError, match=r"unknown preset 'tpu'.*cpu, gpu"):
        plan_run("tpu", [], ROOT)


def test_an_unknown_chapter_stops_with_the_list_of_chapters():
    with pytest.raises(BookRunError,
                       match=r"unknown chapter\(s\): part9/nope.*part4/transport"):
        plan_run("cpu", ["transport", "part9/nope"], ROOT)


def test_a_parameter_the_chapter_lacks_stops_with_its_parameters():
    presets = {"big": {"chapters": {"part4/transport": {"n_pairs": 9, "steps": 5}}}}
    with pytest.raises(BookRunError, match=r"part4/transport has no parameter steps "
                       r"\(preset 'big'\)\. Its parameters are: seed, device, dim, "
                       r"n_pairs"):
        plan_run("big", ["transport"], ROOT, presets)


def test_a_value_of_the_wrong_kind_stops_with_the_default():
    presets = {"x": {"chapters": {"part4/transport": {"n_pairs": [1, 2], "dim": 32,
                                                      "device": "cuda"}}}}
    with pytest.raises(BookRunError, match=r"n_pairs = \[1, 2\] \(preset 'x'\) is not "
                       r"of the kind of the chapter's default n_pairs = 4096"):
        plan_run("x", [], ROOT, presets)
    presets["x"]["chapters"]["part4/transport"]["n_pairs"] = 2.5e4  # a count: an int
    with pytest.raises(BookRunError, match=r"n_pairs = 25000.0"):
        plan_run("x", [], ROOT, presets)
    presets["x"]["chapters"]["part4/transport"]["n_pairs"] = 25_000
    assert plan_run("x", [], ROOT, presets).parameters["part4/transport"]["dim"] == 32
    presets = {"x": {"chapters": {"part4/phase-lm": {"lr": 1},
                                  "part4/gpu-kernels": {"bench_max_t": 8192}}}}
    assert plan_run("x", [], ROOT, presets).parameters["part4/phase-lm"] == {"lr": 1}
    assert plan_run("x", [], ROOT, presets).parameters["part4/gpu-kernels"] == {
        "bench_max_t": 8192}  # a default of None takes anything


def test_a_preset_naming_an_unknown_chapter_stops():
    presets = {"old": {"chapters": {"part4/gone": {"seed": 1}}}}
    with pytest.raises(BookRunError, match=r"names unknown chapter\(s\) part4/gone"):
        plan_run("old", ["transport"], ROOT, presets)


def test_chapters_are_named_by_path_stem_or_file():
    chapters = {"part4/transport": Path("a"), "part2/f1-x": Path("b"),
                "part3/transport": Path("c")}
    assert resolve_chapters(["part2/f1-x", "book/part2/f1-x.ipynb", "f1-x"],
                            chapters) == ["part2/f1-x"] * 3
    assert resolve_chapters([], chapters) == list(chapters)
    with pytest.raises(BookRunError, match="unknown chapter"):  # two chapters match
        resolve_chapters(["transport"], chapters)


def test_notebook_parameters_reads_tuple_and_annotated_assignments():
    params = notebook_parameters(ROOT / "book/part4/gpu-kernels.ipynb")
    assert {"check_batch", "check_T", "check_dim", "bench_max_t"} <= set(params)
    assert params["bench_max_t"] == "None"


# ------------------------------------------------------------ runs on tiny notebooks

def _cell(src, tags=()):
    return {"cell_type": "code", "execution_count": None, "id": f"c{abs(hash(src))}",
            "metadata": {"tags": list(tags)}, "outputs": [], "source": src}


def _write(path: Path, cells):
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"},
                       "language_info": {"name": "python"}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))


@pytest.fixture
def toy_book(tmp_path):
    """Two chapters: `good` writes its parameter where the run can see it and reads a
    file beside it (the chapter's folder is the working directory); `bad` fails in its
    third code cell when asked to."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n"
                                       "  - chapters:\n      - file: book/p/good\n"
                                       "      - file: book/p/bad\n")
    _write(tmp_path / "book/p/good.ipynb",
           [_cell("# Setup: nothing to install here"),
            _cell("n = 1\nseed = 0", tags=["parameters"]),
            _cell("from pathlib import Path\n"
                  "print('n is', n, Path('data.txt').read_text())")])
    (tmp_path / "book/p/data.txt").write_text("beside")
    _write(tmp_path / "book/p/bad.ipynb",
           [_cell("# Setup: nothing"), _cell("fail = False", tags=["parameters"]),
            _cell("x = 1"), _cell("if fail:\n    raise RuntimeError('asked to fail')"),
            _cell("y = 2")])
    presets = tmp_path / "presets.toml"
    presets.write_text('[small]\n[big]\n[big.chapters."p/good"]\nn = 7\n'
                       '[big.chapters."p/bad"]\nfail = true\n'
                       '[typo]\n[typo.chapters."p/good"]\nm = 7\n')
    return tmp_path, presets


def _main(root, presets, *args):
    return main(["--root", str(root), "run", "--presets-file", str(presets),
                 "--no-progress", *args])


def _printed(nb_path):
    nb = json.loads(Path(nb_path).read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"]
                   for o in c.get("outputs", []))


def test_run_executes_each_chapter_at_the_preset_and_reports_a_failure_cell(
        toy_book, capsys):
    root, presets = toy_book
    out = root / "runs"
    rc = _main(root, presets, "--preset", "big", "--out", str(out))
    printed = capsys.readouterr().out
    assert rc == 1  # one chapter failed
    assert "n is 7 beside" in _printed(out / "p" / "good.ipynb")
    assert (out / "p" / "bad.ipynb").is_file()  # the failed run is kept to read
    lines = printed.splitlines()
    assert any(line.startswith("ok") and "p/good" in line for line in lines)
    assert any(line.startswith("FAILED") and "p/bad" in line for line in lines)
    assert "code cell 4 of the chapter (In [" in printed
    assert "RuntimeError: asked to fail" in printed
    assert "1/2 ok" in printed and "failed: p/bad" in printed


def test_run_at_the_defaults_succeeds_and_exits_zero(toy_book, capsys):
    root, presets = toy_book
    rc = _main(root, presets, "--preset", "small", "good")
    assert rc == 0
    out = root / "_build" / "runs" / "small" / "p" / "good.ipynb"
    assert "n is 1 beside" in _printed(out)
    assert "1/1 ok" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--preset", "typo"], r"p/good has no parameter m .*Its parameters are: n, seed"),
    (["--preset", "huge"], r"unknown preset 'huge'. The presets are: small, big, typo"),
    (["--preset", "small", "p/ugly"], r"unknown chapter\(s\): p/ugly. The chapters "
                                      r"are: p/good, p/bad"),
])
def test_a_bad_request_stops_before_anything_runs(toy_book, capsys, args, message):
    import re

    root, presets = toy_book
    out = root / "runs"
    assert _main(root, presets, *args, "--out", str(out)) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


def test_a_preset_that_needs_cuda_stops_before_anything_runs_without_one(toy_book,
                                                                         capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    root, presets = toy_book
    presets.write_text('[gpu]\nneeds_cuda = true\n')
    out = root / "runs"
    assert _main(root, presets, "--preset", "gpu", "--out", str(out)) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not out.exists()


def test_root_is_taken_after_the_command_as_the_notes_write_it(toy_book, capsys,
                                                                monkeypatch, tmp_path):
    # instructor-notes.md and syllabus.md write `python -m phaselib.book run --root OUT`;
    # run from elsewhere, that must find the toy book, not the current folder.
    root, presets = toy_book
    monkeypatch.chdir(tmp_path)
    rc = main(["run", "--root", str(root), "--presets-file", str(presets),
               "--no-progress", "--preset", "small", "good"])
    assert rc == 0
    assert (root / "_build" / "runs" / "small" / "p" / "good.ipynb").is_file()
    assert "1/1 ok" in capsys.readouterr().out
