"""Deterministic synthetic data for the demo endpoint, computed, never stored.

Every figure is a pure function of ``(seed, consumer index, app, day, metric)``:
consumer ``i`` is derived from a 64-bit mix of ``(seed, i)`` on demand, and a
day's value from the app's base rate, a weekday/trend shape and an entry of a
seeded noise table. Nothing is materialised, so a million consumers and tens of
millions of rows cost the server the same memory as three hundred.

Who is in the data (indices fixed, so the feed order is stable):

- 0 ``northwind-analytics`` (the case of DESIGN.md): eight apps, calendar-2022
  totals of about 789,000,000 calls and 26,375,000,000 records (the letter's "more
  than 780 million" and "26 billion") against an ``enterprise`` tier capped at
  20,000,000 calls and 50,000,000 records a month; no use case declared for the
  consumer nor for six of its eight apps; declares no government end users.
- 1 compliant (enterprise, well under); 2 just under its monthly call cap;
  3 just over it; 4 under every monthly cap but over the daily call cap on four
  days (2022-03-14, 07-04, 09-30, 11-25); 5 six apps, each under the monthly caps, together three times over
  (circumvention); 6 reports endpoints outside its tier; 7 a declared government
  end user, compliant.
- 8..999: generic consumers with one to three apps, daily usage, mostly well
  under their caps (about one in twenty-five over); some report endpoint usage.
- 1000..: the long tail, active one day in every 30 to 120, so that a million
  consumers make tens of millions of usage rows rather than billions.

:class:`DemoData` answers the figures (:meth:`DemoData.totals` gives the exact
sums a sync must reproduce); :mod:`store.demo.server` encodes them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Callable, Iterator, Mapping

from store.errors import ConfigError

EPOCH = date(2021, 10, 1)           # day index 0; values depend on the day, not on the window served
DEMO_START = EPOCH
DEMO_END = date(2022, 12, 31)
DEMO_TODAY = date(2023, 1, 1)       # the X endpoint counts its ``days`` back from here
CASE_ID = "northwind-analytics"
DENSE_CONSUMERS = 1000              # consumers below this index report every day
METRICS = ("calls", "records")

_M64 = (1 << 64) - 1
_NOISE_SIZE = 1 << 16


def mix(*parts: int) -> int:
    """A 64-bit hash of small integers (splitmix64 finaliser): stable across
    processes, unlike ``hash()``."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = ((x ^ (part & _M64)) * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _M64
        x ^= x >> 31
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


# --- tiers --------------------------------------------------------------------

CLAUSES: dict[str, str] = {
    "volume_cap": "Developer Agreement §II.A.3 (usage limits)",
    "rate_limit": "Developer Agreement §II.A.4 (rate limits)",
    "circumvention": "Developer Agreement §II.B.2 (no circumvention of limits across apps)",
    "missing_use_case": "Developer Policy §I.A (declared use case for each app)",
    "endpoint_outside": "Developer Agreement §II.A.1 (licensed endpoints)",
    "use_case_deviation": "Developer Policy §I.B (changes to a declared use case)",
    "government_end_user": "Developer Agreement §III.C (government end users)",
    "restricted_use": "Developer Policy §III.B (surveillance and profiling)",
    "redistribution": "Developer Policy §IV.A (redistribution of content)",
    "storage_deletion": "Developer Agreement §III.D (storage and deletion)",
}

_BASIC_ENDPOINTS = ["/2/tweets", "/2/tweets/search/recent", "/2/users/*"]
_STANDARD_ENDPOINTS = _BASIC_ENDPOINTS + ["/2/tweets/counts/recent", "/2/tweets/search/stream"]


@dataclass(frozen=True)
class DemoTier:
    id: str
    name: str
    agreement_version: str
    allowed_endpoints: list[str] | None
    limits: dict[tuple[str, str], int]      # (metric, period) -> max

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "agreement_version": self.agreement_version,
            "allowed_endpoints": self.allowed_endpoints,
            "limits": [{"metric": m, "period": p, "max": v} for (m, p), v in self.limits.items()],
            "clauses": dict(CLAUSES),
        }


