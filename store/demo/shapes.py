"""Three more shapes of the demo's usage, for ``http-json`` sources: the ways real
usage APIs page their answers, each serving the same figures as the feed (one
item per app and active day, with its calls and records).

``/stripe/v1/usage_records`` (Stripe-like: a cursor and ``has_more``)
    ``?created[gte]=EPOCH&created[lt]=EPOCH&limit=N&starting_after=ID``::

        {"object": "list", "url": "/v1/usage_records", "has_more": true,
         "data": [{"id": "ur_3_0_452", "object": "usage_record", "subscription_item": "app-3-1",
                   "timestamp": 1669852800, "usage": {"calls": 123, "records": 4567}}]}

    The next page starts after the last item's ``id``. Errors:
    ``{"error": {"type", "message"}}``.

``/github/v3/usage`` (GitHub-like: a top-level array and a ``Link`` header)
    ``?since=YYYY-MM-DD&until=YYYY-MM-DD&per_page=N&page=P``::

        [{"app_id": "app-3-1", "day": "2022-12-01T00:00:00Z", "calls": 123, "records": 4567}]
        Link: <.../github/v3/usage?...&page=3>; rel="next", <...&page=9>; rel="last"

``/offset/v1/usage`` (an offset and a total; one figure per metric, named by the data)
    ``?from=YYYY-MM-DD&to=YYYY-MM-DD&offset=N&limit=M``::

        {"total": 1234, "offset": 0, "limit": 100,
         "items": [{"app": "app-3-1", "date": "2022-12-01",
                    "metrics": [{"name": "calls", "value": 123}, {"name": "records", "value": "4567"}]}]}

Each shape rewrites its own pages for the page faults of :mod:`store.demo.faults`
(:func:`rewrite`), so the fault matrix runs against all three.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator
from urllib.parse import urlencode

from store.demo.data import EPOCH, DemoData
from store.demo.faults import Fault
from store.demo.wire import Answer, dumps

STRIPE_PATH = "/stripe/v1/usage_records"
GITHUB_PATH = "/github/v3/usage"
OFFSET_PATH = "/offset/v1/usage"
PATHS = (STRIPE_PATH, GITHUB_PATH, OFFSET_PATH)
MAX_LIMIT = 1000
_ID = re.compile(r"ur_(\d{1,7})_(\d{1,3})_(\d{1,6})(?:~\d+)?")
_CHUNK = 256


class ShapeRequestError(ValueError):
    """A request a shape refuses with 400 (the message says which parameter)."""


def records(data: DemoData, lo: int, hi: int, *, skip: int = 0,
            after: tuple[int, int, int] | None = None) -> Iterator[tuple[int, int, str, int, int, int]]:
    """Usage items in order, ``(consumer index, app index, app id, day index, calls,
    records)``, for day indices ``[lo, hi)``: after position ``after`` (exclusive)
    and skipping the first ``skip``."""
    first = after[0] if after else 0
    for i in range(first, data.consumers):
        for a, app in enumerate(data.consumer(i).apps):
            if after is not None and (i, a) < after[:2]:
                continue
            days = list(data.days_of(app, lo, hi))
            if after is not None and (i, a) == after[:2]:
                days = [d for d in days if d > after[2]]
            if skip >= len(days):
                skip -= len(days)
                continue
            days, skip = days[skip:], 0
            for start in range(0, len(days), _CHUNK):
                chunk = days[start:start + _CHUNK]
                calls, recs = data.values(app, "calls", chunk), data.values(app, "records", chunk)
                for d, c, r in zip(chunk, calls, recs):
                    yield i, a, app.id, d, c, r


def count(data: DemoData, lo: int, hi: int) -> int:
    """How many items ``[lo, hi)`` holds, all consumers."""
    return sum(len(data.days_of(app, lo, hi)) for i in range(data.consumers) for app in data.consumer(i).apps)


def answer(data: DemoData, path: str, query: dict[str, str], base_url: str) -> Answer:
    """The page a shape answers (``ShapeRequestError`` for a bad parameter)."""
    if path == STRIPE_PATH:
        return _stripe(data, query)
    if path == GITHUB_PATH:
        return _github(data, query, base_url)
    return _offset(data, query)


def error(path: str, status: int, code: str, message: str) -> Answer:
    """An error in the shape's own words."""
    if path.startswith("/stripe/"):
        body: dict[str, Any] = {"error": {"type": "invalid_request_error" if status < 500 else "api_error",
                                          "code": code, "message": message}}
    elif path.startswith("/github/"):
        body = {"message": message, "documentation_url": "https://docs.github.example/rest"}
    else:
        body = {"error": {"code": code, "message": message}}
    return Answer(status, dumps(body))


