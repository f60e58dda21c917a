"""The shape of the code: no import cycles between project modules, and no file
in store/ or tui/ longer than one can read in a sitting (docs: README "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("store", "tui")
MAX_LINES = 600


def _modules(root: Path) -> dict[str, Path]:
    """Every module of the project packages under ``root``, by dotted name."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:``: imports for type hints, never run."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
                (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
                or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules it imports (at the top or inside a function;
    ``from package import module`` counts as importing the module)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}     # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert "store.errors" in graph["tui.cli"]
    assert "store.config" in graph["store.consumers"]          # edges are found
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_is_named(tmp_path: Path) -> None:
    # The check itself: the cycle this issue removed (config imported sync.fetch
    # inside a function, and sync.fetch imported config), and a relative import.
    for package in PACKAGES:
        (tmp_path / package / "sync").mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "sync" / "__init__.py").write_text("")
    (tmp_path / "store" / "config.py").write_text(
        "def check():\n    from store.sync.fetch import SECRET_PARAMS\n")
    (tmp_path / "store" / "sync" / "fetch.py").write_text(
        "from typing import TYPE_CHECKING\nfrom store.config import check\n"
        "if TYPE_CHECKING:\n    from store.sync.writer import Writer\n")
    (tmp_path / "store" / "sync" / "writer.py").write_text("from . import fetch\n")
    assert find_cycle(import_graph(tmp_path)) == ["store.config", "store.sync.fetch", "store.config"]
    (tmp_path / "store" / "config.py").write_text("")
    assert find_cycle(import_graph(tmp_path)) is None    # writer -> fetch only: the hint is not an import
    (tmp_path / "store" / "sync" / "fetch.py").write_text("from store.sync import writer\n")
    assert find_cycle(import_graph(tmp_path)) == ["store.sync.fetch", "store.sync.writer", "store.sync.fetch"]


def _line_counts(root: Path = ROOT) -> dict[str, int]:
    return {str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
            for package in PACKAGES for path in sorted((root / package).rglob("*.py"))}


def test_no_file_in_store_or_tui_is_over_600_lines() -> None:
    counts = _line_counts()
    assert len(counts) > 40
    too_long = {path: n for path, n in counts.items() if n > MAX_LINES}
    assert too_long == {}, f"split these along their jobs: {too_long}"