TIERS: dict[str, DemoTier] = {t.id: t for t in (
    DemoTier("basic", "Basic", "2022-01", _BASIC_ENDPOINTS, {
        ("calls", "day"): 10_000, ("calls", "month"): 200_000,
        ("records", "month"): 2_000_000, ("records", "year"): 20_000_000}),
    DemoTier("standard", "Pro", "2022-01", _STANDARD_ENDPOINTS, {
        ("calls", "day"): 100_000, ("calls", "month"): 2_000_000,
        ("records", "month"): 10_000_000, ("records", "year"): 100_000_000}),
    DemoTier("enterprise", "Enterprise", "2021-06", None, {
        ("calls", "day"): 1_000_000, ("calls", "month"): 20_000_000,
        ("records", "month"): 50_000_000, ("records", "year"): 500_000_000}),
)}


# --- consumers and apps -----------------------------------------------------------

@dataclass(frozen=True)
class DemoApp:
    id: str
    name: str
    declared_use_case: str | None
    calls: float                 # base calls per active day
    records: float               # base records per active day
    noise: float = 0.15          # +- relative day-to-day noise
    shaped: bool = True          # weekday dip and growth over the period
    period: int = 1              # active one day in ``period``
    offset: int = 0              # ... on days d with d % period == offset
    spikes: frozenset[int] = frozenset()   # day indices with calls times ``spike``
    spike: float = 1.0
    key: int = 0                 # noise stream of this app

    def active_days(self, lo: int, hi: int) -> range:
        """The day indices in ``[lo, hi)`` on which this app reports usage."""
        if self.period == 1:
            return range(lo, hi)
        first = lo + (self.offset - lo) % self.period
        return range(first, hi, self.period)


@dataclass(frozen=True)
class DemoConsumer:
    index: int
    id: str
    legal_name: str
    notice_contact: str | None
    tier: str
    agreement_version: str
    declared_use_case: str | None
    government_end_users: str | None
    apps: tuple[DemoApp, ...]
    endpoints: tuple[tuple[str, float], ...] = ()   # (endpoint, share of calls) when reported

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "legal_name": self.legal_name, "notice_contact": self.notice_contact,
            "tier": self.tier, "agreement_version": self.agreement_version,
            "declared_use_case": self.declared_use_case,
            "government_end_users": self.government_end_users,
            "apps": [{"id": a.id, "name": a.name, "declared_use_case": a.declared_use_case}
                     for a in self.apps],
        }


_FIRST = ("Alder", "Birch", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Indigo",
          "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orchid", "Pioneer", "Quartz",
          "Redwood", "Summit", "Tundra", "Umber", "Vantage", "Willow", "Xenon", "Yarrow", "Zephyr",
          "Bright", "Clear", "Silver", "North", "Blue", "Iron")
_SECOND = ("Analytics", "Data", "Insights", "Labs", "Media", "Metrics", "Research", "Signal",
           "Social", "Systems", "Works", "Digital", "Intelligence", "Studio", "Partners", "Cloud")
_SUFFIX = ("Ltd", "Inc.", "LLC", "GmbH", "B.V.", "S.A.", "Pty Ltd", "AB", "Oy", "plc")
_USE_CASES = (
    "Brand monitoring dashboards for marketing teams",
    "Academic research on public conversation",
    "Customer support inbox for social mentions",
    "Publishing scheduled posts for clients",
    "Crisis alerting for newsrooms",
    "Audience analytics for creators",
    "Ad campaign performance reporting",
    "Accessibility tooling for screen readers",
)
_APP_KINDS = ("Dashboard", "Listener", "Publisher", "Exporter", "Monitor", "Bot", "Sync", "Reports")
_ENDPOINTS_WITHIN = (("/2/tweets/search/recent", 0.6), ("/2/users/by", 0.25), ("/2/tweets", 0.1))
_ENDPOINTS_OUTSIDE = (("/2/tweets/search/recent", 0.5), ("/2/tweets/search/all", 0.3),
                      ("/2/tweets/sample/stream", 0.1))

_NORTHWIND_APPS = (  # (name, share of the consumer's volume, declared use case)
    ("Northwind Social Listening", 0.22, "Brand sentiment dashboards for marketing clients"),
    ("Northwind Ads Insights", 0.18, "Advertising campaign analytics"),
    ("NW Trend Radar", 0.15, None),
    ("NW Archive Sync", 0.12, None),
    ("Northwind Audience Graph", 0.10, None),
    ("NW Research Export", 0.09, None),
    ("Northwind Data Bridge", 0.08, None),
    ("NW Feed Mirror", 0.06, None),
)
# Calendar-2022 volume of the case, split by the shares above (a little above the
# letter's "more than 780 million calls and 26 billion records").
NORTHWIND_CALLS_2022 = 790_000_000
NORTHWIND_RECORDS_2022 = 26_400_000_000

