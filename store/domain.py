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
# The lead's overview as a file (warden report, store.report.formats).
REPORT_FORMATS: Final[tuple[str, ...]] = ("md", "html", "json")

# Canonical usage metrics; adapters may add others (input_tokens, ...).
METRIC_CALLS: Final = "calls"
METRIC_RECORDS: Final = "records"

# --- after the letter (issue 13) ----------------------------------------------

# A consumer's case, in the order it usually goes: "open" (findings stand, no
# letter yet) is derived from its findings; the others are a row of case_file,
# each change an entry of the decision log (subject "case").
CASE_STATES: Final[dict[str, str]] = {
    "open": "open",
    "reopened": "reopened",
    "letter_sent": "letter sent",
    "response_received": "response received",
    "escalated": "escalated",
    "resolved": "resolved",
    "closed": "closed",
}
# Which stored case state may follow which. A resolved or closed case is final:
# a breach of the same limits after it opens a new case, "reopened", citing it.
CASE_TRANSITIONS: Final[dict[str | None, frozenset[str]]] = {
    None: frozenset({"letter_sent", "reopened"}),
    "reopened": frozenset({"letter_sent"}),
    "letter_sent": frozenset({"response_received", "escalated", "resolved", "closed"}),
    # A new letter after a reply asks again: a response is awaited again.
    "response_received": frozenset({"letter_sent", "escalated", "resolved", "closed"}),
    "escalated": frozenset({"resolved", "closed"}),
    "resolved": frozenset(),
    "closed": frozenset(),
}
FINAL_CASE_STATES: Final[tuple[str, ...]] = ("resolved", "closed")
# Cases that wait for the consumer: a response (and answers to every item) is due.
AWAITING_CASE_STATES: Final[tuple[str, ...]] = ("letter_sent", "response_received")

# How a case ends. The first three bring the consumer within its agreement (the
# case is "resolved"); the others end it otherwise ("closed").
CASE_OUTCOMES: Final[dict[str, str]] = {
    "within_limits": "Usage brought within limits",
    "tier_changed": "Tier changed",
    "data_deleted": "Data deleted, with evidence",
    "access_suspended": "Access suspended",
    "referred_to_counsel": "Referred to counsel",
    "other": "Other",
}
RESOLVING_OUTCOMES: Final[tuple[str, ...]] = ("within_limits", "tier_changed", "data_deleted")

# Each item the letter asked for (store.casework.items) is tracked in one of these.
ITEM_STATES: Final[dict[str, str]] = {
    "open": "open",
    "answered": "answered",
    "partly_answered": "partly answered",
    "refused": "refused",
}
# Still waited for: a follow-up lists these.
PENDING_ITEM_STATES: Final[tuple[str, ...]] = ("open", "partly_answered")

# Follow-ups to an audit request: notes like the letter, each from its own template.
FOLLOWUP_KINDS: Final[dict[str, str]] = {
    "reminder": "Reminder",
    "overdue": "Overdue notice",
    "final": "Final notice",
}
# How due dates are counted from the letter: every day, or Monday to Friday
# (without the configured holidays).
DEADLINE_KINDS: Final[tuple[str, ...]] = ("calendar", "business")
