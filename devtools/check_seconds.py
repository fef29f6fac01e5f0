"""How long each exercise check takes with a right answer: the figure a time-out message
quotes ("the course's solution passes this check in about 0.4 s here"). Runs the checks'
accepting tests on one thread, takes each check's median, and divides it by this
machine's measured slowness, so the table holds the seconds of the machine the course was
written on (``deepres.course.checks.core.CALIBRATION``). Run it there after a check changes:

    python -m devtools.check_seconds
"""
import json
import statistics
import sys
from pathlib import Path

import pytest

from deepres.course.checks import core
from deepres.cpu import num_threads

ROOT = Path(__file__).resolve().parents[1]


def main():
    with num_threads(1):
        code = pytest.main([str(ROOT / "tests" / "test_checks.py"), "-k", "accepts",
                            "-q", "-p", "no:xdist", "-o", "addopts=-p no:cacheprovider"])
    if code != 0:
        sys.exit(f"the checks' accepting tests failed (pytest exit code {code})")
    table = {exercise: round(statistics.median(seconds) / core.slowness(), 3)
             for exercise, seconds in sorted(core.passed_seconds.items())}
    core.REFERENCE_SECONDS.write_text(json.dumps(table, indent=1) + "\n")
    for exercise, seconds in table.items():
        print(f"{seconds:7.3f} s  {exercise}")
    print(f"written to {core.REFERENCE_SECONDS} (slowness here {core.slowness():.2f})")


if __name__ == "__main__":
    main()
