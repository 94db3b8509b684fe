"""Record texts as templates: no number typed in, every number filled from evidence.

Book: "How to read a verdict" (back matter). A claim record's `why` and `change` say
in words what the evidence shows; a number in them must come from the chapter's
measurement (a {placeholder} filled from the evidence) or from the seed or a cited
source (the record's `given`), never be typed into the record, where nothing checks it.
`check_template` finds a bare number; `fill` fills a checked template.
"""

from __future__ import annotations

import re
from typing import Mapping

__all__ = ["check_template", "fill", "placeholders"]

# A number standing on its own: digits not glued to a letter (F5, T5 are names) and not
# inside a {placeholder}.
_BARE = re.compile(r"(?<![A-Za-z0-9_.])(?<![A-Za-z]-)[-+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?%?"
                   r"(?![A-Za-z_0-9]|[.,]\d)"
                   r"|(?<![A-Za-z0-9_.])\d+(?:\.\d+)?x\b")   # a factor: "5x", "1.5x"


# A seed document's name ("seed 000", "seeds 001/003") is a name, not a number.
_SEED_NAME = re.compile(r"\b[Ss]eeds? \d{3}(?:(?:/|, | and | or )\d{3})*\b")


def placeholders(template: str) -> set[str]:
    """The {names} a template asks to be filled."""
    return set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template))


def check_template(template: str, what: str = "why") -> None:
    """Raise ValueError when `template` holds a number typed in rather than a
    {placeholder} filled from the evidence."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"{what} must be a non-empty template, got {template!r}")
    outside = re.sub(r"\{[^{}]*\}", "", template)
    outside = _SEED_NAME.sub("", outside)
    bare = _BARE.findall(outside)
    if bare:
        raise ValueError(f"{what} types the number(s) {bare} into the record: a result "
                         f"belongs in the evidence the chapter computes; a number the "
                         f"seed or a cited source states goes in the record's given, as "
                         f"a {{placeholder}} ({template!r})")


def fill(template: str, values: Mapping[str, object], what: str = "why") -> str:
    """`template` (checked by `check_template`) filled from `values`; every placeholder
    must be given."""
    check_template(template, what)
    try:
        return template.format(**values)
    except KeyError as e:
        raise ValueError(f"{what} needs the value {e} from the evidence; given "
                         f"{sorted(values)}") from None
