"""pytest plugin for mutation runs, loaded by ``[tool.mutmut] pytest_add_cli_args``
(never in the normal test run; see tests/mutation/run.py).

- While mutmut learns which test reaches which function ("stats"), the Python
  subprocesses a test starts (a script in a private mount namespace, ``warden``
  on the command line) record what they reach too: a ``sitecustomize`` put in
  mutants/ (on their PYTHONPATH) counts their calls into a file of their own,
  and the test is credited with them when it ends. mutmut's own recording needs
  its working folder, which a subprocess may not run in, so it is switched off
  there. Without this, a function only such tests reach (the read-only open of
  a database on a read-only disk) ran none of them for its mutants, and they
  survived. The subprocesses import store from mutants/ (first on their
  PYTHONPATH, ``warden`` on the command line included) and inherit the mutant under
  test: they run it too, and can kill it.
- Tests run in the order most likely to kill soon: pytest stops at the first
  failure (``-x``). A test that killed other mutants of the same function runs
  first (most kills first), then one that killed mutants of the same module,
  then the rest, each group fastest first. Each failing test is written down
  (mutants/killers/, a file per function) as it fails. Mutants of one function
  are mostly killed by the same few tests; before this a mutant of a letter
  function ran about a hundred quick tests, ten seconds of them, before the
  export test that noticed it. A survivor runs every test either way.
- Each test has a time limit: a minute plus twenty times what it took on the
  unmutated code. A mutant that makes a loop endless (``j = 1`` for ``j += 1``)
  fails the test it hangs in within a minute or two, instead of running until
  mutmut's own limit (thirty times the summed duration of every test that reaches
  the function: half an hour for a function a hundred letter tests reach).
- Under a mutant, a test process (and what it starts) may use at most 6 GiB of
  memory: a mutant that makes a loop endless while it appends (``j -= 1`` in
  ``id_ranges``) grew a test to 8 GB in under a minute, and two of them at once
  would have the machine kill mutmut itself. Past the cap the test fails with a
  MemoryError: the mutant is killed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest

LIMIT_FLOOR = 60.0      # seconds any test may take under a mutant
LIMIT_FACTOR = 20.0     # times its duration on the unmutated code, on top
MEMORY_LIMIT = 6 << 30  # bytes of address space a test process may use under a mutant
_durations: dict[str, float] = {}


HITS_ENV = "WARDEN_MUTMUT_HITS"     # the folder subprocesses write what they reached to
# Runs first in every Python subprocess of a test while mutmut learns which test
# reaches which function (and does nothing otherwise).
SITECUSTOMIZE = """\
import atexit, json, os

_folder = os.environ.get("WARDEN_MUTMUT_HITS")
if _folder:
    try:
        import mutmut.mutation.trampoline as _trampoline
    except ImportError:     # a Python without mutmut: nothing of mutants/ runs in it
        _trampoline = None
    if _trampoline is not None:
        _reached = set()
        _trampoline.record_trampoline_hit = lambda name, caller=None: _reached.add(name)
        _trampoline.set_mutant_under_test("stats")

        @atexit.register
        def _save():
            if _reached:
                with open(os.path.join(_folder, f"{os.getpid()}.json"), "w", encoding="utf-8") as out:
                    json.dump(sorted(_reached), out)
"""
_hits: Path | None = None


def run_subprocesses_from(folder: Path) -> None:
    """Python subprocesses a test starts import ``folder``'s modules (mutants/:
    store with mutmut's trampolines) first, as this process does, so they run the
    mutant under test (MUTANT_UNDER_TEST is inherited) and can kill it: ``warden``
    on the command line too, which would otherwise import the unmutated store."""
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(folder) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(folder), *paths])


def record_subprocesses(folder: Path) -> Path:
    """Make the Python subprocesses started from now on record the functions they
    reach: ``sitecustomize.py`` in ``folder`` (first on their PYTHONPATH); the
    folder they write to is returned."""
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    run_subprocesses_from(folder)
    hits = Path(tempfile.mkdtemp(prefix="mutmut-hits-"))
    os.environ[HITS_ENV] = str(hits)
    return hits


def reached_by_subprocesses(hits: Path) -> set[str]:
    """The functions the subprocesses that have ended since the last call reached."""
    names: set[str] = set()
    for path in sorted(hits.glob("*.json")):
        names.update(json.loads(path.read_text(encoding="utf-8")))
        path.unlink()
    return names


def pytest_configure(config: Any) -> None:
    global _hits
    folder = Path.cwd()     # mutmut runs the tests from its mutants/ folder
    run_subprocesses_from(folder)
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        del os.environ["MUTANT_UNDER_TEST"]     # in this process mutmut keeps its own copy of the setting
        _hits = record_subprocesses(folder)
    elif mutant_under_test() is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def pytest_unconfigure(config: Any) -> None:
    """The stats run is over (mutmut runs pytest again in this process for the rest)."""
    global _hits
    if _hits is None:
        return
    shutil.rmtree(_hits, ignore_errors=True)
    _hits = None
    del os.environ[HITS_ENV]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: Any, nextitem: Any) -> Iterator[None]:
    yield   # the test's fixtures (a server, a subprocess) have ended too
    if _hits is None:
        return
    from mutmut.state import state

    test = item.nodeid.removeprefix("mutants/")     # as mutmut names it
    for function in reached_by_subprocesses(_hits):
        state().tests_by_mangled_function_name[function].add(test)


KILLERS = Path("killers")   # in mutants/ (the tests' working folder): the tests that killed each function's mutants


def mutant_under_test() -> str | None:
    """The mutant this run tests (``store.db.x_connect__mutmut_3``), or None (stats, the clean run)."""
    name = os.environ.get("MUTANT_UNDER_TEST", "")
    return name if "__mutmut_" in name else None


def function_of(mutant: str) -> str:
    """mutmut's name of the function a mutant is in: ``store.db.x_connect``."""
    return mutant.partition("__mutmut_")[0]


def module_of(function: str) -> str:
    """The module of mutmut's function name (``store.db.xǁInTransactionǁ__init__`` -> ``store.db``)."""
    return function.rpartition(".x")[0]


def killers(function: str) -> tuple[Counter[str], Counter[str]]:
    """How often each test killed a mutant of ``function``, and of its module."""
    of_function: Counter[str] = Counter()
    of_module: Counter[str] = Counter()
    if KILLERS.is_dir():
        for path in KILLERS.iterdir():
            if module_of(path.name) == module_of(function):
                tests = path.read_text(encoding="utf-8").splitlines()
                of_module.update(tests)
                if path.name == function:
                    of_function.update(tests)
    return of_function, of_module


def pytest_runtest_logreport(report: Any) -> None:
    mutant = mutant_under_test()
    if mutant is None or not report.failed:
        return
    KILLERS.mkdir(exist_ok=True)
    with (KILLERS / function_of(mutant)).open("a", encoding="utf-8") as out:    # two workers: a line per write
        out.write(report.nodeid + "\n")


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    stats = Path("mutmut-stats.json")   # mutmut runs the tests from its mutants/ folder
    if not stats.is_file():
        return
    _durations.update(json.loads(stats.read_text(encoding="utf-8")).get("duration_by_test", {}))
    mutant = mutant_under_test()
    of_function, of_module = killers(function_of(mutant)) if mutant else (Counter(), Counter())
    items.sort(key=lambda item: (-of_function[item.nodeid], -of_module[item.nodeid],
                                 _durations.get(item.nodeid, 0.0)))


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
