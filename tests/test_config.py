"""Configuration: the TOML format, its errors, the roster, and applying it to a database."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from datetime import date
from pathlib import Path

import pytest

from store.config import Config, load_config, token_for
from store.consumers import AppliedConfig, apply_config, auto_consumer_id, own_apps
from store.db import connect, transaction
from store.errors import ConfigError
from store.roster import iter_roster

FULL = """
[warden]
database = "data/warden.db"
reviewer = "alice"

[notes]
sender = "Compliance <compliance@example.com>"
organisation = "Example Platform Inc."
deadline_days = 21
template_dir = "templates"

[sources.feed]
adapter = "warden-feed"
url = "http://127.0.0.1:8080/feed/v1"
token_env = "FEED_TOKEN"
start = 2022-01-01
lookback_days = 14
concurrency = 8
timeout = 10
max_body_bytes = 1_000_000
max_attempts = 3
max_retry_seconds = 60.5
shards = 16

[sources.x]
adapter = "x-usage"
url = "https://api.x.com"
token_env = "X_BEARER_TOKEN"
days = 30
insecure_skip_tls_verify = true

[sources.gw]
adapter = "aws-usage-plan"
url = "https://apigateway.eu-west-1.amazonaws.com"
usage_plan_id = "abc123"

[sources.oai]
adapter = "openai-usage"
url = "https://api.openai.com"
token_env = "OPENAI_ADMIN_KEY"
bucket_limit = 7
project_ids = ["proj_1"]

[tiers.basic]
name = "Basic"
agreement_version = "2023-04"
allowed_endpoints = ["/2/tweets/*"]
[tiers.basic.limits]
calls_per_day = 500_000
records_per_month = 50_000_000
input_tokens_per_year = 9_000_000_000
[tiers.basic.clauses]
volume_cap = "§ 2.3 Usage limits"
rate_limit = "§ 2.4 Rate limits"

[roster]
file = "roster.csv"

[[consumers]]
id = "northwind-analytics"
legal_name = "Northwind Analytics Ltd"
notice_contact = "legal@northwind.example"
tier = "basic"
declared_use_case = "Brand analytics"
government_end_users = ["City of Example"]
apps = ["x:29183745", "feed:app-17"]

