"""Faults played on the wire: how the demo endpoint answers in a fault's place
(a status, a reset connection, a stall, a drip, a huge body, a gzip bomb) or
rewrites a normal page (bad counts, missing ids, repeated cursors). What each
fault is and how it is written: :mod:`store.demo.faults`."""

from __future__ import annotations

import json
import socket
import struct
import time
import zlib
from email.utils import formatdate
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from typing import Any

from store.demo import shapes, vendors
from store.demo.faults import Fault
from store.demo.wire import ERROR_CODES, USAGE_CAPPED, X_RATE_LIMIT, Answer, dumps, error


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], *,
         content_type: str = "application/json", length: int | None = None) -> None:
    """One whole answer with a Content-Length (``length``: claim another one)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def play(handler: BaseHTTPRequestHandler, endpoint: Any, fault: Fault, path: str,
         query: dict[str, str]) -> bool:
    """Answer in the fault's place, through ``handler`` (of ``endpoint``); False
    when the normal answer should follow (stall)."""
    params = fault.params
    x = path.startswith("/2/")
    kind = fault.kind
    if kind == "stall":
        endpoint._stopping.wait(float(params.get("seconds", 5.0)))
        return False
    if kind == "drip":
        answer = endpoint.answer(path, query, handler.headers.get("Authorization"))
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        pieces = 20
        step = -(-len(answer.body) // pieces)
        pause = float(params.get("seconds", 5.0)) / pieces
        for start in range(0, len(answer.body), step):
            if endpoint._stopping.wait(pause):
                handler.close_connection = True
                return True
            handler.wfile.write(answer.body[start:start + step])
        return True
    if kind == "reset":
        # SO_LINGER 0: close() sends RST, the client sees "connection reset".
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True
        return True
    if kind == "status":
        code = params["code"]
        headers: dict[str, str] = {}
        now = time.time()
        if "retry_after" in params:
            headers["Retry-After"] = str(params["retry_after"])
        if "retry_after_date" in params:
            headers["Retry-After"] = formatdate(now + params["retry_after_date"], usegmt=True)
        if "reset" in params:
            headers["x-rate-limit-limit"] = str(X_RATE_LIMIT)
            headers["x-rate-limit-remaining"] = "0"
            headers["x-rate-limit-reset"] = str(int(now + params["reset"]))
        if code == 304:   # Not Modified has no body (HTTP): its headers only
            handler.send_response(304)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
        elif "body" in params:
            send(handler, code, str(params["body"]).encode(), headers, content_type="text/plain")
        else:
            message = f"injected fault: HTTP {code}"
            answer = error(code, ERROR_CODES.get(code, "error"), message, x=x, headers=headers)
            send(handler, code, answer.body, answer.headers)
        return True
    if kind == "usage_capped":
        code = params.get("code", 429)
        body = dumps({"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly product cap",
                       "type": USAGE_CAPPED, "period": "Monthly", "scope": "Product", "status": code})
        send(handler, code, body, {})
        return True
    if kind == "non_json":
        body = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon.</body></html>"
        send(handler, 200, body, {}, content_type="text/html")
        return True
    if kind == "truncated":
        answer = endpoint.answer(path, query, handler.headers.get("Authorization"))
        half = answer.body[:len(answer.body) // 2]
        send(handler, answer.status, half, answer.headers, length=len(answer.body))
        handler.close_connection = True
        return True
    if kind == "huge":
        _huge(handler, endpoint, int(params.get("size", 300_000_000)), bool(params.get("chunked", 0)))
        return True
    if kind == "gzip_bomb":
        body = gzip_bomb(int(params.get("size", 1 << 30)))
        send(handler, 200, body, {"Content-Encoding": "gzip"})
        return True
    raise AssertionError(kind)


def _huge(handler: BaseHTTPRequestHandler, endpoint: Any, size: int, chunked: bool) -> None:
    """A well-formed usage page of ``size`` bytes, streamed (never held in memory)."""
    head = b'{"columns":["app","day","metric","value"],"rows":['
    row = b'["app-0-1","2022-01-01","calls",1],'
    last = b'["app-0-1","2022-01-01","calls",1]'
    tail = b'],"next":null}'
    fixed = len(head) + len(last) + len(tail)
    count, pad = divmod(max(0, size - fixed), len(row))
    block = row * 2048
    stopping = endpoint._stopping
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Content-Length", str(fixed + count * len(row) + pad))
    handler.end_headers()
    handler.close_connection = True

    def write(data: bytes) -> None:
        if chunked:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            handler.wfile.write(data)

    write(head)
    full, rest = divmod(count, 2048)
    for _ in range(full):
        if stopping.is_set():
            return
        write(block)
    write(row * rest + b" " * pad + last + tail)
    if chunked:
        handler.wfile.write(b"0\r\n\r\n")


def rewrite(fault: Fault, answer: Answer, query: dict[str, str]) -> Answer:
    """A normal page rewritten by a page fault (bad counts, missing ids, cursors)."""
    if answer.family in shapes.FAMILIES:
        return shapes.rewrite(fault, answer, query)
    if answer.family in vendors.FAMILIES or answer.family.startswith("aws"):
        return vendors.rewrite(fault, answer, query)
    page = json.loads(answer.body)
    kind = fault.kind
    bad: Any = {"wrong_type": {"value": 1} if fault.params.get("as", "object") == "object" else [1],
                "negative": -5, "over64": 2**64 + 5, "fractional": 62.5}.get(kind)
    if answer.family == "rows":
        items = page["rows"]
        count_at: tuple[Any, Any] | None = (items[0], 3) if items else None
        id_at: tuple[Any, Any] | None = (items[0], 0) if items else None
    elif answer.family == "data":
        items = page["data"]
        first = items[0] if items else None
        limits = first.get("limits") if first else None
        # Tiers carry counts (limits); consumers have none, so only wrong_type touches them.
        count_at = (limits[0], "max") if limits else None
        if count_at is None and first is not None and kind == "wrong_type":
            count_at = (first, "legal_name")
        id_at = (first, "id") if first else None
    else:  # X
        apps = page.get("data", {}).get("daily_client_app_usage", [])
        items = apps[0]["usage"] if apps else []
        count_at = (items[0], "usage") if items else None
        id_at = (apps[0], "client_app_id") if apps else None
    if kind == "string_counts":
        forms = (str, lambda v: f"0{v}", lambda v: f"{v}.0")
        if answer.family == "rows":
            for i, row in enumerate(items):
                row[3] = forms[i % 3](row[3])
        elif answer.family == "x":
            for app in apps:
                for i, entry in enumerate(app["usage"]):
                    entry["usage"] = forms[i % 3](int(entry["usage"]))
        elif answer.family == "data":
            for i, item in enumerate(items):
                for limit in item.get("limits", []):
                    limit["max"] = forms[i % 3](limit["max"])
    elif bad is not None and count_at is not None:
        count_at[0][count_at[1]] = bad
    elif kind in ("missing_count", "missing_id") and (count_at if kind == "missing_count" else id_at) is not None:
        container, key = count_at if kind == "missing_count" else id_at  # type: ignore[misc]
        if isinstance(container, list):
            container[key] = None
        else:
            del container[key]
    elif kind == "duplicate" and items:
        copy = json.loads(json.dumps(items[0]))
        differ = int(fault.params.get("differ", 0))
        if differ and answer.family == "rows":
            copy[3] += differ
        elif differ and answer.family == "x":
            copy["usage"] = str(int(copy["usage"]) + differ)
        items.insert(1, copy)
    elif kind == "repeat_cursor" and answer.family in ("rows", "data") and answer.start_cursor:
        page["next"] = query.get("cursor") or answer.start_cursor
    elif kind == "empty_page" and answer.start_cursor:
        items.clear()
        page["next"] = f"{answer.start_cursor}~{fault.fired}"
    elif kind == "empty_page" and answer.family == "x":
        apps.clear()
    return Answer(answer.status, dumps(page), answer.headers, family=answer.family,
                   start_cursor=answer.start_cursor)


@lru_cache(maxsize=4)
def gzip_bomb(size: int) -> bytes:
    """A gzip stream of ``size`` spaces, about a thousand times smaller.

    After a full flush deflate starts afresh, so the compressed form of one
    mebibyte of spaces can be repeated; the trailer carries the right CRC and length.
    """
    chunk = b" " * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats, rest = divmod(max(size, len(chunk)), len(chunk))
    crc = zlib.crc32(chunk)
    for _ in range(repeats - 1):
        crc = zlib.crc32(chunk, crc)
    tail = b""
    if rest:
        raw = zlib.compressobj(9, zlib.DEFLATED, -15)
        tail = raw.compress(b" " * rest) + raw.flush(zlib.Z_FULL_FLUSH)
        crc = zlib.crc32(b" " * rest, crc)
    total = repeats * len(chunk) + rest
    # b"\x03\x00": an empty final block with fixed codes ends the deflate stream.
    return head + block * (repeats - 1) + tail + b"\x03\x00" + struct.pack("<II", crc, total & 0xFFFFFFFF)
