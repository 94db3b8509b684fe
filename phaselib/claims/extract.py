"""The sentences of the seed documents that state something one could check.

The claims ledger is complete when every such sentence maps to a ledger row (or is
marked "not a claim" with a reason): `phaselib/claims/coverage.json` holds that map,
and `phaselib.claims.coverage.coverage_report()` checks it against the extraction kept
in `phaselib/claims/seed_sentences.json`, which this module writes.

Two pure, deterministic functions:

- `split_sentences(text)`: the text's sentences, in order. A line is a block (the seeds
  are web pages copied as text: a heading, a paragraph or a list item per line), except
  that a line is joined to the one before it when either is a fragment of a sentence
  broken over lines (a formula copied one symbol a line, a citation marker such as
  "FMMformer" or "2509.10406v2" on its own line, or a line that starts with
  punctuation); a fragment is a line of one word of at most 14 characters, or one that
  opens with punctuation. Lines of markup only ("---", "```") are dropped. Each block
  is then cut after ".", "!" or "?" followed by a space and a capital letter, a digit
  or a quote, except after an abbreviation ("et al.", "e.g.", "i.e.", "vs.", "Dr.",
  ...), an initial, the number of a numbered heading ("## 2. The Eight ...") or
  inside a quotation that is still open; a numbered list run together on one line
  ("... it 5. The ...") and a timeline ("2014: ... 2015: ...") are cut before each
  item. White space is collapsed to single spaces.
- `checkable_sentences(text)`: the sentences that state a checkable fact, by three
  tests, any of which suffices:
    1. a number: a digit 0-9, not counting the digits of labels that name a part of
       the document rather than a quantity: the failure-mode names "F1" to "F9" (and
       "Failure 3", "Failures 6-7"), an enumerator "(1)" or "(iv)", and the number
       that opens a numbered heading or list item ("2. Background", "4. Even if");
    2. a name from `NAMES`, the vocabulary of models, systems, methods, papers, people,
       organisations and hardware the seeds mention (matched as whole words, case
       sensitive, so "Switch" the router matches and "switch" the verb does not), or
       "et al", or a quoted title of at least three capitalised words (a paper's or a
       post's title);
    3. a dated forecast: a list item under a heading that gives a time window
       ("**Short-term (3-6 months)**:"), which dates the items that follow it.
  A piece with fewer than two words, or with no word of two letters ("…", "… 7", a
  lone symbol), is never a sentence.

The extraction is kept, with each seed file's SHA-256, by the command

    python -m phaselib.claims.extract SEEDS_DIR [--out PATH]

(SEEDS_DIR holds the seed documents NNN_*.txt; by default the JSON goes next to this
module, where the package ships it). Nothing reads the seeds at run time: the tests and
the ledger chapter read the JSON.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import re
import sys
from pathlib import Path

__all__ = ["NAMES", "split_sentences", "checkable_sentences", "is_checkable",
           "extract_seeds", "SENTENCES", "load_sentences"]

SENTENCES = Path(__file__).resolve().parent / "seed_sentences.json"

# Named models, systems, methods, papers, people, organisations and hardware, matched as
# whole words (case sensitive). A name with a digit needs no entry (rule 1 finds it).
NAMES: tuple[str, ...] = (
    # language models and their makers
    "GPT", "ChatGPT", "BERT", "LLaMA", "Llama", "Claude", "Gemini", "DeepSeek",
    "Deep Think", "o3", "Stable Diffusion", "OpenAI", "Anthropic", "Google",
    "DeepMind", "FAANG", "AWS", "GCP",
    # architectures and attention variants
    "Mamba", "Samba", "RWKV", "Goose", "Hyena", "HyenaDNA", "RetNet", "Monarch",
    "Longformer", "BigBird", "Block-Sparse", "Reformer", "Linformer", "Nyströmformer",
    "Performer", "FAVOR+", "AFT", "Routing Transformer", "Linear Transformers", "MuSe",
    "FMMformer", "FMM", "Fast Multipole", "Switch", "GShard", "GLaM", "kNN-LM", "RAG",
    "DNC", "NTM", "Memory Transformers", "MQA", "GQA", "MHA", "SWA", "RoPE", "ALiBi",
    "YaRN", "NTK", "Ring attention", "LSTM",
    # kernels, serving and compression systems
    "FlashAttention", "xFormers", "vLLM", "TensorRT-LLM", "SGLang", "PagedAttention",
    "DeepSpeed", "ZeRO-Inference", "GPTQ", "AWQ",
    # post-training methods
    "RLHF", "DPO", "GRPO", "RLVR",
    # hardware
    "SRAM", "HBM", "HBM3", "NVMe",
    # people and named papers
    "et al", "Vaswani", "Bahdanau", "Dao", "Gu", "Xu", "Sutton", "Gwern", "Dan Luu",
    "Simon Willison", "Attention Is All You Need", "Show, Attend, and Tell",
)
_NAME = re.compile(r"(?<![\w-])(?:" + "|".join(
    re.escape(n) for n in sorted(NAMES, key=len, reverse=True)) + r")(?![\w-])")

# Digits that label a part of the document rather than state a quantity.
_LABELS = re.compile(
    r"\bF[1-9](?:\s*[–\-/]\s*F?[1-9])*\b"              # F1, F3–F8, F4/F5/F8
    r"|\bFailures?\s+[1-9](?:\s*(?:[–\-]|and|,)\s*[1-9])*\b"  # Failure 3, Failures 6–7
    r"|\((?:[1-9]|i{1,3}|iv|v|vi{0,3})\)"               # (1), (iv)
    r"|\b(?:Part|Stage|Prediction|Chapter|Section|Step)\s+[1-9]\b"  # Part 1, Stage 2
)
# The number that opens a numbered heading or item: "2. Background", "4. Even".
_LEAD = re.compile(r"^\W*\d{1,2}(?:\.\d+)*\s*[.:)]\s+(?=\D)")
_QUOTED = re.compile(r"[“\"]([^”\"]{8,200})[”\"]")
_WINDOW = re.compile(r"\d+\s*(?:[-–]\s*\d+\s*)?(?:months?|years?|weeks?)\b", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+\.)\s+")
_MARKUP = re.compile(r"^\s*(?:-{3,}|\*{3,}|`{3,}.*|_{3,})\s*$")
_ABBREV = ("et al.", "e.g.", "i.e.", "vs.", "etc.", "Dr.", "Mr.", "Ms.", "Fig.",
           "approx.", "cf.", "No.")
# Items run together on one line: "... recover it 5. The accumulated ..." (an inline
# numbered list) and "... 2014: Bahdanau - ... 2015: Xu - ..." (a timeline).
_ITEM = re.compile(r"(?<=[^\s\d.])\s+(?=\d{1,2}\.\s+[A-Z])|\s+(?=(?:19|20)\d\d:\s)")
_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[A-Z0-9“\"‘(*#])")


def _fragment(line: str) -> bool:
    """A piece of a sentence broken over lines: a lone symbol or formula piece, or a
    citation marker (one short word), or a line that opens with punctuation."""
    s = line.strip()
    return (len(s) <= 14 and " " not in s) or bool(re.match(r"^[.,;:)\]]", s))


def _blocks(text: str) -> list[str]:
    """The text's blocks: lines, with fragments joined to their neighbours."""
    blocks: list[str] = []
    joinable = False          # the last block may take the next line
    for raw in text.splitlines():
        line = raw.strip()
        if not line or _MARKUP.match(line):
            continue
        frag = _fragment(line)
        if blocks and (frag or joinable) and not _BULLET.match(line) \
                and not line.startswith("#") \
                and (not re.search(r"[.!?:]$", blocks[-1]) or (frag and joinable)):
            blocks[-1] = f"{blocks[-1]} {line}"
        elif blocks and frag and re.match(r"^[.,;:)\]]", line):
            blocks[-1] = f"{blocks[-1]} {line}"
        else:
            blocks.append(line)
        joinable = frag
    return [re.sub(r"\s+", " ", b).strip() for b in blocks]


