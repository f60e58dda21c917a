"""The roster: which consumer owns which apps, read from the configuration's
inline ``[[consumers]]`` tables or from a roster file (CSV or JSON) that may
hold hundreds of thousands of consumers. Reading only: nothing here touches a
database (:mod:`store.consumers` writes what the roster says).

CSV: a header row with ``id`` and ``legal_name`` (required) and any of
``notice_contact``, ``tier``, ``agreement_version``, ``declared_use_case``,
``government_end_users``, ``apps``; apps as ``"source:app_id;source:app_id"``;
empty cells are "not given". JSON: a list of objects with the same keys; apps a
list of ``"source:app_id"``. Errors name the file and the line and column (CSV,
counted as an editor does) or the index (JSON).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

from store.errors import ConfigError
from store.secrets import kind_of

CONSUMER_FIELDS = (
    "id", "legal_name", "notice_contact", "tier", "agreement_version", "declared_use_case",
    "government_end_users", "apps",
)


@dataclass
class ConsumerConfig:
    """A roster entry (inline ``[[consumers]]`` or the roster file): a consumer and the apps it owns."""

    id: str
    legal_name: str
    notice_contact: str | None = None
    tier: str | None = None
    agreement_version: str | None = None
    declared_use_case: str | None = None
    government_end_users: str | None = None
    apps: list[tuple[str, str]] = field(default_factory=list)  # (source, app_id)


def consumer_from(record: Mapping[str, Any], fail: Any) -> ConsumerConfig:
    """A consumer from an inline table, a JSON object or a CSV row (strings, empty
    for "not given"); ``fail(message, key)`` builds the error for its location
    (``key``: the field at fault, for a CSV column).

    Runs once per roster row (hundreds of thousands): kept to plain calls."""
    get = record.get
    apps_value = get("apps")
    if apps_value is None or apps_value == "":
        raw_apps: list[Any] = []
    elif isinstance(apps_value, str):
        raw_apps = [part for part in apps_value.split(";") if part.strip()]
    elif isinstance(apps_value, list):
        raw_apps = apps_value
    else:
        raise fail(f"'apps' must be a list of \"source:app_id\" strings, got {kind_of(apps_value)}", "apps")
    apps: list[tuple[str, str]] = []
    for item in raw_apps:
        source, _, app_id = item.strip().partition(":") if isinstance(item, str) else ("", "", "")
        if not source or not app_id:
            raise fail(f"app {item!r} must be written \"source:app_id\"", "apps")
        apps.append((source, app_id))

    consumer_id = _text(get("id"), "id", fail, required=True)
    legal_name = _text(get("legal_name"), "legal_name", fail, required=True)
    assert consumer_id is not None and legal_name is not None
    return ConsumerConfig(
        id=consumer_id, legal_name=legal_name,
        notice_contact=_text(get("notice_contact"), "notice_contact", fail),
        tier=_text(get("tier"), "tier", fail),
        agreement_version=_text(get("agreement_version"), "agreement_version", fail),
        declared_use_case=_text(get("declared_use_case"), "declared_use_case", fail),
        government_end_users=_text(get("government_end_users"), "government_end_users", fail), apps=apps,
    )


def _text(value: Any, key: str, fail: Any, *, required: bool = False) -> str | None:
    if value.__class__ is str:
        value = value.strip()
        if value:
            return value
        value = None
    if value is None:
        if required:
            raise fail(f"missing required field {key!r}", key)
        return None
    if key == "government_end_users" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value) or None
    raise fail(f"{key!r} must be a string, got {kind_of(value)}", key)


@dataclass(frozen=True)
class Place:
    """Where a roster entry is: a line of a CSV file (with its columns), an index
    of a JSON file, or an inline ``[[consumers]]`` table of the configuration
    (``file`` None)."""

    where: str                                  # "line 12", "[3]", "[[consumers]] #2"
    file: Path | None = None
    columns: Mapping[str, int] = field(default_factory=dict)   # CSV: field -> column, from 1

    def at(self, key: str | None = None) -> str:
        """``line 12, column 4`` (the column of ``key``, when the place has columns)."""
        column = self.columns.get(key) if key else None
        return f"{self.where}, column {column}" if column else self.where

    def error(self, message: str, key: str | None = None, *, config_path: Path | None = None) -> ConfigError:
        """A ``ConfigError`` naming the file, the place and the column of ``key``."""
        return ConfigError(f"{self.file or config_path or 'configuration'}: {self.at(key)}: {message}")


def iter_roster(path: Path | None) -> Iterator[ConsumerConfig]:
    """The consumers of the roster file at ``path`` (none without one), one at a
    time (CSV is streamed; a JSON roster is one document and is read whole). Rows
    are checked as they are read; errors name the file and the line and column
    (CSV) or the index (JSON)."""
    for _, consumer in located_roster(path):
        yield consumer


def located_roster(path: Path | None) -> Iterator[tuple[Place, ConsumerConfig]]:
    """Roster consumers with where they are."""
    if path is None:
        return
    try:
        if path.suffix.lower() == ".json":
            yield from _iter_json_roster(path)
        else:
            yield from _iter_csv_roster(path)
    except OSError as exc:
        raise ConfigError(f"cannot read roster file {path}: {exc.strerror}") from None


def _decoded_lines(path: Path, handle: BinaryIO) -> Iterator[str]:
    """The file's lines as text, each decoded on its own so that a byte that is
    not UTF-8 is named by its exact line and column (a text stream decodes ahead
    of the CSV reader, which then names a line thousands too early)."""
    for number, raw in enumerate(handle, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            column = len(raw[:exc.start].decode("utf-8", errors="replace")) + 1
            raise ConfigError(f"{path}: line {number}, column {column}: not UTF-8 "
                              f"(byte 0x{raw[exc.start]:02x})") from None


def _iter_csv_roster(path: Path) -> Iterator[tuple[Place, ConsumerConfig]]:
    with path.open("rb") as handle:
        reader = csv.reader(_decoded_lines(path, handle))
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise ConfigError(f"{path}: the roster is empty (expected a header row)") from None
        except csv.Error as exc:
            raise ConfigError(f"{path}: line 1: not valid CSV: {exc}") from None
        for number, name in enumerate(header, start=1):
            if name not in CONSUMER_FIELDS:
                close = difflib.get_close_matches(name, CONSUMER_FIELDS, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known columns: {', '.join(CONSUMER_FIELDS)}"
                raise ConfigError(f"{path}: line 1, column {number}: unknown column {name!r}{hint}")
        for required in ("id", "legal_name"):
            if required not in header:
                raise ConfigError(f"{path}: line 1: missing required column {required!r}")
        columns = {name: number for number, name in enumerate(header, start=1)}
        width = len(header)
        last = reader.line_num
        try:
            for row in reader:
                # A record starts on the line after the previous one ended (a quoted
                # field may run over several lines).
                first, last = last + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                place = Place(f"line {first}", path, columns)
                if len(row) != width:
                    raise place.error(f"{len(row)} cells, the header has {width}")
                yield place, consumer_from(dict(zip(header, row)),
                                           lambda message, key=None, place=place: place.error(message, key))
        except csv.Error as exc:
            raise ConfigError(f"{path}: line {reader.line_num}: not valid CSV: {exc}") from None


def _iter_json_roster(path: Path) -> Iterator[tuple[Place, ConsumerConfig]]:
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ConfigError(f"{path}: a JSON roster must be a list of consumer objects")
    for index, record in enumerate(data):
        place = Place(f"[{index}]", path)
        if not isinstance(record, dict):
            raise place.error(f"must be an object, got {kind_of(record)}")
        for key in record:
            if key not in CONSUMER_FIELDS:
                close = difflib.get_close_matches(key, CONSUMER_FIELDS, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise place.error(f"unknown key {key!r}{hint}")
        yield place, consumer_from(record, lambda message, key=None, place=place: place.error(message, key))
