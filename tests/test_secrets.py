"""A canary token set in the environment is found nowhere afterwards: not in the
database (nor its WAL), not in any line the command line prints (text or JSON),
not in any export, not in any error message, even when a hostile server echoes
the token back in its error bodies and in its data. TLS is verified unless a
source explicitly turns it off, and then every run says so."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from store.clock import fixed_clock
from store.config import SourceConfig, load_config
from store.db import connect
from store.demo import CASE_ID, DEMO_TOKEN_ENV, DemoEndpoint
from store.demo.wire import Answer
from store.notes import draft_note, set_note_status
from store.review import confirm_violation
from store.sync.engine import sync_source
from tui.cli import main as cli_main

CANARY = "canary-7f3e9a1c5b2d4e6f8a0b1c2d3e4f5a6b"
CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))


class EchoingEndpoint(DemoEndpoint):
    """A hostile demo endpoint: it puts the bearer token it receives into its
    answers (an X count, the detail of errors)."""

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> Answer:
        token = (authorization or "").removeprefix("Bearer ")
        if path == "/2/usage/tweets":
            body = {"data": {"daily_client_app_usage": [
                {"client_app_id": "1", "usage": [{"date": "2022-12-30T00:00:00.000Z", "usage": token}]}]}}
            return Answer(200, json.dumps(body).encode())
        return super().answer(path, query, authorization)


def hostile_faults(endpoint: DemoEndpoint) -> None:
    echo = json.dumps({"error": {"code": "nope", "message": f"token {CANARY} is not valid here"},
                       "title": f"bad {CANARY}", "detail": f"your token {CANARY} was refused"})
    # A retried 429 whose body quotes the token (the Retrying event shows the reason) ...
    endpoint.faults.add("status", code=429, retry_after=0, body=echo, path="/feed/v1/consumers")
    # ... and a 401 on one shard's usage that does the same: the source stops.
    endpoint.faults.add("status", code=401, body=echo, path="/feed/v1/usage", query={"shard": "1"}, times=0)


def config_text(endpoint: DemoEndpoint, extra: str = "") -> str:
    return textwrap.dedent(f"""
        [sources.feed]
        adapter = "warden-feed"
        url = "{endpoint.feed_url}"
        token_env = "{DEMO_TOKEN_ENV}"
        start = 2022-12-01
        shards = 2
        {extra}

        [sources.x]
        adapter = "x-usage"
        url = "{endpoint.x_url}"
        token_env = "{DEMO_TOKEN_ENV}"
        days = 7
    """)


def files_under(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.is_file())


def test_the_canary_token_is_found_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, CANARY)
    db = tmp_path / "data" / "w.db"
    seen: list[str] = []
    with EchoingEndpoint(consumers=8, env_faults=False) as endpoint:
        config = tmp_path / "c.toml"
        config.write_text(config_text(endpoint))
        hostile_faults(endpoint)
        assert cli_main(["sync", "--verbose", "--config", str(config), "--db", str(db)]) == 1
        seen.append(capsys.readouterr().err)
        hostile_faults(endpoint)
        assert cli_main(["sync", "--json", "--config", str(config), "--db", str(db)]) == 1
        seen.append(capsys.readouterr().err)
        hostile_faults(endpoint)
        assert cli_main(["sync", "--config", str(config), "--db", str(db)]) == 1   # the default lines
        seen.append(capsys.readouterr().err)
        # A source-level call: the results' messages.
        hostile_faults(endpoint)
        result = sync_source(db, load_config(config).sources["feed"], sleep=lambda s: None)
        seen.append(repr(result))
    text, lines = seen[0], seen[1]
    # The hostile answers did reach the messages (so the test can fail) ...
    assert "HTTP 401" in text and "retrying" in text and "sync x: partial" in text, text
    assert all(json.loads(line) for line in lines.splitlines())
    assert "HTTP 401" in lines
    # ... but never the token.
    for out in seen:
        assert CANARY not in out, out
        assert CANARY[:12] not in out, out

    # Reviewers work, a note is drafted and exported in every format.
    conn = connect(db)
    try:
        finding = conn.execute("SELECT id FROM finding WHERE consumer_id = ? ORDER BY id", (CASE_ID,)).fetchone()
        if finding is not None:
            confirm_violation(conn, finding[0], reviewer="alice", severity="high", reason="over the cap",
                              clock=CLOCK)
        consumer = CASE_ID if finding is not None else conn.execute("SELECT id FROM consumer LIMIT 1").fetchone()[0]
        note = draft_note(conn, consumer, reviewer="alice", clock=CLOCK, config=load_config(config).notes)
        set_note_status(conn, note.id, "ready", reviewer="alice", clock=CLOCK)
        errors = [r[0] for r in conn.execute(
            "SELECT error FROM sync_page WHERE error IS NOT NULL UNION ALL "
            "SELECT error FROM sync_run WHERE error IS NOT NULL")]
    finally:
        conn.close()
    assert errors
    out = tmp_path / "exports"
    for fmt in ("md", "html", "eml", "json", "csv"):
        assert cli_main(["export", "--config", str(config), "--db", str(db), "--format", fmt,
                         "--out", str(out / fmt), "--reviewer", "alice"]) == 0
    assert cli_main(["verify", "--config", str(config), "--db", str(db)]) == 0
    seen.append(capsys.readouterr().err)
    assert CANARY not in seen[-1]
    exported = list(files_under(out))
    assert len(exported) >= 10  # a note and a manifest per format

    # Every byte written: database, WAL/SHM, lock files, exports.
    written = list(files_under(tmp_path / "data")) + exported
    assert any(p.name == "w.db" for p in written)
    for path in written:
        data = path.read_bytes()
        assert CANARY.encode() not in data, path
        assert CANARY[:12].encode() not in data, path


# --- TLS ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def https_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server on loopback with a self-signed certificate, answering X's shape."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            # Yesterday, as X would answer "the last days" (the command line syncs on the real clock).
            yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
            body = json.dumps({"data": {"daily_client_app_usage": [
                {"client_app_id": "9", "usage": [{"date": f"{yesterday}T00:00:00.000Z", "usage": "5"}]}]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_verified_by_default(https_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 7: a certificate the verifier refuses is named as such, with the
    verifier's reason, and ends the source at once: not retried as a connection
    failure (six attempts over half a minute)."""
    monkeypatch.setenv("X_TOKEN", CANARY)
    config = tmp_path / "c.toml"
    config.write_text(f'[sources.x]\nadapter = "x-usage"\nurl = "{https_url}"\ntoken_env = "X_TOKEN"\n')
    source = load_config(config).sources["x"]
    assert source.verify_tls is True and source.max_attempts == 6
    waits: list[float] = []
    events: list[object] = []
    result = sync_source(tmp_path / "w.db", source, clock=CLOCK, sleep=waits.append, on_event=events.append)
    assert result.status == "failed", result
    error = result.error or ""
    assert "TLS certificate not accepted" in error and "not retried" in error, error
    assert re.search(r"self.signed certificate", error), error     # the verifier's reason (OpenSSL's words)
    assert "ConnectError" not in error
    assert waits == [] and not [e for e in events if type(e).__name__ == "Retrying"]
    assert CANARY not in error
    conn = connect(tmp_path / "w.db")
    try:
        assert conn.execute("SELECT count(*) FROM usage").fetchone()[0] == 0
    finally:
        conn.close()