[keymap]
confirm = "V"
"""

ROSTER_CSV = """id,legal_name,notice_contact,tier,agreement_version,declared_use_case,government_end_users,apps
contoso,Contoso Ltd,legal@contoso.example,basic,2023-04,,,"x:111;feed:app-2"
fabrikam,"Fabrikam, Inc.",,basic,,Research,,
"""


def write(tmp_path: Path, text: str, roster: str | None = ROSTER_CSV, name: str = "warden.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    if roster is not None:
        (tmp_path / "roster.csv").write_text(roster, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text, **kwargs))  # type: ignore[arg-type]
    return str(caught.value)


SOURCE = '[sources.feed]\nadapter = "warden-feed"\nurl = "https://feed.example.com/v1"\n'


# --- reading ----------------------------------------------------------------------

def test_full_example_is_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config.database == tmp_path / "data" / "warden.db"
    assert config.reviewer == "alice"
    assert config.notes.template_dir == tmp_path / "templates" and config.notes.deadline_days == 21
    feed = config.sources["feed"]
    assert (feed.adapter, feed.token_env, feed.start, feed.lookback_days, feed.concurrency) == (
        "warden-feed", "FEED_TOKEN", date(2022, 1, 1), 14, 8)
    assert (feed.timeout, feed.max_body_bytes, feed.max_attempts, feed.max_retry_seconds) == (10.0, 1_000_000, 3, 60.5)
    assert feed.options == {"shards": 16} and feed.verify_tls
    assert config.sources["x"].options == {"days": 30} and not config.sources["x"].verify_tls
    assert config.sources["gw"].options == {"usage_plan_id": "abc123"}
    assert config.sources["oai"].options == {"bucket_limit": 7, "project_ids": ["proj_1"]}
    basic = config.tiers["basic"]
    assert basic.limits == [("calls", "day", 500_000), ("records", "month", 50_000_000),
                            ("input_tokens", "year", 9_000_000_000)]
    assert basic.clauses == {"volume_cap": "§ 2.3 Usage limits", "rate_limit": "§ 2.4 Rate limits"}
    assert basic.allowed_endpoints == ["/2/tweets/*"]
    [northwind] = config.consumers
    assert northwind.apps == [("x", "29183745"), ("feed", "app-17")]
    assert northwind.government_end_users == "City of Example"
    assert config.roster_file == tmp_path / "roster.csv"
    assert config.keymap == {"confirm": "V"}


def test_empty_file_is_an_empty_configuration(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "", roster=None))
    assert config.sources == {} and config.consumers == [] and config.roster_file is None


@pytest.mark.parametrize(("text", "expected"), [
    ("[sourcs.feed]\n", "top level: unknown key 'sourcs'; did you mean 'sources'?"),
    (SOURCE + "tokn_env = 'X'\n", "[sources.feed]: unknown key 'tokn_env'; did you mean 'token_env'?"),
    (SOURCE + "days = 3\n", "[sources.feed]: unknown key 'days'"),  # an x-usage option on a feed
    ("[warden]\ndatabse = 'x'\n", "[warden]: unknown key 'databse'; did you mean 'database'?"),
    ("[notes]\ndeadline = 3\n", "[notes]: unknown key 'deadline'; did you mean 'deadline_days'?"),
    ("[tiers.t]\nlimit = {}\n", "[tiers.t]: unknown key 'limit'; did you mean 'limits'?"),
    ("[tiers.t.clauses]\nvolume = 'x'\n", "[tiers.t.clauses]: unknown key 'volume'; did you mean 'volume_cap'?"),
    ("[roster]\npath = 'r.csv'\n", "[roster]: unknown key 'path'"),
    ("[[consumers]]\nid = 'a'\nlegal_name = 'A'\nname = 'x'\n", "[[consumers]] #1: unknown key 'name'"),
])
def test_unknown_keys_name_the_key_the_table_and_the_closest_known_key(tmp_path: Path, text: str,
                                                                       expected: str) -> None:
    assert expected in error_of(tmp_path, text, roster=None)


@pytest.mark.parametrize(("text", "expected"), [
    (SOURCE + "lookback_days = '7'\n", "'lookback_days' must be an integer, got a string"),
    (SOURCE + "timeout = 0\n", "'timeout' must be > 0"),
    (SOURCE + "concurrency = 0\n", "'concurrency' must be between 1 and 64, got 0"),
    (SOURCE + "insecure_skip_tls_verify = 'yes'\n", "must be true or false, got a string"),
    (SOURCE + "shards = 1000\n", "'shards' must be between 1 and 256"),
    (SOURCE + "start = 2022-13-01\n", "not valid TOML"),
    (SOURCE + "start = '2022-02-30'\n", "'start' is not a date (YYYY-MM-DD)"),
    (SOURCE + "start = 2022-01-01T00:00:00Z\n", "'start' must be a date such as 2022-01-01, got a date-time"),
    ('[sources.feed]\nadapter = "warden-feed"\n', "[sources.feed]: missing required key 'url'"),
    ('[sources.feed]\nurl = "https://a.example"\n', "missing required key 'adapter'"),
    ('[sources.feed]\nadapter = "x-usag"\nurl = "https://a.example"\n',
     "unknown adapter 'x-usag' (known: x-usage, aws-usage-plan, openai-usage, warden-feed, http-json); did you mean 'x-usage'?"),
    ('[sources.gw]\nadapter = "aws-usage-plan"\nurl = "https://a.example"\n',
     "missing required key 'usage_plan_id' for adapter 'aws-usage-plan'"),
    ("[tiers.t.limits]\ncalls_per_week = 5\n", "limit key 'calls_per_week' must be <metric>_per_day"),
    ("[tiers.t.limits]\ncalls_per_day = 0\n", "'calls_per_day' must be >= 1, got 0"),
    ("[tiers.t.limits]\ncalls_per_day = 1.5\n", "'calls_per_day' must be an integer, got a float"),
    ("[tiers.t]\nallowed_endpoints = '/2/*'\n", "'allowed_endpoints' must be a list of strings"),
    ("[notes]\ndeadline_days = 0\n", "'deadline_days' must be between 1 and 365"),
    ("[keymap]\nconfirm = 3\n", "[keymap]: 'confirm' must be a non-empty string of keys"),
    ("consumers = 3\n", "'consumers' must be an array of tables"),
    ("sources = 3\n", "'sources' must be a table"),
    ("[roster]\nfile = 'r.xlsx'\n", "'file' must be a .csv or .json file"),
    ("[roster]\nfile = 'missing.csv'\n", "roster file not found"),
])
def test_wrong_types_and_values(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text, roster=None)
    assert expected in message and str(tmp_path / "warden.toml") in message


# Each adapter's whole-number options and their documented ranges (config.py's
# docstring): the configuration and the adapter itself accept the bounds and
# refuse one past them, with the same message.
OPTION_RANGES = [
    ("x-usage", "days", 1, 90),
    ("aws-usage-plan", "limit", 1, 1000),
    ("openai-usage", "bucket_limit", 1, 31),
    ("warden-feed", "shards", 1, 256),
    ("warden-feed", "limit", 1, 1_000_000),
]


@pytest.mark.parametrize(("adapter", "key", "low", "high"), OPTION_RANGES)
def test_adapter_options_are_checked_on_their_bounds_by_config_and_adapter_alike(
        tmp_path: Path, adapter: str, key: str, low: int, high: int) -> None:
    from store.config import SourceConfig
    from store.sync.adapters import adapter_for

    head = f'[sources.s]\nadapter = "{adapter}"\nurl = "https://a.example"\nusage_plan_id = "p1"\ntoken_env = "T"\n'
    if adapter != "aws-usage-plan":
        head = head.replace('usage_plan_id = "p1"\n', "")
    for value in (low, high):
        source = load_config(write(tmp_path, head + f"{key} = {value}\n", roster=None)).sources["s"]
        assert source.options[key] == value
        assert getattr(adapter_for(source), "source").options[key] == value
    for value in (low - 1, high + 1):
        expected = f"'{key}' must be between {low} and {high}, got {value}"
        assert f"[sources.s]: {expected}" in error_of(tmp_path, head + f"{key} = {value}\n", roster=None)
        options = {key: value, "usage_plan_id": "p1"} if adapter == "aws-usage-plan" else {key: value}
        with pytest.raises(ConfigError) as caught:
            adapter_for(SourceConfig("s", adapter, "https://a.example", options=options))
        assert str(caught.value) == f"source 's': {expected}"


def test_list_and_text_options_are_checked_by_their_declaration(tmp_path: Path) -> None:
    oai = '[sources.o]\nadapter = "openai-usage"\nurl = "https://a.example"\n'
    assert "'project_ids' must be a list of non-empty strings, got a string" in error_of(
        tmp_path, oai + 'project_ids = "proj_1"\n', roster=None)
    assert "'project_ids' must be a list of non-empty strings, got an array" in error_of(
        tmp_path, oai + 'project_ids = ["proj_1", ""]\n', roster=None)
    gw = '[sources.gw]\nadapter = "aws-usage-plan"\nurl = "https://a.example"\n'
    assert "[sources.gw]: 'usage_plan_id' must not be empty" in error_of(tmp_path, gw + 'usage_plan_id = " "\n',
                                                                          roster=None)
    assert "[sources.gw]: 'region' must be a string, got an integer" in error_of(
        tmp_path, gw + 'usage_plan_id = "p"\nregion = 1\n', roster=None)


@pytest.mark.parametrize("url", ["http://feed.example.com/v1", "http://10.0.0.5:8080", "http://localhost.example.com"])
def test_plain_http_to_a_host_that_is_not_loopback_is_refused(tmp_path: Path, url: str) -> None:
    message = error_of(tmp_path, f'[sources.feed]\nadapter = "warden-feed"\nurl = "{url}"\n', roster=None)
    assert "plain http://" in message and "not a loopback host" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/feed", "http://127.9.9.9", "http://[::1]:9000",
                                 "http://localhost:8000", "https://feed.example.com"])
def test_loopback_http_and_https_are_accepted(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, f'[sources.feed]\nadapter = "warden-feed"\nurl = "{url}"\n', roster=None))
    assert config.sources["feed"].url == url


@pytest.mark.parametrize("url", ["ftp://feed.example.com", "feed.example.com/v1", "https://"])
def test_urls_that_are_not_http_are_refused(tmp_path: Path, url: str) -> None:
    assert "'url' must start with https://" in error_of(
        tmp_path, f'[sources.feed]\nadapter = "warden-feed"\nurl = "{url}"\n', roster=None)


def test_credentials_in_the_url_are_refused_without_showing_them(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[sources.feed]\nadapter = "warden-feed"\n'
                                 'url = "https://bob:hunter2@feed.example.com"\n', roster=None)
    assert "must not contain user:password@" in message and "hunter2" not in message


def test_a_token_pasted_into_token_env_is_refused_and_not_echoed(tmp_path: Path) -> None:
    message = error_of(tmp_path, SOURCE + 'token_env = "sk-live-abc123/def+456"\n', roster=None)
    assert "must be the NAME of an environment variable" in message and "sk-live" not in message


GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"   # a name by its letters, a token by its looks


@pytest.mark.parametrize("pasted", [GITHUB_TOKEN, "sk-live-abc123", "xoxb-1234-abcd", "AKIAIOSFODNN7EXAMPLE",
                                    "glpat-x1y2z3", "eyJhbGciOiJIUzI1NiJ9", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"])
def test_a_token_pasted_into_token_env_is_refused_without_being_shown(tmp_path: Path, pasted: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Defect 8: a value that is not a variable name, or that a token's prefix
    gives away (``ghp_...`` is a valid name by its letters), is refused at
    configuration time (exit 2) and never echoed, there or by ``token_for``."""
    from store.config import SourceConfig
    from tui.cli import main as cli_main

    message = error_of(tmp_path, SOURCE + f'token_env = "{pasted}"\n', roster=None)
    assert "token_env" in message and pasted not in message and pasted[:6] not in message, message
    assert cli_main(["sync", "--config", str(tmp_path / "warden.toml"), "--db", str(tmp_path / "w.db")]) == 2
    err = capsys.readouterr().err
    assert "token_env" in err and pasted[:6] not in err, err
    with pytest.raises(ConfigError) as caught:
        token_for(SourceConfig("feed", "warden-feed", "https://feed.example", token_env=pasted), {})
    assert pasted[:6] not in str(caught.value) and "token_env" in str(caught.value), str(caught.value)


