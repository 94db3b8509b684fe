"""`python -m phaselib.sweep`: see phaselib.sweep.cli."""

import sys

from .cli import main

sys.exit(main())