# The special consumers: index -> builder.
_SPIKE_DAYS = frozenset((date(2022, m, d) - EPOCH).days for m, d in ((3, 14), (7, 4), (9, 30), (11, 25)))


def _special(index: int, seed: int) -> DemoConsumer | None:
    def app(n: int, name: str, use: str | None, calls: float, records: float, **kw: Any) -> DemoApp:
        return DemoApp(f"app-{index}-{n}", name, use, calls, records, key=mix(seed, index, n), **kw)

    if index == 0:
        apps = tuple(
            app(n + 1, name, use, NORTHWIND_CALLS_2022 / 365 * share, NORTHWIND_RECORDS_2022 / 365 * share,
                noise=0.10, shaped=False)
            for n, (name, share, use) in enumerate(_NORTHWIND_APPS))
        return DemoConsumer(0, CASE_ID, "Northwind Analytics Ltd", "legal@northwind-analytics.example",
                            "enterprise", "2021-06", None, "none", apps)
    std = TIERS["standard"].limits
    if index == 1:
        return DemoConsumer(1, "alderbrook-insights", "Alderbrook Insights plc", "counsel@alderbrook.example",
                            "enterprise", "2021-06", "Market research panels", "none", (
                                app(1, "Alderbrook Panels", "Market research panels", 120_000, 300_000),
                                app(2, "Alderbrook Pulse", "Survey recruitment", 80_000, 200_000)))
    if index == 2:  # just under the monthly call cap, every month
        return DemoConsumer(2, "copperleaf-labs", "Copperleaf Labs GmbH", "recht@copperleaf.example",
                            "standard", "2022-01", "Social customer care", "none", (
                                app(1, "Copperleaf Care", "Social customer care",
                                    std["calls", "month"] / 31 * 0.94, std["records", "month"] / 31 * 0.5,
                                    noise=0.02, shaped=False),))
    if index == 3:  # just over the monthly call cap (28-day February stays under)
        return DemoConsumer(3, "fenwick-signal", "Fenwick Signal LLC", "legal@fenwick-signal.example",
                            "standard", "2022-01", "Trading signals from public posts", "none", (
                                app(1, "Fenwick Signal Engine", "Trading signals from public posts",
                                    std["calls", "month"] / 30 * 1.03, std["records", "month"] / 31 * 0.6,
                                    noise=0.01, shaped=False),))
    if index == 4:  # under the monthly caps, over the daily call cap on four days
        return DemoConsumer(4, "ostara-social", "Ostara Social AB", "juridik@ostara.example",
                            "standard", "2022-01", "Scheduling and publishing for agencies", "none", (
                                app(1, "Ostara Scheduler", "Scheduling and publishing for agencies",
                                    std["calls", "day"] * 0.5, std["records", "month"] / 30 * 0.3,
                                    noise=0.03, shaped=False, spikes=_SPIKE_DAYS, spike=2.6),))
    if index == 5:  # six apps each under the caps, together three times over
        return DemoConsumer(5, "quillmark-systems", "Quillmark Systems Inc.", "legal@quillmark.example",
                            "standard", "2022-01", "Newsroom alerting", "none", tuple(
                                app(n, f"Quillmark Alerts {n}", "Newsroom alerting",
                                    std["calls", "month"] / 31 * 0.5, std["records", "month"] / 31 * 0.5,
                                    noise=0.05, shaped=False)
                                for n in range(1, 7)))
    if index == 6:  # reports endpoints its basic tier does not license
        basic = TIERS["basic"].limits
        return DemoConsumer(6, "tidewater-metrics", "Tidewater Metrics Pty Ltd", "legal@tidewater.example",
                            "basic", "2022-01", "Hashtag trend reports", "none", tuple(
                                app(n, f"Tidewater {kind}", "Hashtag trend reports",
                                    basic["calls", "month"] / 31 * 0.3, basic["records", "month"] / 31 * 0.3)
                                for n, kind in ((1, "Trends"), (2, "Archive")))
                            , endpoints=_ENDPOINTS_OUTSIDE)
    if index == 7:
        return DemoConsumer(7, "juniper-civic-data", "Juniper Civic Data Oy", "legal@juniper-civic.example",
                            "standard", "2022-01", "Public-service announcements monitoring",
                            "Finnish Meteorological Institute (notified 2022-02-01)", (
                                app(1, "Juniper Alerts", "Public-service announcements monitoring",
                                    30_000, 200_000),), endpoints=_ENDPOINTS_WITHIN)
    return None


