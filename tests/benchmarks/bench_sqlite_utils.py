"""Why sqlite-utils stays off the sync's hot path (not a test; run as a script).

    python tests/benchmarks/bench_sqlite_utils.py

Writes the same 200,000 usage figures into warden's ``usage`` table four ways,
in one transaction each, and prints rows per CPU-second (best of three):
``executemany`` of a plain INSERT and of the sync's upsert, and sqlite-utils'
``insert_all`` and ``upsert_all``. warden uses sqlite-utils where its speed
does not matter (setting up the name index, inspecting a database from the
command line) and plain ``executemany`` where it does.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

ROWS = 200_000
COLUMNS = ("source", "app_id", "day", "metric", "value", "run_id", "page_id")


def figures() -> list[dict[str, Any]]:
    out = []
    for i in range(ROWS // 2):
        app, day = divmod(i, 336)     # 12 months x 28 days
        for metric in ("calls", "records"):
            out.append({"source": "bench", "app_id": f"app-{app}", "day": f"2022-{1 + day // 28:02d}-"
                        f"{1 + day % 28:02d}", "metric": metric, "value": i, "run_id": 1, "page_id": 1})
    return out


def timed(write: Callable[[sqlite3.Connection, list[dict[str, Any]]], None], rows: list[dict[str, Any]]) -> float:
    from store.db import connect

    best = 0.0
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            conn = connect(Path(tmp) / "w.db")
            began = time.process_time()
            write(conn, rows)
            best = max(best, len(rows) / (time.process_time() - began))
            conn.close()
    return best


def executemany(upsert: bool) -> Callable[[sqlite3.Connection, list[dict[str, Any]]], None]:
    sql = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    if upsert:
        sql += (" ON CONFLICT (source, app_id, day, metric) DO UPDATE SET value = excluded.value, "
                "run_id = excluded.run_id, page_id = excluded.page_id")

    def write(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
        conn.execute("BEGIN")
        conn.executemany(sql, [tuple(row.values()) for row in rows])
        conn.execute("COMMIT")
    return write


def sqlite_utils_all(upsert: bool) -> Callable[[sqlite3.Connection, list[dict[str, Any]]], None]:
    def write(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
        from sqlite_utils import Database

        table = Database(conn, recursive_triggers=False, execute_plugins=False).table("usage")
        if upsert:
            table.upsert_all(rows, pk=("source", "app_id", "day", "metric"), batch_size=10_000)
        else:
            table.insert_all(rows, batch_size=10_000)
    return write


def main() -> int:
    rows = figures()
    plain = timed(executemany(False), rows)
    upsert = timed(executemany(True), rows)
    su_insert = timed(sqlite_utils_all(False), rows)
    su_upsert = timed(sqlite_utils_all(True), rows)
    print(f"sqlite-utils benchmark ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}), {len(rows):,} usage rows, "
          "rows per CPU-second, best of 3")
    print(f"  insert: executemany {plain:,.0f}, sqlite-utils insert_all {su_insert:,.0f} ({su_insert / plain:.2f})")
    print(f"  upsert: executemany {upsert:,.0f}, sqlite-utils upsert_all {su_upsert:,.0f} ({su_upsert / upsert:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