def test_a_variable_name_written_unusually_is_accepted_but_not_shown_when_unset(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SOURCE + 'token_env = "feedToken"\n', roster=None))
    with pytest.raises(ConfigError) as caught:
        token_for(config.sources["feed"], {})
    assert "feedToken" not in str(caught.value) and "token_env" in str(caught.value)
    assert token_for(config.sources["feed"], {"feedToken": "t-1"}) == "t-1"


def test_not_toml(tmp_path: Path) -> None:
    assert "not valid TOML" in error_of(tmp_path, "[sources\n", roster=None)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml")


def test_token_for_names_the_variable_and_never_the_value(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SOURCE + 'token_env = "FEED_TOKEN"\n', roster=None))
    source = config.sources["feed"]
    with pytest.raises(ConfigError) as caught:
        token_for(source, {})
    assert "FEED_TOKEN is not set" in str(caught.value) and "'feed'" in str(caught.value)
    with pytest.raises(ConfigError):
        token_for(source, {"FEED_TOKEN": ""})
    assert token_for(source, {"FEED_TOKEN": "s3cret-value"}) == "s3cret-value"
    source.token_env = None
    assert token_for(source, {}) is None


def test_token_for_reads_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(write(tmp_path, SOURCE + 'token_env = "WARDEN_TEST_TOKEN"\n', roster=None))
    monkeypatch.setenv("WARDEN_TEST_TOKEN", "tok-123")
    assert token_for(config.sources["feed"]) == "tok-123"
    monkeypatch.delenv("WARDEN_TEST_TOKEN")
    with pytest.raises(ConfigError, match="WARDEN_TEST_TOKEN"):
        token_for(config.sources["feed"])


