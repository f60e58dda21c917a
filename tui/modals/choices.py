"""What the decision modals return: plain values, no widgets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfirmChoice:
    finding_ids: tuple[int, ...]
    category: str | None      # None: keep each finding's detected category
    severity: str
    reason: str


@dataclass(frozen=True)
class DismissChoice:
    finding_ids: tuple[int, ...]
    reason_code: str
    reason_text: str


@dataclass(frozen=True)
class NeedsInfoChoice:
    finding_ids: tuple[int, ...]
    reason: str


@dataclass(frozen=True)
class ManualChoice:
    category: str
    severity: str
    evidence: str


@dataclass(frozen=True)
class FindingOption:
    """An open finding offered in a decision modal (label already literal-safe)."""

    id: int
    label: str
