"""Hostile text everywhere it can enter: names, app names, reasons, evidence and
note bodies holding Rich/Textual markup (``[@click=app.quit]``), ANSI and OSC
escape sequences (OSC 52 writes the clipboard), HTML, spreadsheet formulas, path
separators, bidi overrides and very long strings.

Shown literally in the TUI (the visible characters, control characters as
visible pictures, no styling or action taken from them); escaped in every export;
never used as a path; never written raw to the terminal by the command line,
even when a remote server puts them into its error messages.
"""

from __future__ import annotations

import csv
import email
import email.policy
import html as html_lib
import io
import json
import re
from pathlib import Path

import pytest
from textual.content import Content

from store.config import NotesConfig
from store.db import connect, transaction
from store.demo import DEMO_TOKEN_ENV, DemoEndpoint
from store.export import export_notes
from store.notes import draft_note, save_body, set_note_status
from store.review import confirm_violation, open_manual_finding
from tests.test_tui_review import review_screen, settle
from tests.tui_data import CLOCK, seed_review_db
from tui.app import WardenApp
from tui.cli import main as cli_main
from tui.widgets.detail import DetailPane

pytestmark = pytest.mark.anyio

OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"
HOSTILE = {
    "markup": "[bold red]Evil[/] [@click=app.quit]quit[/] [link=file:///etc/passwd]x[/link]",
    "ansi": "\x1b[31mRED\x1b[0m\x1b[2J",
    "osc52": f"clip{OSC52}board",
    "html": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "formula": "=HYPERLINK(\"http://evil.example\",\"x\")",
    "path": "../../etc/passwd\\x:y",
    "rtl": "abc\u202eexe.gpj",
    "c1": "csi\x9b31m",
}
ALL = " ".join(HOSTILE.values())
LONG = "L" * 100_000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The review fixture, with hostile text in every field a reviewer sees."""
    path = seed_review_db(tmp_path / "hostile.db")
    conn = connect(path)
    try:
        with transaction(conn):
            conn.execute("UPDATE consumer SET legal_name = ?, notice_contact = ?, declared_use_case = ? "
                         "WHERE id = 'northwind-analytics'",
                         ("Northwind " + HOSTILE["markup"], "legal@x.example\r\nBcc: evil@x.example",
                          HOSTILE["html"]))
            conn.execute("UPDATE app SET name = ? WHERE consumer_id = 'northwind-analytics'",
                         (HOSTILE["osc52"] + HOSTILE["ansi"],))
            conn.execute("UPDATE consumer SET legal_name = ? WHERE id = 'consumer-000'", (LONG,))
        confirm_violation(conn, 1, reviewer="rev[bold]iewer[/]", severity="high", clock=CLOCK,
                          reason="reason " + HOSTILE["formula"] + " " + HOSTILE["rtl"] + " " + HOSTILE["c1"])
        open_manual_finding(conn, "northwind-analytics", category="restricted_use", severity="high",
                            evidence="evidence " + ALL, reviewer="alice", clock=CLOCK)
    finally:
        conn.close()
    return path


def screen_text(app: WardenApp) -> str:
    """What the terminal shows: the screenshot's text, entities decoded."""
    svg = app.export_screenshot()
    parts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return html_lib.unescape("".join(parts)).replace("\xa0", " ")


async def test_the_tui_shows_hostile_text_literally(db: Path) -> None:
    app = WardenApp(db_path=db, reviewer="alice", clock=CLOCK, mouse=False)
    async with app.run_test(size=(220, 80)) as pilot:
        await settle(pilot)
        screen = screen_text(app)
        detail = review_screen(app).query_one(DetailPane).text
        # The markup is there as characters (so it was not applied) ...
        for shown in (screen, detail):
            assert "[bold red]Evil[/]" in shown
            assert "[@click=app.quit]quit[/]" in shown
        assert "<script>alert(1)</script>" in detail
        assert "=HYPERLINK(" in detail and "rev[bold]iewer[/]" in detail
        # ... escape characters as visible pictures, never as themselves.
        assert "\u241b]52;c;cm0gLXJmIH4=\u2407" in detail      # ␛]52;...␇
        assert "\u241b[31mRED" in detail
        assert "\\u202e" in detail and "\\u009b" in detail
        for shown in (screen, detail):
            assert CONTROL.search(shown) is None, repr(CONTROL.search(shown))
        # Moving over the very long name neither hangs nor breaks the screen.
        await pilot.press("G")
        await settle(pilot)
        assert app.is_running


