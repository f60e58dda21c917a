"""The headless core must never pull in the TUI: cron jobs and exports run without it.
And the TUI reads and writes the database only through the core."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import store


def _store_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(store.__path__, prefix="store.")
    )


def test_store_has_modules_to_check() -> None:
    # Guards the test below against silently checking nothing.
    assert "store.db" in _store_modules()
    assert "store.sync.engine" in _store_modules()


def test_importing_every_store_module_loads_no_textual_and_no_tui() -> None:
    modules = _store_modules()
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "print('\\n'.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"store imported: {result.stdout}"


# --- tui/ talks to the database only through store/ -----------------------------------

TUI = Path(__file__).resolve().parent.parent / "tui"

# The one module of tui/ that may use sqlite3: the connections it hands to store/.
CONNECTION_MODULE = "connections.py"

# Modules that still read the database themselves until the store restructure
# gives them a store API (then they leave this list; the last test keeps it true).
AWAITING_STORE = {
    "decisions.py": "store.review.decide() / describe_undo()",
    "widgets/detail.py": "store.cases (the consumer's case, chart window and caps)",
    "screens/review.py": "store.sync.history (the header's sync summary)",
}


def _tui_sources() -> dict[str, ast.Module]:
    return {path.relative_to(TUI).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
            for path in sorted(TUI.rglob("*.py"))}


def _imports_sqlite3(tree: ast.Module) -> bool:
    for node in ast.walk(tree):  # TYPE_CHECKING blocks and function bodies included
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlite3" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlite3":
            return True
    return False


def _runs_sql(tree: ast.Module) -> bool:
    """Calls ``.execute(...)`` / ``.executemany(...)`` / ``.executescript(...)``."""
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr in ("execute", "executemany", "executescript")
               for node in ast.walk(tree))


def test_the_checks_see_sqlite3_and_sql() -> None:
    tree = ast.parse("if TYPE_CHECKING:\n    from sqlite3 import Connection\n")
    assert _imports_sqlite3(tree) and not _runs_sql(tree)
    assert _runs_sql(ast.parse("def f(conn):\n    return conn.execute('SELECT 1')\n"))
    assert CONNECTION_MODULE in _tui_sources() and "screens/review.py" in _tui_sources()


def test_only_the_connection_module_of_tui_imports_sqlite3_or_runs_sql() -> None:
    bad = {name for name, tree in _tui_sources().items()
           if name != CONNECTION_MODULE and (_imports_sqlite3(tree) or _runs_sql(tree))}
    assert bad - set(AWAITING_STORE) == set()


def test_the_modules_awaiting_the_store_still_need_to() -> None:
    # Once one of them no longer touches the database, it leaves AWAITING_STORE.
    sources = _tui_sources()
    done = [name for name in AWAITING_STORE
            if name not in sources or not (_imports_sqlite3(sources[name]) or _runs_sql(sources[name]))]
    assert done == []
