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

ROOT = Path(__file__).resolve().parents[1]
TUI = ROOT / "tui"

# The one module of tui/ that may use sqlite3: the connections it hands to store/.
CONNECTION_MODULE = "connections.py"


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
    assert bad == set()


# --- store/ returns words, tui/ draws glyphs -------------------------------------------

# The marks the widgets draw for verdicts and finding statuses (README "Reviewing").
GLYPHS = "●▲✓·✗✉"


def _string_constants(tree: ast.Module) -> list[str]:
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_the_widgets_draw_the_glyphs() -> None:
    # Guards the test below: the glyphs are drawn somewhere, by a widget.
    drawn = "".join(text for path in (TUI / "widgets").rglob("*.py")
                    for text in _string_constants(ast.parse(path.read_text(encoding="utf-8"))))
    assert set(GLYPHS) <= set(drawn)


def test_no_store_module_makes_a_glyph() -> None:
    made = {str(path.relative_to(ROOT)): sorted(set(GLYPHS) & set("".join(texts)))
            for path in sorted((ROOT / "store").rglob("*.py"))
            if (texts := _string_constants(ast.parse(path.read_text(encoding="utf-8"))))}
    assert {where: glyphs for where, glyphs in made.items() if glyphs} == {}


# --- one definition of each domain constant ---------------------------------------


def _literal(node: ast.expr) -> object:
    """The value of a literal constant (numbers, text, and tuples/lists/sets of
    them, frozenset(...) included), or None for anything computed."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set",
                                                                                             "tuple") \
            and len(node.args) == 1 and not node.keywords:
        return _literal(node.args[0])
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(value) if all(isinstance(v, (str, int, float)) for v in value) else None
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def _constants(root: Path = ROOT) -> list[tuple[str, str, object]]:
    """(``path:line``, name, value) of every module-level UPPER_CASE constant with
    a literal value in store/ and tui/."""
    found = []
    for package in ("store", "tui"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target, value = node.targets[0], node.value
                elif isinstance(node, ast.AnnAssign) and node.value is not None:
                    target, value = node.target, node.value
                else:
                    continue
                if not isinstance(target, ast.Name) or not target.id.lstrip("_").isupper():
                    continue
                literal = _literal(value)
                if literal is not None:
                    found.append((f"{path.relative_to(root)}:{node.lineno}", target.id, literal))
    return found


def _defined_twice(constants: list[tuple[str, str, object]]) -> list[str]:
    """Pairs that define one thing twice: the same vocabulary (a collection of
    two or more words, whatever its name), or the same public name with the same
    value in two modules."""
    twice = []
    for i, (where, name, value) in enumerate(constants):
        for other_where, other_name, other_value in constants[i + 1:]:
            if value != other_value:
                continue
            vocabulary = isinstance(value, frozenset) and len(value) >= 2 and all(isinstance(v, str) for v in value)
            if vocabulary or (name == other_name and not name.startswith("_")):
                twice.append(f"{where} {name} = {other_where} {other_name}")
    return twice


def test_no_domain_constant_is_defined_twice() -> None:
    constants = _constants()
    assert any(name == "EXPORT_FORMATS" for _, name, _ in constants)   # the walk finds constants
    assert _defined_twice(constants) == []


def test_a_copied_constant_is_caught(tmp_path: Path) -> None:
    # The check itself, on a tree holding the copies this issue removed.
    (tmp_path / "store").mkdir()
    (tmp_path / "tui").mkdir()
    (tmp_path / "store" / "domain.py").write_text(
        'OPEN_STATUSES: Final[tuple[str, ...]] = ("candidate", "needs_info")\nFORMATS = ("md", "csv")\n'
        "MAX_SHARDS = 256\nPAGE = 64\n")
    (tmp_path / "tui" / "detail.py").write_text(
        'OPEN = ("candidate", "needs_info")\nEXPORT = frozenset({"csv", "md"})\nMAX_SHARDS = 256\n'
        "ROWS = 64\n_LIMIT = 256\nLABELS = {'md': 'Markdown', 'csv': 'CSV'}\n")
    assert _defined_twice(_constants(tmp_path)) == [
        "store/domain.py:1 OPEN_STATUSES = tui/detail.py:1 OPEN",
        "store/domain.py:2 FORMATS = tui/detail.py:2 EXPORT",
        "store/domain.py:3 MAX_SHARDS = tui/detail.py:3 MAX_SHARDS",
    ]

