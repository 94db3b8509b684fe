"""The explorers: each frame checked against an independent computation, each widget
built and driven (setting a control must show the frame computed for that value)."""

import math
import re
import xml.etree.ElementTree as ET

import ipywidgets as widgets
import pytest
import torch

from phaselib.kvcache import GPU_MEMORY_GB, PUBLISHED_SHAPES
from phaselib.pyramid import pyramid
from phaselib.transport import transport
from phaselib.widgets import (CSS_CLASS, kvcache_explorer, kvcache_frame,
                              pyramid_explorer, pyramid_frame, salience_explorer,
                              salience_frame, selection_explorer, selection_frame,
                              streaming_explorer, streaming_frame, transport_explorer,
                              transport_frame, visible_frame)
from phaselib.widgets._stack import linked_stack
from phaselib.widgets.salience import DELTAS, DISTRACTORS
from phaselib.widgets.selection import KINDS, SCORES, TAUS
from phaselib.widgets.streaming import CONTEXTS as STREAM_T
from phaselib.widgets.transport import ANGLES, LOG2_SCALES


def _svg_parses(html: str) -> None:
    svg = html[:html.index("</svg>") + len("</svg>")]
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")


def _all_frames(stack):
    for child in stack.children:
        if isinstance(child, widgets.Stack):
            yield from _all_frames(child)
        else:
            yield child.value


# --- pyramid -------------------------------------------------------------------------

# Counted by hand for T = 8 and 3 levels: (t, level) -> blocks read, () when masked.
PYRAMID_T8 = {
    (0, 0): (), (1, 0): ((0, 0), (1, 1)), (7, 0): ((6, 6), (7, 7)),
    (1, 1): (), (2, 1): (), (3, 1): ((0, 1), (2, 3)), (4, 1): ((0, 1), (2, 3)),
    (5, 1): ((2, 3), (4, 5)), (6, 1): ((2, 3), (4, 5)), (7, 1): ((4, 5), (6, 7)),
    (3, 2): (), (6, 2): (), (7, 2): ((0, 3), (4, 7)),
}


@pytest.mark.parametrize("key", sorted(PYRAMID_T8))
def test_pyramid_frame_reads_the_blocks_counted_by_hand(key):
    t, level = key
    f = pyramid_frame(t, level, 3)
    assert f.blocks == PYRAMID_T8[key]
    assert f.masked == (PYRAMID_T8[key] == ())


def test_pyramid_frame_is_what_the_pyramid_computes():
    torch.manual_seed(0)
    T, L = 13, 4
    x = torch.randn(1, T, 3, dtype=torch.float64)
    feats, mask = pyramid(x, L, backend="reference")
    for t in range(T):
        for level in range(L):
            f = pyramid_frame(t, level, L)
            assert f.masked == (not bool(mask[t, level]))
            if f.masked:
                assert (feats[0, t, level] == 0).all()
                continue
            (a0, a1), (b0, b1) = f.blocks
            want = transport(x[0, a0:a1 + 1].mean(0), x[0, b0:b1 + 1].mean(0))
            assert torch.allclose(feats[0, t, level], want, atol=1e-10), (t, level)


def test_pyramid_frame_knows_which_levels_token_t_updates():
    # t + 1 = 8 ends a block of 1, 2, 4 and 8 tokens; 6 of 1 and 2; 9 of 1 only.
    assert [pyramid_frame(7, lv, 5).updates for lv in range(5)] == [True] * 4 + [False]
    assert [pyramid_frame(5, lv, 4).updates for lv in range(4)] == [1, 1, 0, 0]
    assert [pyramid_frame(8, lv, 4).updates for lv in range(4)] == [True] + [False] * 3


def test_pyramid_frame_rejects_bad_arguments():
    with pytest.raises(ValueError, match="level must be an int in"):
        pyramid_frame(3, 3, 3)
    with pytest.raises(ValueError, match="t must be an int >= 0"):
        pyramid_frame(-1, 0, 3)


def test_pyramid_explorer_sliders_pick_the_frame():
    box = pyramid_explorer(T=16)
    t_slider, l_slider = box.controls
    assert CSS_CLASS in box._dom_classes and "phaselib-pyramid" in box._dom_classes
    assert len(list(_all_frames(box.stack))) == 16 * 4
    t_slider.value, l_slider.value = 11, 1
    assert box.stack.selected_index == 11
    shown = visible_frame(box.stack)
    assert "t = 11, level 1" in shown
    assert "tokens 8..9 to the mean of tokens 10..11" in shown
    l_slider.value = 3
    assert "masked" in visible_frame(box.stack)
    t_slider.value = 15
    assert "tokens 0..7 to the mean of tokens 8..15" in visible_frame(box.stack)


