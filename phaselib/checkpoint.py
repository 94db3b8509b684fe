"""Language-model runs: build a model by name, train it on a character corpus, save and
load checkpoints, and the command line `python -m phaselib.train`.

Book: Part IV, "The phase-transport language model". A checkpoint is a plain dict of
tensors, strings and numbers, so `torch.load(path, weights_only=True)` reads it; nothing
is pickled. The notebook and the command line call the same functions here.

With `--results-json PATH` the command line also writes one JSON document for the run
(`write_run_results`, format "phaselib-lm-results-v1"): the command, the configurations,
parameter count, the loss over the whole held-out split, the loss by position in the
window, speed, wall time, the history and the machine. `--eval-only CKPT` scores a saved
checkpoint the same way without training (its speed and wall time are the training run's,
as the checkpoint recorded them).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import re
import shlex
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from .bench.io import machine_info
from .data import CharTokenizer, load_shakespeare, random_windows, split_text
from .phase_lm import PhaseLM, PhaseLMConfig
from .train import History, TrainConfig, evaluate_loss, position_losses, sample, train
from .transformer import TinyTransformer, TransformerConfig

__all__ = ["MODELS", "build_model", "width_for_params", "load_corpus", "train_lm", "Checkpoint", "save_checkpoint",
           "load_checkpoint", "write_run_results", "read_run_results", "run_cli"]

FORMAT = "phaselib-lm-checkpoint-v1"
RESULTS_FORMAT = "phaselib-lm-results-v1"
MODELS = {"phase": (PhaseLMConfig, PhaseLM), "transformer": (TransformerConfig, TinyTransformer)}


def build_model(kind: str, vocab_size: int, **config) -> nn.Module:
    """A fresh `PhaseLM` (kind "phase") or `TinyTransformer` ("transformer"); `config`
    sets fields of its config dataclass (unknown names raise)."""
    if kind not in MODELS:
        raise ValueError(f"kind must be one of {sorted(MODELS)}, got {kind!r}")
    cfg_cls, model_cls = MODELS[kind]
    names = {f.name for f in fields(cfg_cls)}
    unknown = sorted(set(config) - names)
    if unknown:
        raise ValueError(f"config has fields {unknown} that {cfg_cls.__name__} does not have; "
                         f"it has {sorted(names)}")
    return model_cls(cfg_cls(vocab_size=vocab_size, **config))


def width_for_params(kind: str, vocab_size: int, target: int, multiple: int = 8, **config) -> int:
    """The n_embd (a multiple of `multiple`, up to 2048) whose model has the parameter count
    closest to `target`, other fields from `config`. Models are built on the meta device."""
    best, best_gap = multiple, None
    with torch.device("meta"):
        for width in range(multiple, 2049, multiple):
            n = build_model(kind, vocab_size, n_embd=width, **config).num_params()
            if best_gap is None or abs(n - target) < best_gap:
                best, best_gap = width, abs(n - target)
            if n > target:
                break
    return best


def _kind_of(model: nn.Module) -> str:
    for kind, (_, cls) in MODELS.items():
        if type(model) is cls:
            return kind
    raise TypeError(f"model must be one of {[c.__name__ for _, c in MODELS.values()]}, "
                    f"got {type(model).__name__}")


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


def train_lm(model: nn.Module, train_ids: torch.Tensor, cfg: TrainConfig, *, block: int, batch: int,
             seed: int = 0, val_ids: torch.Tensor | None = None, eval_tokens: int = 20_000,
             eval_batch: int = 64) -> tuple[History, dict]:
    """Train on random windows of `train_ids` (seeded); returns (history, stats).

    With `val_ids` and cfg.eval_every, the curve's evaluations use the first `eval_tokens`
    held-out tokens (a fixed subset, for speed). stats: train_s and tokens_per_s (both
    leaving out the time spent in those evaluations), params.
    """
    if len(train_ids) < block + 2:
        raise ValueError(f"train_ids must hold more than block + 1 = {block + 1} tokens, got {len(train_ids)}")
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    get_batch = lambda step: random_windows(train_ids, block, batch, generator=g, device=device)  # noqa: E731
    eval_fn, eval_s = None, [0.0]
    if val_ids is not None:
        sub = val_ids[:eval_tokens]

        def eval_fn(m):  # timed, so that the training speed leaves the evaluations out
            t = time.perf_counter()
            loss = evaluate_loss(m, sub, block, eval_batch)
            eval_s[0] += time.perf_counter() - t
            return loss
    t0 = time.perf_counter()
    hist = train(model, get_batch, cfg, eval_fn)
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - t0 - eval_s[0]
    return hist, {"train_s": train_s, "tokens_per_s": cfg.steps * batch * block / train_s,
                  "params": model.num_params()}


@dataclass
class Checkpoint:
    model: nn.Module
    train_config: TrainConfig | None
    vocab: list[str] | None
    history: History | None
    extra: dict


def save_checkpoint(path: str | Path, model: nn.Module, cfg: TrainConfig | None = None, *,
                    vocab: list[str] | None = None, history: History | None = None,
                    extra: dict | None = None) -> None:
    """Write model weights and configs as plain data (readable with weights_only=True)."""
    ckpt = {"format": FORMAT, "kind": _kind_of(model), "model_config": asdict(model.cfg),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "train_config": None if cfg is None else asdict(cfg),
            "vocab": None if vocab is None else list(vocab),
            "history": None if history is None else asdict(history),
            "extra": dict(extra or {})}
    torch.save(ckpt, Path(path))


def load_checkpoint(path: str | Path, device="cpu") -> Checkpoint:
    """Rebuild the model saved by `save_checkpoint` (torch.load with weights_only=True)."""
    ckpt = torch.load(Path(path), map_location=device, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a phaselib language-model checkpoint ({FORMAT})")
    cfg_cls, model_cls = MODELS[ckpt["kind"]]
    model = model_cls(cfg_cls(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    tc = ckpt["train_config"]
    hist = ckpt["history"]
    return Checkpoint(model, None if tc is None else TrainConfig(**tc), ckpt["vocab"],
                      None if hist is None else History(**hist), ckpt["extra"])


def _finite(obj):
    """obj with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_run_results(path: str | Path, doc: dict) -> Path:
    """Write one run's results `doc` as strict JSON (parents created; NaN/inf become null),
    indented, with lists of numbers kept on one line so a 2000-step history stays small."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite({"format": RESULTS_FORMAT} | doc), indent=1, allow_nan=False)
    text = re.sub(r"\[\s*([-0-9.eE+,\s]+?)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read_run_results(path: str | Path) -> dict:
    """The document written by `write_run_results` (checks its format and main fields)."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path} is not a phaselib language-model results file ({RESULTS_FORMAT})")
    for key in ("model", "params", "val_loss", "position_losses", "model_config"):
        if key not in doc:
            raise ValueError(f"{path} has no {key!r} field")
    return doc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m phaselib.train",
                                description="Train a character language model and report the "
                                            "loss over the whole held-out split.")
    p.add_argument("--model", choices=sorted(MODELS), help="required unless --eval-only")
    p.add_argument("--text", help="a UTF-8 text file (default: the built-in Shakespeare plays)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--window", type=int, default=0, help="phase: exact near-field window (0: none)")
    p.add_argument("--selector", default="softmax", help="phase: ScaleSelector kind, or none")
    p.add_argument("--n-slots", type=int, default=4, help="phase: decision slots (0: none)")
    p.add_argument("--pyr-dim", type=int, default=32, help="phase: width the pyramid runs on")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--eval-batch", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--sample", type=int, default=0, help="print this many sampled characters")
    p.add_argument("--prompt", default="\n")
    p.add_argument("--out", help="write a checkpoint here")
    p.add_argument("--results-json", metavar="PATH",
                   help="write the run's results (configs, params, held-out loss, loss by position, "
                        "speed, history, machine, command) as JSON here")
    p.add_argument("--eval-only", metavar="CKPT",
                   help="do not train: score this checkpoint on the whole held-out split of its "
                        "corpus (or --text); the model flags are taken from the checkpoint")
    p.add_argument("--note", action="append", default=[],
                   help="a line of provenance to store in the results file (repeatable)")
    return p


