"""The keys of an ``http-json`` source, checked together: what each says, which
go together, and the one reading of them the adapter works from
(:class:`HttpJsonSpec`). Every problem names its key; no message quotes a value
that could be a secret.

How the keys read, and three worked examples: README.md, "Any JSON usage endpoint
(http-json)"; the adapter itself: :mod:`store.sync.adapters.http_json`.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from store.secrets import env_name_problem, looks_like_credential
from store.sync.adapter import Option
from store.sync.jsonpaths import JsonPath, PathError

if TYPE_CHECKING:
    from store.config import SourceConfig

PAGINATIONS = ("none", "cursor", "next_url", "link", "offset", "page")
AUTH_MODES = ("none", "bearer", "header:NAME", "basic", "query:NAME")
PLACEHOLDERS = ("start", "end", "start_epoch", "end_epoch", "days")
MAX_WINDOW_DAYS = 3660

OPTIONS: tuple[Option, ...] = (
    Option("auth", str),                  # default: bearer with token_env, none without
    Option("user_env", str),              # basic: the variable holding the user name
    Option("path", str, default=""),
    Option("params", dict, default={}),
    Option("window_days", int, low=1, high=MAX_WINDOW_DAYS),
    Option("last_days", int, low=1, high=MAX_WINDOW_DAYS),
    Option("rows", str, required=True),
    Option("each", str),
    Option("app", str, required=True),
    Option("day", str),
    Option("days_from", str),
    Option("metrics", dict),
    Option("metric", str),
    Option("value", str),
    Option("paginate", str, default="none"),
    Option("next", str),
    Option("more", str),
    Option("cursor_param", str),
    Option("offset_param", str),
    Option("page_param", str),
    Option("page_size", int, low=1, high=1_000_000),
    Option("first_page", int, low=0, high=1),
    Option("total", str),
)

# Which pagination reads which keys (and which of them it needs).
_PAGINATION_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # paginate: (required, optional)
    "none": ((), ()),
    "cursor": (("next", "cursor_param"), ("more",)),
    "next_url": (("next",), ("more",)),
    "link": ((), ()),
    "offset": (("offset_param", "page_size"), ("total", "more")),
    "page": (("page_param", "page_size"), ("total", "more", "first_page")),
}
_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.\[\]-]+")
_FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "cookie"})
DEFAULT_WINDOW_DAYS = 31


@dataclass(frozen=True)
class HttpJsonSpec:
    """An ``http-json`` source's keys, checked and compiled."""

    auth: str                              # none | bearer | header | basic | query
    auth_name: str | None                  # the header or query parameter that carries the token
    user_env: str | None
    path: str
    params: tuple[tuple[str, str], ...]
    window_days: int
    last_days: int | None
    rows: JsonPath
    each: JsonPath | None
    app: JsonPath
    day: JsonPath | None
    days_from: JsonPath | None
    metrics: tuple[tuple[str, JsonPath], ...]          # wide form: (metric name, path to its count)
    metric: JsonPath | None                            # long form: path to the metric's name ...
    value: JsonPath | None                             # ... and to its count
    paginate: str
    next: JsonPath | None
    more: JsonPath | None
    cursor_param: str | None
    offset_param: str | None
    page_param: str | None
    page_size: int | None
    first_page: int
    total: JsonPath | None


def read_spec(source: "SourceConfig", options: dict[str, Any], fail: Callable[[str], Exception]) -> HttpJsonSpec:
    """The spec of ``source`` from its checked ``options`` (every key present, at
    its default when absent); raises ``fail(message)`` naming the key at fault."""
    given = {key for key in source.options}

    def compiled(key: str, *, scopes: bool = True) -> JsonPath | None:
        text = options[key]
        if text is None:
            return None
        try:
            return JsonPath.compile(text, scopes=scopes)
        except PathError as exc:
            raise fail(f"{key!r}: {exc}") from None

    auth, auth_name = _auth(source, options, fail)
    paginate = options["paginate"]
    if paginate not in PAGINATIONS:
        raise fail(f"'paginate' must be one of {', '.join(PAGINATIONS)}")
    required, optional = _PAGINATION_KEYS[paginate]
    for key in required:
        if key not in given:
            raise fail(f"paginate = {paginate!r} needs {key!r}")
    for key in ("next", "more", "cursor_param", "offset_param", "page_param", "page_size", "first_page", "total"):
        if key in given and key not in required + optional:
            users = [mode for mode, (need, may) in _PAGINATION_KEYS.items() if key in need + may]
            raise fail(f"{key!r} is only read with paginate = {' or '.join(repr(u) for u in users)}")

    if options["window_days"] is not None and options["last_days"] is not None:
        raise fail("'window_days' and 'last_days' do not go together: 'last_days' is for an endpoint that gives "
                   "the last N days counted back from today, 'window_days' for one asked for given days")
    if options["day"] is not None and options["days_from"] is not None:
        raise fail("'day' and 'days_from' do not go together: give the day of each item, or the first day of "
                   "a list with one item per day")
    if options["day"] is None and options["days_from"] is None:
        raise fail("missing required key 'day' (or 'days_from')")
    metrics = _metrics(options, fail, compiled)

    for key in ("path",):
        _placeholders(key, options[key], fail)
    params: list[tuple[str, str]] = []
    for name, value in options["params"].items():   # strings or whole numbers (check_options)
        if looks_like_credential(name):
            raise fail(f"'params': {name!r} looks like a credential; put the token in the variable named by "
                       f"token_env and use auth = \"query:{name}\" (sent, never stored or shown)")
        _placeholders(f"params.{name}", str(value), fail)
        params.append((name, str(value)))
    for key in ("cursor_param", "offset_param", "page_param"):
        if options[key] is not None and not _PARAM_NAME.fullmatch(options[key]):
            raise fail(f"{key!r} must be a query parameter name")
    return HttpJsonSpec(
        auth=auth, auth_name=auth_name, user_env=options["user_env"], path=options["path"], params=tuple(params),
        window_days=options["window_days"] or DEFAULT_WINDOW_DAYS, last_days=options["last_days"],
        rows=compiled("rows", scopes=False), each=compiled("each", scopes=False),  # type: ignore[arg-type]
        app=compiled("app"), day=compiled("day"), days_from=compiled("days_from"),  # type: ignore[arg-type]
        metrics=metrics, metric=compiled("metric"), value=compiled("value"),
        paginate=paginate, next=compiled("next", scopes=False), more=compiled("more", scopes=False),
        cursor_param=options["cursor_param"], offset_param=options["offset_param"],
        page_param=options["page_param"], page_size=options["page_size"],
        first_page=1 if options["first_page"] is None else options["first_page"],
        total=compiled("total", scopes=False),
    )