# --- the three shapes -------------------------------------------------------------------

def _stripe(data: DemoData, query: dict[str, str]) -> Answer:
    lo = _day_index(_epoch_day(query, "created[gte]", EPOCH))
    hi = _day_index(_epoch_day(query, "created[lt]", date(9999, 1, 1), exclusive=True)) + 1
    limit = _int(query, "limit", 10, 1, MAX_LIMIT)
    after = None
    if query.get("starting_after"):
        match = _ID.fullmatch(query["starting_after"])
        if match is None:
            raise ShapeRequestError("starting_after: no such object")
        after = (int(match[1]), int(match[2]), int(match[3]))
    items = []
    for i, a, app, d, calls, recs in records(data, max(lo, data.first_day), min(hi, data.last_day + 1), after=after):
        if len(items) == limit + 1:
            break
        items.append({"id": f"ur_{i}_{a}_{d}", "object": "usage_record", "subscription_item": app,
                      "timestamp": _epoch(EPOCH + timedelta(days=d)), "usage": {"calls": calls, "records": recs}})
    more = len(items) > limit
    body = {"object": "list", "url": "/v1/usage_records", "has_more": more, "data": items[:limit]}
    return Answer(200, dumps(body), family="stripe", start_cursor=query.get("starting_after"))


def _github(data: DemoData, query: dict[str, str], base_url: str) -> Answer:
    lo, hi = _iso_days(query, "since", "until")
    per_page = _int(query, "per_page", 30, 1, 100)
    # "3~1": page 3 again, after an empty page the empty_page fault served.
    page = _int({"page": query["page"].split("~")[0]} if "page" in query else {}, "page", 1, 1, None)
    lo, hi = max(lo, data.first_day), min(hi, data.last_day + 1)
    items = []
    for _, _, app, d, calls, recs in records(data, lo, hi, skip=(page - 1) * per_page):
        if len(items) == per_page:
            break
        items.append({"app_id": app, "day": f"{EPOCH + timedelta(days=d)}T00:00:00Z", "calls": calls,
                      "records": recs})
    last = max(1, -(-count(data, lo, hi) // per_page))
    headers: dict[str, str] = {}
    links = []
    kept = {k: v for k, v in query.items() if k != "page"}
    if page < last:
        links.append(f'<{base_url}{GITHUB_PATH}?{urlencode({**kept, "page": page + 1})}>; rel="next"')
    links.append(f'<{base_url}{GITHUB_PATH}?{urlencode({**kept, "page": last})}>; rel="last"')
    headers["Link"] = ", ".join(links)
    return Answer(200, dumps(items), headers, family="github", start_cursor=str(page))


def _offset(data: DemoData, query: dict[str, str]) -> Answer:
    lo, hi = _iso_days(query, "from", "to")
    offset = _int(query, "offset", 0, 0, None)
    limit = _int(query, "limit", 100, 1, MAX_LIMIT)
    lo, hi = max(lo, data.first_day), min(hi, data.last_day + 1)
    items = []
    for _, _, app, d, calls, recs in records(data, lo, hi, skip=offset):
        if len(items) == limit:
            break
        items.append({"app": app, "date": (EPOCH + timedelta(days=d)).isoformat(),
                      "metrics": [{"name": "calls", "value": calls}, {"name": "records", "value": str(recs)}]})
    body = {"total": count(data, lo, hi), "offset": offset, "limit": limit, "items": items}
    return Answer(200, dumps(body), family="offset", start_cursor=str(offset))


# --- page faults ------------------------------------------------------------------------

FAMILIES = frozenset({"stripe", "github", "offset"})
_BAD: dict[str, Any] = {"negative": -5, "over64": 2**64 + 5, "fractional": 62.5}


def rewrite(fault: Fault, answer: Answer, query: dict[str, str]) -> Answer:
    """A page of one of these shapes rewritten by a page fault."""
    page = json.loads(answer.body)
    family, kind = answer.family, fault.kind
    headers = dict(answer.headers)
    items: list[Any] = page if family == "github" else page["data"] if family == "stripe" else page["items"]
    app_key = {"stripe": "subscription_item", "github": "app_id", "offset": "app"}[family]
    if kind == "wrong_type":
        _set_count(family, items, {"value": 1} if fault.params.get("as", "object") == "object" else [1])
    elif kind in _BAD:
        _set_count(family, items, _BAD[kind])
    elif kind == "missing_count":
        _set_count(family, items, None, delete=True)
    elif kind == "string_counts":
        forms = (str, lambda v: f"0{v}", lambda v: f"{v}.0")
        for n, item in enumerate(items):
            for holder, key in _counts(family, item):
                holder[key] = forms[n % 3](int(holder[key]))
    elif kind == "missing_id" and items:
        del items[0][app_key]
    elif kind == "duplicate" and items:
        copy = json.loads(json.dumps(items[0]))
        differ = int(fault.params.get("differ", 0))
        if differ:
            holder, key = _counts(family, copy)[0]
            holder[key] = int(holder[key]) + differ
        items.insert(1, copy)
    elif kind == "repeat_cursor":
        if family == "stripe" and items:
            # The next page would start after the same object as this one did.
            items[-1]["id"] = query.get("starting_after") or items[0]["id"]
            page["has_more"] = True
        elif family == "github":
            headers["Link"] = _relink(headers.get("Link", ""), query.get("page", "1"))
    elif kind == "empty_page":
        items.clear()
        if family == "stripe":
            page["has_more"] = True
        elif family == "github":
            headers["Link"] = _relink(headers.get("Link", ""), f"{query.get('page', '1')}~{fault.fired}")
    return Answer(answer.status, dumps(page), headers, family=family, start_cursor=answer.start_cursor)


def _counts(family: str, item: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Where an item's counts are: (holder, key), calls first."""
    if family == "stripe":
        return [(item["usage"], "calls"), (item["usage"], "records")]
    if family == "github":
        return [(item, "calls"), (item, "records")]
    return [(metric, "value") for metric in item["metrics"]]


def _set_count(family: str, items: list[Any], value: Any, *, delete: bool = False) -> None:
    if not items:
        return
    holder, key = _counts(family, items[0])[0]
    if delete:
        del holder[key]
    else:
        holder[key] = value


def _relink(link: str, page: str) -> str:
    """A Link header whose rel="next" points at ``page`` (the same page again, or an empty one's marker)."""
    match = re.search(r"<([^>]*)>;\s*rel=\"last\"", link)
    target = re.sub(r"([?&]page=)[^&>]*", rf"\g<1>{page}", match.group(1)) if match else f"?page={page}"
    return f'<{target}>; rel="next", {link.split(", ")[-1]}'


# --- parameters ---------------------------------------------------------------------------

def _int(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or len(text) > 12 or int(text) < low or (high is not None and int(text) > high):
        raise ShapeRequestError(f"{name}: expected a whole number {low}..{high or ''}")
    return int(text)


def _iso_days(query: dict[str, str], start: str, end: str) -> tuple[int, int]:
    try:
        lo = date.fromisoformat(query[start]) if start in query else EPOCH
        hi = date.fromisoformat(query[end]) if end in query else date(9999, 1, 1)
    except ValueError:
        raise ShapeRequestError(f"{start}, {end}: expected days YYYY-MM-DD") from None
    return _day_index(lo), _day_index(hi) + 1


def _epoch_day(query: dict[str, str], name: str, default: date, *, exclusive: bool = False) -> date:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or len(text) > 11:
        raise ShapeRequestError(f"{name}: expected epoch seconds")
    moment = datetime.fromtimestamp(int(text) - (1 if exclusive else 0), timezone.utc)
    return moment.date()


def _day_index(day: date) -> int:
    return (day - EPOCH).days


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())