async def test_the_note_editor_shows_a_hostile_body_literally(db: Path, tmp_path: Path) -> None:
    conn = connect(db)
    try:
        note = draft_note(conn, "northwind-analytics", reviewer="alice", clock=CLOCK, config=NotesConfig())
        save_body(conn, note.id, "# Note\n\n" + ALL + "\n", clock=CLOCK)
    finally:
        conn.close()
    app = WardenApp(db_path=db, reviewer="alice", clock=CLOCK, mouse=False)
    async with app.run_test(size=(220, 60)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        shown = screen_text(app)
        assert "[bold red]Evil[/]" in shown and "<script>alert(1)</script>" in shown
        assert CONTROL.search(shown) is None, repr(CONTROL.search(shown))
        assert app.is_running


def _is_inert_html(document: str) -> None:
    lowered = document.lower()
    for bad in ("<script", "<img", "<b onclick", "\x1b", "\u202e"):
        assert bad not in lowered, bad
    # Attributes only count inside a real tag; escaped text (&lt;img ... onerror=) is fine.
    assert re.search(r"<[a-z][^>]*\bon[a-z]+\s*=", lowered) is None
    assert re.search(r"""href\s*=\s*["']?\s*javascript:""", lowered) is None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("fmt", ["md", "html", "eml", "json", "csv"])
def test_exports_escape_what_reviewers_typed(db: Path, tmp_path: Path, fmt: str) -> None:
    conn = connect(db)
    try:
        with transaction(conn):
            conn.execute("INSERT INTO consumer (id, legal_name, notice_contact, tier_id) VALUES (?, ?, ?, 'standard')",
                         ("../../pwn/" + "x" * 300, ALL, "a@b.example"))
        note = draft_note(conn, "northwind-analytics", reviewer="alice", clock=CLOCK, config=NotesConfig())
        body = (note.body + "\n\n" + ALL + "\n\n[click me](javascript:alert(3))\n\n<b onclick=x>raw html</b>\n")
        save_body(conn, note.id, body, clock=CLOCK)
        set_note_status(conn, note.id, "ready", reviewer="alice", clock=CLOCK)
        pwn = draft_note(conn, "../../pwn/" + "x" * 300, reviewer="alice", clock=CLOCK, config=NotesConfig())
        set_note_status(conn, pwn.id, "ready", reviewer="alice", clock=CLOCK)
        out = tmp_path / "exports"
        result = export_notes(conn, fmt=fmt, out_dir=out, reviewer="alice", clock=CLOCK, config=NotesConfig())
    finally:
        conn.close()
    # Never a path: every file is directly in the folder, nothing was written elsewhere.
    assert all(p.parent == out for p in out.rglob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "hostile.db"] or \
        set(p.name for p in tmp_path.iterdir()) <= {"exports", "hostile.db", "hostile.db-wal", "hostile.db-shm",
                                                   "hostile.db.sync-feed.lock"}
    assert len(result.files) >= (1 if fmt == "csv" else 2)
    for path in out.iterdir():
        data = path.read_bytes().decode("utf-8")
        assert CONTROL.search(data.replace("\r\n", "\n")) is None, (path.name, repr(CONTROL.search(data)))
        if fmt == "html" and path.suffix == ".html":
            _is_inert_html(data)
            assert "&lt;script&gt;" in data
        elif fmt == "eml" and path.suffix == ".eml":
            message = email.message_from_string(data, policy=email.policy.default)
            assert message["Bcc"] is None
            for part in message.walk():
                if part.get_content_type() == "text/html":
                    _is_inert_html(part.get_content())
        elif fmt == "json" and path.suffix == ".json" and "manifest" not in path.name:
            bundle = json.loads(data)
            assert any(OSC52 in text for text in _strings(bundle))  # the data itself is kept exactly, as JSON
        elif fmt == "csv" and path.suffix == ".csv":
            for row in list(csv.reader(io.StringIO(data, newline="")))[1:]:
                for cell in row:
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_the_command_line_never_prints_a_servers_escape_sequences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, "hostile-test-token")
    message = f"bad {OSC52} {HOSTILE['ansi']} {HOSTILE['markup']} {HOSTILE['rtl']} {HOSTILE['c1']}"
    body = json.dumps({"error": {"code": "x", "message": message}, "title": message, "detail": message})
    with DemoEndpoint(consumers=4, env_faults=False) as endpoint:
        endpoint.faults.add("status", code=429, body=body, path="/feed/v1/tiers", retry_after=0)
        endpoint.faults.add("status", code=403, body=body, path="/feed/v1/usage", times=0)
        endpoint.faults.add("status", code=401, body=body, path="/2/usage/tweets", times=0)
        config = tmp_path / "c.toml"
        config.write_text(f'[sources.feed]\nadapter = "warden-feed"\nurl = "{endpoint.feed_url}"\n'
                          f'token_env = "{DEMO_TOKEN_ENV}"\nstart = 2022-12-20\nshards = 1\n'
                          f'max_retry_seconds = 5\n'
                          f'[sources.x]\nadapter = "x-usage"\nurl = "{endpoint.x_url}"\n'
                          f'token_env = "{DEMO_TOKEN_ENV}"\ndays = 5\n')
        # --verbose: every event's line (the default lines are a subset of them).
        assert cli_main(["sync", "--verbose", "--config", str(config), "--db", str(tmp_path / "w.db")]) == 1
    err = capsys.readouterr().err
    assert "HTTP 403" in err and "HTTP 401" in err and "rate limited" in err
    assert "[bold red]Evil[/]" in err           # the server's words are there, as text
    assert CONTROL.search(err) is None, repr(err[max(0, CONTROL.search(err).start() - 40):][:80])
    conn = connect(tmp_path / "w.db")
    try:
        stored = [r[0] for r in conn.execute("SELECT error FROM sync_page WHERE error IS NOT NULL UNION ALL "
                                             "SELECT error FROM sync_run WHERE error IS NOT NULL")]
    finally:
        conn.close()
    assert stored and all(CONTROL.search(e) is None for e in stored)


async def test_hostile_text_in_a_filter_error_is_shown_literally(db: Path) -> None:
    """A filter the reviewer typed (or pasted) comes back in the error under it:
    as characters, not as markup that styles, links or runs an action."""
    app = WardenApp(db_path=db, reviewer="alice", clock=CLOCK, mouse=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await settle(pilot)
        await pilot.press(*"[@click=app.quit]x[/]:[bold]y")
        await pilot.press("enter")
        await settle(pilot)
        assert app.is_running
        problem = app.screen.query_one("#problem").render()
        assert isinstance(problem, Content) and not problem.spans      # no style, link or action
        assert "Bad filter" in problem.plain and "[@click=app.quit]x[/]" in problem.plain
