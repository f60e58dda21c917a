"""The fault matrix: every adapter against every fault an endpoint can throw.

Every adapter runs against the embedded demo endpoint (:mod:`store.demo`), which
serves warden-feed and X, the vendors' documented shapes (API Gateway, OpenAI:
:mod:`store.demo.vendors`) and three more for ``http-json`` sources (a Stripe-like
cursor, a GitHub-like Link header, an offset with a total: :mod:`store.demo.shapes`),
all through the same fault machinery. For each (adapter, fault) the table :data:`EXPECTED` says how the sync
must end: retried and complete (``ok``, the same figures as a sync without the
fault), a refused page (``partial``, the message naming the JSON path, source and
URL) or a stopped source (``failed``, the message saying why). Each case runs
twice: a first sync (nothing stored before the fault may be wrong, the refused
page stores no row) and a re-sync over a database already holding a clean sync
(everything stored before stays exactly as it was).

Waits are injected (``sleep=``), timeouts are fractions of a second, bodies are
refused after a few megabytes: the matrix runs in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from store.clock import fixed_clock
from store.config import SourceConfig, load_config
from store.db import connect
from store.demo import DEMO_TOKEN_ENV, DemoEndpoint
from store.demo.sources import SHAPES, VENDORS, http_json_config
from store.demo.vendors import PLAN
from store.demo.wire_faults import gzip_bomb
from store.sync.engine import sync_source
from store.sync.events import Retrying
from tui.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))
TOKEN = "fault-matrix-token-3b1f"
START = date(2022, 12, 20)


# --- adapters and faults ------------------------------------------------------------

# http-json/<shape>: an http-json source of that demo shape (store.demo.sources).
HTTP_JSON = ("http-json/stripe", "http-json/github", "http-json/offset")
ADAPTERS = ("warden-feed", "x-usage", "aws-usage-plan", "openai-usage") + HTTP_JSON
# Where each adapter's faults hit: a usage page (for the feed: one shard's).
TARGET = {
    "warden-feed": "@/feed/v1/usage,query=shard=1",
    "x-usage": "@/2/usage/tweets",
    "aws-usage-plan": f"@/usageplans/{PLAN}/usage",
    "openai-usage": "@/v1/organization/usage/completions",
    "http-json/stripe": "@/stripe/v1/usage_records",
    "http-json/github": "@/github/v3/usage",
    "http-json/offset": "@/offset/v1/usage",
}
# Each adapter's "you have used up your quota" answer (X's usage-capped problem,
# OpenAI's insufficient_quota; the feed and AWS have none: X's problem is to them
# a plain 429, retried).
CAPPED_BODY = {
    "openai-usage": json.dumps({"error": {"message": "You exceeded your current quota.",
                                          "type": "insufficient_quota", "code": "insufficient_quota"}}),
}

OK, PARTIAL, FAILED = "ok", "partial", "failed"
FAULTS: dict[str, tuple[str, str, str]] = {
    # fault: (spec without target, outcome, what the error says)
    "429 Retry-After seconds": ("429{t},retry_after=1", OK, ""),
    "429 Retry-After HTTP-date": ("429{t},retry_after_date=2", OK, ""),
    "429 x-rate-limit-reset": ("429{t},reset=2", OK, ""),
    "usage capped": ("usage_capped{t}", OK, ""),
    "401": ("401{t}", FAILED, "HTTP 401"),
    "403": ("403{t}", FAILED, "HTTP 403"),
    "404": ("404{t}", FAILED, "HTTP 404"),
    "500": ("500{t}", OK, ""),
    "502": ("502{t},times=2", OK, ""),
    "503": ("503{t},retry_after=0", OK, ""),
    "connection reset": ("reset{t}", OK, ""),
    "read-timeout stall": ("stall{t},seconds=2", OK, ""),
    "truncated body": ("truncated{t}", OK, ""),
    "non-JSON": ("non_json{t}", PARTIAL, "not valid JSON"),
    "wrong type": ("wrong_type{t}", PARTIAL, "expected a count"),
    "negative count": ("negative{t}", PARTIAL, "is negative"),
    "over-64-bit count": ("over64{t}", PARTIAL, "does not fit in 64 bits"),
    "duplicate rows": ("duplicate{t}", OK, ""),
    "repeating cursor": ("repeat_cursor{t},times=0", PARTIAL, "cursor does not advance"),
    "empty page with next": ("empty_page{t}", OK, ""),
    "endless empty pages, new cursors": ("empty_page{t},times=0", PARTIAL, "empty pages in a row"),
    "huge body (300 MB)": ("huge{t},size=300000000,chunked=1", PARTIAL, "max_body_bytes"),
    "huge body, Content-Length": ("huge{t},size=300000000", PARTIAL, "max_body_bytes"),
    "gzip bomb (1 GiB)": ("gzip_bomb{t},size=1073741824", PARTIAL, "max_body_bytes"),
    # JSON nested deeper than Python's recursion limit, as a page and as an error body.
    "deeply nested JSON": ("200{t},body=" + "[" * 100_000, PARTIAL, "nested too deeply"),
    "deeply nested error body": ("429{t},retry_after=0,body=" + "[" * 60_000, OK, ""),
}
# Where an adapter's vendor answers differently from the table above.
SPECIAL: dict[tuple[str, str], tuple[str, str]] = {
    ("x-usage", "usage capped"): (FAILED, "usage capped (HTTP 429)"),
    ("openai-usage", "usage capped"): (FAILED, "insufficient_quota (HTTP 429)"),
    # An API Gateway day list longer than the window asked for cannot be placed on days.
    ("aws-usage-plan", "duplicate rows"): (PARTIAL, "days of usage for a window of"),
    # OpenAI: a bucket repeated in one page would add its figures twice.
    ("openai-usage", "duplicate rows"): (PARTIAL, "appears twice"),
    # X's counts come as strings ("200"): a wrong type there is an object where a count belongs.
    ("x-usage", "wrong type"): (PARTIAL, "expected a count"),
    # Stripe's cursor is the last object's id: an empty page announcing more has none to give.
    ("http-json/stripe", "empty page with next"): (PARTIAL, "more pages announced without a next one"),
    ("http-json/stripe", "endless empty pages, new cursors"): (PARTIAL, "more pages announced without a next one"),
    # With a total, an empty page before it is refused (it would end the chain short).
    ("http-json/offset", "empty page with next"): (PARTIAL, "an empty page before the total was reached"),
    ("http-json/offset", "endless empty pages, new cursors"): (PARTIAL, "an empty page before the total"),
}
# X's usage endpoint is one request, not paginated: cursor faults do not apply;
# nor does a repeated cursor to an offset (the client advances it, by the rows it got).
NOT_APPLICABLE = {("x-usage", "repeating cursor"), ("x-usage", "empty page with next"),
                  ("x-usage", "endless empty pages, new cursors"), ("http-json/offset", "repeating cursor")}
RETRIED = {"deeply nested error body", "429 Retry-After seconds", "429 Retry-After HTTP-date", "429 x-rate-limit-reset", "500", "502",
           "503", "connection reset", "read-timeout stall", "truncated body"}

EXPECTED: dict[tuple[str, str], tuple[str, str]] = {
    (adapter, fault): SPECIAL.get((adapter, fault), (outcome, says))
    for adapter in ADAPTERS for fault, (_, outcome, says) in FAULTS.items()
    if (adapter, fault) not in NOT_APPLICABLE
}


def http_json_source(shape: str, endpoint: DemoEndpoint, *, limit: int = 40, **keys: Any) -> SourceConfig:
    """The demo's http-json configuration of ``shape``, read as a user's TOML file is."""
    template = {**SHAPES, **VENDORS}[shape]
    text = http_json_config(template, name="hj", url=endpoint.base_url, token_env=DEMO_TOKEN_ENV, limit=limit)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.toml"
        path.write_text(text)
        source = load_config(path).sources["hj"]
    for key, value in keys.items():
        setattr(source, key, value)
    return source


def source_for(adapter: str, endpoint: DemoEndpoint) -> SourceConfig:
    common: dict[str, Any] = dict(token_env=DEMO_TOKEN_ENV, start=START, timeout=1.0,
                                  max_body_bytes=2_000_000, max_attempts=4, max_retry_seconds=30)
    if adapter.startswith("http-json/"):
        return http_json_source(adapter.split("/", 1)[1], endpoint, **common)
    if adapter == "warden-feed":
        return SourceConfig("feed", adapter, endpoint.feed_url, options={"shards": 2, "limit": 40}, **common)
    if adapter == "x-usage":
        return SourceConfig("x", adapter, endpoint.x_url, options={"days": 12}, **common)
    if adapter == "aws-usage-plan":
        return SourceConfig("aws", adapter, endpoint.base_url, options={"usage_plan_id": PLAN, "limit": 2},
                            **common)
    return SourceConfig("oai", adapter, endpoint.base_url, options={"bucket_limit": 5}, **common)


def arm(endpoint: DemoEndpoint, adapter: str, fault: str) -> None:
    """Clear the endpoint's faults and set ``fault`` (fresh counters)."""
    endpoint.faults.clear()
    spec = FAULTS[fault][0].format(t=TARGET[adapter])
    if EXPECTED[(adapter, fault)][0] != OK and "times=" not in spec:
        # Every matching request meets it: a retry after a timeout on a loaded machine
        # must not get a clean page instead.
        spec += ",times=0"
    if fault == "usage capped" and adapter in CAPPED_BODY:
        endpoint.faults.add("status", code=429, body=CAPPED_BODY[adapter], path=TARGET[adapter][1:], times=0)
    else:
        endpoint.faults.add(spec)