def test_consumers_unknown_tier_duplicate_ids_and_unknown_sources(tmp_path: Path) -> None:
    x = '[sources.x]\nadapter = "x-usage"\nurl = "https://api.x.com"\n[tiers.basic]\n'
    message = error_of(tmp_path, x + "[[consumers]]\nid = 'a'\nlegal_name = 'A'\ntier = 'basci'\n", roster=None)
    assert "consumer 'a' has unknown tier 'basci' (defined: basic); did you mean 'basic'?" in message
    message = error_of(tmp_path, x + "[[consumers]]\nid = 'a'\nlegal_name = 'A'\n"
                                     "[[consumers]]\nid = 'a'\nlegal_name = 'B'\n", roster=None)
    assert "[[consumers]] #2: duplicate consumer id 'a'" in message
    message = error_of(tmp_path, x + "[[consumers]]\nid = 'a'\nlegal_name = 'A'\napps = ['y:1']\n", roster=None)
    assert "app \"y:1\" names unknown source 'y' (configured: x)" in message
    message = error_of(tmp_path, x + "[[consumers]]\nid = 'a'\nlegal_name = 'A'\napps = ['x1']\n", roster=None)
    assert "must be written \"source:app_id\"" in message
    message = error_of(tmp_path, x + "[[consumers]]\nid = 'a'\n", roster=None)
    assert "missing required field 'legal_name'" in message


