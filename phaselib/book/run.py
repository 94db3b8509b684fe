"""`python -m phaselib.book run`: execute chapters with papermill at a preset's
parameters into an output folder.

A preset (`presets.toml`) names, per chapter, the values of its `parameters` cell to
override; a chapter it does not name runs at its defaults. Everything is checked before
anything runs (an unknown preset or chapter, a parameter the chapter does not have, a
preset that needs CUDA on a machine without it); then each chapter runs in its own
folder (so `results/...` paths resolve), a failure is reported with its cell and the
other chapters still run.
"""

from __future__ import annotations

import ast
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .toc import chapter_name, read_notebook, toc_notebooks

__all__ = ["PRESETS_FILE", "BookRunError", "load_presets", "notebook_parameters",
           "resolve_chapters", "plan_run", "run_chapters", "ChapterResult"]

PRESETS_FILE = Path(__file__).with_name("presets.toml")


class BookRunError(ValueError):
    """A run that cannot start: the message lists what exists."""


def load_presets(path: str | Path = PRESETS_FILE) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def notebook_parameters(path: str | Path) -> dict:
    """The names assigned in the notebook's cell tagged `parameters`, with the source
    text of each default value."""
    nb = read_notebook(path)
    cells = [c for c in nb.get("cells", [])
             if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise BookRunError(f"{path} has no cell tagged 'parameters'")
    source = "".join(cells[0].get("source", []))
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            for name in names:
                if isinstance(name, ast.Name):
                    out[name.id] = ast.get_source_segment(source, value) or ""
    return out


def resolve_chapters(requested: list[str], chapters: dict[str, Path]) -> list[str]:
    """Chapter names for what was typed: `part4/transport`, `transport` or
    `book/part4/transport.ipynb`. Unknown names stop with the list of chapters."""
    if not requested:
        return list(chapters)
    by_stem: dict[str, list[str]] = {}
    for name in chapters:
        by_stem.setdefault(name.rsplit("/", 1)[-1], []).append(name)
    out, unknown = [], []
    for typed in requested:
        name = chapter_name(typed) if typed.endswith(".ipynb") else typed.strip("/")
        if name in chapters:
            out.append(name)
        elif len(by_stem.get(name, [])) == 1:
            out.append(by_stem[name][0])
        else:
            unknown.append(typed)
    if unknown:
        raise BookRunError(f"unknown chapter(s): {', '.join(unknown)}. The chapters "
                           f"are: {', '.join(chapters)}")
    return out


@dataclass
class Plan:
    preset: str
    chapters: list[str]
    paths: dict[str, Path]
    parameters: dict[str, dict] = field(default_factory=dict)
    needs_cuda: bool = False


def plan_run(preset: str, requested: list[str], root: str | Path = ".",
             presets: dict | None = None) -> Plan:
    """Check everything a run needs and return what to run, or raise BookRunError
    listing every problem (and what exists)."""
    presets = load_presets() if presets is None else presets
    if preset not in presets:
        raise BookRunError(f"unknown preset {preset!r}. The presets are: "
                           f"{', '.join(presets)}")
    spec = presets[preset]
    paths = {chapter_name(p): Path(root) / p for p in toc_notebooks(root)}
    names = resolve_chapters(requested, paths)
    per_chapter = spec.get("chapters", {})
    problems = []
    stale = [c for c in per_chapter if c not in paths]
    if stale:
        problems.append(f"preset {preset!r} names unknown chapter(s) "
                        f"{', '.join(stale)}. The chapters are: {', '.join(paths)}")
    plan = Plan(preset, names, {n: paths[n] for n in names},
                needs_cuda=bool(spec.get("needs_cuda", False)))
    for name in names:
        wanted = {**spec.get("every_chapter", {}), **per_chapter.get(name, {})}
        try:
            have = notebook_parameters(paths[name])
        except BookRunError as e:
            problems.append(str(e))
            continue
        missing = [k for k in wanted if k not in have]
        if missing:
            problems.append(f"{name} has no parameter {', '.join(missing)} (preset "
                            f"{preset!r}). Its parameters are: {', '.join(have)}")
        problems += [f"{name}: {k} = {v!r} (preset {preset!r}) is not of the kind of "
                     f"the chapter's default {k} = {have[k]}"
                     for k, v in wanted.items() if k in have
                     and not _same_kind(v, have[k])]
        plan.parameters[name] = wanted
    if problems:
        raise BookRunError("nothing was run:\n  " + "\n  ".join(problems))
    return plan


def _kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _same_kind(value, default_source: str) -> bool:
    """An int for an int, a number for a float, a list for a list, ... (a default of
    None, or one that is an expression rather than a literal, takes anything)."""
    try:
        default = ast.literal_eval(default_source)
    except (ValueError, SyntaxError):
        return True
    if isinstance(default, int) and not isinstance(default, bool):
        return isinstance(value, int) and not isinstance(value, bool)  # 1e4 is no count
    return default is None or _kind(value) == _kind(default)


@dataclass
class ChapterResult:
    chapter: str
    ok: bool
    seconds: float
    output: Path
    error: str = ""


def _failed_cell(err, source_nb: dict) -> str:
    """'code cell N of the chapter': N counts the code cells of the chapter as written
    (papermill's injected-parameters cell shifts the output's In [k] by one)."""
    src = err.source if isinstance(err.source, str) else "".join(err.source)
    code = [c for c in source_nb["cells"] if c.get("cell_type") == "code"]
    n = next((i + 1 for i, c in enumerate(code) if "".join(c["source"]) == src), None)
    where = f"code cell {n}" if n is not None else f"cell {err.cell_index}"
    return (f"{where} of the chapter (In [{err.exec_count}] in the output): "
            f"{err.ename}: {err.evalue}")


def run_chapters(plan: Plan, out: str | Path, progress: bool = True,
                 kernel_name: str | None = None, say=print) -> list[ChapterResult]:
    """Execute each planned chapter; one line per chapter through `say`, a failure
    reported with its cell while the others still run."""
    try:
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError
    except ImportError as e:  # a learner's install has no papermill
        raise BookRunError("running chapters needs papermill: pip install papermill "
                           "(it is in phaselib's `test` extra)") from e
    from tqdm.auto import tqdm

    if plan.needs_cuda:
        import torch

        if not torch.cuda.is_available():
            raise BookRunError(f"preset {plan.preset!r} needs a CUDA GPU and there is "
                               "none here; use --preset cpu")
    out = Path(out)
    results = []
    bar = tqdm(plan.chapters, desc=f"preset {plan.preset}", unit="chapter",
               disable=not progress)
    width = max(len(c) for c in plan.chapters)
    for name in bar:
        bar.set_postfix_str(name)
        src = plan.paths[name]
        dst = out / f"{name}.ipynb"
        dst.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        error = ""
        try:
            pm.execute_notebook(str(src), str(dst), parameters=plan.parameters[name],
                                cwd=str(src.parent), progress_bar=False,
                                kernel_name=kernel_name)
        except PapermillExecutionError as e:
            error = _failed_cell(e, read_notebook(src))
        except Exception as e:  # the kernel died, a timeout, a bad notebook ...
            error = f"{type(e).__name__}: {e}"
        seconds = time.perf_counter() - t0
        results.append(ChapterResult(name, not error, seconds, dst, error))
        status = "ok    " if not error else "FAILED"
        line = f"{status} {name:<{width}} {seconds:7.1f} s  {dst}"
        if error:
            line += f"\n       {error.splitlines()[0] if error else ''}"
        (bar.write if progress else say)(line)
    return results


def summary(results: list[ChapterResult]) -> str:
    """The times of a run, slowest first, with the total and the failures."""
    lines = [f"{'chapter':<32} {'status':<7} {'seconds':>8}"]
    for r in sorted(results, key=lambda r: -r.seconds):
        lines.append(f"{r.chapter:<32} {'ok' if r.ok else 'FAILED':<7} "
                     f"{r.seconds:8.1f}")
    failed = [r.chapter for r in results if not r.ok]
    total = sum(r.seconds for r in results)
    ok = f"{len(results) - len(failed)}/{len(results)} ok"
    lines.append(f"{'total':<32} {ok:<7} {total:8.1f}")
    if failed:
        lines.append("failed: " + ", ".join(failed))
    return "\n".join(lines)