def _cut(block: str) -> list[str]:
    out = []
    for part in _ITEM.split(block):
        start = 0
        for m in _END.finditer(part):
            head = part[start:m.start()].rstrip("\"”’)")
            if head.endswith(_ABBREV) or re.search(r"\b[A-Z]\.$", head) \
                    or re.fullmatch(r"\W*\d+(?:\.\d+)*\.", head) \
                    or head.count("“") > head.count("”"):
                continue      # an abbreviation, an initial, a heading's number, or
                              # the end of a quoted title's first sentence
            out.append(part[start:m.start()].strip())
            start = m.end()
        out.append(part[start:].strip())
    return [s for s in out if s]


def _is_sentence(s: str) -> bool:
    """At least two words, one of them with two letters in a row."""
    return len(s.split()) >= 2 and bool(re.search(r"[^\W\d_]{2}", s))


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, in order (see the module's docstring for the rules)."""
    out = []
    for block in _blocks(text):
        out += [s for s in _cut(block) if _is_sentence(s)]
    return out


def _has_number(sentence: str) -> bool:
    s = _LEAD.sub("", sentence)
    s = _LABELS.sub("", s)
    return bool(re.search(r"[0-9]", s))


def _has_title(sentence: str) -> bool:
    for m in _QUOTED.finditer(sentence):
        words = [w for w in re.findall(r"[A-Za-z][\w'’-]*", m.group(1))]
        caps = [w for w in words if w[0].isupper()]
        if len(words) >= 3 and len(caps) >= 3 and len(caps) >= 0.6 * len(words):
            return True
    return False


def is_checkable(sentence: str) -> bool:
    """Rules 1 and 2 of the module's docstring: a number or a name."""
    return _has_number(sentence) or bool(_NAME.search(sentence)) or _has_title(sentence)


def checkable_sentences(text: str) -> list[str]:
    """The sentences of `text` that state a checkable fact (a number, a named model,
    system, paper or person, or a dated forecast), in order, each once."""
    out: list[str] = []
    dated = False             # inside the list under a heading with a time window
    for block in _blocks(text):
        bullet = bool(_BULLET.match(block))
        if not bullet:
            dated = (bool(_WINDOW.search(block)) and len(block.split()) <= 8
                     and block.rstrip("*").endswith(":"))
        for s in _cut(block):
            if not _is_sentence(s):
                continue
            if (is_checkable(s) or (dated and bullet)) and s not in out:
                out.append(s)
    return out


def _seed_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.glob("*.txt") if re.match(r"^\d{3}_", p.name))
    if not files:
        raise FileNotFoundError(f"no seed documents NNN_*.txt in {folder}")
    return files


