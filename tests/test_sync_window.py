"""The days a sync asks for: the window logged is the window requested, a figure
for a day the request did not ask for refuses its page, and a closed window
(``end``) fetched completely is not fetched again unless asked (``--refetch``)."""

from __future__ import annotations

import json
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from store.clock import fixed_clock
from store.config import SourceConfig, load_config
from store.db import connect
from store.demo import DemoEndpoint
from store.errors import ConfigError, PageRejected
from store.sync.adapter import Request, Window
from store.sync.adapters import adapter_for
from store.sync.engine import sync_source
from store.sync.events import SourceFinished, SourceStarted
from tui.cli import main as cli_main

CLOCK = fixed_clock(datetime(2023, 1, 1, 6, tzinfo=timezone.utc))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(text))
    return path


def run_window(db: Path) -> list[tuple[str, str, str]]:
    conn = connect(db)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT window_start, window_end, status FROM sync_run ORDER BY id")]  # type: ignore[misc]
    finally:
        conn.close()


# --- defect 2: X's window is relative -------------------------------------------------

@pytest.mark.parametrize("key", ["start = 2022-01-01", "end = 2022-12-31"])
def test_x_says_at_configuration_time_that_it_gives_only_the_last_days(tmp_path: Path, key: str) -> None:
    config = write_config(tmp_path, f"""
        [sources.x]
        adapter = "x-usage"
        url = "https://api.x.com"
        {key}
    """)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert "[sources.x]" in message and repr(key.split(" ")[0]) in message, message
    assert "last" in message and "90 days" in message and "days" in message, message


def test_the_window_logged_is_the_window_x_was_asked_for(tmp_path: Path) -> None:
    """A first sync from 2022-01-01 cannot get a year from X: it asks ``days=90``,
    and the run says 2022-10-03..2023-01-01 (the 90 days before the demo's today,
    and today), not 2022-01-01..2023-01-01."""
    events: list[Any] = []
    with DemoEndpoint(consumers=2, env_faults=False) as endpoint:
        source = SourceConfig("x", "x-usage", endpoint.x_url, start=date(2022, 1, 1))
        result = sync_source(tmp_path / "w.db", source, clock=CLOCK, on_event=events.append)
        asked = endpoint.requested("/2/usage/tweets")
    assert result.status == "ok", result.error
    assert len(asked) == 1 and "days=90" in asked[0]
    started = [e for e in events if isinstance(e, SourceStarted)][0]
    assert (started.window_start, started.window_end) == ("2022-10-03", "2023-01-01")
    assert "2022-10-03..2023-01-01" in started.as_line()
    assert run_window(tmp_path / "w.db") == [("2022-10-03", "2023-01-01", "ok")]
