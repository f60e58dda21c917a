"""Editing a note in the reviewer's ``$VISUAL`` / ``$EDITOR`` with the app suspended.

The command is split with :mod:`shlex` and run without a shell. The text goes
to a private temporary file and is read back as UTF-8; a file that cannot be
read back holds the reviewer's text, so it is kept and named, never deleted.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from textual.app import App, SuspendNotSupported
from textual.notifications import SeverityLevel


@dataclass(frozen=True)
class Edited:
    """How an edit in ``$EDITOR`` went.

    ``body``: the text read back (None: nothing to save). ``in_app``: edit in the
    app's editor instead. ``message``: what to tell the reviewer, if anything.
    """

    body: str | None = None
    in_app: bool = False
    message: str = ""
    severity: SeverityLevel = "information"
    timeout: float | None = None


def edit_externally(app: App[object], text: str, *, prefix: str) -> Edited:
    """Run the reviewer's editor on ``text`` with ``app`` suspended."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        return Edited(in_app=True, message="$EDITOR is not set: editing in the app.")
    if app.is_headless:
        return Edited(in_app=True)
    try:
        command = shlex.split(editor)
    except ValueError:
        return Edited(in_app=True, message="$EDITOR cannot be read (an unclosed quote?): editing in the app.",
                      severity="warning")
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".md")
    path = Path(name)
    keep = False  # a file we cannot read back holds the reviewer's text: not deleted
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            with app.suspend():
                subprocess.run([*command, str(path)], check=False)
        except SuspendNotSupported:
            return Edited(in_app=True)
        except OSError as exc:
            return Edited(in_app=True, message=f"Cannot run $EDITOR ({exc.strerror or exc}): editing in the app.",
                          severity="warning")
        try:
            return Edited(body=path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            keep = True
            return Edited(message=f"The edited note is not UTF-8 text, so nothing was saved; your text is kept "
                                  f"in {path}.", severity="error", timeout=20)
        except OSError as exc:
            return Edited(message=f"The edited note could not be read back ({exc.strerror or exc}); nothing "
                                  f"was saved.", severity="error", timeout=20)
    finally:
        if not keep:
            path.unlink(missing_ok=True)
