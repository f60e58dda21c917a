"""What the decision modals are offered: plain values, no widgets. (What they
return are the request types of :mod:`store.review`.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FindingOption:
    """An open finding offered in a decision modal (label already literal-safe),
    ``chosen`` when the dialog opens."""

    id: int
    label: str
    chosen: bool = True
