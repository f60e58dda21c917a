"""Mutation testing of the modules that decide what a letter says and what the
log proves: mutmut plants one small bug at a time (``>`` for ``>=``, a constant
changed, a call dropped) and runs the tests that reach it; a bug no test notices
*survived*.

    python tests/mutation/run.py                      # every module, in one mutmut run
    python tests/mutation/run.py store/sync/counts.py  # these modules only
    python tests/mutation/run.py --report             # the table of the last runs, nothing run
    python tests/mutation/run.py --survivors MODULE   # only its mutants the last runs left alive (not equivalent)
    python tests/mutation/run.py --rest               # only the mutants a stopped run did not get to
    python tests/mutation/run.py --save               # keep the results in tests/mutation/results/

The modules are ``[tool.mutmut] only_mutate`` in pyproject.toml (with the tests
that may run and how); mutmut uses two worker processes and runs each mutant
against the tests that reach its function only (it learns which once, then
keeps it in ``mutants/``). A run starts the mutants of the modules it names afresh.

The whole list takes longer than one sitting on 2 cores, so results are kept:
a run (or ``--save``, after a run that was stopped) writes each module's exit codes,
with digests of its source and the commits and days of the runs, to
tests/mutation/results/ (in the repository). A module's score is its saved results
updated by what the mutants/ folder holds now; ``--rest`` runs what both leave not
run, ``--survivors`` what they leave alive. The report names the commit and day of
every saved result it used. A saved result stands while the function its mutant
is in reads as it did (its syntax tree: comments and layout aside, as mutmut
itself decides which mutants to run again) and so does the module's code outside
its functions (constants, SQL, imports, class bodies; the module's docstring
aside). A change elsewhere in the module, in a function the mutant's function
calls, can in rare cases change whether a kept mutant is noticed; a full run of
the module (``run.py MODULE``) decides everything afresh.

A survivor the program cannot tell apart from the original (an equivalent
mutant: ``"SELECT"`` spelled ``"select"``, a fast path whose fallback gives the
same answer) is listed, with the reason, in tests/mutation/equivalent/ (one file per module); the
runner checks that each entry still names a surviving mutant whose changed line
reads as written there. The score of a module is the usual one: killed /
(mutants - equivalent). Every other survivor is printed with its change. Exit 1
when the total is under 90% or a survivor is neither killed nor listed; 2 on bad
usage.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT_DIR = Path(__file__).with_name("equivalent")   # one file per module: store.rules.toml
RESULTS_DIR = Path(__file__).with_name("results")         # saved runs, one file per module: store.rules.json
TARGET = 0.90
WORKERS = 2

# mutmut's exit codes of a mutant's test run (mutmut.stats.status_by_exit_code):
# a failing test, a run over its time limit (a loop that no longer ends), or a
# test process that died all mean the bug was noticed.
_KILLED = {1, 3, 24, -24, 152, 255, 36, 37, -9, -11}
_SURVIVED = {0}
_NO_TESTS = {5, 33}


@dataclass
class Score:
    module: str
    mutants: int = 0
    killed: int = 0
    not_run: int = 0
    survivors: list[str] = field(default_factory=list)      # not killed: survived or reached by no test
    unrun: list[str] = field(default_factory=list)          # not run yet (a run stopped before them)
    equivalent: list[str] = field(default_factory=list)     # survivors listed in equivalent/
    saved: str = ""                                         # the runs ("commit day") of saved results used

    @property
    def unexplained(self) -> list[str]:
        return [name for name in self.survivors if name not in self.equivalent]

    @property
    def score(self) -> float:
        """killed / (mutants tried - equivalent)."""
        counted = self.mutants - self.not_run - len(self.equivalent)
        return self.killed / counted if counted else 1.0


def modules() -> list[str]:
    """The modules mutated, as configured."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def dotted(module: str) -> str:
    name = module.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def run(module: str, names: list[str] | None = None) -> float:
    """Run mutmut on one module's mutants (or only ``names``); its output goes to mutants/logs/."""
    log = ROOT / "mutants" / "logs" / (dotted(module) + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run([str(mutmut), "run", "--max-children", str(WORKERS),
                               *(names or [dotted(module) + ".x*"])],
                              cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"mutmut failed on {module} (exit {done.returncode}); its output: {log.relative_to(ROOT)}")
    return time.monotonic() - started


def source_digest(module: str) -> str:
    """SHA-256 of the module's source, byte for byte."""
    return hashlib.sha256((ROOT / module).read_bytes()).hexdigest()


def function_digests(module: str) -> dict[str, str]:
    """Each function's digest, by mutmut's name for it (``x_f``, ``xǁClassǁmethod``):
    mutmut's own, of the function's syntax tree."""
    from mutmut.mutation.file_mutation import compute_function_hashes

    return compute_function_hashes((ROOT / module).read_text(encoding="utf-8"))


def outside_digest(module: str) -> str:
    """SHA-256 of the module's syntax tree outside its functions (the docstring aside):
    the constants, SQL, imports and class bodies every function may read."""
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body

    def outside(node: ast.stmt) -> str:
        if isinstance(node, ast.ClassDef):
            kept = [child for child in node.body if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))]
            return ast.dump(ast.ClassDef(node.name, node.bases, node.keywords, [outside(c) for c in kept],
                                         node.decorator_list), annotate_fields=False)
        return ast.dump(node, annotate_fields=False)

    parts = [outside(node) for node in body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def function_of(name: str) -> str:
    """mutmut's name of the function a mutant is in: store.m.x_f__mutmut_3 -> x_f."""
    return name.partition("__mutmut_")[0].rpartition(".")[2]


def saved_record(module: str) -> dict:
    """What tests/mutation/results/ holds for ``module`` and still stands: every
    result while the source is byte for byte the same, otherwise those of the
    functions that read as they did while the code outside functions does too."""
    path = RESULTS_DIR / (dotted(module) + ".json")
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("source_sha256") == source_digest(module):
        return saved
    if "function_sha256" not in saved or saved.get("outside_sha256") != outside_digest(module):
        return {}
    now, then = function_digests(module), saved["function_sha256"]
    kept = {name: code for name, code in saved.get("exit_code_by_key", {}).items()
            if (function := function_of(name)) in now and now[function] == then.get(function)}
    return {**saved, "exit_code_by_key": kept} if kept else {}


def mutant_names(module: str) -> list[str]:
    """The mutants mutmut makes of ``module`` as it reads now (made, not run: seconds)."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    made = mutate_file_contents(module, (ROOT / module).read_text(encoding="utf-8"))
    return [get_mutant_name(Path(module), name) for name in made.mutant_names]


def current_codes(module: str) -> dict[str, int | None]:
    """The exit codes mutmut holds for ``module`` in mutants/ (None: not run)."""
    meta = ROOT / "mutants" / (module + ".meta")
    if not meta.is_file():
        return {}
    return dict(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])


def codes(module: str) -> tuple[dict[str, int | None], str]:
    """The saved results updated by every mutant mutants/ has a result for, and
    "commit, day" of the saved results when any of them still stands."""
    saved = saved_record(module)
    merged, when = dict(saved.get("exit_code_by_key", {})), ", ".join(saved.get("runs", []))
    now = current_codes(module)
    # The mutants there are: those of mutants/, else those mutmut makes of the
    # source now (the saved ones while the source is byte for byte the same). A
    # saved mutant it does not make (a changed function, another mutmut) is gone;
    # one it makes that has no result is not run yet.
    if now:
        names = list(now)
    elif merged and saved["source_sha256"] == source_digest(module):
        names = list(merged)
    else:
        names = mutant_names(module)
    merged = {name: merged.get(name) for name in names}
    for name, code in now.items():
        if code is not None:
            merged[name] = code
    used = when if any(code is not None and now.get(name) is None for name, code in merged.items()) else ""
    return merged, used


def score(module: str, equivalent: dict[str, dict[str, str]]) -> Score:
    """The results for ``module``: saved ones (tests/mutation/results/) updated by mutants/."""
    result = Score(module)
    exit_codes, result.saved = codes(module)
    for name, code in sorted(exit_codes.items()):
        result.mutants += 1
        if code is None:
            result.not_run += 1
            result.unrun.append(name)
        elif code in _KILLED:
            result.killed += 1
        else:   # survived, no test reaches it, or anything mutmut calls suspicious
            result.survivors.append(name)
            if name in equivalent:
                result.equivalent.append(name)
    return result


def save(module: str) -> bool:
    """Add what mutants/ holds for ``module`` to its saved results (tests/mutation/results/)."""
    if not any(code is not None for code in current_codes(module).values()):
        return False
    exit_codes, _ = codes(module)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    stamp = f"{commit[:10] or 'unknown'} {time.strftime('%Y-%m-%d', time.gmtime())}"
    saved = saved_record(module)     # its runs stand while any of their results is kept
    still = set(saved.get("exit_code_by_key", {})) & set(exit_codes)
    runs = list(saved.get("runs", [])) if still else []
    functions = {function_of(name) for name in exit_codes}
    record = {"module": module, "source_sha256": source_digest(module), "outside_sha256": outside_digest(module),
              "function_sha256": {f: h for f, h in sorted(function_digests(module).items()) if f in functions},
              "runs": runs + [stamp] if stamp not in runs else runs,
              "exit_code_by_key": dict(sorted(exit_codes.items()))}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / (dotted(module) + ".json")).write_text(json.dumps(record, indent=0) + "\n", encoding="utf-8")
    return True


def mutated(module: str) -> bool:
    """Whether mutants/ holds mutmut's copy of ``module`` (what a mutant's change is read from)."""
    return (ROOT / "mutants" / module).is_file()


def change(name: str, module: str) -> str:
    """The lines a mutant changed, as they read after the change."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    if not mutated(module):
        return "(its change: run mutmut once, e.g. with --survivors)"
    diff = get_diff_for_mutant(name, path=module)
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " / ".join(added) or "(a line removed)"


