"""The test harness itself: what the Pilot, snapshot and screenshot code relies on
must hold, or the tests that use it prove nothing.

- no test reaches into Textual's private attributes (they change between
  releases without notice; the public route is named in the failure);
- ``settle()`` raises, naming what it waited for, instead of giving up silently;
- cursors are born without blinking (the conftest fixture), and notifications are
  recorded through the public ``App.notify``.
"""

from __future__ import annotations

import ast
import asyncio
from functools import lru_cache
from pathlib import Path

import pytest
import textual
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Input, Static, TextArea

from tests.tui_data import cursors_that_do_not_blink, settle, shown_notifications

ROOT = Path(__file__).resolve().parents[1]
# Where tests drive the app: every Python file under tests/ and the screenshot script.
SCANNED = sorted(ROOT.joinpath("tests").rglob("*.py")) + [ROOT / "screenshots" / "regenerate.py"]
# The frame-time benchmark counts the frames Textual hands to the terminal and types
# keys as the terminal driver does; Textual has no public hook for either.
ALLOWED = {
    # Frames as a terminal would get them, and keys as its driver sends them.
    ("tests/benchmarks/bench_tui.py", "_display"),
    ("tests/benchmarks/bench_tui.py", "_driver"),
    ("tests/benchmarks/bench_note_preview.py", "_driver"),
    # NO_COLOR: the escape sequences a terminal would be sent, to find any colour in them.
    ("tests/test_tui_no_color.py", "_display"),
    # The frame timer's loop (tui/frame_timer.py replaces Timer._run), its ticks counted on a test clock.
    ("tests/test_frame_timer.py", "_tick"),
    ("tests/test_frame_timer.py", "_run"),
}


@lru_cache(maxsize=1)
def textual_names() -> tuple[frozenset[str], frozenset[str]]:
    """The installed Textual's class names, and every ``_name`` (not dunder) its classes
    define: methods, class attributes, and attributes its methods assign on ``self`` / ``cls``."""
    classes: set[str] = set()
    names: set[str] = set()
    for path in Path(textual.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
            classes.add(cls.name)
            for node in cls.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Assign):
                    names.update(t.id for t in node.targets if isinstance(t, ast.Name))
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names.add(node.target.id)
            for node in ast.walk(cls):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _on_self(node):
                    names.add(node.attr)
    return frozenset(classes), frozenset(n for n in names if n.startswith("_") and not n.endswith("__"))


def _on_self(node: ast.Attribute) -> bool:
    return isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")


def private_textual_reads(source: str) -> list[tuple[int, str]]:
    """(line, expression) of every ``x._name`` in ``source`` where Textual defines
    ``_name``; a helper class that does not derive from a Textual class may use
    such a name for its own attributes (``self._lock``)."""
    classes, private = textual_names()
    tree = ast.parse(source)
    own: set[int] = set()
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        bases = {b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else ""
                 for b in (base.value if isinstance(base, ast.Subscript) else base for base in cls.bases)}
        if not bases & classes:
            own.update(id(node) for node in ast.walk(cls) if isinstance(node, ast.Attribute) and _on_self(node))
    return [(node.lineno, ast.unparse(node)) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in private and id(node) not in own]


def test_no_test_reads_a_private_textual_attribute() -> None:
    found = {}
    for path in SCANNED:
        for line, expression in private_textual_reads(path.read_text(encoding="utf-8")):
            found[(path.relative_to(ROOT).as_posix(), expression.rsplit(".", 1)[1])] = f"{line}: {expression}"
    unexpected = {key: where for key, where in found.items() if key not in ALLOWED}
    assert not unexpected, (
        "tests read Textual's private attributes (use the public API: shown_notifications(app) from "
        f"tests.tui_data for notifications, queries and reactives for widgets): {unexpected}")
    assert set(found) == ALLOWED, f"no longer needed, drop from ALLOWED: {ALLOWED - set(found)}"


def test_the_scan_flags_private_textual_reads_and_nothing_else() -> None:
    source = ("app._notifications\nscreen._compositor.size\nparser._actions\nendpoint.feed_url\n"
              "class Server:\n    def stop(self):\n        self._lock = None\n"
              "class Recorder(App[None]):\n    def seen(self):\n        return self._notifications\n")
    assert private_textual_reads(source) == [(1, "app._notifications"), (2, "screen._compositor"),
                                             (10, "self._notifications")]


# --- settle() -----------------------------------------------------------------------------


class Forever(App[None]):
    """An app whose one worker never ends."""

    def on_mount(self) -> None:
        self.run_worker(asyncio.Event().wait(), name="never-done", exit_on_error=False)


class NotSettled(Screen[None]):
    """A screen that never reports its rows and detail as shown."""

    settled = False

    def compose(self) -> ComposeResult:
        yield Static("waiting")


@pytest.mark.anyio
async def test_settle_raises_naming_the_worker_it_waited_for() -> None:
    app = Forever()
    async with app.run_test() as pilot:
        with pytest.raises(TimeoutError, match=r"workers not done after 0\.2 s: worker 'never-done' \(running\)"):
            await settle(pilot, worker_seconds=0.2)


@pytest.mark.anyio
async def test_settle_raises_naming_the_screen_that_never_settled() -> None:
    app = App[None]()
    async with app.run_test() as pilot:
        await app.push_screen(NotSettled())
        with pytest.raises(TimeoutError, match=r"after 5 rounds for: NotSettled\.settled"):
            await settle(pilot, rounds=5)


@pytest.mark.anyio
async def test_settle_returns_after_three_quiet_rounds_and_not_before() -> None:
    app = App[None]()
    async with app.run_test() as pilot:
        await app.push_screen(NotSettled())
        app.screen.settled = True
        await settle(pilot, rounds=3)   # exactly three rounds, all quiet: done
        with pytest.raises(TimeoutError, match="after 2 rounds for: a third quiet round in a row"):
            await settle(pilot, rounds=2)


# --- no blinking, notifications ---------------------------------------------------------------


class Editor(App[None]):
    def compose(self) -> ComposeResult:
        yield Input(id="line")
        yield TextArea("text", id="area")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()
        self.query_one(TextArea).notify("saved [b]x[/b]", title="Note", markup=False)   # a widget's notify


@pytest.mark.anyio
async def test_cursors_are_born_still_and_notifications_are_recorded() -> None:
    app = Editor()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.query_one(Input).cursor_blink is False
        assert app.query_one(TextArea).cursor_blink is False
        app.notify("second", severity="warning")
        await pilot.pause()
        shown = [(n.title, n.message, n.severity, n.markup) for n in shown_notifications(app)]
    assert shown == [("Note", "saved [b]x[/b]", "information", False), ("", "second", "warning", True)]


def test_the_blink_patch_is_undone_when_its_block_ends() -> None:
    before = TextArea.__init__, Input.__init__   # the conftest fixture's
    with cursors_that_do_not_blink():
        assert (TextArea.__init__, Input.__init__) != before
        assert TextArea().cursor_blink is False and Input().cursor_blink is False
    assert (TextArea.__init__, Input.__init__) == before