SPECIAL_CONSUMERS = 8
_TAIL_PERIODS = (30, 45, 60, 90, 120)
_APPS_PER_CONSUMER = (1, 1, 2, 2, 3)


def _schedule(seed: int, index: int, n: int, dense: bool) -> tuple[int, int, int]:
    """App ``n`` of generic consumer ``index``: (period, offset, its hash)."""
    ha = mix(seed, index, n)
    period = 1 if dense else _TAIL_PERIODS[(ha >> 8) % len(_TAIL_PERIODS)]
    return period, (ha >> 24) % period, ha


def _generic(index: int, seed: int, dense_below: int = DENSE_CONSUMERS) -> DemoConsumer:
    h = mix(seed, index, 0xC0)
    w1, w2 = _FIRST[h % len(_FIRST)], _SECOND[(h >> 8) % len(_SECOND)]
    suffix = _SUFFIX[(h >> 16) % len(_SUFFIX)]
    slug = f"{w1}-{w2}".lower()
    roll = (h >> 24) % 100
    tier = "basic" if roll < 60 else "standard" if roll < 90 else "enterprise"
    limits = TIERS[tier].limits
    use = _USE_CASES[(h >> 32) % len(_USE_CASES)]
    napps = _APPS_PER_CONSUMER[(h >> 40) % len(_APPS_PER_CONSUMER)]
    # Share of the tier's monthly caps: mostly well under; about one in 25 over.
    over = (h >> 44) % 25 == 0
    level = (1.1 + ((h >> 48) % 100) / 50) if over else (0.05 + ((h >> 48) % 100) / 180)
    record_level = level * (0.4 + ((h >> 52) % 60) / 100)
    dense = index < dense_below
    apps = []
    for n in range(1, napps + 1):
        period, offset, ha = _schedule(seed, index, n, dense)
        missing_use = ha % 20 == 0   # an app now and then never declared its use case
        # Long-tail apps are active one day in ``period``: a day of theirs carries
        # about a month's share of the cap, so they too are mostly well under.
        per_day = min(period, 30) / 30
        apps.append(DemoApp(
            f"app-{index}-{n}", f"{w1} {_APP_KINDS[(ha >> 16) % len(_APP_KINDS)]}",
            None if missing_use else use,
            limits["calls", "month"] * level / 30 / napps * per_day,
            limits["records", "month"] * record_level / 30 / napps * per_day,
            period=period, offset=offset, key=ha))
    endpoints: tuple[tuple[str, float], ...] = ()
    if index % 37 == 5:
        endpoints = _ENDPOINTS_OUTSIDE if (h >> 56) % 4 == 0 and tier != "enterprise" else _ENDPOINTS_WITHIN
    # Some consumers with an undeclared app never declared a use case of their own either.
    declared = None if any(a.declared_use_case is None for a in apps) and (h >> 36) % 2 else use
    return DemoConsumer(
        index, f"{slug}-{index}", f"{w1} {w2} {suffix}", f"legal@{slug.replace('-', '')}.example",
        tier, TIERS[tier].agreement_version, declared, "none" if (h >> 60) % 3 else None, tuple(apps), endpoints)


# --- X client apps ----------------------------------------------------------------

@dataclass(frozen=True)
class XApp:
    client_app_id: str
    records: float              # base posts retrieved per day
    consumer: str | None        # roster consumer id, None: left for warden to make an auto consumer


