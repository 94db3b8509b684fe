"""The book as a whole, from the command line: `python -m phaselib.book`.

- `sync-setup`: every chapter's first code cell (the "# Setup:" install cell) rewritten
  to one template (`setup_cell.py`), filled with `_config.yml`'s repository URL.
- `run --preset cpu|gpu [CHAPTER...]`: execute chapters with papermill at a preset's
  parameters (`presets.toml`) into an output folder (`run.py`).
- `student-copy OUT`: every chapter without its solution cells, with the results files
  the chapters read, for handing out (`student.py`).

These work on a checkout of the repository (the chapters are not in the wheel).
"""

from .setup_cell import check_setup_cells, setup_cell_source, sync_setup
from .student import student_copy
from .toc import chapter_name, repository_url, toc_notebooks

__all__ = ["setup_cell_source", "sync_setup", "check_setup_cells", "repository_url",
           "toc_notebooks", "chapter_name", "student_copy"]
