"""Puts this folder on sys.path: tests here import the helpers next to them
(bluez_double_testing.py) by name, as tests/conftest.py does for tests/ (mpy_runtime.py)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
