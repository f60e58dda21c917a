"""The mutation plugin's recording of what subprocesses reach (tests/mutation/plugin.py):
while mutmut learns which test reaches which function, a function reached only in
a subprocess (a script in a private mount namespace, ``warden`` on the command
line) must be credited to the test, or its mutants never run that test."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("mutmut")

PLUGIN = Path(__file__).resolve().parent / "mutation" / "plugin.py"


@pytest.fixture
def plugin(monkeypatch):
    spec = importlib.util.spec_from_file_location("mutation_plugin_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # What record_subprocesses changes in the environment is put back after the test.
    monkeypatch.delenv(module.HITS_ENV, raising=False)
    monkeypatch.delenv("MUTANT_UNDER_TEST", raising=False)
    monkeypatch.setenv("PYTHONPATH", "")
    memory = resource.getrlimit(resource.RLIMIT_AS)     # pytest_configure under a mutant caps it
    yield module
    resource.setrlimit(resource.RLIMIT_AS, memory)


@pytest.fixture
def mutated(tmp_path):
    """m.py as mutmut writes it into mutants/: f and g behind its trampolines."""
    from mutmut.mutation.file_mutation import mutate_file_contents

    source = "def f(a):\n    return a > 1\n\n\ndef g(a):\n    return a + 1\n"
    (tmp_path / "m.py").write_text(mutate_file_contents("m.py", source).code, encoding="utf-8")
    return tmp_path


def python(folder: Path, code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=folder, check=True, timeout=60)


def test_a_subprocess_records_the_functions_it_reached(plugin, mutated):
    hits = plugin.record_subprocesses(mutated)
    python(mutated, "import m; m.f(2)")
    assert plugin.reached_by_subprocesses(hits) == {"m.x_f"}
    # Each file is read once: the next test is credited with its own only.
    python(mutated, "import m; m.g(2); m.g(3)")
    assert plugin.reached_by_subprocesses(hits) == {"m.x_g"}
    python(mutated, "import m")
    assert plugin.reached_by_subprocesses(hits) == set()


def test_a_subprocess_of_a_subprocess_records_too_and_a_given_pythonpath_still_finds_the_hook(plugin, mutated):
    hits = plugin.record_subprocesses(mutated)
    # As test_files.confined does: its own PYTHONPATH (the repository, mutants/ in a run).
    inner = f"import subprocess, sys, os; subprocess.run([sys.executable, '-c', 'import m; m.g(1)'], check=True, " \
            f"env={{**os.environ, 'PYTHONPATH': {str(mutated)!r}}})"
    python(mutated, inner)
    assert plugin.reached_by_subprocesses(hits) == {"m.x_g"}


def test_outside_the_stats_run_subprocesses_record_nothing(plugin, mutated):
    hits = plugin.record_subprocesses(mutated)
    del os.environ[plugin.HITS_ENV]
    python(mutated, "import m; m.f(2)")
    assert list(hits.iterdir()) == []


def test_the_stats_run_turns_recording_on_and_its_end_turns_it_off(plugin, mutated, monkeypatch):
    monkeypatch.chdir(mutated)      # mutmut runs the tests from mutants/
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.setenv("MUTANT_UNDER_TEST", "stats")
    plugin.pytest_configure(None)
    assert "MUTANT_UNDER_TEST" not in os.environ
    hits = Path(os.environ[plugin.HITS_ENV])
    python(mutated, "import m; m.f(2)")
    assert list(hits.iterdir()) != []
    plugin.pytest_unconfigure(None)
    assert plugin.HITS_ENV not in os.environ and not hits.exists()
    plugin.pytest_unconfigure(None)     # a run that was not the stats run: nothing to undo
    # mutmut runs pytest again in the same process for each mutant: mutants/ stays
    # first on the subprocesses' path, once.
    monkeypatch.setenv("MUTANT_UNDER_TEST", "m.x_f__mutmut_1")
    plugin.pytest_configure(None)
    assert os.environ["PYTHONPATH"] == f"{mutated}{os.pathsep}/elsewhere"
    assert plugin.HITS_ENV not in os.environ


def test_a_subprocess_runs_the_mutant_under_test(plugin, mutated, monkeypatch):
    # The mutants of f: one of them makes f(1) true (a > 1 read as a >= 1).
    monkeypatch.chdir(mutated)
    plugin.pytest_configure(None)
    elsewhere = mutated / "elsewhere"
    elsewhere.mkdir()
    answers = set()
    for n in range(1, 4):
        monkeypatch.setenv("MUTANT_UNDER_TEST", f"m.x_f__mutmut_{n}")
        run = subprocess.run([sys.executable, "-c", "import m; print(m.f(1))"], cwd=elsewhere, capture_output=True,
                             text=True, timeout=60)
        answers.add(run.stdout.strip())
    assert "True" in answers


CAPPED = """
import importlib.util, resource, sys
spec = importlib.util.spec_from_file_location("plugin", sys.argv[1])
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
plugin.pytest_configure(None)
print(resource.getrlimit(resource.RLIMIT_AS)[0])
if resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY:    # never 7 GiB for real
    try:
        grown = bytearray(7 * 1024 ** 3)
        print("grew")
    except MemoryError:
        print("MemoryError")
