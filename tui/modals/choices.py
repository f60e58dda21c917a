"""What the decision modals are offered: plain values, no widgets. (What they
return are the request types of :mod:`store.review`.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FindingOption:
    """An open finding offered in a decision modal (label already literal-safe),
    ``chosen`` when the dialog opens; ``twins``: the circumvention finding over the
    same figures, decided with it (one entry, one decision per finding in the log)."""

    id: int
    label: str
    twins: tuple[int, ...] = ()
    chosen: bool = True

    @property
    def ids(self) -> tuple[int, ...]:
        return (self.id, *self.twins)