def usage_of(db: Path) -> dict[tuple[str, str, str, str], int]:
    conn = sqlite3.connect(db)
    try:
        return {tuple(r[:4]): r[4] for r in conn.execute(  # type: ignore[misc]
            "SELECT source, app_id, day, metric, value FROM usage")}
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, TOKEN)
    monkeypatch.setenv("GITHUB_USER", "octo")   # the GitHub-like shape's basic auth


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, DemoEndpoint]]:
    gzip_bomb(1 << 30)  # built once (it takes longer than the sync's read timeout)
    # One server per adapter, so that a fault armed for one never meets another's requests.
    servers = {adapter: DemoEndpoint(consumers=6, env_faults=False).start() for adapter in ADAPTERS}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def clean(endpoints: dict[str, DemoEndpoint], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One fault-free sync per adapter: the reference figures."""
    os.environ.setdefault(DEMO_TOKEN_ENV, TOKEN)
    os.environ.setdefault("GITHUB_USER", "octo")
    out = {}
    for adapter in ADAPTERS:
        endpoints[adapter].faults.clear()
        db = tmp_path_factory.mktemp("clean") / f"{adapter}.db"
        result = sync_source(db, source_for(adapter, endpoints[adapter]), clock=CLOCK)
        assert result.status == "ok", (adapter, result.error)
        assert usage_of(db), adapter
        out[adapter] = db
    return out


def check_outcome(result: Any, adapter: str, fault: str, source: SourceConfig, waits: list[float],
                  events: list[Any]) -> None:
    outcome, says = EXPECTED[(adapter, fault)]
    assert result.status == outcome, (result.status, result.error)
    if outcome == OK:
        assert result.error is None
    else:
        error = result.error or ""
        assert says in error, error
        assert f"{source.name!r}" in error, error  # names the source
        assert source.url.split("//", 1)[1] in error, error  # and the URL
        assert TOKEN not in error
    if fault in RETRIED:
        assert waits, "expected a retry"
        assert all(0 <= w <= 3 for w in waits), waits
    retries = [e for e in events if isinstance(e, Retrying)]
    if outcome == FAILED:
        # Not retried. (Other pages may meet a read timeout on a loaded machine: only
        # a retry for the refusal itself counts.)
        status = says.split("HTTP ")[-1][:3]
        assert not [e for e in retries if f"HTTP {status}" in e.reason], retries
    if fault == "429 Retry-After seconds":
        assert [e.wait_s for e in retries if "HTTP 429" in e.reason] == [1.0], retries


CASES = [pytest.param(adapter, fault, id=f"{adapter}|{fault}") for (adapter, fault) in EXPECTED]


@pytest.mark.parametrize(("adapter", "fault"), CASES)
def test_fault_matrix(adapter: str, fault: str, endpoints: dict[str, DemoEndpoint], clean: dict[str, Path],
                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Endless empty pages are refused after MAX_EMPTY_PAGES (1,000); 50 keeps the case quick.
    monkeypatch.setattr("store.sync.engine.MAX_EMPTY_PAGES", 50)
    endpoint = endpoints[adapter]
    source = source_for(adapter, endpoint)
    reference = usage_of(clean[adapter])

    # 1. A first sync meeting the fault.
    arm(endpoint, adapter, fault)
    waits: list[float] = []
    first = tmp_path / "first.db"
    events: list[Any] = []
    result = sync_source(first, source, clock=CLOCK, sleep=waits.append, on_event=events.append)
    check_outcome(result, adapter, fault, source, waits, events)
    stored = usage_of(first)
    # Nothing stored is wrong: every figure is the reference figure.
    assert {k: v for k, v in stored.items() if reference.get(k) != v} == {}
    if EXPECTED[(adapter, fault)][0] == OK:
        assert stored == reference
    else:
        assert len(stored) < len(reference)  # the refused page's rows are not there
    conn = connect(first)
    try:
        pages = conn.execute("SELECT count(*) FROM sync_page WHERE error IS NOT NULL").fetchone()[0]
        # One refused page (a fault hitting every month's chain refuses one page of each).
        assert (pages == 0) if result.status == OK else (pages >= 1)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()

    # 2. A re-sync over a clean database meeting the same fault: what was stored stays.
    again = tmp_path / "again.db"
    shutil.copy(clean[adapter], again)
    arm(endpoint, adapter, fault)
    result = sync_source(again, source, clock=CLOCK, sleep=lambda s: None)
    assert result.status == EXPECTED[(adapter, fault)][0], result.error
    assert usage_of(again) == reference
    conn = connect(again)
    try:
        assert conn.execute("SELECT count(*) FROM usage_change").fetchone()[0] == 0
    finally:
        conn.close()
    endpoint.faults.clear()


def test_matrix_covers_every_adapter_and_fault() -> None:
    assert len(FAULTS) == 26 and len(ADAPTERS) == 7
    assert len(EXPECTED) == len(ADAPTERS) * len(FAULTS) - len(NOT_APPLICABLE) == 178


# --- memory under a huge body and a gzip bomb ------------------------------------------------

MEMORY_SCRIPT = textwrap.dedent("""
    import json, os, resource, sys, tracemalloc
    from datetime import date, datetime, timezone
    from store.clock import fixed_clock
    from store.config import SourceConfig, load_config
    from store.demo import DemoEndpoint
    from store.sync.engine import sync_source

    spec, db = sys.argv[1], sys.argv[2]
    os.environ["T"] = "memory-test-token"
    with DemoEndpoint(consumers=4, faults=[spec], env_faults=False) as endpoint:
        source = SourceConfig("feed", "warden-feed", endpoint.feed_url, token_env="T", start=date(2022, 12, 25),
                              max_body_bytes=8_000_000, options={"shards": 1})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        result = sync_source(db, source, clock=fixed_clock(datetime(2023, 1, 1, tzinfo=timezone.utc)),
                             sleep=lambda s: None)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"status": result.status, "error": result.error, "peak": peak,
                      "rss_growth_kb": after - before}))
