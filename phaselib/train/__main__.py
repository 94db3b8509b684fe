"""`python -m phaselib.train`: the command line of `phaselib.cli`.

Python runs this file for `-m phaselib.train` because `phaselib.train` is a package.
It is never imported by `import phaselib.train`, so the training loop does not depend on
the command line that uses it.
"""

from phaselib.cli import main

main()