def _results(a, command: str, device, text, model, tok, tr, va, val: float, eval_s: float,
             **fields_) -> dict:
    pos = position_losses(model, va, model.cfg.block_size, a.eval_batch)
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "model": _kind_of(model), "params": model.num_params(), "val_loss": val,
            "val_tokens": len(va) - 1, "eval_s": eval_s, "text": str(text or "shakespeare"),
            "train_chars": len(tr), "val_chars": len(va), "vocab_size": tok.vocab_size,
            **fields_, "model_config": asdict(model.cfg),
            "position_losses": pos.tolist(), "notes": list(a.note),
            "machine": _machine(device)}


def _machine(device) -> dict:
    """machine_info as plain str/int values (torch.__version__ is a str subclass that
    torch.load(weights_only=True) refuses)."""
    return {k: v if isinstance(v, (int, float)) else str(v) for k, v in machine_info(str(device)).items()}


def _history_doc(hist: History | None) -> dict | None:
    if hist is None:
        return None
    return {"step": list(hist.step), "loss": [round(v, 5) for v in hist.loss],
            "eval_step": list(hist.eval_step), "eval": [round(v, 5) for v in hist.eval]}


def _eval_only(p, a, command: str, device) -> dict:
    if a.out:
        p.error("--out cannot be used with --eval-only (nothing is trained)")
    try:
        ck = load_checkpoint(a.eval_only, device=device)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as e:
        p.error(f"--eval-only: {e}")
    saved_text = ck.extra.get("text")
    text = a.text or (saved_text if saved_text not in (None, "shakespeare") else None)
    try:
        tok, tr, va = load_corpus(text)
    except (ValueError, UnicodeDecodeError) as e:
        p.error(f"--text: {e}")
    if ck.vocab is not None and list(ck.vocab) != list(tok.chars):
        p.error(f"--eval-only: the checkpoint's vocabulary ({len(ck.vocab)} characters) is not "
                f"that of the corpus ({tok.vocab_size}); pass the --text it was trained on")
    model, block = ck.model, ck.model.cfg.block_size
    if len(va) < (block + 1 if a.results_json else 2):
        p.error(f"the held-out split ({len(va)} characters) is too short for block {block}")
    t0 = time.perf_counter()
    val = evaluate_loss(model, va, block, a.eval_batch)
    eval_s = time.perf_counter() - t0
    kind = _kind_of(model)
    out = {"model": kind, "val_loss": val, "params": model.num_params(), "val_tokens": len(va) - 1,
           "eval_s": eval_s, "checkpoint": str(a.eval_only)}
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
        doc = _results(a, command, device, text, model, tok, tr, va, val, eval_s, mode="eval-only",
                       checkpoint=str(a.eval_only),
                       tokens_per_s=x.get("tokens_per_s"), train_s=x.get("train_s"),
                       wall_time_s=x.get("wall_time_s"),
                       training={"val_loss_recorded": x.get("val_loss"), "seed": x.get("seed"),
                                 "command": x.get("command"), "machine": x.get("machine"),
                                 "final_train_loss": x.get("final_train_loss")},
                       run={"block": block, "batch": x.get("batch"), "eval_batch": a.eval_batch,
                            "device": str(device)},
                       train_config=tc, history=_history_doc(ck.history))
        print(f"results {write_run_results(a.results_json, doc)}")
    return out


