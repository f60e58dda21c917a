"""No class in tui/ assigns an attribute whose name Textual's own classes use.

Textual keeps its state in plain instance attributes (``_closing``,
``_running``, ``_parent``, ...). A subclass that assigns one of those names
replaces Textual's value: the note editor once set ``self._closing``, which the
message pump reads, and every message to the screen was dropped. Assigning a
reactive or a property with a setter is fine: Textual's own descriptor takes the
value (``self.virtual_size = ...`` on a ScrollView is how it is meant to be set).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import textwrap
from pathlib import Path

from textual.reactive import Reactive

TUI = Path(__file__).resolve().parent.parent / "tui"


def _self_assignments(node: ast.AST) -> set[str]:
    """Names ``X`` of every ``self.X = / self.X: T = / self.X += / setattr(self, "X", ...)``
    under ``node`` (nested functions and lambdas included)."""
    names: set[str] = set()
    for sub in ast.walk(node):
        targets: list[ast.expr] = []
        if isinstance(sub, ast.Assign):
            targets = list(sub.targets)
        elif isinstance(sub, (ast.AnnAssign, ast.AugAssign)):
            targets = [sub.target]
        elif (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "setattr"
              and len(sub.args) >= 2 and isinstance(sub.args[0], ast.Name) and sub.args[0].id == "self"
              and isinstance(sub.args[1], ast.Constant) and isinstance(sub.args[1].value, str)):
            names.add(sub.args[1].value)
        while targets:
            target = targets.pop()
            if isinstance(target, (ast.Tuple, ast.List)):  # self.a, self.b = ...
                targets.extend(target.elts)
            elif isinstance(target, ast.Starred):
                targets.append(target.value)
            elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                  and target.value.id == "self"):
                names.add(target.attr)
    return names


def _methods_assignments(class_node: ast.ClassDef) -> set[str]:
    names: set[str] = set()
    for item in class_node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names |= _self_assignments(item)
    return names


@functools.cache
def _textual_names(base: type) -> frozenset[str]:
    """Every name one Textual class defines: its namespace, its slots, and what
    any of its methods assigns on ``self``."""
    names = set(vars(base)) | set(getattr(base, "__slots__", ()))
    try:
        source = textwrap.dedent(inspect.getsource(base))
    except (OSError, TypeError):
        return frozenset(names)
    tree = ast.parse(source)
    class_node = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    return frozenset(names | _methods_assignments(class_node))


def _is_textual(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "textual"


def _settable_descriptor(cls: type, name: str) -> bool:
    """A reactive or a property with a setter: assigning it runs Textual's code."""
    for base in cls.__mro__:
        if name in vars(base):
            value = vars(base)[name]
            return isinstance(value, Reactive) or (isinstance(value, property) and value.fset is not None)
    return False


def _tui_classes() -> list[tuple[str, type, ast.ClassDef]]:
    """(where, class, its AST) for every class in tui/, nested classes included."""
    found = []
    for path in sorted(TUI.rglob("*.py")):
        module_name = ".".join(path.relative_to(TUI.parent).with_suffix("").parts).removesuffix(".__init__")
        module = importlib.import_module(module_name)
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def walk(body: list[ast.stmt], owner: object, prefix: str) -> None:
            for node in body:
                if isinstance(node, ast.ClassDef):
                    cls = getattr(owner, node.name)
                    found.append((f"{module_name}.{prefix}{node.name}", cls, node))
                    walk(node.body, cls, f"{prefix}{node.name}.")

        walk(tree.body, module, "")
    return found


def _shadowed(cls: type, class_node: ast.ClassDef) -> list[str]:
    textual_bases = [base for base in cls.__mro__ if _is_textual(base)]
    if not textual_bases:
        return []
    assigned = _methods_assignments(class_node)
    if dataclasses.is_dataclass(cls):
        assigned |= {f.name for f in dataclasses.fields(cls)}
    bad = []
    for name in sorted(assigned):
        owners = [base.__qualname__ for base in textual_bases if name in _textual_names(base)]
        if owners and not _settable_descriptor(cls, name):
            bad.append(f"{name} (defined by {', '.join(owners)})")
    return bad


def test_the_walk_finds_the_textual_subclasses() -> None:
    # Guards the test below against silently checking nothing.
    names = {where for where, cls, _ in _tui_classes() if any(_is_textual(b) for b in cls.__mro__)}
    assert {"tui.app.WardenApp", "tui.screens.note.NoteEditor", "tui.screens.review.ReviewScreen",
            "tui.widgets.queue.QueueView", "tui.widgets.queue.QueueView.PageWanted"} <= names


def test_textual_defines_the_names_that_broke_the_note_editor() -> None:
    from textual.screen import Screen
    from textual.widget import Widget

    names = set().union(*(_textual_names(b) for b in Screen.__mro__ if _is_textual(b)))
    assert {"_closing", "_running", "_parent", "app", "styles"} <= names
    assert {"_closing", "_running"} <= set().union(*(_textual_names(b) for b in Widget.__mro__ if _is_textual(b)))


# The note editor as it was (as text: tests never touch Textual's private names).
SHADOWING_EDITOR = """
class Editor(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self._closing = False       # Textual's message pump reads this one
        self._editor_closing = False
        self.sub_title = "a reactive: Textual's descriptor takes it"
"""


def test_the_check_catches_a_shadowing_assignment() -> None:
    from textual.screen import Screen

    namespace: dict[str, object] = {"Screen": Screen}
    exec(SHADOWING_EDITOR, namespace)
    node = ast.parse(SHADOWING_EDITOR).body[0]
    assert isinstance(node, ast.ClassDef)
    assert _shadowed(namespace["Editor"], node) == ["_closing (defined by MessagePump)"]  # type: ignore[arg-type]


def test_no_tui_class_assigns_a_name_textual_uses() -> None:
    bad = {where: names for where, cls, node in _tui_classes() if (names := _shadowed(cls, node))}
    assert bad == {}