def _auth(source: "SourceConfig", options: dict[str, Any],
          fail: Callable[[str], Exception]) -> tuple[str, str | None]:
    """``(mode, header or parameter name)`` from ``auth``, checked against token_env and user_env."""
    text = options["auth"]
    mode = text if text is not None else ("bearer" if source.token_env else "none")
    name: str | None = None
    if ":" in mode:
        mode, _, name = mode.partition(":")
        name = name.strip()
        if mode not in ("header", "query") or not name:
            raise fail(f"'auth' must be one of {', '.join(AUTH_MODES)}")
        if mode == "header" and (not _HEADER_NAME.fullmatch(name) or name.lower() in _FORBIDDEN_HEADERS):
            raise fail("'auth': header:NAME needs a header name (letters, digits, '-'), not Host, Cookie, ...")
        if mode == "query" and not _PARAM_NAME.fullmatch(name):
            raise fail("'auth': query:NAME needs a query parameter name (letters, digits, '-', '_', '.')")
    elif mode not in ("none", "bearer", "basic"):
        raise fail(f"'auth' must be one of {', '.join(AUTH_MODES)}")
    if mode == "none" and source.token_env:
        raise fail("'token_env' is set but auth = \"none\" sends no token")
    if mode != "none" and not source.token_env:
        raise fail(f"auth = {text!r} needs token_env (the variable holding the token, or the password for basic)")
    user_env = options["user_env"]
    if mode == "basic":
        if user_env is None:
            raise fail("auth = \"basic\" needs user_env (the variable holding the user name)")
        problem = env_name_problem("user_env", user_env)
        if problem is not None:
            raise fail(problem)
    elif user_env is not None:
        raise fail("'user_env' is only read with auth = \"basic\"")
    return mode, name


def _metrics(options: dict[str, Any], fail: Callable[[str], Exception],
             compiled: Callable[..., JsonPath | None]) -> tuple[tuple[str, JsonPath], ...]:
    """The wide form (``metrics``) or the long one (``metric`` and ``value``): exactly one."""
    wide, name, value = options["metrics"], options["metric"], options["value"]
    if wide is not None and (name is not None or value is not None):
        raise fail("'metrics' and 'metric'/'value' do not go together: name each metric's count (metrics), or "
                   "read the name and the count of one figure per item (metric and value)")
    if wide is None:
        if name is None or value is None:
            raise fail("missing required key 'metrics' (or both 'metric' and 'value')")
        return ()
    if not wide:
        raise fail("'metrics' must name at least one metric")
    out: list[tuple[str, JsonPath]] = []
    for metric, path in wide.items():
        if not _METRIC_NAME.fullmatch(metric):
            raise fail(f"'metrics': {metric!r} is not a metric name (lower case letters, digits, '_', "
                       "as in calls_per_day limits)")
        if not isinstance(path, str) or not path.strip():
            raise fail(f"'metrics': {metric!r} must be a JMESPath expression (a string)")
        try:
            out.append((metric, JsonPath.compile(path)))
        except PathError as exc:
            raise fail(f"'metrics': {metric!r}: {exc}") from None
    return tuple(out)


def _placeholders(key: str, text: str, fail: Callable[[str], Exception]) -> None:
    """Refuse a ``{name}`` that is not one of :data:`PLACEHOLDERS` (``{{`` is a brace)."""
    try:
        names = [name for _, name, spec, conversion in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise fail(f"{key!r}: {exc} (write {{{{ and }}}} for a brace)") from None
    for name in names:
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise fail(f"{key!r}: unknown placeholder {{{name}}} (known: {known})")