def run_cli(argv: list[str] | None = None) -> dict:
    p = _parser()
    args = sys.argv[1:] if argv is None else [str(x) for x in argv]
    a = p.parse_args(args)
    command = "python -m phaselib.train " + shlex.join(args)
    for name in ("steps", "block", "batch", "n_layer", "n_embd", "n_head", "pyr_dim", "eval_batch"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if a.device == "auto" else a.device))
    if a.eval_only:
        return _eval_only(p, a, command, device)
    if a.model is None:
        p.error("--model is required (unless --eval-only)")
    try:
        tok, tr, va = load_corpus(a.text)
    except (ValueError, UnicodeDecodeError) as e:
        p.error(f"--text: {e}")
    if len(tr) < a.block + 2 or len(va) < (a.block + 1 if a.results_json else 2):
        p.error(f"the text is too short for --block {a.block}: {len(tr)} training and "
                f"{len(va)} held-out characters (the loss by position needs block + 1 held out)")
    torch.manual_seed(a.seed)
    common = dict(block_size=a.block, n_layer=a.n_layer, n_embd=a.n_embd, n_head=a.n_head)
    if a.model == "phase":
        common.update(window=a.window, selector=a.selector, n_slots=a.n_slots, pyr_dim=a.pyr_dim)
    try:
        model = build_model(a.model, tok.vocab_size, **common).to(device)
    except (ValueError, ImportError) as e:
        p.error(str(e))
    cfg = TrainConfig(steps=a.steps, lr=a.lr, warmup=min(a.warmup, a.steps),
                      progress=sys.stderr.isatty())
    t0 = time.perf_counter()
    hist, stats = train_lm(model, tr, cfg, block=a.block, batch=a.batch, seed=a.seed)
    t1 = time.perf_counter()
    val = evaluate_loss(model, va, a.block, a.eval_batch)
    t2 = time.perf_counter()
    wall = t2 - t0
    out = {"model": a.model, "val_loss": val, "params": stats["params"], "wall_time_s": wall,
           "train_s": stats["train_s"], "tokens_per_s": stats["tokens_per_s"],
           "val_tokens": len(va) - 1, "final_train_loss": hist.loss[-1]}
    print(f"{a.model}: {a.steps} steps, block {a.block}, batch {a.batch}, device {device}, "
          f"{len(tr):,} training / {len(va):,} held-out characters")
    print(f"val_loss {val:.4f}  (nats per character, all {len(va) - 1:,} held-out targets)")
    print(f"params {stats['params']}")
    print(f"wall_time_s {wall:.1f}  (training {stats['train_s']:.1f} s, "
          f"{stats['tokens_per_s']:,.0f} tokens/s)")
    if a.sample:
        print(sample(model, tok, a.prompt, a.sample, seed=a.seed))
    if a.out:
        save_checkpoint(a.out, model, cfg, vocab=tok.chars, history=hist,
                        extra={k: v for k, v in out.items() if k != "model"}
                        | {"text": a.text or "shakespeare", "seed": a.seed, "batch": a.batch,
                           "command": command, "machine": _machine(device)})
        print(f"checkpoint {a.out}")
    if a.results_json:
        doc = _results(a, command, device, a.text, model, tok, tr, va, val, t2 - t1, mode="train",
                       checkpoint=a.out, tokens_per_s=stats["tokens_per_s"], train_s=stats["train_s"],
                       wall_time_s=wall, final_train_loss=hist.loss[-1],
                       run={"steps": a.steps, "block": a.block, "batch": a.batch, "seed": a.seed,
                            "eval_batch": a.eval_batch, "device": str(device), "threads": a.threads},
                       train_config=asdict(cfg), history=_history_doc(hist))
        print(f"results {write_run_results(a.results_json, doc)}")
    return out
