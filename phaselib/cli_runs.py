"""The two runs of the command line `python -m phaselib.train` (`phaselib.cli` reads the
flags): train a model, or score a saved one (`--eval-only`), and write the results record.

Book: Part IV, "The phase-transport language model", and "Running at scale".

`run_training` builds the model, resumes it from a checkpoint when asked, trains it with
`phaselib.lm_runs.train_lm`, saves checkpoints on the way (and on Ctrl-C), scores the
whole held-out split and prints the numbers. `run_eval_only` scores a checkpoint without
training. Both write the same results record (`results_record`) with `--results-json`.
Each takes the parser `p` (bad input ends in `p.error`, exit status 2), the parsed flags
`a`, the command as typed, the device and `git`, the repository's commit as the run
started (`provenance.require_clean`; None without --results-json).
"""

from __future__ import annotations

import shlex
import signal
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .lm_runs import history_doc, load_corpus, train_lm, write_run_results
from .models import build_model, kind_of
from .provenance import machine_info
from .resume import require_same_config, rng_state, set_rng_state
from .train import History, TrainConfig, TrainState, evaluate_loss, position_losses, sample

__all__ = ["run_training", "run_eval_only", "results_record", "RUN_FIELDS"]

# The flags that define a run: a resume must be given the same values.
RUN_FIELDS = ("model", "text", "steps", "block", "batch", "n_layer", "n_embd", "n_head",
              "window", "selector", "n_slots", "pyr_dim", "lr", "warmup", "seed",
              "weight_decay", "beta2")


def results_record(a, command: str, device, git: dict, text, model, tok, tr, va,
                   val: float, eval_s: float, **fields_) -> dict:
    """The results file's contents: provenance (date, commit, command, machine, notes;
    `allow_dirty: true` when --allow-dirty let uncommitted code write it), the model and
    its held-out loss, overall and by position, and the run's `fields_`."""
    pos = position_losses(model, va, model.cfg.block_size, a.eval_batch)
    marked = {"allow_dirty": True} if a.allow_dirty and git["dirty"] else {}  # let through
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git["commit"], "git_dirty": git["dirty"], **marked,
            "command": command, "model": kind_of(model), "params": model.num_params(),
            "val_loss": val, "val_tokens": len(va) - 1, "eval_s": eval_s,
            "text": str(text or "shakespeare"), "train_chars": len(tr),
            "val_chars": len(va), "vocab_size": tok.vocab_size, **fields_,
            "model_config": asdict(model.cfg), "position_losses": pos.tolist(),
            "notes": list(a.note), "machine": machine_info(str(device))}


def run_eval_only(p, a, command: str, device, git: dict | None) -> dict:
    """Score the checkpoint `a.eval_only` on the whole held-out split of its corpus."""
    if a.out or a.resume:
        p.error("--out and --resume cannot be used with --eval-only (nothing is trained)")
    try:
        ck = load_checkpoint(a.eval_only, device=device)
    except (OSError, ValueError) as e:
        p.error(f"--eval-only: {e}")
    saved_text = ck.extra.get("text")
    text = a.text or (saved_text if saved_text not in (None, "shakespeare") else None)
    try:
        tok, tr, va = load_corpus(text)
    except (ValueError, UnicodeDecodeError) as e:
        p.error(f"--text: {e}")
    if ck.vocab is not None and list(ck.vocab) != list(tok.chars):
        p.error(f"--eval-only: the checkpoint's vocabulary ({len(ck.vocab)} characters) is "
                f"not that of the corpus ({tok.vocab_size}); pass the --text it was "
                "trained on")
    model, block = ck.model, ck.model.cfg.block_size
    if len(va) < (block + 1 if a.results_json else 2):
        p.error(f"the held-out split ({len(va)} characters) is too short for block {block}")
    t0 = time.perf_counter()
    val = evaluate_loss(model, va, block, a.eval_batch)
    eval_s = time.perf_counter() - t0
    kind = kind_of(model)
    out = {"model": kind, "val_loss": val, "params": model.num_params(),
           "val_tokens": len(va) - 1, "eval_s": eval_s, "checkpoint": str(a.eval_only)}
    print(f"{kind}: checkpoint {a.eval_only}, block {block}, device {device}, "
          f"{len(tr):,} training / {len(va):,} held-out characters")
    print(f"val_loss {val:.4f}  (nats per character, all {len(va) - 1:,} held-out targets)")
    print(f"params {out['params']}")
    print(f"eval_s {eval_s:.1f}")
    if a.sample:
        print(sample(model, tok, a.prompt, a.sample, seed=a.seed))
    if a.results_json:
        x = ck.extra
        tc = None if ck.train_config is None else asdict(ck.train_config)
        doc = results_record(a, command, device, git, text, model, tok, tr, va, val, eval_s,
                             mode="eval-only", checkpoint=str(a.eval_only),
                             tokens_per_s=x.get("tokens_per_s"), train_s=x.get("train_s"),
                             wall_time_s=x.get("wall_time_s"),
                             training={"val_loss_recorded": x.get("val_loss"),
                                       "seed": x.get("seed"), "command": x.get("command"),
                                       "machine": x.get("machine"),
                                       "final_train_loss": x.get("final_train_loss")},
                             run={"block": block, "batch": x.get("batch"),
                                  "eval_batch": a.eval_batch, "device": str(device)},
                             train_config=tc, history=history_doc(ck.history))
        print(f"results {write_run_results(a.results_json, doc)}")
    return out