X_APPS: tuple[XApp, ...] = (
    XApp("29183745", 1_200_000, "kestrel-media"),
    XApp("30482911", 20_000, "bluefin-research"),
    XApp("31177204", 180_000, "harbor-civic-labs"),
    XApp("31177205", 180_000, "harbor-civic-labs"),
    XApp("40811932", 5_000, None),
)
# Consumers known only from the demo config's roster (their usage comes from X).
X_CONSUMERS: dict[str, dict[str, Any]] = {
    "kestrel-media": {"legal_name": "Kestrel Media GmbH", "notice_contact": "recht@kestrel-media.example",
                      "tier": "standard", "agreement_version": "2022-01",
                      "declared_use_case": "Broadcast monitoring", "government_end_users": "none"},
    "bluefin-research": {"legal_name": "Bluefin Research LLC", "notice_contact": "legal@bluefin.example",
                         "tier": "basic", "agreement_version": "2022-01",
                         "declared_use_case": "Academic research on public conversation",
                         "government_end_users": "none"},
    "harbor-civic-labs": {"legal_name": "Harbor Civic Labs Inc.", "notice_contact": "legal@harborcivic.example",
                          "tier": "standard", "agreement_version": "2022-01",
                          "declared_use_case": "Civic engagement analytics", "government_end_users": None},
}
X_PROJECT_CAP = 50_000_000_000
X_CAP_RESET_DAY = 19


# --- the generator ------------------------------------------------------------------

Overrides = Mapping[int, "str | Mapping[str, Any]"]


