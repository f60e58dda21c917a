"""The review screen's keys: one table that makes its bindings, its footer, the
help rows and the command palette.

Every binding has an id (``queue.down``, ``review.confirm``, ...): that is what a
configuration's ``[keymap]`` remaps, and what help and the palette show. No
action is only on an F-key, an ``alt+`` chord or ``ctrl+enter``.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping, Sequence

from textual.app import SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import format_key

from store.errors import ConfigError

# (key, action, description, id, show in footer).
KEYS: list[tuple[str, str, str, str, bool]] = [
    ("j,down", "move(1)", "Next consumer", "queue.down", False),
    ("k,up", "move(-1)", "Previous consumer", "queue.up", False),
    ("pagedown", "page(1)", "Page down", "queue.page_down", False),
    ("pageup", "page(-1)", "Page up", "queue.page_up", False),
    ("g,home", "first", "First consumer", "queue.first", False),
    ("G,end", "last", "Last consumer", "queue.last", False),
    ("right_square_bracket", "unreviewed(1)", "Next unreviewed", "queue.next_unreviewed", False),
    ("left_square_bracket", "unreviewed(-1)", "Previous unreviewed", "queue.previous_unreviewed", False),
    ("slash", "filter", "Filter", "queue.filter", True),
    ("escape", "clear_filter", "Untag, else clear the filter", "queue.clear_filter", False),
    ("o", "cycle_sort", "Sort: overage, status, name, due date", "queue.sort", False),
    ("O", "reverse_sort", "Sort: reverse the direction", "queue.reverse_sort", False),
    ("v", "decide('confirm')", "Confirm violation", "review.confirm", True),
    ("d", "decide('dismiss')", "Dismiss (reason required)", "review.dismiss", True),
    ("i", "decide('needs_info')", "Needs info", "review.needs_info", True),
    ("u", "undo", "Undo my last decision", "review.undo", True),
    ("space", "select", "Tag for a bulk decision", "review.select", False),
    ("asterisk", "tag_all", "Tag every consumer the filter shows", "review.tag_all", False),
    ("m", "manual_finding", "Open a finding by hand", "review.manual_finding", False),
    ("c", "draft_note", "Draft audit-request note", "notes.draft", False),
    ("e", "edit_note", "Edit note in $EDITOR", "notes.edit", False),
    ("x", "export", "Export notes", "notes.export", False),
    ("a", "case_items", "Case: mark the requested items", "case.items", False),
    ("A", "add_response", "Case: record a response (files)", "case.response", False),
    ("f", "followup", "Case: draft a reminder, overdue or final notice", "notes.followup", False),
    ("C", "case_outcome", "Case: close with an outcome, or escalate", "case.outcome", False),
    ("L", "overview", "The lead's overview", "view.overview", False),
    ("R", "app.sync", "Sync now", "sync.now", False),
    ("r", "refresh", "Refresh from the database", "queue.refresh", False),
    ("y", "copy_id", "Copy consumer id", "queue.copy_id", False),
    ("p", "toggle_detail", "Show / hide detail", "view.toggle_detail", False),
    ("J,ctrl+d", "detail_scroll(1)", "Scroll the detail down", "detail.down", False),
    ("K,ctrl+u", "detail_scroll(-1)", "Scroll the detail up", "detail.up", False),
    ("t", "chart_grain", "Chart: months / days", "chart.grain", False),
    ("s", "chart_metric", "Chart: next metric", "chart.metric", False),
    ("less_than_sign,comma", "chart_shift(-1)", "Chart: earlier period", "chart.earlier", False),
    ("greater_than_sign,full_stop", "chart_shift(1)", "Chart: later period", "chart.later", False),
    ("question_mark", "help", "Help: every key", "app.help", True),
    ("q", "quit", "Quit", "app.quit", True),
]

# Short labels for the footer (80 columns hold these seven and the palette).
FOOTER_LABELS: dict[str, str] = {
    "queue.filter": "Filter",
    "review.confirm": "Confirm",
    "review.dismiss": "Dismiss",
    "review.needs_info": "Info",
    "review.undo": "Undo",
    "app.help": "Help",
    "app.quit": "Quit",
}


# Keys the app takes on every screen: (binding id, keys, description).
APP_KEYS: list[tuple[str, str, str]] = [
    ("app.palette", "ctrl+p", "Command palette: every action"),
    ("app.quit_now", "ctrl+q", "Quit at once, from any screen"),
]

# A group of bindings active together: (binding id, keys, description) each.
Group = Sequence[tuple[str, str, str]]


def review_group() -> list[tuple[str, str, str]]:
    """The review screen's bindings as a group."""
    return [(binding_id, key, description) for key, _action, description, binding_id, _show in KEYS]


