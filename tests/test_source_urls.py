"""Source URLs: a base URL keeps its own query, a query parameter named like a
credential is refused without its value being shown, and every value of a base
URL's query is hidden wherever URLs are stored or shown."""

from __future__ import annotations

import json
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from store.clock import fixed_clock
from store.config import SourceConfig, load_config
from store.db import connect
from store.demo import DemoEndpoint
from store.errors import ConfigError
from store.secrets import looks_like_credential, secret_params
from store.sync.adapter import Request, full_url
from store.sync.engine import sync_source
from tui.cli import main as cli_main

CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))
REGION = "eu-zz91"   # a value that must appear nowhere once stored


def test_a_base_url_keeps_its_own_query() -> None:
    base = f"https://usage.example.com/feed/v1?region={REGION}"
    assert full_url(base, Request.get("tiers")) == f"https://usage.example.com/feed/v1/tiers?region={REGION}"
    assert full_url(base + "&", Request.get("/usage")) == f"https://usage.example.com/feed/v1/usage?region={REGION}&"
    assert full_url("https://usage.example.com/feed/v1/", Request.get("tiers")) == "https://usage.example.com/feed/v1/tiers"
    assert full_url(base, Request.get("")) == base
    # An absolute next URL is taken as it is.
    assert full_url(base, Request.get("https://usage.example.com/other?p=2")) == "https://usage.example.com/other?p=2"


def test_a_sync_against_a_base_url_with_a_query_asks_the_right_path_and_stores_no_query_value(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        config = tmp_path / "c.toml"
        config.write_text(textwrap.dedent(f"""
            [sources.feed]
            adapter = "warden-feed"
            url = "{endpoint.feed_url}?region={REGION}"
            start = 2022-12-20
            shards = 1
        """))
        endpoint.faults.add("status", code=503, retry_after=0, path="/feed/v1/tiers")   # a retry line
        assert cli_main(["sync", "--verbose", "--config", str(config), "--db", str(tmp_path / "w.db")]) == 0
        asked = endpoint.requested("/feed/v1/")
    err = capsys.readouterr().err
    assert asked and all(f"region={REGION}" in target for target in asked), asked
    assert {target.split("?")[0] for target in asked} == {"/feed/v1/tiers", "/feed/v1/consumers",
                                                          "/feed/v1/usage", "/feed/v1/endpoints"}
    assert "retrying" in err and "region=***" in err and REGION not in err, err
    conn = connect(tmp_path / "w.db")
    try:
        urls = [r[0] for r in conn.execute("SELECT url FROM sync_page UNION ALL SELECT url FROM source")]
        assert urls and all("region=***" in url for url in urls), urls
    finally:
        conn.close()
    assert REGION.encode() not in (tmp_path / "w.db").read_bytes()


CREDENTIAL_NAMES = ["x-api-key", "api_key", "apiKey", "X-API-KEY", "key", "token", "access_token", "Access-Token",
                    "client_secret", "secret", "password", "auth", "x-auth", "Authorization", "sig", "signature",
                    "X-Amz-Signature", "X-Amz-Credential", "x-amz-security-token", "session", "sessionid",
                    "session_token", "code", "access_code", "api-code", "pageToken"]
PLAIN_NAMES = ["region", "page", "per_page", "cursor", "start", "end", "country_code", "key_id", "keys", "tokens",
               "monkey", "author", "limit"]


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_a_query_parameter_named_like_a_credential_is_refused_without_its_value(
        tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "qk-8f7e6d5c4b3a2910"
    assert looks_like_credential(name)
    for query in (f"region=eu&{name}={secret}", f"region=eu;{name}={secret}"):
        config = tmp_path / "c.toml"
        config.write_text(f'[sources.s]\nadapter = "warden-feed"\nurl = "https://usage.example.com/v1?{query}"\n')
        with pytest.raises(ConfigError) as caught:
            load_config(config)
        assert name in str(caught.value) and "credential" in str(caught.value)
        assert secret not in str(caught.value)
        assert cli_main(["sync", "--config", str(config), "--db", str(tmp_path / "w.db")]) == 2
        err = capsys.readouterr().err
        assert "credential" in err and secret not in err, err
    assert not (tmp_path / "w.db").exists()


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_plain_query_parameters_are_not_taken_for_credentials(name: str) -> None:
    assert not looks_like_credential(name)
    assert secret_params(f"{name}=1;region=eu") == []


def test_the_url_shown_in_a_rejected_page_hides_the_base_query_too(tmp_path: Path) -> None:
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        endpoint.faults.add("non_json@/feed/v1/usage")
        source = SourceConfig("feed", "warden-feed", f"{endpoint.feed_url}?region={REGION}", start=date(2022, 12, 20),
                              options={"shards": 1})
        result = sync_source(tmp_path / "w.db", source, clock=CLOCK)
    assert result.status == "partial"
    assert "region=***" in (result.error or "") and REGION not in (result.error or "")
    assert REGION not in json.dumps(result.__dict__)