class DemoData:
    """The demo's consumers and figures, computed on demand.

    ``consumers``: how many (1..1,000,000); ``seed`` changes names and noise, not
    the cast (the case stays above its thresholds for every seed); ``start`` /
    ``end``: the days served (default 2021-10-01..2022-12-31), or ``days`` for the
    last ``days`` days up to ``end``; ``today``: the day X counts its ``days`` back
    from (default 2023-01-01, the day after the feed's last); ``names_override``: consumer index -> a legal
    name, or a mapping of fields to replace (``legal_name``, ``notice_contact``,
    ``declared_use_case``, ``government_end_users``, ``app_name``) so tests can
    inject hostile text; ``dense``: how many consumers (the first) report every
    day, the others one day in 30 to 120 (default ``DENSE_CONSUMERS``).
    """

    def __init__(self, consumers: int = 300, seed: int = 7, *, start: date | None = None,
                 end: date | None = None, days: int | None = None,
                 names_override: Overrides | None = None, dense: int = DENSE_CONSUMERS,
                 today: date | None = None) -> None:
        if not 1 <= consumers <= 1_000_000:
            raise ConfigError(f"demo: consumers must be 1..1,000,000, not {consumers:,}")
        self.consumers = consumers
        self.seed = seed
        self.dense = dense
        self.end = end or DEMO_END
        self.start = start or DEMO_START
        if days is not None:
            if days < 1:
                raise ConfigError(f"demo: days must be positive, not {days}")
            self.start = self.end - timedelta(days=days - 1)
        if self.start > self.end:
            raise ConfigError(f"demo: start {self.start} is after end {self.end}")
        self.names_override = dict(names_override or {})
        # X counts its ``days`` back from its own today (DEMO_TODAY, unless the
        # demo runs against the real clock: ``warden demo`` passes today's date).
        self.today = today or DEMO_TODAY
        rng = random.Random(seed)
        self._noise = [rng.uniform(-1.0, 1.0) for _ in range(_NOISE_SIZE)]
        self.first_day = (self.start - EPOCH).days      # day index of ``start``
        self.last_day = (self.end - EPOCH).days
        span = self.last_day - self.first_day + 1
        self._day_json = [f'"{(self.start + timedelta(days=i)).isoformat()}",' for i in range(span)]
        self._shape = [_shape(self.first_day + i, self.start + timedelta(days=i)) for i in range(span)]
        # Upstream corrections a test asked for (few; the rest stays computed).
        self._revised: dict[str, dict[tuple[int, str], int]] = {}
        self._withdrawn: dict[str, set[int]] = {}
        # Bumped by every such correction: what the endpoint served before it may differ now.
        self.version = 0
        # Pages look a consumer up several times; a bounded cache keeps memory flat.
        self.consumer: Callable[[int], DemoConsumer] = lru_cache(maxsize=8192)(self._consumer)

    # -- consumers ---------------------------------------------------------------

    def _consumer(self, index: int) -> DemoConsumer:
        if not 0 <= index < self.consumers:
            raise IndexError(index)
        consumer = _special(index, self.seed) or _generic(index, self.seed, self.dense)
        override = self.names_override.get(index)
        if override is not None:
            fields = {"legal_name": override} if isinstance(override, str) else dict(override)
            app_name = fields.pop("app_name", None)
            if app_name is not None:
                fields["apps"] = tuple(replace(a, name=app_name) for a in consumer.apps)
            consumer = replace(consumer, **fields)
        return consumer

    def index_of(self, consumer_id: str) -> int:
        """The feed index of ``consumer_id`` (``KeyError`` when not in this data)."""
        for index in range(min(SPECIAL_CONSUMERS, self.consumers)):
            if self.consumer(index).id == consumer_id:
                return index
        tail = consumer_id.rsplit("-", 1)[-1]
        if tail.isdigit() and SPECIAL_CONSUMERS <= int(tail) < self.consumers:
            if self.consumer(int(tail)).id == consumer_id:
                return int(tail)
        raise KeyError(consumer_id)

    def silent(self, index: int, lo: int, hi: int, *, usage: bool) -> bool:
        """True when consumer ``index`` surely reports no usage (``usage``) or no
        endpoint calls on day indices ``[lo, hi)``; decided without building the
        consumer, so a page over a few days passes most of a long tail cheaply
        (False: build it and see)."""
        if lo >= hi:
            return True
        if index < SPECIAL_CONSUMERS:
            return False
        if not usage:
            return index % 37 != 5       # the generic consumers that report endpoints
        if index < self.dense:
            return False
        napps = _APPS_PER_CONSUMER[(mix(self.seed, index, 0xC0) >> 40) % len(_APPS_PER_CONSUMER)]
        for n in range(1, napps + 1):
            period, offset, _ = _schedule(self.seed, index, n, False)
            if lo + (offset - lo) % period < hi:
                return False
        return True

    def shard_range(self, shard: int, shards: int) -> tuple[int, int]:
        """The consumer indices ``[lo, hi)`` of shard ``shard`` of ``shards``."""
        return shard * self.consumers // shards, (shard + 1) * self.consumers // shards

    def tiers(self) -> list[DemoTier]:
        return list(TIERS.values())

    # -- figures -----------------------------------------------------------------

    def clip(self, start: date | None, end: date | None) -> tuple[int, int]:
        """Day indices ``[lo, hi)`` of the served window intersected with start..end."""
        lo = self.first_day if start is None else max(self.first_day, (start - EPOCH).days)
        hi = self.last_day + 1 if end is None else min(self.last_day + 1, (end - EPOCH).days + 1)
        return lo, max(lo, hi)

    # -- upstream revisions ------------------------------------------------------

    def revise(self, app_id: str, day: date, metric: str, value: int) -> None:
        """From now on serve ``value`` for one figure (an upstream correction)."""
        self._revised.setdefault(app_id, {})[(day - EPOCH).days, metric] = value
        self.version += 1

    def withdraw(self, app_id: str, day: date) -> None:
        """From now on serve no usage of ``app_id`` on ``day`` (both metrics withdrawn upstream);
        ``app_id`` is a feed app's id or an X client app's."""
        self._withdrawn.setdefault(app_id, set()).add((day - EPOCH).days)
        self.version += 1

    def withdrawn(self, app_id: str, day: date) -> bool:
        """Whether :meth:`withdraw` took ``app_id``'s usage on ``day`` away."""
        return (day - EPOCH).days in self._withdrawn.get(app_id, ())

    def clear_revisions(self) -> None:
        self._revised.clear()
        self._withdrawn.clear()
        self.version += 1

    def days_of(self, app: DemoApp, lo: int, hi: int) -> range | list[int]:
        """The day indices in ``[lo, hi)`` for which ``app`` has usage (withdrawn days left out)."""
        days = app.active_days(lo, hi)
        withdrawn = self._withdrawn.get(app.id)
        return [d for d in days if d not in withdrawn] if withdrawn else days

    # -- figures -------------------------------------------------------------------

    def values(self, app: DemoApp, metric: str, days: range | list[int]) -> list[int]:
        """``app``'s ``metric`` on each day index of ``days`` (which must lie in the served window)."""
        base = app.calls if metric == "calls" else app.records
        key = app.key if metric == "calls" else app.key >> 20
        noise, amp, first = self._noise, app.noise, self.first_day
        if app.shaped:
            shape = self._shape
            out = [int(base * shape[d - first] * (1.0 + amp * noise[(key + d * 40503) & 0xFFFF])) for d in days]
        else:
            out = [int(base * (1.0 + amp * noise[(key + d * 40503) & 0xFFFF])) for d in days]
        if app.spikes and metric == "calls":
            for i, d in enumerate(days):
                if d in app.spikes:
                    out[i] = int(out[i] * app.spike)
        revised = self._revised.get(app.id)
        if revised:
            for i, d in enumerate(days):
                out[i] = revised.get((d, metric), out[i])
        return out

    def day_json(self, d: int) -> str:
        """``'"2022-01-01",'``: day index ``d`` as it starts a JSON row cell."""
        return self._day_json[d - self.first_day]

    def day_of(self, d: int) -> date:
        return EPOCH + timedelta(days=d)

    def totals(self, consumer_id: str, start: date | None = None, end: date | None = None) -> dict[str, int]:
        """Exact ``{"calls": n, "records": n}`` of a feed consumer over start..end
        (inclusive, clipped to the served window): what a sync must have stored."""
        consumer = self.consumer(self.index_of(consumer_id))
        lo, hi = self.clip(start, end)
        return {m: sum(sum(self.values(a, m, self.days_of(a, lo, hi))) for a in consumer.apps) for m in METRICS}

    def app_totals(self, consumer_id: str, start: date | None = None,
                   end: date | None = None) -> dict[str, dict[str, int]]:
        """Exact per-app totals: app id -> ``{"calls": n, "records": n}``."""
        consumer = self.consumer(self.index_of(consumer_id))
        lo, hi = self.clip(start, end)
        return {a.id: {m: sum(self.values(a, m, self.days_of(a, lo, hi))) for m in METRICS}
                for a in consumer.apps}

    def usage_rows(self, start: date | None = None, end: date | None = None) -> int:
        """How many usage rows the feed serves for start..end (all shards); O(consumers)."""
        lo, hi = self.clip(start, end)
        return sum(len(self.days_of(a, lo, hi)) * 2
                   for i in range(self.consumers) for a in self.consumer(i).apps)

    def endpoint_calls(self, app: DemoApp, endpoints: tuple[tuple[str, float], ...],
                       days: range | list[int]) -> Iterator[tuple[int, str, int]]:
        """(day index, endpoint, calls) of an app that reports endpoints."""
        for d, calls in zip(days, self.values(app, "calls", days)):
            for endpoint, share in endpoints:
                yield d, endpoint, int(calls * share)

    # -- X ---------------------------------------------------------------------------

    def x_days(self, days: int) -> list[date]:
        """The days the X endpoint reports for ``days=``: the ``days`` days before today."""
        return [self.today - timedelta(days=days - i) for i in range(days)]

    def x_usage(self, app: XApp, day: date) -> int:
        d = (day - EPOCH).days
        key = mix(self.seed, 0x58, int(app.client_app_id))
        weekday = 0.8 if day.weekday() >= 5 else 1.08
        return int(app.records * weekday * (1.0 + 0.2 * self._noise[(key + d * 40503) & 0xFFFF]))

    def x_totals(self, client_app_id: str, days: int = 90) -> int:
        """Exact posts retrieved by an X client app over the last ``days`` days."""
        app = next(a for a in X_APPS if a.client_app_id == client_app_id)
        return sum(self.x_usage(app, day) for day in self.x_days(days) if not self.withdrawn(client_app_id, day))

    def x_consumer_totals(self, consumer_id: str, days: int = 90) -> dict[str, int]:
        """Exact ``{"records": n}`` of a roster consumer of the X apps over the last ``days`` days."""
        return {"records": sum(self.x_totals(a.client_app_id, days) for a in X_APPS if a.consumer == consumer_id)}

    @property
    def x_project_id(self) -> str:
        """A 22-digit project id, as X documents them."""
        return str(10**21 + mix(self.seed, 0x50) % (9 * 10**21))


def _shape(d: int, day: date) -> float:
    """Weekday dip and a slow growth across the default period (mean about 1)."""
    weekday = 0.8 if day.weekday() >= 5 else 1.08
    trend = 0.85 + 0.3 * min(max(d, 0), 456) / 456
    return weekday * trend
