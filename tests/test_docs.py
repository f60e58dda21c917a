"""The README documents the command line as it is (after sqlite-utils' test_docs)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tui.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("warden has no subcommands")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        opt for action in parser._actions for opt in action.option_strings
        if opt.startswith("--") and opt not in ("--help", "--version")
    )


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_readme_documents_each_command(command: str) -> None:
    assert re.search(rf"warden {command}\b", README), f"README does not mention `warden {command}`"


@pytest.mark.parametrize(
    "command,option",
    [(name, opt) for name, sub in sorted(_subcommands().items()) for opt in _options(sub)]
    + [("", opt) for opt in _options(build_parser())],
)
def test_readme_documents_each_option(command: str, option: str) -> None:
    assert option in README, f"README does not document {option} (warden {command})".strip()


def test_readme_setup_is_the_ci_command() -> None:
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_command = ci.strip().splitlines()[-1].replace(" -q -e ", " -e ")
    assert test_command.replace("pip install -q", "pip install") in README


@pytest.mark.parametrize("package", ["store", "tui"])
def test_readme_layout_names_every_module(package: str) -> None:
    # The Layout section is the map of the code: a new module of store/ or tui/ gets its line.
    layout = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    root = Path(__file__).resolve().parent.parent / package
    names = {path.parent.name + "/" if path.name == "__init__.py" and path.parent != root else path.name
             for path in root.rglob("*.py") if path.name != "__main__.py"}
    missing = sorted(name for name in names if name != "__init__.py" and name not in layout)
    assert missing == [], f"README Layout does not name {missing}"


def test_the_sqlite_utils_inspection_runs_and_cannot_write(tmp_path: Path) -> None:
    import os
    import shlex
    import shutil
    import sqlite3
    import subprocess
    import sys

    from store.db import connect

    section = README.split("## Inspecting a database", 1)[1].split("\n## ", 1)[0]
    script = section.split("```sh\n", 1)[1].split("```", 1)[0]
    db = tmp_path / "warden.db"
    conn = connect(db)
    conn.execute("INSERT INTO consumer (id, legal_name) VALUES ('northwind-analytics', 'Northwind Analytics Ltd')")
    conn.execute("INSERT INTO finding (consumer_id, category, period, period_start, period_end, detected_at, "
                 "updated_at) VALUES ('northwind-analytics', 'volume_cap', '2022', '2022-01-01', '2022-12-31', 't', 't')")
    conn.close()
    bin_dir = Path(sys.executable).parent
    assert shutil.which("sqlite-utils", path=str(bin_dir)), "sqlite-utils is installed with warden"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run(["bash", "-euc", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "consumer" in out.stdout and "Northwind Analytics Ltd" in out.stdout and "volume_cap" in out.stdout
    uri = shlex.split(next(line for line in script.splitlines() if line.startswith("DB=")).split("=", 1)[1])[0]
    uri = uri.replace("$PWD", str(tmp_path))
    refused = subprocess.run(["sqlite-utils", "query", uri, "delete from finding"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "readonly" in refused.stderr + refused.stdout
    assert sqlite3.connect(db).execute("SELECT count(*) FROM finding").fetchone()[0] == 1