def load_equivalent() -> dict[str, dict[str, str]]:
    """mutant name -> {"line": its changed line, "reason": why it is equivalent}."""
    groups = [group for path in sorted(EQUIVALENT_DIR.glob("*.toml"))
              for group in tomllib.loads(path.read_text(encoding="utf-8")).get("equivalent", [])]
    return {name: {"line": line, "reason": group["reason"]} for group in groups for name, line in group["mutants"]}


def report(scores: list[Score], equivalent: dict[str, dict[str, str]]) -> int:
    """Print the table, the survivors nobody explained and stale entries; the exit code."""
    width = max(len("module"), *(len(s.module) for s in scores))
    print(f"{'module':<{width}}  mutants  killed  equivalent  survived  score")
    total = Score("total")
    for s in scores:
        total.mutants += s.mutants
        total.killed += s.killed
        total.not_run += s.not_run
        total.survivors += s.survivors
        total.equivalent += s.equivalent
    for s in [*scores, total]:
        if s is total:
            print("-" * (width + 47))
        if s.mutants == 0 or s.not_run == s.mutants:
            print(f"{s.module:<{width}}  {s.mutants:7d}  not run yet")
            continue
        tried = s.mutants - s.not_run
        note = f"  ({s.not_run} not run)" if s.not_run else ""
        print(f"{s.module:<{width}}  {s.mutants:7d}  {s.killed:6d}  {len(s.equivalent):10d}  "
              f"{len(s.unexplained):8d}  {s.score:6.1%}{note}")
    for s in scores:
        if s.saved:
            print(f"{s.module}: results kept from the runs at {s.saved} (tests/mutation/results/)")
    problems = 0
    unexplained = [(s.module, name) for s in scores for name in s.unexplained]
    if unexplained:
        print(f"\nSurvivors not killed and not listed in {EQUIVALENT_DIR.relative_to(ROOT)}/:")
        for module, name in unexplained:
            print(f"  {name}: {change(name, module)}")
        problems += 1
    by_module = {dotted(s.module): s for s in scores}
    for name, entry in sorted(equivalent.items()):
        owner = next((s for prefix, s in by_module.items() if name.startswith(prefix + ".x")), None)
        if owner is None or owner.not_run == owner.mutants:
            continue
        module = owner.module
        if name in owner.unrun:     # not run yet (a run stopped before it): nothing to check
            continue
        if name not in owner.survivors:
            print(f"\nstale entry in {EQUIVALENT_DIR.name}/: {name} is killed or gone; remove it")
            problems += 1
        elif mutated(module) and (changed := change(name, module)) != entry["line"].strip():
            print(f"\nstale entry in {EQUIVALENT_DIR.name}/: {name} now changes "
                  f"{changed!r}, not {entry['line']!r}; check its reason")
            problems += 1
    if unexplained and "--stubs" in sys.argv:
        print("\nEntries to complete (a reason each) if they are equivalent:")
        for module, name in unexplained:
            print(f"  [{name!r}, {change(name, module)!r}],")
    if total.mutants > total.not_run and total.score < TARGET:
        print(f"\ntotal {total.score:.1%} is under the target of {TARGET:.0%}")
        problems += 1
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to run (default: every module of only_mutate)")
    parser.add_argument("--report", action="store_true", help="print the last runs' table; run nothing")
    parser.add_argument("--survivors", action="store_true",
                        help="run again only the mutants of each module that the last runs did not kill "
                             "and are not listed as equivalent (after adding tests; the code under test unchanged)")
    parser.add_argument("--rest", action="store_true",
                        help="run only the mutants the last runs did not get to (a run stopped before them)")
    parser.add_argument("--stubs", action="store_true",
                        help="also print each unexplained survivor as an entry for equivalent/MODULE.toml")
    parser.add_argument("--save", action="store_true",
                        help="write the results to tests/mutation/results/ (a run does it when it ends; "
                             "this after a run that was stopped)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)   # mutmut reads its configuration and mutants/ from here
    configured = modules()
    unknown = [m for m in args.modules if m not in configured]
    if unknown:
        parser.error(f"not in [tool.mutmut] only_mutate: {', '.join(unknown)}")
    equivalent = load_equivalent()
    if args.survivors or args.rest:
        # One mutmut run for all of them: its clean run of the tests they reach is paid once.
        names = []
        for module in args.modules or configured:
            last = score(module, equivalent)
            if last.not_run == last.mutants:     # never run: run the module itself
                continue
            names += [name for name in last.unexplained if args.survivors] + (last.unrun if args.rest else [])
        if names:
            seconds = run("survivors" if args.survivors else "rest", names)
            print(f"ran {len(names)} mutants in {seconds / 60:.1f} min", flush=True)
    elif not (args.report or args.save):
        # One mutmut run for every module asked: the clean run of the tests their
        # mutants reach is paid once, not once per module, and mutmut takes the
        # quickest mutants of all of them first.
        chosen = args.modules or configured
        seconds = run("modules", [dotted(module) + ".x*" for module in chosen])
        print(f"ran {', '.join(chosen)} in {seconds / 60:.1f} min", flush=True)
    if args.save or not args.report:
        saved = [m for m in configured if save(m)]
        if saved:
            print(f"saved the results of {len(saved)} modules in {RESULTS_DIR.relative_to(ROOT)}/", flush=True)
    return report([score(m, equivalent) for m in configured], equivalent)


if __name__ == "__main__":
    sys.exit(main())