def extract_seeds(folder: str | Path) -> dict:
    """{"NNN": {"file", "sha256", "sentences"}} for every seed file NNN_*.txt."""
    out = {}
    for path in _seed_files(Path(folder)):
        data = path.read_bytes()
        out[path.name[:3]] = {"file": path.name,
                              "sha256": hashlib.sha256(data).hexdigest(),
                              "sentences": checkable_sentences(data.decode("utf-8"))}
    return out


def load_sentences(path: str | Path | None = None) -> dict[str, list[str]]:
    """The kept extraction: {seed: [sentence, ...]} (seed_sentences.json)."""
    data = json.loads(Path(path or SENTENCES).read_text(encoding="utf-8"))
    return {seed: list(v["sentences"]) for seed, v in data["seeds"].items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m phaselib.claims.extract",
                                 description="Extract the seeds' checkable sentences.")
    ap.add_argument("seeds_dir", help="the folder of the seed documents NNN_*.txt")
    ap.add_argument("--out", default=str(SENTENCES), help="where to write the JSON")
    args = ap.parse_args(argv)
    seeds = extract_seeds(args.seeds_dir)
    doc = {"seeds": seeds,
           "command": "python -m phaselib.claims.extract SEEDS_DIR",
           "date": _dt.date.today().isoformat()}
    Path(args.out).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    n = sum(len(v["sentences"]) for v in seeds.values())
    print(f"{n} checkable sentences from {len(seeds)} seeds -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