def test_a_tier_may_come_from_a_warden_feed_source(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SOURCE + "[[consumers]]\nid = 'a'\nlegal_name = 'A'\ntier = 'gold'\n",
                               roster=None))
    assert config.consumers[0].tier == "gold"


# --- roster files -------------------------------------------------------------------

def test_csv_roster(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    contoso, fabrikam = iter_roster(config.roster_file)
    assert (contoso.id, contoso.legal_name, contoso.notice_contact, contoso.declared_use_case) == (
        "contoso", "Contoso Ltd", "legal@contoso.example", None)
    assert contoso.apps == [("x", "111"), ("feed", "app-2")]
    assert (fabrikam.legal_name, fabrikam.apps, fabrikam.notice_contact) == ("Fabrikam, Inc.", [], None)


def test_json_roster(tmp_path: Path) -> None:
    (tmp_path / "roster.json").write_text(json.dumps([
        {"id": "contoso", "legal_name": "Contoso Ltd", "tier": "basic", "apps": ["x:111", "feed:app-2"]},
        {"id": "fabrikam", "legal_name": "Fabrikam", "apps": "feed:app-3"},
    ]))
    config = load_config(write(tmp_path, FULL.replace("roster.csv", "roster.json"), roster=None))
    assert [(c.id, c.apps) for c in iter_roster(config.roster_file)] == [
        ("contoso", [("x", "111"), ("feed", "app-2")]), ("fabrikam", [("feed", "app-3")])]


@pytest.mark.parametrize(("roster", "expected"), [
    ("id,legal_name,tiers\n", "line 1, column 3: unknown column 'tiers'; did you mean 'tier'?"),
    ("id,notice_contact\n", "line 1: missing required column 'legal_name'"),
    ("", "the roster is empty"),
    ("id,legal_name\na,A\nb\n", "line 3: 1 cells, the header has 2"),
    ("id,legal_name\na,\n", "line 2, column 2: missing required field 'legal_name'"),
    ("id,legal_name,apps\na,A,x-111\n", "line 2, column 3: app 'x-111' must be written \"source:app_id\""),
])
def test_csv_roster_errors_name_file_and_line(tmp_path: Path, roster: str, expected: str) -> None:
    config = load_config(write(tmp_path, FULL, roster=roster))
    with pytest.raises(ConfigError) as caught:
        list(iter_roster(config.roster_file))
    assert expected in str(caught.value) and "roster.csv" in str(caught.value)


@pytest.mark.parametrize(("document", "expected"), [
    ("{}", "must be a list of consumer objects"),
    ("[{", "not valid JSON"),
    ('[{"id": "a", "legal_name": "A", "tiers": "x"}]', "[0]: unknown key 'tiers'; did you mean 'tier'?"),
    ('[{"id": "a", "legal_name": 5}]', "[0]: 'legal_name' must be a string"),
    ('["a"]', "[0]: must be an object"),
])
def test_json_roster_errors(tmp_path: Path, document: str, expected: str) -> None:
    (tmp_path / "roster.json").write_text(document)
    config = load_config(write(tmp_path, FULL.replace("roster.csv", "roster.json"), roster=None))
    with pytest.raises(ConfigError) as caught:
        list(iter_roster(config.roster_file))
    assert expected in str(caught.value)


# --- applying ---------------------------------------------------------------------

@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "db" / "warden.db")


