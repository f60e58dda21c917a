"""Candidate findings: what the rules detected (:mod:`store.rules`), written
against what is stored.

Per consumer evaluated, each detection is matched to the stored rule finding of
the same ``dedupe_key``:

* none stored: a new ``candidate`` finding;
* stored and decided by a reviewer (status not ``candidate``): never changed;
* a figure a reviewer sees changed (severity, metric, actual, limit, ratio,
  period, or anything in ``figures`` but the provenance lists): rewritten,
  ``version`` + 1 (a reviewer deciding it with the old version is refused and
  shown the new figures);
* only the provenance changed (``figures.runs`` / ``figures.pages``: the same
  figures fetched again by a newer sync): the lists are updated, the version is
  not, so a reviewer's open dialog stays valid;
* unchanged: not written.

A stored candidate no longer detected (usage revised downwards, a use case
declared, an app moved) is kept, not deleted (a reviewer may already be
reading it), with ``figures.no_longer_detected = {"since": <time>}`` and
severity ``info``; if it is detected again it is rewritten with the new figures.

Each chunk's writes go in one short transaction, guarded by status and version
(a reviewer deciding meanwhile wins), with the queue summary of the consumers
whose findings changed and, for those with a new finding, the recurrence rule
(:mod:`store.casework.recurrence`: a breach of the limits a resolved or closed
case cited reopens it) -- whichever path evaluated them, incremental or full.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from store.casework.recurrence import reopen_on_recurrence
from store.db import transaction
from store.queue_summary import refresh_summary

# The parts of ``figures`` that say where a figure came from, not what it is.
PROVENANCE_KEYS: tuple[str, ...] = ("runs", "pages")


@dataclass
class RulesResult:
    """What a rules run did to the findings."""

    created: int = 0
    updated: int = 0                 # a figure a reviewer sees changed: version + 1
    provenance: int = 0              # only the runs and pages behind the figures changed: same version
    unchanged: int = 0               # computed again with the same figures, or decided by a reviewer
    no_longer_detected: int = 0      # candidates newly marked as no longer detected
    consumers: int = 0               # consumers evaluated
    mode: str = "changed"            # "full": every consumer; "changed": those whose data changed; "named"


@dataclass
class Candidate:
    """One detection of one rule for one consumer and period."""

    consumer_id: str
    category: str
    period: str
    period_start: str
    period_end: str
    severity: str
    metric: str | None
    actual: int | None
    limit_value: int | None
    ratio: float | None
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        if self.category == "missing_use_case":
            return f"missing_use_case|{self.consumer_id}"
        if self.category == "endpoint_outside":
            return f"endpoint_outside|{self.consumer_id}|{self.period}"
        limit = self.figures["limit"]
        return f"{self.category}|{self.consumer_id}|{self.period}|{limit['metric']}_per_{limit['period']}"


_EXISTING = """
SELECT id, dedupe_key, consumer_id, status, severity, metric, actual, limit_value, ratio,
       period, period_start, period_end, figures, version
FROM finding
WHERE consumer_id IN (SELECT value FROM json_each(?)) AND rule_id IS NOT NULL
"""
_INSERT = """
INSERT INTO finding (consumer_id, category, period, period_start, period_end, severity, status,
                     rule_id, metric, actual, limit_value, ratio, figures, dedupe_key,
                     detected_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, 'candidate', ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (dedupe_key) DO NOTHING
"""
# Guarded by status and version: a reviewer deciding meanwhile wins.
_UPDATE = """
UPDATE finding SET severity = ?, metric = ?, actual = ?, limit_value = ?, ratio = ?, period = ?,
       period_start = ?, period_end = ?, figures = ?, updated_at = ?, version = version + 1
WHERE id = ? AND status = 'candidate' AND version = ?
"""
_UPDATE_PROVENANCE = "UPDATE finding SET figures = ? WHERE id = ? AND status = 'candidate' AND version = ?"


def dump_figures(figures: dict[str, Any]) -> str:
    """``figures`` as stored: canonical JSON."""
    return json.dumps(figures, sort_keys=True, separators=(",", ":"))


def seen_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """``figures`` without its provenance lists: what a reviewer reads as the finding."""
    return {key: value for key, value in figures.items() if key not in PROVENANCE_KEYS}


def store_candidates(conn: sqlite3.Connection, consumer_ids: str, candidates: list[Candidate], now: str,
                     result: RulesResult) -> None:
    """Write the detections of the consumers ``consumer_ids`` (a JSON array) as
    the module docstring says, counting into ``result``."""
    existing = {row["dedupe_key"]: row for row in conn.execute(_EXISTING, (consumer_ids,))}
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    provenance: list[tuple[Any, ...]] = []
    touched: set[str] = set()
    seen: set[str] = set()
    for candidate in candidates:
        key = candidate.dedupe_key
        seen.add(key)
        figures = dump_figures(candidate.figures)
        row = existing.get(key)
        if row is None:
            inserts.append((candidate.consumer_id, candidate.category, candidate.period, candidate.period_start,
                            candidate.period_end, candidate.severity, candidate.category, candidate.metric,
                            candidate.actual, candidate.limit_value, candidate.ratio, figures, key, now, now))
            touched.add(candidate.consumer_id)
            continue
        fresh = (candidate.severity, candidate.metric, candidate.actual, candidate.limit_value, candidate.ratio,
                 candidate.period, candidate.period_start, candidate.period_end)
        stored = (row["severity"], row["metric"], row["actual"], row["limit_value"], row["ratio"],
                  row["period"], row["period_start"], row["period_end"])
        if row["status"] != "candidate" or (fresh == stored and figures == row["figures"]):
            result.unchanged += 1
        elif fresh == stored and seen_figures(candidate.figures) == seen_figures(json.loads(row["figures"] or "{}")):
            provenance.append((figures, row["id"], row["version"]))
            result.provenance += 1
        else:
            updates.append((*fresh, figures, now, row["id"], row["version"]))
            touched.add(candidate.consumer_id)
            result.updated += 1

    for key, row in existing.items():
        if key in seen or row["status"] != "candidate":
            continue
        stored_figures = json.loads(row["figures"] or "{}")
        if "no_longer_detected" in stored_figures:
            result.unchanged += 1
            continue
        stored_figures["no_longer_detected"] = {"since": now}
        updates.append(("info", row["metric"], row["actual"], row["limit_value"], row["ratio"], row["period"],
                        row["period_start"], row["period_end"], dump_figures(stored_figures), now, row["id"],
                        row["version"]))
        touched.add(row["consumer_id"])
        result.no_longer_detected += 1

    if not (inserts or updates or provenance):
        return
    with transaction(conn, point="rules"):
        # rowcount, not total_changes: triggers (finding_month) change rows too.
        result.created += max(0, conn.executemany(_INSERT, inserts).rowcount)
        conn.executemany(_UPDATE, updates)
        conn.executemany(_UPDATE_PROVENANCE, provenance)
        # A new breach of limits an ended case cited reopens it (store.casework.recurrence).
        reopen_on_recurrence(conn, {insert[0] for insert in inserts}, now=now)
        refresh_summary(conn, sorted(touched))