def test_skipping_tls_verification_warns_on_every_run(https_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("X_TOKEN", CANARY)
    config = tmp_path / "c.toml"
    config.write_text(f'[sources.x]\nadapter = "x-usage"\nurl = "{https_url}"\ntoken_env = "X_TOKEN"\n'
                      "insecure_skip_tls_verify = true\n")
    assert load_config(config).sources["x"].verify_tls is False
    for flags in ([], [], ["--json"]):
        assert cli_main(["sync", *flags, "--config", str(config), "--db", str(tmp_path / "w.db")]) == 0
        err = capsys.readouterr().err
        assert "NOT verified" in err or '"tls_verified": false' in err, err
        if flags:
            warned = [json.loads(line) for line in err.splitlines() if "tls" in line.lower()]
            assert any(not e.get("tls_verified", True) for e in warned)
    conn = connect(tmp_path / "w.db")
    try:
        assert conn.execute("SELECT sum(value) FROM usage").fetchone()[0] == 5
    finally:
        conn.close()


def test_a_plain_source_config_defaults_to_verified_tls() -> None:
    assert SourceConfig("s", "x-usage", "https://api.x.com").verify_tls is True


# --- $EDITOR ---------------------------------------------------------------------------

EDITOR_SCRIPT = """
import json, os, stat, sys
path = sys.argv[-1]
with open(sys.argv[1], "w") as record:
    json.dump({"argv": sys.argv[2:], "mode": stat.S_IMODE(os.stat(path).st_mode)}, record)
with open(path, "a", encoding="utf-8") as note:
    note.write("\\nEDITED IN $EDITOR\\n")
"""


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_editor_is_split_with_shlex_never_run_through_a_shell(tmp_path: Path, anyio_backend: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import sys

    from tests.test_tui_review import press, settle
    from tests.tui_data import CLOCK as TUI_CLOCK, seed_review_db
    from tui.app import WardenApp

    db = seed_review_db(tmp_path / "review.db")
    script, record, pwned = tmp_path / "editor.py", tmp_path / "record.json", tmp_path / "pwned"
    script.write_text(EDITOR_SCRIPT)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script} {record} --wait ; touch {pwned} $(touch {pwned})")
    # Pilot runs headless (no terminal to hand over): pretend there is one.
    monkeypatch.setattr(WardenApp, "is_headless", property(lambda self: False))
    monkeypatch.setattr(WardenApp, "suspend", lambda self: contextlib.nullcontext())
    app = WardenApp(db_path=db, reviewer="alice", clock=TUI_CLOCK, mouse=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "e")
        await settle(pilot)
    assert not pwned.exists(), "EDITOR went through a shell"
    seen = json.loads(record.read_text())
    assert seen["argv"][:6] == ["--wait", ";", "touch", str(pwned), "$(touch", f"{pwned})"]
    assert seen["mode"] == 0o600                      # the draft handed to the editor is private
    assert not Path(seen["argv"][-1]).exists()        # and removed afterwards
    conn = connect(db)
    try:
        body = conn.execute("SELECT body FROM note ORDER BY id DESC LIMIT 1").fetchone()[0]
    finally:
        conn.close()
    assert body.rstrip().endswith("EDITED IN $EDITOR")


@pytest.mark.parametrize("query", ["access_token", "api_key", "X-Amz-Signature", "token"])
def test_a_credential_in_the_url_is_refused_without_showing_it(tmp_path: Path, query: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[sources.s]\nadapter = "warden-feed"\nurl = "https://usage.example.com/feed/v1?page=1&'
                      f'{query}={CANARY}"\ntoken_env = "T"\n')
    assert cli_main(["sync", "--config", str(config), "--db", str(tmp_path / "w.db")]) == 2
    err = capsys.readouterr().err
    assert "credential" in err and query in err and CANARY not in err
    assert not (tmp_path / "w.db").exists() or CANARY.encode() not in (tmp_path / "w.db").read_bytes()


class RedirectingEndpoint(DemoEndpoint):
    """Sends every request elsewhere (a compromised or misconfigured endpoint)."""

    target = ""

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> Answer:
        return Answer(302, b"", {"Location": self.target + path})


def test_a_redirect_is_not_followed_so_the_token_goes_nowhere_else(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, CANARY)
    with DemoEndpoint(consumers=2, env_faults=False) as elsewhere, \
            RedirectingEndpoint(consumers=2, env_faults=False) as endpoint:
        endpoint.target = elsewhere.base_url
        source = SourceConfig("feed", "warden-feed", endpoint.feed_url, token_env=DEMO_TOKEN_ENV,
                              options={"shards": 1})
        result = sync_source(tmp_path / "w.db", source, clock=CLOCK, sleep=lambda s: None)
        assert elsewhere.requests() == 0
    assert result.status == "failed" and "HTTP 302" in (result.error or "")
    assert CANARY not in (result.error or "")


LATIN1_EDITOR = """
import sys
with open(sys.argv[-1], "ab") as note:
    note.write(b"\\ncaf\\xe9, saved as Latin-1\\n")
"""


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("editor", ["latin-1", "missing", "unclosed quote"])
async def test_an_editor_that_fails_never_crashes_the_app_nor_loses_text(tmp_path: Path, anyio_backend: str,
                                                                          editor: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import sys

    from tests.test_tui_review import press, settle
    from tests.tui_data import CLOCK as TUI_CLOCK, seed_review_db, shown_notifications
    from tui.app import WardenApp
    from tui.screens.note import NoteEditor

    db = seed_review_db(tmp_path / "review.db")
    script = tmp_path / "editor.py"
    script.write_text(LATIN1_EDITOR)
    command = {"latin-1": f"{sys.executable} {script}", "missing": str(tmp_path / "no-such-editor"),
               "unclosed quote": "vim '-c set nu"}[editor]
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", command)
    monkeypatch.setattr(WardenApp, "is_headless", property(lambda self: False))
    monkeypatch.setattr(WardenApp, "suspend", lambda self: contextlib.nullcontext())
    app = WardenApp(db_path=db, reviewer="alice", clock=TUI_CLOCK, mouse=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "e")
        await settle(pilot)
        assert app.is_running
        notes = [n.message for n in shown_notifications(app)]
        if editor == "latin-1":
            kept = [m for m in notes if "not UTF-8" in m]
            assert kept, notes
            path = Path(kept[0].rsplit(" kept in ", 1)[1].rstrip("."))
            assert path.read_bytes().endswith(b"caf\xe9, saved as Latin-1\n")   # the text is not lost
            path.unlink()
        else:
            assert isinstance(app.screen, NoteEditor), notes              # falls back to the in-app editor
            assert any("$EDITOR" in m for m in notes), notes


# --- every way http-json sends a token ------------------------------------------------------

class EchoingShapes(DemoEndpoint):
    """A hostile demo endpoint for http-json sources: whatever way the credential
    came (bearer, header, basic, query), it echoes it in a count, in the next
    page's cursor and in its error bodies."""

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> Answer:
        token = (authorization or "").removeprefix("Bearer ")
        answer = super().answer(path, query, authorization)
        if path.startswith("/stripe/") and answer.status == 200:
            body = json.loads(answer.body)
            if body["data"]:
                body["data"][0]["usage"]["records"] = token                  # a count
                body["data"][-1]["id"] = f"ur_{token}"                         # the next cursor
            return Answer(200, json.dumps(body).encode(), family=answer.family)
        if path.startswith("/github/") and answer.status == 200:
            headers = {"Link": f'<{self.base_url}/github/v3/usage?page=2&token={token}>; rel="next"'}
            return Answer(200, answer.body, headers, family=answer.family)
        return answer


def test_the_canary_is_found_nowhere_whatever_way_http_json_sends_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from store.demo.sources import SHAPES, VENDORS, http_json_config

    monkeypatch.setenv("HJ_TOKEN", CANARY)
    monkeypatch.setenv("GITHUB_USER", "octo")
    db = tmp_path / "data" / "w.db"
    with EchoingShapes(consumers=4, env_faults=False, require_token=CANARY) as endpoint:
        parts = []
        for name, template in (("stripe", SHAPES["stripe"]), ("github", SHAPES["github"]),
                               ("offset", SHAPES["offset"]), ("openai", VENDORS["openai-usage"])):
            text = http_json_config(template, name=name, url=endpoint.base_url, token_env="HJ_TOKEN", limit=5)
            parts.append(text + "start = 2022-12-25\nmax_retry_seconds = 5\n")
        config = tmp_path / "c.toml"
        config.write_text("\n".join(parts))
        echo = json.dumps({"error": {"message": f"token {CANARY} refused"}, "message": f"bad {CANARY}"})
        seen = []
        for flags in (["--verbose"], ["--json"], []):
            endpoint.faults.clear()
            endpoint.faults.add("status", code=429, retry_after=0, body=echo, path="/offset/v1/usage")
            endpoint.faults.add("status", code=401, body=echo, path="/v1/organization/usage", times=0)
            assert cli_main(["sync", *flags, "--config", str(config), "--db", str(db)]) == 1
            seen.append(capsys.readouterr().err)
    text = seen[0]
    # Each hostile answer reached the messages (so the test can fail) ...
    assert "sync stripe: partial" in text and "carries the token" in text, text
    assert "sync github: partial" in text and "sync offset: ok" in text and "retrying" in text, text
    assert "sync openai: failed" in text and "HTTP 401" in text, text
    # ... and the token is nowhere: not in any line, not in any byte written.
    for out in seen:
        assert CANARY not in out and CANARY[:12] not in out, out
    written = list(files_under(tmp_path / "data"))
    assert any(p.name == "w.db" for p in written)
    for path in written:
        assert CANARY[:12].encode() not in path.read_bytes(), path
