"""Named places in the write path where a test may stop the process, to prove
what a kill at that very place leaves behind (tests/test_kill.py).

``WARDEN_FAULT_POINT=NAME`` (or ``NAME#N``, the N-th time the point is reached
in this process) makes the process, on reaching it, write what it knows there
as JSON to the file ``WARDEN_FAULT_SIGNAL`` names and then wait, never to return:
the test sees the file, kills the process, and checks the database against the
side of the commit the point is on. Without the variable a point costs one
dictionary lookup.

The points (``:before-commit`` inside the transaction, its writes done and not
yet committed; ``:after-commit`` just after it):

- ``decision``: a reviewer's decision (store.review) and its log entries;
- ``note-save``: a note's body saved (store.notes.save_body);
- ``sync-page``: a sync writer's transaction of pages (store.sync.writer);
- ``rules``: one chunk of findings written by the rules (store.candidates, for store.rules).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Callable

POINT_ENV = "WARDEN_FAULT_POINT"
SIGNAL_ENV = "WARDEN_FAULT_SIGNAL"
POINTS = ("decision", "note-save", "sync-page", "rules")
SIDES = ("before-commit", "after-commit")

_reached: dict[str, int] = {}
_lock = threading.Lock()


def reach(point: str, side: str, known: Callable[[], dict[str, Any]] | None = None) -> None:
    """Pass the place ``point:side``; stop here if the environment asks for it,
    after writing what ``known()`` returns (and the point's name and count) to the
    signal file. ``known`` is called only then: it may query the database."""
    wanted = os.environ.get(POINT_ENV)
    if not wanted:
        return
    name = f"{point}:{side}"
    target, _, nth = wanted.partition("#")
    if target != name:
        return
    with _lock:
        count = _reached[name] = _reached.get(name, 0) + 1
    if count != (int(nth) if nth else 1):
        return
    signal = os.environ[SIGNAL_ENV]
    temporary = f"{signal}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump({"point": name, "count": count, "pid": os.getpid(), **(known() if known else {})}, out)
    os.replace(temporary, signal)   # whole or not there: the test never reads half of it
    threading.Event().wait()        # until killed