# --- transport -----------------------------------------------------------------------

def test_transport_frame_angle_and_log_length():
    f = transport_frame(90, 1.0)
    assert f.angle == pytest.approx(math.pi / 2, abs=1e-9)
    assert f.log_length == pytest.approx(math.log(2.0), abs=1e-12)
    ta = f.tangent[0] * f.a[0] + f.tangent[1] * f.a[1]
    tb = f.tangent[0] * f.b[0] + f.tangent[1] * f.b[1]
    assert ta == pytest.approx(0, abs=1e-9) and tb > 0      # tangent at a, towards b


def test_transport_frame_wraps_past_half_a_turn():
    f, g = transport_frame(160, 0.0), transport_frame(200, 0.0)
    assert f.angle == pytest.approx(math.radians(160), abs=1e-9)
    assert g.angle == pytest.approx(math.radians(160), abs=1e-9)
    left = (-f.a[1], f.a[0])                                 # a turned by +90 degrees
    assert f.tangent[0] * left[0] + f.tangent[1] * left[1] > 0
    assert g.tangent[0] * left[0] + g.tangent[1] * left[1] < 0
    assert transport_frame(360, 0.5).angle == pytest.approx(0, abs=1e-7)


def test_transport_explorer_sliders_pick_the_frame():
    box = transport_explorer()
    turn, scale = box.controls
    assert len(list(_all_frames(box.stack))) == len(ANGLES) * len(LOG2_SCALES)
    before = visible_frame(box.stack)
    turn.value = "195°"
    assert box.stack.selected_index == ANGLES.index(195)
    assert "(165°)" in visible_frame(box.stack) and visible_frame(box.stack) != before
    scale.value = "2.00"
    assert "+0.69" in visible_frame(box.stack)              # log 2


# --- F5 salience ---------------------------------------------------------------------

def test_salience_frame_at_zero_gap_and_99_distractors_is_one_percent():
    f = salience_frame(0, 99)
    assert f.weight == pytest.approx(0.01, abs=1e-15)
    assert not f.below and f.n_drop == 100
    assert salience_frame(0, 100).below


@pytest.mark.parametrize("delta,n", [(2, 100), (5, 3162), (10, 1)])
def test_salience_frame_matches_the_closed_form(delta, n):
    assert salience_frame(delta, n).weight == pytest.approx(
        math.exp(delta) / (math.exp(delta) + n), rel=1e-12)


def test_salience_explorer_sliders_pick_the_frame():
    box = salience_explorer()
    gap, count = box.controls
    assert len(list(_all_frames(box.stack))) == len(DELTAS) * len(DISTRACTORS)
    gap.value, count.value = "0", "100"
    assert "w = 0.0099, below the 0.01 line" in visible_frame(box.stack)
    gap.value = "3"
    assert box.stack.selected_index == 3
    assert "above the 0.01 line" in visible_frame(box.stack)


def test_salience_frame_rejects_a_negative_count():
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        salience_frame(1.0, -3)


# --- F2 KV cache ---------------------------------------------------------------------

