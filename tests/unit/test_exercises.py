"""Every chapter checker accepts a right answer written here, independently of the
package's reference, rejects a known-wrong answer with a message that names the mistake,
and reports an unsolved stub as "not attempted" (False). The GPU-kernels checkers are
tested in test_kernels_exercises.py."""

import math

import numpy as np
import pytest
import torch

import phaselib.exercises as ex

# --- Right answers (the chapters' solutions, written without the package) ----------------


def causal_mask(T):
    return torch.ones(T, T, dtype=torch.bool).tril()


def attention(q, k, v, causal=True):
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    w = torch.softmax(scores, -1)
    return w @ v, w


def angle_atan2(a, b):
    u, v = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    cos = (u * v).sum(-1)
    return torch.atan2((v - cos[..., None] * u).norm(dim=-1), cos)


def angle_arccos(a, b):
    u, v = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    return torch.arccos((u * v).sum(-1).clamp(-1, 1))


def transport(a, b, flip=False):
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    u, v = a / na, b / nb
    cos = (u * v).sum(-1, keepdim=True)
    w = v - cos * u
    sin = w.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    log_ratio = torch.log(na / nb) if flip else torch.log(nb / na)
    return torch.cat([torch.atan2(sin, cos) * w / sin, log_ratio], dim=-1)


def cuts(pieces, keep_last=False):
    out, pos = [], 0
    for p in pieces if keep_last else pieces[:-1]:
        pos += len(p)
        out.append(pos)
    return out


def suffix_stem(word, lexicon, suffixes=("ness", "less", "ment", "eth", "est", "ing", "ful",
                                         "ly", "ed", "er", "st", "s")):
    low = word.lower()
    for suf in suffixes:
        stem = low[: len(low) - len(suf)]
        if low.endswith(suf) and len(stem) >= 3 and stem in lexicon:
            return len(stem)
    return None


def kv_bytes(n_layers, n_kv_heads, head_dim, seq_len, batch, bytes_per_elem, factor=2):
    return factor * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_elem


def window_mask(T, window):
    d = torch.arange(T)[:, None] - torch.arange(T)[None, :]
    return (d >= 0) & (d < window)


def salience(delta, n):
    return torch.sigmoid(delta - torch.log(n))


def entropy(w):
    return -torch.special.xlogy(w, w).sum(-1)


def distance_profile(weights, start, divide_by_T=False):
    B, H, T, _ = weights.shape
    out = torch.zeros(H, T, dtype=weights.dtype)
    for i in range(start, T):
        for j in range(i + 1):
            out[:, i - j] += weights[:, :, i, j].mean(0)
    return out / (T if divide_by_T else T - start)


def silent_levels(period, levels):
    return [(2 ** level) % period == 0 for level in range(levels)]


def cut_mask(spans, size, off_by_one=False):
    spans = np.asarray(spans)
    return spans[:, 0] // size != (spans[:, 1] - (0 if off_by_one else 1)) // size


def snap_starts(n, size, unit_starts):
    units = np.sort(np.asarray(unit_starts))
    out = {0}
    for g in range(0, n, size):
        later = units[units >= g]
        if len(later) and later[0] < n:
            out.add(int(later[0]))
    return np.array(sorted(out))


def unigram_entropy(ids, V, log=math.log):
    counts = torch.bincount(ids, minlength=V).tolist()
    N = sum(counts)
    return -sum(c / N * log(c / N) for c in counts if c)


def sliding_windows(n, block, stride):
    out, start, scored = [], 0, 0
    while scored < n - 1:
        length = min(block, n - 1 - start)
        out.append((start, length, scored - start))
        scored, start = start + length, start + stride
    return out


def feature_age(t, level, masked=-1):
    n = (t + 1) >> level
    return masked if n < 2 else t - (n * 2 ** level - 1)


