"""pytest plugin for mutation runs, loaded by ``[tool.mutmut] pytest_add_cli_args``
(never in the normal test run; see tests/mutation/run.py).

- While mutmut learns which test reaches which function ("stats"), a ``warden``
  subprocess started by a test runs the code unrecorded: recording needs mutmut's
  working folder, which the subprocess does not run in. In this process mutmut
  keeps its own copy of the setting, so nothing else changes. A mutant under test
  stays set: subprocesses run it too, and can kill it.
- Tests run fastest first: pytest stops at the first failure (``-x``), so a mutant
  is killed by the quickest test that notices it rather than after slow ones.
- Each test has a time limit: a minute plus twenty times what it took on the
  unmutated code. A mutant that makes a loop endless (``j = 1`` for ``j += 1``)
  fails the test it hangs in within a minute or two, instead of running until
  mutmut's own limit (thirty times the summed duration of every test that reaches
  the function: half an hour for a function a hundred letter tests reach).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest

LIMIT_FLOOR = 60.0      # seconds any test may take under a mutant
LIMIT_FACTOR = 20.0     # times its duration on the unmutated code, on top
_durations: dict[str, float] = {}


def pytest_configure(config: Any) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        del os.environ["MUTANT_UNDER_TEST"]


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    stats = Path("mutmut-stats.json")   # mutmut runs the tests from its mutants/ folder
    if not stats.is_file():
        return
    _durations.update(json.loads(stats.read_text(encoding="utf-8")).get("duration_by_test", {}))
    items.sort(key=lambda item: _durations.get(item.nodeid, 0.0))


class MutantHung(Exception):
    """A test ran far past its usual time under a mutant: the mutant made it endless."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: Any) -> Iterator[None]:
    limit = LIMIT_FLOOR + LIMIT_FACTOR * _durations.get(item.nodeid, 0.0)

    def expire(signum: int, frame: Any) -> None:
        raise MutantHung(f"{item.nodeid} ran over {limit:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
