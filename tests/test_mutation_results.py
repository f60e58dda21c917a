"""The mutation runner's saved results (tests/mutation/run.py): a score spread over
several runs counts each mutant once, by its latest result, and only while the
module's source is the one the results were run on."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent / "mutation" / "run.py"


@pytest.fixture
def runner(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("mutation_run_under_test", RUNNER)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)   # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "m.py").write_text("def f(a):\n    return a > 1\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=tmp_path, check=True)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "RESULTS_DIR", tmp_path / "results")
    return module


def write_meta(root: Path, codes: dict[str, int | None]) -> None:
    meta = root / "mutants" / "store" / "m.py.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes}), encoding="utf-8")


NAMES = ["store.m.x_f__mutmut_1", "store.m.x_f__mutmut_2", "store.m.x_f__mutmut_3", "store.m.x_f__mutmut_4"]


def test_a_stopped_run_and_the_run_of_the_rest_add_up(runner, tmp_path):
    # The first run killed one, left one alive and stopped before the last two.
    write_meta(tmp_path, {NAMES[0]: 1, NAMES[1]: 0, NAMES[2]: None, NAMES[3]: None})
    assert runner.save("store/m.py")
    # Another sitting: a fresh mutants/ in which only the two left over were run.
    write_meta(tmp_path, {NAMES[0]: None, NAMES[1]: None, NAMES[2]: 1, NAMES[3]: 0})
    s = runner.score("store/m.py", {})
    assert (s.mutants, s.killed, s.not_run, s.survivors) == (4, 2, 0, [NAMES[1], NAMES[3]])
    assert s.saved.endswith(runner.time.strftime("%Y-%m-%d", runner.time.gmtime()))
    # The later run of a mutant wins over its saved result.
    write_meta(tmp_path, {NAMES[0]: None, NAMES[1]: 1, NAMES[2]: None, NAMES[3]: None})
    s = runner.score("store/m.py", {})
    assert (s.killed, s.survivors, s.not_run) == (2, [], 2)


def test_saved_results_stand_only_for_the_source_they_were_run_on(runner, tmp_path):
    write_meta(tmp_path, {NAMES[0]: 1, NAMES[1]: 1, NAMES[2]: 1, NAMES[3]: 0})
    assert runner.save("store/m.py")
    (tmp_path / "mutants").rename(tmp_path / "elsewhere")
    assert runner.score("store/m.py", {}).killed == 3
    (tmp_path / "store" / "m.py").write_text("def f(a):\n    return a >= 1\n", encoding="utf-8")
    runner.mutant_names = lambda module: NAMES      # what mutmut makes of f now (the same names, new mutants)
    s = runner.score("store/m.py", {})
    assert (s.mutants, s.killed, s.not_run, s.saved) == (4, 0, 4, "")


def test_the_mutants_not_run_are_those_mutmut_makes_of_the_source_now(runner, tmp_path):
    names = runner.mutant_names("store/m.py")      # mutmut itself, on `return a > 1`
    assert "store.m.x_f__mutmut_1" in names and all(n.startswith("store.m.x_f__mutmut_") for n in names)
    s = runner.score("store/m.py", {})             # nothing run, nothing saved, no mutants/
    assert (s.mutants, s.not_run, s.killed) == (len(names), len(names), 0)


def test_saving_records_each_run_once_and_nothing_when_nothing_ran(runner, tmp_path):
    write_meta(tmp_path, {NAMES[0]: None, NAMES[1]: None, NAMES[2]: None, NAMES[3]: None})
    assert not runner.save("store/m.py")
    assert not (tmp_path / "results").exists()
    write_meta(tmp_path, {NAMES[0]: 1, NAMES[1]: None, NAMES[2]: None, NAMES[3]: None})
    assert runner.save("store/m.py") and runner.save("store/m.py")
    record = json.loads((tmp_path / "results" / "store.m.json").read_text(encoding="utf-8"))
    assert len(record["runs"]) == 1 and record["exit_code_by_key"][NAMES[0]] == 1
    assert record["exit_code_by_key"][NAMES[1]] is None


def test_results_of_other_mutants_are_not_mixed_in(runner, tmp_path):
    write_meta(tmp_path, {NAMES[0]: 1, NAMES[1]: 1})
    assert runner.save("store/m.py")
    # Another mutmut names other mutants: the saved two do not count beside them.
    write_meta(tmp_path, {NAMES[2]: 0, NAMES[3]: None})
    s = runner.score("store/m.py", {})
    assert (s.mutants, s.killed, s.survivors, s.saved) == (2, 0, [NAMES[2]], "")


def test_rest_runs_what_was_not_run_and_survivors_what_lived(runner, tmp_path, monkeypatch):
    write_meta(tmp_path, {NAMES[0]: 1, NAMES[1]: 0, NAMES[2]: 0, NAMES[3]: None})
    monkeypatch.setattr(runner, "modules", lambda: ["store/m.py"])
    monkeypatch.setattr(runner, "EQUIVALENT_DIR", tmp_path / "equivalent")
    monkeypatch.chdir(tmp_path)     # main() works from the repository: back where it was after the test
    monkeypatch.setattr(runner, "load_equivalent", lambda: {NAMES[2]: {"line": "x", "reason": "r"}})
    monkeypatch.setattr(runner, "change", lambda name, module: "x")
    asked = []
    monkeypatch.setattr(runner, "run", lambda label, names: asked.append(names) or 0.0)
    runner.main(["--rest"])
    runner.main(["--survivors"])
    runner.main(["--survivors", "--rest"])
    assert asked == [[NAMES[3]], [NAMES[1]], [NAMES[1], NAMES[3]]]


@pytest.mark.parametrize("options", [["--save"], ["--report"], ["--save", "--report"]])
def test_saving_or_reporting_runs_no_mutant(runner, tmp_path, monkeypatch, options):
    write_meta(tmp_path, {NAMES[0]: 1, NAMES[1]: None, NAMES[2]: None, NAMES[3]: None})
    monkeypatch.setattr(runner, "modules", lambda: ["store/m.py"])
    monkeypatch.setattr(runner, "EQUIVALENT_DIR", tmp_path / "equivalent")
    monkeypatch.setattr(runner, "change", lambda name, module: "x")
    monkeypatch.chdir(tmp_path)
    asked = []
    monkeypatch.setattr(runner, "run", lambda label, names: asked.append(names) or 0.0)
    runner.main(options)
    assert asked == []
    assert (tmp_path / "results" / "store.m.json").exists() == ("--save" in options)


def test_the_runs_of_results_dropped_for_other_mutants_are_dropped_with_them(runner, tmp_path):
    # Saved by an earlier run (written out here): two mutants, from a run on another day.
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "store.m.json").write_text(json.dumps({
        "module": "store/m.py", "source_sha256": runner.source_digest("store/m.py"),
        "runs": ["0123456789 2026-01-05"], "exit_code_by_key": {NAMES[0]: 1, NAMES[1]: 1}}), encoding="utf-8")
    write_meta(tmp_path, {NAMES[2]: 1, NAMES[3]: None})     # another mutmut's mutants
    assert runner.save("store/m.py")
    record = json.loads((tmp_path / "results" / "store.m.json").read_text(encoding="utf-8"))
    assert record["exit_code_by_key"] == {NAMES[2]: 1, NAMES[3]: None}
    assert len(record["runs"]) == 1 and record["runs"][0] != "0123456789 2026-01-05"
    # The same mutants again: the earlier run stays named beside the new one.
    (tmp_path / "results" / "store.m.json").write_text(json.dumps({**record, "runs": ["0123456789 2026-01-05"]}),
                                                       encoding="utf-8")
    assert runner.save("store/m.py")
    record = json.loads((tmp_path / "results" / "store.m.json").read_text(encoding="utf-8"))
    assert record["runs"][0] == "0123456789 2026-01-05" and len(record["runs"]) == 2


TWO = "LIMIT = 1\n\n\ndef f(a):\n    return a > LIMIT\n\n\ndef g(a):\n    return a < LIMIT\n"
F_AND_G = ["store.m.x_f__mutmut_1", "store.m.x_f__mutmut_2", "store.m.x_g__mutmut_1", "store.m.x_g__mutmut_2"]


@pytest.mark.parametrize("edit, kept", [
    # A comment and the layout are not the code: everything stands.
    (lambda s: "# limits\n" + s.replace("return a < LIMIT", "return (a <\n            LIMIT)"), F_AND_G),
    # g changed: only f's results stand.
    (lambda s: s.replace("a < LIMIT", "a <= LIMIT"), F_AND_G[:2]),
    # A function added beside them: both stand.
    (lambda s: s + "\n\ndef h(a):\n    return a\n", F_AND_G),
    # The code outside the functions changed (a constant both read): nothing stands.
    (lambda s: s.replace("LIMIT = 1", "LIMIT = 2"), []),
    # A class body is outside the functions too.
    (lambda s: s + "\n\nclass C:\n    size = 3\n", []),
])
def test_saved_results_stand_for_the_functions_that_read_as_they_did(runner, tmp_path, edit, kept):
    runner.mutant_names = lambda module: F_AND_G    # what mutmut makes of f and g (stand-ins for its names)
    source = tmp_path / "store" / "m.py"
    source.write_text(TWO, encoding="utf-8")
    write_meta(tmp_path, dict.fromkeys(F_AND_G, 1))
    assert runner.save("store/m.py")
    (tmp_path / "mutants").rename(tmp_path / "elsewhere")
    source.write_text(edit(TWO), encoding="utf-8")
    s = runner.score("store/m.py", {})
    assert (s.mutants, s.killed, s.not_run) == (4, len(kept), 4 - len(kept))
    # A later save keeps them, and a run of the changed function's mutants adds up with them.
    write_meta(tmp_path, {name: (1 if name in kept else 0) if name.startswith("store.m.x_g") else None
                          for name in F_AND_G})
    assert runner.save("store/m.py")
    s = runner.score("store/m.py", {})
    survivors = [name for name in F_AND_G[2:] if name not in kept]
    assert (s.mutants, s.not_run, s.survivors) == (4, len([n for n in F_AND_G[:2] if n not in kept]), survivors)


def test_the_module_docstring_is_not_code_its_constants_are(runner, tmp_path):
    source = tmp_path / "store" / "m.py"
    source.write_text('"""What m does."""\n' + TWO, encoding="utf-8")
    before = runner.outside_digest("store/m.py")
    source.write_text('"""What m does, said better."""\n' + TWO, encoding="utf-8")
    assert runner.outside_digest("store/m.py") == before
    source.write_text('"""What m does."""\n' + TWO.replace("LIMIT = 1", "LIMIT = 1\nOTHER = 2"), encoding="utf-8")
    assert runner.outside_digest("store/m.py") != before


CLASS = "class C:\n    size = 3\n\n    def m(self):\n        return self.size > 1\n"


@pytest.mark.parametrize("edit, stands", [
    (lambda s: s.replace("size = 3", "size = 4"), False),     # the class body outside its methods
    (lambda s: s.replace("> 1", ">= 1"), False),              # the method itself
    (lambda s: s + "\n    def n(self):\n        return 0\n", True),   # another method beside it
])
def test_a_class_body_counts_as_code_outside_functions(runner, tmp_path, edit, stands):
    source = tmp_path / "store" / "m.py"
    source.write_text(CLASS, encoding="utf-8")
    name = "store.m.xǁCǁm__mutmut_1"
    write_meta(tmp_path, {name: 1})
    assert runner.save("store/m.py")
    (tmp_path / "mutants").rename(tmp_path / "elsewhere")
    source.write_text(edit(CLASS), encoding="utf-8")
    assert runner.score("store/m.py", {}).killed == (1 if stands else 0)
