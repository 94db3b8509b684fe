"""Explorers that work with no kernel: controls linked to a Stack of precomputed frames.

Every frame is computed in Python when the widget is built and saved with the page; the
control is tied to `Stack.selected_index` twice: by `jslink` (in the browser, so the
built book's slider works with no kernel) and by `link` (in the kernel, so Python sees
the same index). Two controls give a Stack of Stacks: the outer one follows the first
control, every inner one the second.
"""

from __future__ import annotations

import ipywidgets as widgets
from ipywidgets.widgets.widget_selection import _Selection
from ipywidgets.widgets.widget_string import HTMLStyle

__all__ = ["CSS_CLASS", "explorer", "linked_stack", "visible_frame", "index_of"]

CSS_CLASS = "phaselib-explorer"


def _index_trait(control) -> str:
    """The integer trait of a control that equals a frame index."""
    return "index" if isinstance(control, _Selection) else "value"


def index_of(control) -> int:
    """The frame index a control selects (its `index`, or the value of an IntSlider)."""
    return getattr(control, _index_trait(control))


def linked_stack(frames, controls, layout=None, style=None) -> widgets.Stack:
    """Nested lists of HTML strings (one level per control) -> a Stack linked to them"""
    if not controls:
        raise ValueError("controls must name at least one control")
    layout = layout or widgets.Layout()
    style = style or HTMLStyle()
    head, rest = controls[0], controls[1:]
    if rest:
        children = [linked_stack(sub, rest, layout, style) for sub in frames]
    else:
        children = [widgets.HTML(value=f, layout=layout, style=style) for f in frames]
    if hasattr(head, "options"):
        n_options = len(head.options)
    else:
        n_options = head.max - head.min + 1
    if len(children) != n_options:
        raise ValueError(f"frames must have one entry per option of the control "
                         f"({n_options}), got {len(children)}")
    if not hasattr(head, "options") and head.min != 0:
        raise ValueError(f"an IntSlider must start at 0 to index frames, "
                         f"got min={head.min}")
    stack = widgets.Stack(children=children, selected_index=index_of(head))
    trait = _index_trait(head)
    stack.jslink = widgets.jslink((head, trait), (stack, "selected_index"))  # the page
    widgets.link((head, trait), (stack, "selected_index"))                # the kernel
    return stack


def visible_frame(stack: widgets.Stack) -> str:
    """The HTML of the frame a (nested) Stack shows now."""
    child = stack.children[stack.selected_index]
    return visible_frame(child) if isinstance(child, widgets.Stack) else child.value


def explorer(name: str, title: str, controls, frames, *,
             hint: str = "") -> widgets.VBox:
    """A titled box: the controls above a Stack of frames, with the CSS classes
    `phaselib-explorer` and `phaselib-<name>` so that a browser test can find it."""
    for control in controls:
        if isinstance(control, (widgets.IntSlider, widgets.SelectionSlider)):
            control.layout.width = "460px"          # a track long enough to aim at
    stack = linked_stack(frames, list(controls))
    stack.add_class("phaselib-frames")
    parts = [widgets.HTML(f"<b>{title}</b>" + (f"<br><i>{hint}</i>" if hint else ""))]
    box = widgets.VBox([*parts, *controls, stack])
    box.add_class(CSS_CLASS)
    box.add_class(f"phaselib-{name}")
    box.stack = stack              # for tests and readers: the frames
    box.controls = tuple(controls)
    return box
