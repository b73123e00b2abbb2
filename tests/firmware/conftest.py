"""Firmware tests: the simulated side of the hardware layer. `import simkit` works from here."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