class _Stop(Exception):
    """Raised from the step callback after Ctrl-C (the checkpoint, if any, is saved)."""

    def __init__(self, step: int):
        self.step = step


def _resume_state(p, a, run: dict, model, tok):
    """(TrainState, rng dict) from --resume, after checking it matches this run."""
    try:
        ck = load_checkpoint(a.resume)
    except (OSError, ValueError) as e:
        p.error(f"--resume: {e}")
    if ck.resume is None:
        p.error(f"--resume: {a.resume} holds no resume state (it was saved before "
                "--save-every existed, or by save_checkpoint without one)")
    saved = ck.resume["run"] | {f"model_config.{k}": v
                                for k, v in asdict(ck.model.cfg).items()}
    now = run | {f"model_config.{k}": v for k, v in asdict(model.cfg).items()}
    saved["vocabulary"], now["vocabulary"] = "".join(ck.vocab or []), "".join(tok.chars)
    try:
        require_same_config(saved, now, what=f"--resume: {a.resume}")
    except ValueError as e:
        p.error(str(e))
    model.load_state_dict(ck.model.state_dict())
    r = ck.resume
    return TrainState(r["step"], ck.history or History(), r["optimizer"]), r["rng"]


def run_training(p, a, args: list[str], command: str, device, git: dict | None) -> dict:
    """Train `a.model` (from step 0, or from `a.resume`), then score the held-out split."""
    if a.model is None:
        p.error("--model is required (unless --eval-only)")
    if a.save_every and not (a.out or a.resume):
        p.error("--save-every needs --out (where to save)")
    out_path = a.out or a.resume
    try:
        tok, tr, va = load_corpus(a.text)
    except (ValueError, UnicodeDecodeError) as e:
        p.error(f"--text: {e}")
    if len(tr) < a.block + 1 or len(va) < (a.block + 1 if a.results_json else 2):
        p.error(f"the text is too short for --block {a.block}: {len(tr)} training and "
                f"{len(va)} held-out characters (the loss by position needs block + 1 "
                "held out)")
    torch.manual_seed(a.seed)
    common = dict(block_size=a.block, n_layer=a.n_layer, n_embd=a.n_embd, n_head=a.n_head)
    if a.model == "phase":
        common.update(window=a.window, selector=a.selector, n_slots=a.n_slots,
                      pyr_dim=a.pyr_dim, features=a.features)
    try:
        model = build_model(a.model, tok.vocab_size, **common)
    except (ValueError, ImportError) as e:
        p.error(str(e))
    run = {k: getattr(a, k) for k in RUN_FIELDS}
    cfg = TrainConfig(steps=a.steps, lr=a.lr, warmup=min(a.warmup, a.steps),
                      weight_decay=a.weight_decay, beta2=a.beta2,
                      progress=sys.stderr.isatty())
    gen = torch.Generator().manual_seed(a.seed)
    start = None
    if a.resume:
        start, rng = _resume_state(p, a, run, model, tok)
        set_rng_state(rng, gen)
        print(f"resuming {a.resume} at step {start.step} of {a.steps}")
    model.to(device)
    base = [x for i, x in enumerate(args) if x != "--resume" and
            (i == 0 or args[i - 1] != "--resume") and not x.startswith("--resume=")]
    again = "python -m phaselib.train " + shlex.join(base + ["--resume", str(out_path)])
    extra = {"text": a.text or "shakespeare", "seed": a.seed, "batch": a.batch,
             "command": command, "machine": machine_info(str(device))}

    def save(step, opt_state, hist, final=None):
        save_checkpoint(out_path, model, cfg, vocab=tok.chars, history=hist,
                        extra=extra | (final or {}),
                        resume={"step": step, "optimizer": opt_state,
                                "rng": rng_state(gen), "run": run})

    stop, live = [], []  # live: the optimizer, for the final save

    def on_sigint(signum, frame):
        if stop:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        stop.append(True)
        print("\ninterrupted: stopping after this step", file=sys.stderr, flush=True)

    def on_step(step, opt, hist):
        live[:] = [opt]
        if out_path and (stop or (a.save_every and step % a.save_every == 0)):
            save(step, opt.state_dict(), hist)
            print(f"saved {out_path} at step {step}", flush=True)
        if stop:
            raise _Stop(step)

    old = signal.signal(signal.SIGINT, on_sigint)
    print(f"training from step {0 if start is None else start.step} of {a.steps} "
          f"({'Ctrl-C saves and stops' if out_path else 'Ctrl-C stops'})", flush=True)
    t0 = time.perf_counter()
    try:
        hist, stats = train_lm(model, tr, cfg, block=a.block, batch=a.batch, seed=a.seed,
                               generator=gen, start=start, on_step=on_step)
    except _Stop as e:
        if out_path:
            print(f"stopped at step {e.step} of {a.steps}; continue with:\n  {again}")
        else:
            print(f"stopped at step {e.step} of {a.steps}; nothing saved (give --out and "
                  "--save-every to make a run resumable)")
        raise SystemExit(130)
    finally:
        signal.signal(signal.SIGINT, old)
    t1 = time.perf_counter()
    val = evaluate_loss(model, va, a.block, a.eval_batch)
    t2 = time.perf_counter()
    wall = t2 - t0
    out = {"model": a.model, "val_loss": val, "params": stats["params"],
           "wall_time_s": wall,
           "train_s": stats["train_s"], "tokens_per_s": stats["tokens_per_s"],
           "val_tokens": len(va) - 1, "final_train_loss": hist.loss[-1],
           "resumed_from_step": 0 if start is None else start.step}
    print(f"{a.model}: {a.steps} steps, block {a.block}, batch {a.batch}, device {device}, "
          f"{len(tr):,} training / {len(va):,} held-out characters")
    print(f"val_loss {val:.4f}  (nats per character, all {len(va) - 1:,} held-out targets)")
    print(f"params {stats['params']}")
    print(f"wall_time_s {wall:.1f}  (training {stats['train_s']:.1f} s, "
          f"{stats['tokens_per_s']:,.0f} tokens/s; {stats['train_cpu_s']:.1f} CPU-s)")
    if a.sample:
        print(sample(model, tok, a.prompt, a.sample, seed=a.seed))
    if out_path:
        save(a.steps, live[0].state_dict() if live else start.optimizer, hist,
             final={k: v for k, v in out.items() if k != "model"})
        print(f"checkpoint {out_path}")
    if a.results_json:
        doc = results_record(a, command, device, git, a.text, model, tok, tr, va, val,
                             t2 - t1, mode="train", checkpoint=out_path,
                             tokens_per_s=stats["tokens_per_s"],
                             train_s=stats["train_s"], train_cpu_s=stats["train_cpu_s"],
                             wall_time_s=wall,
                             final_train_loss=hist.loss[-1],
                             resumed_from_step=out["resumed_from_step"],
                             run={"steps": a.steps, "block": a.block, "batch": a.batch,
                                  "seed": a.seed, "eval_batch": a.eval_batch,
                                  "device": str(device), "threads": a.threads},
                             train_config=asdict(cfg), history=history_doc(hist))
        print(f"results {write_run_results(a.results_json, doc)}")
    return out