def group_of(bindings: Iterable[Any]) -> list[tuple[str, str, str]]:
    """A class's ``BINDINGS`` as a group (every binding there has an id)."""
    out = []
    for binding in bindings:
        assert isinstance(binding, Binding) and binding.id is not None
        out.append((binding.id, binding.key, binding.description))
    return out


def _keys(keys: str) -> set[str]:
    return {k.strip() for k in keys.split(",") if k.strip()}


def check_keymap(keymap: Mapping[str, str], groups: Iterable[Group]) -> None:
    """Raise ConfigError for a ``[keymap]`` that names no binding, or that gives a
    binding a key another binding of the same screen (or the app's, on every
    screen) keeps: that one would be left without it. Keys swapped between two
    bindings are fine."""
    groups = [list(g) for g in groups]
    known = {binding_id for group in groups + [APP_KEYS] for binding_id, _k, _d in group}
    for binding_id in keymap:
        if binding_id not in known:
            near = difflib.get_close_matches(binding_id, sorted(known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"[keymap]: there is no binding {binding_id!r}{hint}; "
                              "'?' in the review screen lists every binding id")
    for group in groups:
        together = group + APP_KEYS
        keys = {binding_id: _keys(keymap.get(binding_id, default)) for binding_id, default, _d in together}
        said = {binding_id: description for binding_id, _k, description in together}
        for binding_id in keymap:
            if binding_id not in keys:
                continue
            for other, theirs in keys.items():
                if other != binding_id and keys[binding_id] & theirs:
                    raise ConfigError(
                        f"[keymap]: {binding_id!r} = {keymap[binding_id]!r} takes the key of {other} "
                        f"({said[other]}), which would be left without it; give {other} another key in "
                        f"[keymap] too, or choose another for {binding_id}")


def review_bindings() -> list[Binding]:
    """The review screen's BINDINGS: footer label, description as the tooltip."""
    return [
        Binding(key, action, FOOTER_LABELS.get(binding_id, description), show=show, id=binding_id,
                tooltip=description)
        for key, action, description, binding_id, show in KEYS
    ]


def shown(keys: str) -> str:
    """``"j,down"`` as help writes it: ``j, ↓``."""
    return ", ".join(format_key(k.strip()) for k in keys.split(","))


def help_rows(keymap: Mapping[str, str], screens: Iterable[tuple[str, Any]]) -> list[tuple[str, str, str]]:
    """(keys as typed, description, binding id) for every binding, ``keymap``
    applied: the review screen's, the palette, then each of ``screens`` given as
    (where, screen class), so help lists every key there is."""
    rows = [(shown(keymap.get(binding_id, key)), description, binding_id)
            for key, _action, description, binding_id, _show in KEYS]
    rows += [(shown(keymap.get(binding_id, key)), description, binding_id) for binding_id, key, description in APP_KEYS]
    for where, screen in screens:
        for binding in screen.BINDINGS:
            assert isinstance(binding, Binding) and binding.id is not None
            rows.append((shown(keymap.get(binding.id, binding.key)), f"{where}: {binding.description}",
                         binding.id))
    return rows


def palette(node: DOMNode, entries: Iterable[tuple[str, str, str, str]]) -> Iterable[SystemCommand]:
    """A palette command per (title, keys shown, binding id, action): the palette
    runs the action on ``node`` as its key would."""
    for title, keys, binding_id, action in entries:
        yield SystemCommand(title, f"{keys}  ({binding_id})", _runner(node, action))


def _runner(node: DOMNode, action: str) -> Any:
    return lambda: node.run_action(action)


def review_palette(node: DOMNode, keymap: Mapping[str, str]) -> Iterable[SystemCommand]:
    """Every binding of the review screen as a palette command."""
    return palette(node, ((description, shown(keymap.get(binding_id, key)), binding_id, action)
                          for key, action, description, binding_id, _show in KEYS))
