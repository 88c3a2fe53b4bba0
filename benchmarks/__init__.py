"""selfheal benchmarks: cold start, triage throughput, AWS calls and cost per remediation, time to heal.

Run with ``make bench`` (or ``.venv/bin/python -m benchmarks --quick`` while iterating). Not tests:
nothing here asserts a timing; ``tests/unit/test_benchmarks.py`` only keeps the code from rotting.
"""

import sys
from pathlib import Path

# This checkout's code, not whatever an editable install in a shared venv points at.
_ROOT = Path(__file__).resolve().parents[1]
for _path in (str(_ROOT), str(_ROOT / "layers" / "core")):
    if _path in sys.path:
        sys.path.remove(_path)
    sys.path.insert(0, _path)
