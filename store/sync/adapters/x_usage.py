"""``x-usage``: X API v2 ``GET /2/usage/tweets`` (posts retrieved per client app per day).

One request, not paginated: ``days`` (1..90) counts back from the server's today.
``data.daily_client_app_usage[].usage[]`` becomes metric ``records`` per
``client_app_id``; ``project_cap``, ``project_usage``, ``project_id`` and
``cap_reset_day`` are kept as source facts (caps exceed 2^31, ids have 22 digits:
parsed as 64-bit integers and TEXT). X leaves ``usage`` out for a day it has no
figure for: that day is missing (no row; missing is not zero), the rest of the
answer is kept, and the page's log names the day. A ``usage-capped`` problem
(even as HTTP 429) stops the source instead of being retried.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from store.sync.adapter import (
    ErrorVerdict, Option, ParsedPage, Request, Window, expect, expect_in_window, last_days, options_of,
)
from store.sync.counts import parse_count, parse_day, parse_id
from store.sync.retry import default_verdict, error_json

if TYPE_CHECKING:
    from store.config import SourceConfig

USAGE_FIELDS = "cap_reset_day,daily_client_app_usage,daily_project_usage,project_cap,project_id,project_usage"
MAX_DAYS = 90
METRIC = "records"


class XUsage:
    """Adapter for X's usage endpoint. Option ``days`` (1..90) fixes how many days
    to ask for; by default the sync window decides (capped at 90)."""

    kind: ClassVar[str] = "x-usage"
    OPTIONS: ClassVar[tuple[Option, ...]] = (Option("days", int, low=1, high=MAX_DAYS),)

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        self.days: int | None = options_of(self, source)["days"]

    def _days(self, window: Window) -> int:
        return self.days or max(1, min(MAX_DAYS, (window.end - window.start).days + 1))

    @classmethod
    def check_source(cls, source: SourceConfig) -> str | None:
        """X cannot be asked for given days: refuse ``start`` and ``end``."""
        for key in ("start", "end"):
            if getattr(source, key) is not None:
                return (f"{key!r} cannot be honoured: X's usage endpoint gives only the last days counted back "
                        f"from today, at most {MAX_DAYS} days (option 'days' = 1..{MAX_DAYS}); remove {key!r}")
        return None

    def chains(self, window: Window) -> dict[str, Request]:
        return {"usage": Request.get("2/usage/tweets", days=self._days(window), **{"usage.fields": USAGE_FIELDS})}

    def requested(self, window: Window) -> Window:
        """What ``days=N`` asks for, whatever the sync's window: the N days before
        today (``window.end``), and today's figure if X gives one. A ``start``
        further back than N days is not what X answers, so it is not logged as if."""
        return last_days(window, self._days(window))

    def covered(self, requested: Window) -> Window:
        """The days every answer to ``requested`` holds: not its first day (an X
        counting ``days`` to include today stops a day later). Figures before are
        not re-fetched, so they must not be taken for withdrawn upstream."""
        return Window(requested.start + timedelta(days=1), requested.end)

    def auth_headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes, now: float) -> ErrorVerdict:
        problem = _problem(body)
        kind = problem.get("type")
        detail = problem.get("detail") or problem.get("title") or ""
        detail = detail[:200] if isinstance(detail, str) else ""
        if isinstance(kind, str) and kind.rstrip("/").endswith("/usage-capped"):
            said = f": {detail}" if detail else ""
            return ErrorVerdict(retry=False, reason=f"usage capped (HTTP {status}){said}; not retried")
        return default_verdict(status, headers, now, detail=detail)

    def parse(self, chain: str, request: Request, body: Any, window: Window) -> ParsedPage:
        expect(isinstance(body, dict), "expected a JSON object", "$")
        data = body.get("data")
        if data is None and "errors" in body:
            expect(False, "the response carries errors and no data", "$.errors")
        expect(isinstance(data, dict), "expected an object", "$.data")
        page = ParsedPage()
        if data.get("project_id") is not None:
            page.facts["project_id"] = parse_id(data["project_id"], "$.data.project_id")
        for key in ("project_cap", "project_usage", "cap_reset_day"):
            if data.get(key) is not None:
                page.facts[key] = str(parse_count(data[key], f"$.data.{key}"))
        apps = data.get("daily_client_app_usage", [])
        expect(isinstance(apps, list), "expected a list", "$.data.daily_client_app_usage")
        rows = page.usage
        seen: dict[tuple[str, str], int] = {}
        for i, app in enumerate(apps):
            path = f"$.data.daily_client_app_usage[{i}]"
            expect(isinstance(app, dict), "expected an object", path)
            app_id = parse_id(app.get("client_app_id"), f"{path}.client_app_id")
            days = app.get("usage", [])
            expect(isinstance(days, list), "expected a list", f"{path}.usage")
            for j, entry in enumerate(days):
                entry_path = f"{path}.usage[{j}]"
                expect(isinstance(entry, dict), "expected an object", entry_path)
                day = parse_day(entry.get("date"), f"{entry_path}.date")
                expect_in_window(day, window, f"{entry_path}.date")
                if entry.get("usage") is None:
                    # X has no figure for that day: missing, not zero, and not a reason
                    # to throw the rest of the answer away.
                    page.notes.append(f"{app_id!r} {day}: no usage figure (missing, not stored) at {entry_path}")
                    continue
                value = parse_count(entry["usage"], f"{entry_path}.usage")
                # A day given twice: an exact repeat is stored once; two values, either
                # of which would be a silently wrong number, reject the page.
                before = seen.get((app_id, day))
                if before is not None:
                    expect(before == value, f"{app_id!r} {day} appears twice with different values "
                                            f"({before}, {value})", f"{entry_path}.usage")
                    continue
                seen[(app_id, day)] = value
                rows.append((app_id, day, METRIC, value))
        return page


def _problem(body: bytes) -> dict[str, Any]:
    """The RFC 7807 problem in an error body (X also wraps them in ``errors``)."""
    data = error_json(body)
    if isinstance(data, dict) and isinstance(data.get("errors"), list) and data["errors"]:
        first = data["errors"][0]
        return first if isinstance(first, dict) else {}
    return data if isinstance(data, dict) else {}