def rows(conn: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in conn.execute(sql)]


def test_apply_writes_sources_tiers_roster_and_mapping(tmp_path: Path, conn: sqlite3.Connection) -> None:
    config = load_config(write(tmp_path, FULL))
    result = apply_config(conn, config)
    assert result == AppliedConfig(sources=4, tiers=1, consumers=3, apps=4, auto_consumers=0)
    assert rows(conn, "SELECT name, kind, token_env, options FROM source WHERE name = 'feed'") == [
        ("feed", "warden-feed", "FEED_TOKEN", '{"shards": 16}')]
    assert rows(conn, "SELECT tier_id, metric, period, max_value FROM tier_limit ORDER BY metric") == [
        ("basic", "calls", "day", 500_000), ("basic", "input_tokens", "year", 9_000_000_000),
        ("basic", "records", "month", 50_000_000)]
    assert rows(conn, "SELECT category, clause FROM tier_clause ORDER BY category") == [
        ("rate_limit", "§ 2.4 Rate limits"), ("volume_cap", "§ 2.3 Usage limits")]
    assert rows(conn, "SELECT allowed_endpoints, origin FROM tier") == [('["/2/tweets/*"]', "config")]
    assert rows(conn, "SELECT id, tier_id, origin FROM consumer ORDER BY id") == [
        ("contoso", "basic", "config"), ("fabrikam", "basic", "config"), ("northwind-analytics", "basic", "config")]
    assert rows(conn, "SELECT source, app_id, consumer_id FROM app ORDER BY source, app_id") == [
        ("feed", "app-17", "northwind-analytics"), ("feed", "app-2", "contoso"),
        ("x", "111", "contoso"), ("x", "29183745", "northwind-analytics")]


def test_apply_is_idempotent_and_small_batches_give_the_same_result(tmp_path: Path, conn: sqlite3.Connection) -> None:
    config = load_config(write(tmp_path, FULL))
    apply_config(conn, config, batch_rows=1)
    first = [rows(conn, f"SELECT * FROM {t} ORDER BY 1, 2") for t in ("source", "tier", "tier_limit", "consumer", "app")]
    apply_config(conn, config)
    assert [rows(conn, f"SELECT * FROM {t} ORDER BY 1, 2") for t in ("source", "tier", "tier_limit", "consumer", "app")] == first