""")


@pytest.mark.parametrize("spec", [
    "huge@/feed/v1/usage,size=400000000,chunked=1",
    "huge@/feed/v1/usage,size=400000000",
    "gzip_bomb@/feed/v1/usage,size=1073741824",
])
def test_huge_bodies_are_refused_with_memory_bounded_by_max_body_bytes(spec: str, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, spec, str(tmp_path / "m.db")], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\n{spec}: peak traced {report['peak'] / 1e6:.1f} MB, max RSS growth {report['rss_growth_kb'] / 1e3:.1f} MB")
    assert report["status"] == "partial" and "max_body_bytes" in report["error"]
    # max_body_bytes is 8 MB: the peak may be a few times that (chunks, join), never the body's size.
    assert report["peak"] < 40_000_000, report
    assert report["rss_growth_kb"] < 80_000, report


# --- exit codes through the command line ------------------------------------------------

def write_config(path: Path, endpoint: DemoEndpoint, extra: str = "") -> Path:
    path.write_text(textwrap.dedent(f"""
        [sources.feed]
        adapter = "warden-feed"
        url = "{endpoint.feed_url}"
        token_env = "{DEMO_TOKEN_ENV}"
        start = 2022-12-20
        shards = 2

        [sources.x]
        adapter = "x-usage"
        url = "{endpoint.x_url}"
        token_env = "{DEMO_TOKEN_ENV}"
        days = 12
        {extra}
    """))
    return path


def test_cli_usage_capped_exits_1_with_the_other_source_stored(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "w.db"
    with DemoEndpoint(consumers=4, faults=["usage_capped@/2/usage/tweets"], env_faults=False) as endpoint:
        config = write_config(tmp_path / "c.toml", endpoint)
        code = cli_main(["sync", "--config", str(config), "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "usage capped" in err and "warden: x: failed" in err
    conn = connect(db)
    try:
        by_source = dict(conn.execute("SELECT source, count(*) FROM usage GROUP BY source").fetchall())
    finally:
        conn.close()
    assert by_source.get("feed", 0) > 0 and "x" not in by_source


def test_cli_401_exits_1_and_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with DemoEndpoint(consumers=4, require_token="something-else", env_faults=False) as endpoint:
        config = write_config(tmp_path / "c.toml", endpoint)
        assert cli_main(["sync", "--config", str(config), "--db", str(tmp_path / "w.db")]) == 1
        assert "HTTP 401" in capsys.readouterr().err
        bad = write_config(tmp_path / "bad.toml", endpoint, extra="colour = 'blue'")
        assert cli_main(["sync", "--config", str(bad), "--db", str(tmp_path / "w.db")]) == 2
        err = capsys.readouterr().err
        assert "colour" in err and "Traceback" not in err
        assert cli_main(["sync", "--config", str(tmp_path / "missing.toml")]) == 2


# --- a body that trickles in ------------------------------------------------------------------

@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_trickling_body_cannot_hold_the_sync_past_its_deadline(adapter: str, endpoints: dict[str, DemoEndpoint],
                                                                  clean: dict[str, Path], tmp_path: Path) -> None:
    """Each piece arrives well within the read timeout, the whole takes 5 timeouts:
    the request times out after 4 timeouts (WHOLE_RESPONSE_TIMEOUTS), is retried, completes.
    (Pieces 0.5 s apart against a 2 s read timeout: margin for a loaded CI machine.)"""
    endpoint = endpoints[adapter]
    endpoint.faults.clear()
    endpoint.faults.add(f"drip{TARGET[adapter]},seconds=10")  # 20 pieces, 0.5 s apart
    source = source_for(adapter, endpoint)
    source.timeout = 2.0                                           # deadline 8 s
    waits: list[float] = []
    events: list[Any] = []
    result = sync_source(tmp_path / "w.db", source, clock=CLOCK, sleep=waits.append, on_event=events.append)
    endpoint.faults.clear()
    assert result.status == OK, (result.error, [e.as_line() for e in events])
    assert usage_of(tmp_path / "w.db") == usage_of(clean[adapter])
    assert any("timed out" in getattr(e, "reason", "") for e in events), events
