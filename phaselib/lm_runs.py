"""Language-model runs: the corpus, the training run, and its results file and table.

Book: Part IV, "The phase-transport language model". `load_corpus` gives the tokenizer
and the fixed train / held-out split; `train_lm` trains on seeded random windows with
the shared loop (resumable: it takes the loop's `start` and `on_step` and the data
generator); `write_run_results` / `read_run_results` are one run's JSON document
(format "phaselib-lm-results-v1": the command, the configurations, parameter count,
the loss over the whole held-out split, the loss by position in the window, speed, wall
time, the history and the machine), written atomically; `results_table` prints several
runs side by side, as the chapter does.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .data import CharTokenizer, load_shakespeare, random_windows, split_text
from .provenance import atomic_write_text, finite_json
from .results_files import results_path
from .train import History, TrainConfig, TrainState, evaluate_loss, train

__all__ = ["RESULTS_FORMAT", "load_corpus", "train_lm", "history_doc", "write_run_results",
           "read_run_results", "results_table"]

RESULTS_FORMAT = "phaselib-lm-results-v1"


def load_corpus(text_path: str | Path | None = None, train_frac: float = 0.9):
    """(tokenizer, train ids [N1], held-out ids [N2]): the built-in Shakespeare plays, or a
    UTF-8 text file, split in order (first 90% train). The vocabulary is every character
    of the whole text, so held-out text always encodes."""
    if text_path is None:
        text = load_shakespeare()
    else:
        path = Path(text_path)
        if not path.is_file():
            raise ValueError(f"text_path must be an existing file, got {str(path)!r}")
        text = path.read_text(encoding="utf-8")
    if len(text) < 20:
        raise ValueError(f"the text must hold at least 20 characters, got {len(text)}")
    tok = CharTokenizer(text)
    tr, va = split_text(text, train_frac)
    return tok, tok.encode(tr), tok.encode(va)


def train_lm(model: nn.Module, train_ids: torch.Tensor, cfg: TrainConfig, *, block: int,
             batch: int, seed: int = 0, val_ids: torch.Tensor | None = None,
             eval_tokens: int = 20_000, eval_batch: int = 64,
             generator: torch.Generator | None = None, start: TrainState | None = None,
             on_step: Callable | None = None) -> tuple[History, dict]:
    """Train on random windows of `train_ids`; returns (history, stats).

    The windows come from `generator` (default: a CPU generator seeded with `seed`); to
    resume a run, pass its generator state restored, and `start` / `on_step` as for
    `train`. With `val_ids` and cfg.eval_every, the curve's evaluations use the first
    `eval_tokens` held-out tokens (a fixed subset, for speed). stats: train_s and
    tokens_per_s (over the steps run in this call, leaving out the time spent in those
    evaluations), train_cpu_s (the process's CPU time over the same span, all threads:
    on a shared machine the better measure of cost), params.
    """
    if len(train_ids) < block + 1:
        raise ValueError(f"train_ids must hold at least block + 1 = {block + 1} tokens, "
                         f"got {len(train_ids)}")
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed) if generator is None else generator

    def get_batch(step):
        return random_windows(train_ids, block, batch, generator=g, device=device)

    eval_fn, eval_s, eval_cpu_s = None, [0.0], [0.0]
    if val_ids is not None:
        sub = val_ids[:eval_tokens]

        def eval_fn(m):  # timed, so that the training speed leaves the evaluations out
            t, c = time.perf_counter(), time.process_time()
            loss = evaluate_loss(m, sub, block, eval_batch)
            eval_s[0] += time.perf_counter() - t
            eval_cpu_s[0] += time.process_time() - c
            return loss
    first = 0 if start is None else start.step
    t0, c0 = time.perf_counter(), time.process_time()
    hist = train(model, get_batch, cfg, eval_fn, start=start, on_step=on_step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - t0 - eval_s[0]
    cpu_s = time.process_time() - c0 - eval_cpu_s[0]
    tokens = (cfg.steps - first) * batch * block
    speed = tokens / train_s if train_s > 0 else 0.0
    return hist, {"train_s": train_s, "train_cpu_s": cpu_s, "tokens_per_s": speed,
                  "params": model.num_params()}


def history_doc(hist: History | None) -> dict | None:
    """A History as JSON-able lists (losses rounded to 5 decimals)."""
    if hist is None:
        return None
    return {"step": list(hist.step), "loss": [round(v, 5) for v in hist.loss],
            "eval_step": list(hist.eval_step), "eval": [round(v, 5) for v in hist.eval]}


def write_run_results(path: str | Path, doc: dict) -> Path:
    """Write one run's results `doc` as strict JSON (parents created; NaN/inf become
    null), atomically, indented, with lists of numbers kept on one line so a 2000-step
    history stays small."""
    text = json.dumps(finite_json({"format": RESULTS_FORMAT} | doc), indent=1,
                      allow_nan=False)
    text = re.sub(r"\[\s*([-0-9.eE+,\s]+?)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
                  text)
    return atomic_write_text(path, text + "\n")


def read_run_results(path: str | Path) -> dict:
    """The document written by `write_run_results` (checks its format and main fields);
    a book results path that does not exist is read from phaselib's copy
    (`results_path`)."""
    doc = json.loads(results_path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path} is not a phaselib language-model results file "
                         f"({RESULTS_FORMAT})")
    for key in ("model", "params", "val_loss", "position_losses", "model_config"):
        if key not in doc:
            raise ValueError(f"{path} has no {key!r} field")
    return doc


def _num(v, spec: str, width: int) -> str:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return format(v, spec) if ok else "-".rjust(width)


def results_table(runs: dict[str, dict], reference: str | None = None) -> str:
    """Runs (name: a document of `read_run_results`) as a text table: width, parameters,
    parameters relative to `reference` (default: the first run), held-out loss,
    training tokens/s and wall time (missing values shown as "-"), and a footnote."""
    if not runs:
        raise ValueError("runs must hold at least one results document, got none")
    reference = next(iter(runs)) if reference is None else reference
    if reference not in runs:
        raise ValueError(f"reference must be one of {list(runs)}, got {reference!r}")
    ref = runs[reference]["params"]
    w = max(15, *(len(n) for n in runs))
    lines = [f"{'model':{w}s} {'width':>5s} {'parameters':>11s} {'vs ' + reference:>14s} "
             f"{'held-out loss':>13s} {'tokens/s':>9s} {'wall time':>9s}"]
    for name, d in runs.items():
        wall = _num(d.get("wall_time_s"), "8.0f", 8)
        lines.append(f"{name:{w}s} {d['model_config']['n_embd']:5d} {d['params']:11,d} "
                     f"{d['params'] / ref - 1:+14.1%} {_num(d['val_loss'], '13.4f', 13)} "
                     f"{_num(d.get('tokens_per_s'), '9,.0f', 9)} "
                     f"{wall}{'s' if wall.strip() != '-' else ' '}")
    n = next(iter(runs.values()))["val_tokens"]
    lines.append(f"held-out loss: nats per character over all {n:,} held-out targets; "
                 "tokens/s and wall time: the training run, on the machine its file "
                 "records")
    return "\n".join(lines)