def test_kvcache_frame_llama2_7b_by_hand():
    shape = next(s for s in PUBLISHED_SHAPES if s.name == "Llama-2-7B")
    f = kvcache_frame(shape, 4096)
    assert f.kv_gb == pytest.approx(2 * 32 * 32 * 128 * 4096 * 2 / 1e9)
    assert f.weights_gb == pytest.approx(13.4)
    per_token = 2 * 32 * 32 * 128 * 2
    assert f.max_tokens["H200"] == int((141e9 - 6.7e9 * 2) // per_token)


def test_kvcache_frame_gpt3_weights_do_not_fit():
    f = kvcache_frame(PUBLISHED_SHAPES[0], 2048)
    assert f.weights_gb > max(GPU_MEMORY_GB.values())
    assert set(f.max_tokens.values()) == {0}


def test_kvcache_explorer_controls_pick_the_frame():
    box = kvcache_explorer()
    model, context = box.controls
    model.value, context.value = "Llama-2-70B", "1,048,576"
    assert box.stack.selected_index == 2
    shown = visible_frame(box.stack)
    assert "Llama-2-70B, 1,048,576 tokens" in shown and "fits on none" in shown
    context.value = "4,096"
    assert "Llama-2-70B, 4,096 tokens" in visible_frame(box.stack)


def test_kvcache_frame_rejects_a_name():
    with pytest.raises(TypeError, match="shape must be a phaselib.kvcache.ModelShape"):
        kvcache_frame("Llama-2-7B", 10)


# --- streaming -----------------------------------------------------------------------

def test_streaming_frame_bytes_by_hand():
    f = streaming_frame(16, 64)
    assert f.levels == 4 and f.kv_bytes == 2 * 16 * 64 * 4
    # ring (2 D per level), pending (D), features (D + 1), four bytes each
    assert f.state_bytes == 4 * (4 * 2 * 64 + 4 * 64 + 4 * 65)


def test_streaming_state_grows_by_levels_while_the_cache_doubles():
    a, b = streaming_frame(2 ** 12), streaming_frame(2 ** 13)
    assert b.kv_bytes == 2 * a.kv_bytes and b.levels == a.levels + 1
    assert b.state_bytes - a.state_bytes == a.state_bytes // a.levels


def test_streaming_explorer_slider_picks_the_frame():
    box = streaming_explorer()
    (context,) = box.controls
    assert len(box.stack.children) == len(STREAM_T)
    context.value = "65,536"
    assert box.stack.selected_index == STREAM_T.index(65536)
    assert "T = 65,536 tokens" in visible_frame(box.stack)


# --- selection -----------------------------------------------------------------------

def test_selection_frame_sparsemax_by_hand():
    f = selection_frame("sparsemax", 1.0)       # scores 1, 2.2, 2, 0.3, -0.5
    assert f.weights == pytest.approx((0.0, 0.6, 0.4, 0.0, 0.0), abs=1e-12)
    assert f.support == 2


def test_selection_frame_rules_differ_as_they_must():
    for tau in TAUS:
        assert selection_frame("softmax", tau).support == len(SCORES)
        hard = selection_frame("hard_st", tau)
        assert hard.weights == (0.0, 1.0, 0.0, 0.0, 0.0) and hard.entropy == 0
    hot, cold = selection_frame("softmax", 10.0), selection_frame("softmax", 0.1)
    assert hot.entropy > cold.entropy
    assert selection_frame("sparsemax", 0.1).support == 1


def test_selection_explorer_controls_pick_the_frame():
    box = selection_explorer()
    kind, tau = box.controls
    assert len(list(_all_frames(box.stack))) == len(KINDS) * len(TAUS)
    kind.value, tau.value = "sparsemax", "1"
    assert box.stack.selected_index == KINDS.index("sparsemax")
    assert "weight on 2 of 5 scales" in visible_frame(box.stack)
    kind.value = "softmax"
    assert "weight on 5 of 5 scales" in visible_frame(box.stack)


# --- all explorers -------------------------------------------------------------------

EXPLORERS = [lambda: pyramid_explorer(T=16), transport_explorer, salience_explorer,
             kvcache_explorer, streaming_explorer, selection_explorer]


@pytest.mark.parametrize("make", EXPLORERS)
def test_every_frame_is_valid_svg_and_the_frames_differ(make):
    box = make()
    frames = list(_all_frames(box.stack))
    for html in frames:
        _svg_parses(html)
    assert len(set(frames)) == len(frames)
    assert sum(map(len, frames)) < 700_000          # the page stays light


@pytest.mark.parametrize("make", EXPLORERS)
def test_every_stack_is_jslinked_to_its_control(make):
    box = make()
    stacks = [box.stack]
    for depth, control in enumerate(box.controls):
        trait = "index" if hasattr(control, "options") else "value"
        for s in stacks:
            assert s.jslink.source == (control, trait)
            assert s.jslink.target == (s, "selected_index")
        stacks = [c for s in stacks for c in s.children]
        assert all(isinstance(c, widgets.Stack) for c in stacks) == (
            depth + 1 < len(box.controls))


def test_linked_stack_needs_one_frame_per_option():
    slider = widgets.IntSlider(min=0, max=3)
    message = re.escape("one entry per option of the control (4)")
    with pytest.raises(ValueError, match=message):
        linked_stack(["a", "b"], [slider])
    with pytest.raises(ValueError, match="must start at 0"):
        linked_stack(["a", "b"], [widgets.IntSlider(min=1, max=2)])