"""


@pytest.mark.parametrize(("setting", "said"), [
    ("m.x_f__mutmut_1", [str(6 * 1024 ** 3), "MemoryError"]),   # a mutant: 6 GiB at most
    ("store.db.xǁInTransactionǁ__init____mutmut_3", [str(6 * 1024 ** 3), "MemoryError"]),
    ("clean", None),                    # the unmutated code, mutmut's other runs, none: left as it was
    ("stats", None),
    ("list_all_tests", None),
    ("", None),
])
def test_under_a_mutant_a_test_may_use_six_gib_at_most(tmp_path, setting, said):
    # An endless loop that appends fails with a MemoryError at 6 GiB, not the machine.
    if resource.getrlimit(resource.RLIMIT_AS)[1] != resource.RLIM_INFINITY:
        pytest.skip("this machine caps memory already")
    if resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY:
        pytest.skip("this test runs under a mutant itself (capped already)")
    said = said or [str(resource.RLIM_INFINITY)]
    env = {**os.environ, "MUTANT_UNDER_TEST": setting, "PYTHONPATH": ""}
    run = subprocess.run([sys.executable, "-c", CAPPED, str(PLUGIN)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.stdout.split() == said, run.stderr


def test_under_a_mutant_the_failing_test_is_written_down_for_its_function(plugin, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)     # mutants/
    monkeypatch.setenv("MUTANT_UNDER_TEST", "store.db.xǁInTransactionǁ__init____mutmut_3")
    plugin.pytest_runtest_logreport(SimpleNamespace(failed=False, nodeid="tests/test_db.py::test_passes"))
    plugin.pytest_runtest_logreport(SimpleNamespace(failed=True, nodeid="tests/test_db.py::test_kills"))
    monkeypatch.setenv("MUTANT_UNDER_TEST", "store.db.xǁInTransactionǁ__init____mutmut_4")
    plugin.pytest_runtest_logreport(SimpleNamespace(failed=True, nodeid="tests/test_db.py::test_kills[2]"))
    assert [p.name for p in (tmp_path / "killers").iterdir()] == ["store.db.xǁInTransactionǁ__init__"]
    assert (tmp_path / "killers" / "store.db.xǁInTransactionǁ__init__").read_text(encoding="utf-8") == \
        "tests/test_db.py::test_kills\ntests/test_db.py::test_kills[2]\n"
    # The stats run and the clean run (no mutant) write nothing down.
    for setting in ("stats", "clean", None):
        if setting is None:
            monkeypatch.delenv("MUTANT_UNDER_TEST")
        else:
            monkeypatch.setenv("MUTANT_UNDER_TEST", setting)
        plugin.pytest_runtest_logreport(SimpleNamespace(failed=True, nodeid="tests/test_db.py::test_other"))
    assert "test_other" not in (tmp_path / "killers" / "store.db.xǁInTransactionǁ__init__").read_text()
    assert len(list((tmp_path / "killers").iterdir())) == 1


def test_tests_that_killed_the_functions_mutants_run_first_then_the_modules_then_the_quickest(
        plugin, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    durations = {"t::quick": 0.1, "t::medium": 0.5, "t::slow": 2.0, "t::slower": 3.0, "t::other": 1.0}
    (tmp_path / "mutmut-stats.json").write_text(json.dumps({"duration_by_test": durations}), encoding="utf-8")
    (tmp_path / "killers").mkdir()
    (tmp_path / "killers" / "store.export.act.x_export").write_text("t::slow\nt::slower\nt::slower\n")
    (tmp_path / "killers" / "store.export.act.xǁPlanǁsteps").write_text("t::medium\nt::other\n")
    (tmp_path / "killers" / "store.export.formats.x_cell").write_text("t::quick\n")   # another module

    def order(mutant: str | None) -> list[str]:
        if mutant is None:
            monkeypatch.delenv("MUTANT_UNDER_TEST", raising=False)
        else:
            monkeypatch.setenv("MUTANT_UNDER_TEST", mutant)
        items = [SimpleNamespace(nodeid=name) for name in ("t::quick", "t::medium", "t::slow", "t::slower",
                                                          "t::other")]
        plugin.pytest_collection_modifyitems(None, None, items)
        return [item.nodeid for item in items]

    assert order("store.export.act.x_export__mutmut_7") == ["t::slower", "t::slow", "t::medium", "t::other",
                                                            "t::quick"]
    # A function none of whose mutants was killed yet: the module's killers, then the quickest.
    assert order("store.export.act.x_new__mutmut_1") == ["t::slower", "t::medium", "t::other", "t::slow",
                                                         "t::quick"]
    assert order("store.rules.x_run__mutmut_1") == ["t::quick", "t::medium", "t::other", "t::slow", "t::slower"]
    assert order(None) == ["t::quick", "t::medium", "t::other", "t::slow", "t::slower"]
