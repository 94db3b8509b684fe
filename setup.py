"""The build hook that puts the book's results files into the wheel.

Everything else about the package is in pyproject.toml. The chapters read precomputed
results, `book/<part>/results/**/*.json` (the one copy, written by the sweeps and the
benchmarks). They lie outside the package folder, so `build_py` copies them into the
build as `phaselib/_results/<part>/...`, where `phaselib.results_path` finds them when a
chapter runs outside the repository (Colab, a wheel in an empty folder). An editable
install (`pip install -e .`) copies nothing: there `results_path` reads book/ itself.
A wheel built where there are no results files is refused (MANIFEST.in keeps them in
the sdist, for a wheel built from it).
"""

import glob
import os

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.errors import FileError

HERE = os.path.dirname(os.path.abspath(__file__))
BOOK = os.path.join(HERE, "book")


class build_py_with_results(build_py):
    """build_py, then book/<part>/results/**/*.json -> phaselib/_results/<part>/."""

    def _results(self) -> list[tuple[str, str]]:
        """(source, destination in the build) for every results file."""
        pattern = os.path.join(BOOK, "*", "results", "**", "*.json")
        pairs = []
        for src in sorted(glob.glob(pattern, recursive=True)):
            part, _results, *rest = os.path.relpath(src, BOOK).split(os.sep)
            pairs.append((src, os.path.join(self.build_lib, "phaselib", "_results",
                                            part, *rest)))
        return pairs

    def run(self):
        super().run()
        if self.editable_mode:
            return
        pairs = self._results()
        if not pairs:
            raise FileError(f"no results files under {BOOK}/*/results/: the chapters "
                            f"read them, so a wheel without them is refused (build "
                            f"from the repository, or an sdist made from it)")
        for src, dst in pairs:
            self.mkpath(os.path.dirname(dst))
            self.copy_file(src, dst)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return outputs + [dst for _, dst in self._results()]


setup(cmdclass={"build_py": build_py_with_results})
