"""The fixed vocabulary of the domain: violation categories, severities, statuses.

Every module uses these ids; the TUI shows the labels.
"""

from __future__ import annotations

from typing import Final

# Detected from usage by store.rules (rule id == category id).
RULE_CATEGORIES: Final[dict[str, str]] = {
    "volume_cap": "Volume cap exceeded",
    "rate_limit": "Rate limit exceeded",
    "circumvention": "Circumvention across apps",
    "missing_use_case": "Missing declared use case",
    "endpoint_outside": "Endpoint outside the agreement",
}
# Opened by hand, with evidence text.
MANUAL_CATEGORIES: Final[dict[str, str]] = {
    "use_case_deviation": "Use-case deviation",
    "government_end_user": "Undisclosed government end user",
    "restricted_use": "Restricted use (surveillance, profiling)",
    "redistribution": "Redistribution over the limits",
    "storage_deletion": "Storage / deletion non-compliance",
}
CATEGORIES: Final[dict[str, str]] = {**RULE_CATEGORIES, **MANUAL_CATEGORIES}

SEVERITIES: Final[tuple[str, ...]] = ("info", "low", "medium", "high", "critical")

FINDING_STATUSES: Final[tuple[str, ...]] = (
    "candidate", "confirmed", "dismissed", "needs_info", "audit_requested", "resolved",
)
# Which status may follow which (every change is a decision in the log).
FINDING_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "candidate": frozenset({"confirmed", "dismissed", "needs_info"}),
    "needs_info": frozenset({"confirmed", "dismissed", "candidate"}),
    "confirmed": frozenset({"audit_requested", "dismissed", "needs_info", "resolved"}),
    "dismissed": frozenset({"candidate", "confirmed"}),
    "audit_requested": frozenset({"resolved", "confirmed"}),
    "resolved": frozenset(),
}
# Findings still waiting for a reviewer.
OPEN_STATUSES: Final[tuple[str, ...]] = ("candidate", "needs_info")

DISMISS_REASONS: Final[dict[str, str]] = {
    "false_positive": "False positive",
    "within_allowance": "Within allowance",
    "duplicate": "Duplicate",
    "out_of_scope": "Out of scope",
    "other": "Other",
}

NOTE_STATUSES: Final[tuple[str, ...]] = ("draft", "ready", "exported")

# The periods a tier's limit is stated per (calls_per_day, records_per_month, ...).
LIMIT_PERIODS: Final[tuple[str, ...]] = ("day", "month", "year")

# What a note can be exported as (store.export writes each; `warden export
# --format` and the TUI's export dialog offer them in this order).
EXPORT_FORMATS: Final[tuple[str, ...]] = ("md", "html", "eml", "json", "csv")

# Canonical usage metrics; adapters may add others (input_tokens, ...).
METRIC_CALLS: Final = "calls"
METRIC_RECORDS: Final = "records"
