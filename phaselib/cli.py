"""The command line `python -m phaselib.train`: train a character language model, or
score a saved one, and report the loss over the whole held-out split.

Book: Part IV, "The phase-transport language model", and "Running at scale".

    python -m phaselib.train --model phase|transformer [--text FILE] [--steps N]
        [--window W] [--n-slots K] [--selector S] [--features transport|mean_diff|none]
        [--lr LR] [--warmup N] [--weight-decay WD] [--beta2 B2]
        [--out ckpt.pt [--save-every N]] [--resume ckpt.pt] [--results-json run.json]
    python -m phaselib.train --eval-only ckpt.pt [--results-json run.json]

With `--out`, the checkpoint is written at the end and, with `--save-every N`, every N
steps, each time with what resuming needs (optimizer, step, the data generator and the
RNG states); `--resume ckpt.pt` continues such a run exactly (on CPU, to the same bits)
and refuses a checkpoint made with another model or data configuration. Ctrl-C saves a
resumable checkpoint (with `--out`) and prints the command that continues the run.
`--eval-only CKPT` scores a checkpoint without training (its speed and wall time are
the training run's, as the checkpoint recorded them).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .lm_runs import history_doc, load_corpus, train_lm, write_run_results
from .models import MODELS, build_model, kind_of
from .phase_lm import FEATURES
from .provenance import git_commit, machine_info
from .resume import require_same_config, rng_state, set_rng_state
from .train import History, TrainConfig, TrainState, evaluate_loss, position_losses, sample

__all__ = ["main", "parser"]

# The flags that define a run: a resume must be given the same values.
RUN_FIELDS = ("model", "text", "steps", "block", "batch", "n_layer", "n_embd", "n_head",
              "window", "selector", "n_slots", "pyr_dim", "lr", "warmup", "seed",
              "weight_decay", "beta2")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m phaselib.train",
                                description="Train a character language model and report "
                                            "the loss over the whole held-out split.")
    a = p.add_argument
    a("--model", choices=sorted(MODELS), help="required unless --eval-only")
    a("--text", help="a UTF-8 text file (default: the built-in Shakespeare plays)")
    a("--steps", type=int, default=2000)
    a("--block", type=int, default=64)
    a("--batch", type=int, default=12)
    a("--n-layer", type=int, default=4)
    a("--n-embd", type=int, default=128)
    a("--n-head", type=int, default=4)
    a("--window", type=int, default=0, help="phase: exact near-field window (0: none)")
    a("--selector", default="softmax", help="phase: ScaleSelector kind, or none")
    a("--n-slots", type=int, default=4, help="phase: decision slots (0: none)")
    a("--pyr-dim", type=int, default=32, help="phase: width the pyramid runs on")
    a("--features", default="transport", choices=FEATURES,
      help="phase: level features (mean_diff: block-mean differences; none: no pyramid)")
    a("--lr", type=float, default=1e-3)
    a("--warmup", type=int, default=100)
    a("--weight-decay", type=float, default=0.0,
      help="AdamW weight decay on weight matrices and embeddings")
    a("--beta2", type=float, default=0.999, help="AdamW's second-moment decay")
    a("--seed", type=int, default=1337)
    a("--eval-batch", type=int, default=64)
    a("--device", default="auto")
    a("--threads", type=int, default=None)
    a("--sample", type=int, default=0, help="print this many sampled characters")
    a("--prompt", default="\n")
    a("--out", help="write a checkpoint here (at the end, and every --save-every steps)")
    a("--save-every", type=int, default=0, metavar="N",
      help="with --out: also save a resumable checkpoint every N steps "
           "(0: at the end only)")
    a("--resume", metavar="CKPT",
      help="continue the run saved in CKPT (give the same model and data flags); "
           "--out defaults to CKPT")
    a("--results-json", metavar="PATH",
      help="write the run's results (configs, params, held-out loss, loss by position, "
           "speed, history, machine, command) as JSON here")
    a("--eval-only", metavar="CKPT",
      help="do not train: score this checkpoint on the whole held-out split of its "
           "corpus (or --text); the model flags are taken from the checkpoint")
    a("--note", action="append", default=[],
      help="a line of provenance to store in the results file (repeatable)")
    return p


def _results(a, command: str, device, text, model, tok, tr, va, val: float, eval_s: float,
             **fields_) -> dict:
    pos = position_losses(model, va, model.cfg.block_size, a.eval_batch)
    git = git_commit()
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git["commit"], "git_dirty": git["dirty"],
            "command": command, "model": kind_of(model), "params": model.num_params(),
            "val_loss": val, "val_tokens": len(va) - 1, "eval_s": eval_s,
            "text": str(text or "shakespeare"), "train_chars": len(tr),
            "val_chars": len(va), "vocab_size": tok.vocab_size, **fields_,
            "model_config": asdict(model.cfg), "position_losses": pos.tolist(),
            "notes": list(a.note), "machine": machine_info(str(device))}


def _eval_only(p, a, command: str, device) -> dict:
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
        doc = _results(a, command, device, text, model, tok, tr, va, val, eval_s,
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


def _train(p, a, args: list[str], command: str, device) -> dict:
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
        doc = _results(a, command, device, a.text, model, tok, tr, va, val, t2 - t1,
                       mode="train", checkpoint=out_path,
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


def main(argv: list[str] | None = None) -> dict:
    """The command line (see the module docstring); returns what it prints, as a dict."""
    p = parser()
    args = sys.argv[1:] if argv is None else [str(x) for x in argv]
    a = p.parse_args(args)
    command = "python -m phaselib.train " + shlex.join(args)
    for name in ("steps", "block", "batch", "n_layer", "n_embd", "n_head", "pyr_dim",
                 "eval_batch"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if a.save_every < 0:
        p.error(f"--save-every must be >= 0, got {a.save_every}")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if a.device == "auto" else a.device))
    if a.eval_only:
        return _eval_only(p, a, command, device)
    return _train(p, a, args, command, device)


if __name__ == "__main__":
    main()