def last_block_mean(x, level, own_block=False):
    B, T, D = x.shape
    s = 2 ** level
    out = torch.zeros_like(x)
    for t in range(T):
        n = (t + 1) // s                    # completed blocks at t
        if own_block:                       # the aligned block holding t, future included
            out[:, t] = x[:, t // s * s: (t // s + 1) * s].mean(1)
        elif n:
            out[:, t] = x[:, (n - 1) * s: n * s].mean(1)
    return out


def levels_completed(t, levels):
    return max(1, min(levels, ((t + 1) & -(t + 1)).bit_length()))


class BlockMeanStream:
    def __init__(self, dim, level):
        self.size, self.t, self.running, self.last = 2 ** level, 0, None, None

    def step(self, x_t):
        if self.running is None:
            self.running, self.last = torch.zeros_like(x_t), torch.zeros_like(x_t)
        self.running = self.running + x_t
        self.t += 1
        if self.t % self.size == 0:
            self.last, self.running = self.running / self.size, torch.zeros_like(x_t)
        return self.last.clone()


class HoardingStream(BlockMeanStream):
    """Right values, but it keeps every token it has seen."""

    def step(self, x_t):
        self.seen = getattr(self, "seen", []) + [x_t]
        return super().step(x_t)


def slot_update(g, w, s0, swap=False):
    s = s0.expand(w.shape[0], *s0.shape)
    out = []
    for t in range(w.shape[1]):
        gt = g[:, t, :, None]
        s = (1 - gt) * w[:, t] + gt * s if swap else gt * w[:, t] + (1 - gt) * s
        out.append(s)
    return torch.stack(out, 1)


def retention(g, count_first=False):
    keep = (1 - g).cumprod(-1) if count_first else (1 - g[..., 1:]).cumprod(-1)
    return keep if count_first else torch.cat([torch.ones_like(g[..., :1]), keep], -1)


def sparsemax(z):
    zs, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cs = zs.cumsum(-1)
    support = (1 + k * zs > cs).sum(-1, keepdim=True)
    tau = (cs.gather(-1, support - 1) - 1) / support
    return (z - tau).clamp(min=0)


def straight_through(scores):
    soft = torch.softmax(scores, -1)
    hard = torch.nn.functional.one_hot(scores.argmax(-1), scores.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def hard_no_gradient(scores):
    soft = torch.softmax(scores, -1)
    hard = torch.nn.functional.one_hot(scores.argmax(-1), scores.shape[-1]).to(soft.dtype)
    return hard + 0 * soft.detach()


# (checker, right answer, known-wrong answer, what the rejection must say)
CASES = [
    ("check_causal_mask", causal_mask, lambda T: torch.ones(T, T, dtype=torch.bool).triu(),
     r"causal_mask\(\d+\) is wrong at"),
    ("check_attention", attention, lambda q, k, v: attention(q, k, v, causal=False),
     "weights at T=.*values differ"),
    ("check_angle", angle_atan2, angle_arccos, "angle on (nearly )?equal vectors"),
    ("check_transport", transport, lambda a, b: transport(a, b, flip=True),
     "transport on shape"),
    ("check_cuts_from_pieces", cuts, lambda p: cuts(p, keep_last=True), "expected cuts"),
    ("check_suffix_boundary", suffix_stem,
     lambda w, lex: next((len(w) - len(x) for x in ("ness", "ing", "s")
                          if w.lower().endswith(x) and w.lower()[:-len(x)] in lex), None),
     "the stem must be a word of the lexicon with at least 3 letters"),
    ("check_kv_cache_bytes", kv_bytes, lambda *a: kv_bytes(*a, factor=1), "Remember the 2"),
    ("check_sliding_window_mask", window_mask, lambda T, w: window_mask(T, w + 1),
     r"sliding_window_mask\(\d+, \d+\) is wrong at query"),
    ("check_salience_weight", salience, lambda d, n: torch.exp(d) / n, "salience weight on"),
    ("check_attention_entropy", entropy, lambda w: -(w * w.log()).sum(-1), "NaN or inf"),
    ("check_distance_profile", distance_profile,
     lambda w, s: distance_profile(w, s, divide_by_T=True), "profile at .*start=4"),
    ("check_silent_levels", silent_levels, lambda p, L: [2 ** l == p for l in range(L)],
     r"silent_levels\(\d+, \d+\)\[\d+\]"),
    ("check_cut_mask", cut_mask, lambda s, z: cut_mask(s, z, off_by_one=True),
     r"A span \[s, e\) is cut"),
    ("check_aligned_starts", snap_starts, lambda n, size, u: np.arange(0, n, size),
     "n=20, size=5"),
    ("check_unigram_entropy", unigram_entropy,
     lambda ids, V: unigram_entropy(ids, V, math.log2), "natural log, not log2"),
    ("check_near_field_mask", window_mask, lambda T, w: window_mask(T, w - 1),
     r"near_field_mask\(\d+, \d+\) is wrong"),
    ("check_sliding_windows", sliding_windows,
     lambda n, b, s: [(i, min(b, n - 1 - i), 0) for i in range(0, n - 1, s)],
     "tokens of context"),
    ("check_feature_age", feature_age, lambda t, level: feature_age(t, level, masked=0),
     "fewer than two complete blocks means masked"),
    ("check_last_block_mean", last_block_mean,
     lambda x, level: last_block_mean(x, level, own_block=True), "reads the future"),
    ("check_levels_completed", levels_completed, lambda t, L: min(L, (t + 1).bit_length()),
     r"levels_completed\(t=\d+, levels=\d+\) should be"),
    ("check_streaming_block_mean", BlockMeanStream, HoardingStream,
     "should not grow with the number of tokens"),
    ("check_slot_recurrence", slot_update, lambda g, w, s0: slot_update(g, w, s0, swap=True),
     "slots for B, T, K, C"),
    ("check_retention", retention, lambda g: retention(g, count_first=True),
     "retention for constant gate"),
    ("check_sparsemax", sparsemax, lambda z: torch.softmax(z, -1), "sparsemax on random"),
    ("check_straight_through", straight_through, hard_no_gradient,
     "no gradient reached the scores"),
]
# Checker modules whose checkers are tested beside their chapter's module instead.
TESTED_ELSEWHERE = {"phaselib.exercises.kernels": "test_kernels_exercises.py",
                    "phaselib.exercises.branching": "test_branching.py",
                    "phaselib.exercises.erosion": "test_erosion.py",
                    "phaselib.exercises.preconditioning": "test_preconditioning.py",
                    "phaselib.exercises.drift": "test_exercises_drift.py",
                    "phaselib.exercises.remedies": "test_exercises_remedies.py",
                    "phaselib.exercises.ledger": "test_ledger.py",
                    "phaselib.exercises.predictions": "test_predictions_exercises.py"}


def test_every_checker_is_covered():
    here = {c[0] for c in CASES}
    missing = [n for n in ex.__all__
               if n not in here and getattr(ex, n).__module__ not in TESTED_ELSEWHERE]
    assert missing == [], f"checkers without a right/wrong case here: {missing}"
    assert here <= set(ex.__all__)


@pytest.mark.parametrize("name, right, wrong, match", CASES, ids=[c[0] for c in CASES])
def test_checker_accepts_right_and_rejects_wrong(name, right, wrong, match, capsys):
    check = getattr(ex, name)
    assert check(right) is True
    assert "all checks passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=match):
        check(wrong)


def _stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_checker_reports_a_stub_as_not_attempted(name, capsys):
    assert getattr(ex, name)(_stub) is False
    assert "not attempted yet" in capsys.readouterr().out
