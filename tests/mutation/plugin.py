"""pytest plugin for mutation runs, loaded by ``[tool.mutmut] pytest_add_cli_args``
(never in the normal test run; see tests/mutation/run.py).

- While mutmut learns which test reaches which function ("stats"), a ``warden``
  subprocess started by a test runs the code unrecorded: recording needs mutmut's
  working folder, which the subprocess does not run in. In this process mutmut
  keeps its own copy of the setting, so nothing else changes. A mutant under test
  stays set: subprocesses run it too, and can kill it.
- Tests run fastest first: pytest stops at the first failure (``-x``), so a mutant
  is killed by the quickest test that notices it rather than after slow ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def pytest_configure(config: Any) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        del os.environ["MUTANT_UNDER_TEST"]


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    stats = Path("mutmut-stats.json")   # mutmut runs the tests from its mutants/ folder
    if not stats.is_file():
        return
    durations = json.loads(stats.read_text(encoding="utf-8")).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