def test_config_wins_over_feed_data_and_keeps_app_names(tmp_path: Path, conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO tier (id, name, origin) VALUES ('basic', 'Feed basic', 'feed')")
        conn.execute("INSERT INTO consumer (id, legal_name, notice_contact, origin) VALUES "
                     "('contoso', 'Contoso (feed)', 'feed@contoso', 'feed')")
        conn.execute("INSERT INTO consumer (id, legal_name, origin) VALUES ('other', 'Other', 'feed')")
        conn.execute("INSERT INTO app (source, app_id, consumer_id, name, declared_use_case) "
                     "VALUES ('feed', 'app-2', 'other', 'Crawler', 'Search')")
    apply_config(conn, load_config(write(tmp_path, FULL)))
    assert rows(conn, "SELECT legal_name, notice_contact, origin FROM consumer WHERE id = 'contoso'") == [
        ("Contoso Ltd", "legal@contoso.example", "config")]
    assert rows(conn, "SELECT consumer_id, name, declared_use_case FROM app WHERE app_id = 'app-2'") == [
        ("contoso", "Crawler", "Search")]
    assert rows(conn, "SELECT name, origin FROM tier") == [("Basic", "config")]


def test_apps_seen_in_usage_without_an_owner_become_auto_consumers(tmp_path: Path, conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.executemany("INSERT INTO usage VALUES (?, ?, '2022-01-01', 'calls', 5, 1, 1)",
                         [("x", "999"), ("x", "111"), ("feed", "stray")])
        conn.execute("INSERT INTO endpoint_usage VALUES ('feed', 'ep-only', '2022-01-01', '/2/x', 1, 1, 1)")
    config = load_config(write(tmp_path, FULL))
    result = apply_config(conn, config)
    assert result.auto_consumers == 3
    assert rows(conn, "SELECT id, legal_name, origin FROM consumer WHERE origin = 'auto' ORDER BY id") == [
        ("feed:ep-only", "ep-only", "auto"), ("feed:stray", "stray", "auto"), ("x:999", "999", "auto")]
    assert rows(conn, "SELECT consumer_id FROM app WHERE app_id = '111'") == [("contoso",)]
    assert auto_consumer_id("x", "999") == "x:999"

    # The roster later claims x:999: the auto consumer (nothing decided on it) goes away.
    (tmp_path / "roster.csv").write_text(ROSTER_CSV + "late,Late Ltd,,,,,,x:999\n")
    assert apply_config(conn, config).auto_consumers == 0
    assert rows(conn, "SELECT consumer_id FROM app WHERE app_id = '999'") == [("late",)]
    assert rows(conn, "SELECT id FROM consumer WHERE id = 'x:999'") == []


def test_apply_never_touches_findings_and_keeps_auto_consumers_with_findings(tmp_path: Path,
                                                                          conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO usage VALUES ('x', '999', '2022-01-01', 'calls', 5, 1, 1)")
    config = load_config(write(tmp_path, FULL))
    apply_config(conn, config)
    with transaction(conn):
        conn.execute("INSERT INTO finding (consumer_id, category, period, period_start, period_end, detected_at, "
                      "updated_at, status) VALUES ('x:999', 'volume_cap', '2022', '2022-01-01', '2022-12-31', 't', 't', "
                      "'confirmed')")
    before = rows(conn, "SELECT * FROM finding")
    (tmp_path / "roster.csv").write_text(ROSTER_CSV + "late,Late Ltd,,,,,,x:999\n")
    apply_config(conn, config)
    assert rows(conn, "SELECT * FROM finding") == before
    assert rows(conn, "SELECT id FROM consumer WHERE id = 'x:999'") == [("x:999",)]


def test_apply_checks_the_whole_roster_before_writing(tmp_path: Path, conn: sqlite3.Connection) -> None:
    config = load_config(write(tmp_path, FULL, roster=ROSTER_CSV + "northwind-analytics,Dup,,,,,,\n"))
    with pytest.raises(ConfigError, match="duplicate consumer id 'northwind-analytics'"):
        apply_config(conn, config)
    assert rows(conn, "SELECT COUNT(*) FROM consumer") == [(0,)]
    # Without a warden-feed source (which may serve tiers), a tier must be in [tiers].
    x_only = ('[sources.x]\nadapter = "x-usage"\nurl = "https://api.x.com"\n[tiers.basic]\n'
              '[roster]\nfile = "roster.csv"\n')
    config = load_config(write(tmp_path, x_only, roster="id,legal_name,tier\na,A,basic\nz,Z,platinum\n"))
    with pytest.raises(ConfigError) as caught:
        apply_config(conn, config)
    assert "roster.csv: line 3, column 3: consumer 'z' has unknown tier 'platinum'" in str(caught.value)
    assert rows(conn, "SELECT COUNT(*) FROM consumer") == [(0,)]


def test_an_app_claimed_by_two_consumers_is_refused(tmp_path: Path, conn: sqlite3.Connection) -> None:
    config = load_config(write(tmp_path, FULL, roster=ROSTER_CSV + "dup,Dup Ltd,,,,,,x:29183745\n"))
    with pytest.raises(ConfigError) as caught:
        apply_config(conn, config)
    assert ("roster.csv: line 4, column 8: app \"x:29183745\" is claimed by more than one consumer "
            "('northwind-analytics' at [[consumers]] #1, 'dup')") in str(caught.value)
    assert rows(conn, "SELECT COUNT(*) FROM app") == [(0,)]


def test_reapplying_an_unchanged_roster_rewrites_nothing(tmp_path: Path, conn: sqlite3.Connection) -> None:
    config = load_config(write(tmp_path, FULL))
    apply_config(conn, config)
    conn.execute("CREATE TEMP TABLE writes (tbl TEXT)")
    for table in ("consumer", "app"):
        for event in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(f"CREATE TEMP TRIGGER {table}_{event} AFTER {event} ON main.{table} "
                         f"BEGIN INSERT INTO writes VALUES ('{table}'); END")
    apply_config(conn, config)
    assert rows(conn, "SELECT COUNT(*) FROM writes") == [(0,)]
    (tmp_path / "roster.csv").write_text(ROSTER_CSV.replace("Contoso Ltd", "Contoso Limited"))
    apply_config(conn, config)
    assert rows(conn, "SELECT tbl FROM writes") == [("consumer",)]


def test_a_feed_tier_named_before_the_feed_synced_gets_a_placeholder(tmp_path: Path, conn: sqlite3.Connection) -> None:
    config = load_config(write(tmp_path, SOURCE + "[[consumers]]\nid = 'a'\nlegal_name = 'A'\ntier = 'gold'\n",
                               roster=None))
    apply_config(conn, config)
    assert rows(conn, "SELECT id, name, origin FROM tier") == [("gold", "gold", "feed")]
    assert rows(conn, "SELECT tier_id FROM consumer") == [("gold",)]


def test_own_apps_gives_unowned_apps_a_consumer_and_names_it(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO consumer (id, legal_name) VALUES ('acme', 'Acme')")
        conn.execute("INSERT INTO app (source, app_id, consumer_id) VALUES ('gw', 'k1', 'acme')")
        own_apps(conn, "gw", [("k1", "Acme key", None), ("k2", "Crawler", "Search"), ("k3", None, None)])
    assert rows(conn, "SELECT app_id, consumer_id, name, declared_use_case FROM app ORDER BY app_id") == [
        ("k1", "acme", "Acme key", None), ("k2", "gw:k2", "Crawler", "Search"), ("k3", "gw:k3", None, None)]
    assert rows(conn, "SELECT id, legal_name, origin FROM consumer ORDER BY id") == [
        ("acme", "Acme", "config"), ("gw:k2", "Crawler", "auto"), ("gw:k3", "k3", "auto")]


def test_a_large_csv_roster_streams_in_batches(tmp_path: Path, conn: sqlite3.Connection) -> None:
    lines = ["id,legal_name,tier,apps"] + [f"c{n},Consumer {n},basic,feed:a{n}" for n in range(20_000)]
    config = load_config(write(tmp_path, FULL, roster="\n".join(lines) + "\n"))
    result = apply_config(conn, config, batch_rows=3_000)
    assert result.consumers == 20_001 and result.apps == 20_002
    assert rows(conn, "SELECT COUNT(*) FROM consumer") == [(20_001,)]
    assert rows(conn, "SELECT consumer_id FROM app WHERE app_id = 'a19999'") == [("c19999",)]


def test_config_default_is_empty() -> None:
    assert Config().sources == {} and Config().notes.deadline_days == 21


def test_the_documented_example_loads(tmp_path: Path) -> None:
    # The format in store/config.py's docstring is what README.md shows: it must work as written.
    import store.config

    block = store.config.__doc__.split("closest known key)::", 1)[1].split("Tokens: only", 1)[0]
    config = load_config(write(tmp_path, block))
    assert sorted(config.sources) == ["feed", "x"] and config.sources["feed"].options == {"shards": 8}
    assert config.tiers["enterprise"].limits == [("calls", "day", 500_000), ("records", "month", 50_000_000)]
    assert config.consumers[0].tier == "enterprise" and config.keymap == {"review.confirm": "V"}
    assert len(list(iter_roster(config.roster_file))) == 2
