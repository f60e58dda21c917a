"""The review screen's actions on a case after its letter (store.casework):
``a`` marks the requested items, ``A`` records a response, ``f`` drafts a
follow-up, ``C`` closes the case with an outcome or escalates it, ``L`` opens
the lead's overview. A mixin of :class:`~tui.screens.review.ReviewScreen`, so that
screen stays one job: each action opens its dialog, writes in a worker, and
reports with the screen's ``Decided`` message (which reloads the queue and the
detail)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work

from store.casework.followups import draft_followup
from store.casework.items import mark_items
from store.casework.responses import add_response
from store.casework.state import case_under_way, close_case, escalate_case
from store.clock import day
from store.domain import CASE_OUTCOMES, ITEM_STATES
from store.errors import DecisionRefused, FilterError
from store.queue_filter import parse_filter
from store.text import visible
from tui.messages import Decided, NoteOpened, Problem
from tui.modals.followup import FollowupKind
from tui.modals.items import ItemsChoice, RequestItems
from tui.modals.outcome import CaseOutcome, OutcomeChoice
from tui.modals.response import AddResponse, ResponseChoice


class CaseworkActions:
    """``a``, ``A``, ``f``, ``C`` and ``L`` of the review screen (it provides ``session``,
    ``detail``, ``_targets`` and ``query_one``)."""

    session: Any
    detail: Any
    app: Any
    notify: Any
    post_message: Any
    _targets: Any
    _filter_chosen: Any

    def _case_scope(self) -> tuple[str, str] | None:
        """(scope line, consumer id) of the consumer under the cursor, once its detail is shown."""
        scope, ids = self._targets()
        if len(ids) != 1 or self.detail is None or self.detail.consumer.id != ids[0]:
            self.notify("Move to one consumer (and wait for its detail) first.",
                        title="Case", markup=False)
            return None
        return scope, ids[0]

    def _case_under_way(self, started: Any, nothing: str, context: str) -> tuple[tuple[str, str], Any] | None:
        """(target, case file) of the consumer under the cursor when its case is under
        way and ``started(view)`` holds; else a refusal naming why (``nothing``: what
        there is not to act on) and None."""
        target = self._case_scope()
        if target is None:
            return None
        view = self.detail.case_file
        if view is None or view.case.final or not started(view):
            why = "has no letter sent" if view is None or not started(view) else f"case is {view.case.state_label}"
            self.app.post_message(Problem(DecisionRefused(f"{visible(target[1])} {why}: {nothing}"),
                                          context=context))
            return None
        return target, view

    def action_case_items(self) -> None:
        """``a``: the checklist of the items the letter asked for."""
        found = self._case_under_way(lambda view: view.items, "no requested items to mark", "Items")
        if found is None:
            return
        target, view = found
        self.app.push_screen(RequestItems(scope=target[0], case_id=view.case.id, items=view.items),
                             lambda choice: choice and self._mark_items(choice))

    @work(thread=True, group="decide", exit_on_error=False)
    def _mark_items(self, choice: ItemsChoice) -> None:
        session = self.session
        written = mark_items(session.connections.get(), choice.case_id, choice.changes, comment=choice.comment,
                             reviewer=session.reviewer, clock=session.clock)
        marked = ", ".join(f"{c.item} {ITEM_STATES[c.state]}" for c in choice.changes)
        self.post_message(Decided(f"Case #{choice.case_id}: {marked}" if written else "Nothing changed.",
                                  title="Items marked"))

    def action_add_response(self) -> None:
        """``A``: record a reply, its files copied into the evidence store."""
        target = self._case_scope()
        if target is None:
            return
        today = day(self.session.clock())
        self.app.push_screen(AddResponse(scope=target[0], today=today, base=Path.cwd()),
                             lambda choice: choice and self._add_response(target[1], choice))

    @work(thread=True, group="decide", exit_on_error=False)
    def _add_response(self, consumer_id: str, choice: ResponseChoice) -> None:
        session = self.session
        conn = session.connections.get()
        case_under_way(conn, consumer_id, what="a response")
        done = add_response(conn, consumer_id, choice.paths, reviewer=session.reviewer, clock=session.clock,
                            max_bytes=session.config.evidence.max_file_bytes, received=choice.received or None,
                            note=choice.note or None)
        lines = [f"Response #{done.response_id} received {done.received_on}: case #{done.case_id} is "
                 f"{done.state.replace('_', ' ')}"]
        lines += [f"{visible(f.name)}  sha256 {f.sha256[:16]}…" for f in done.files if f.already is None]
        lines += [visible(w) for w in done.warnings]
        self.post_message(Decided("\n".join(lines), title="Response recorded"))

    def action_followup(self) -> None:
        """``f``: draft a reminder, an overdue notice or a final notice, then edit it."""
        found = self._case_under_way(lambda view: view.case.due_date is not None, "no follow-up to draft",
                                     "Follow-up")
        if found is None:
            return
        target, view = found
        overdue = view.case.due_date < day(self.session.clock())
        self.app.push_screen(FollowupKind(scope=target[0], suggested="overdue" if overdue else "reminder"),
                             lambda choice: choice and self._draft_followup(target[1], choice.kind))

    @work(thread=True, group="note", exit_on_error=False)
    def _draft_followup(self, consumer_id: str, kind: str) -> None:
        session = self.session
        done = draft_followup(session.connections.get(), consumer_id, kind, reviewer=session.reviewer,
                              clock=session.clock, config=session.config.notes)
        for warning in done.warnings:
            self.notify(visible(warning), title="Follow-up", severity="warning", timeout=10, markup=False)
        self.post_message(NoteOpened(done.note, True, "app"))

    def action_case_outcome(self) -> None:
        """``C``: close the case with an outcome and a reason, or escalate it (to whom, why)."""
        found = self._case_under_way(lambda view: view.case.letter_sent_at is not None,
                                     "no case to close or escalate", "Case")
        if found is None:
            return
        target, view = found
        self.app.push_screen(CaseOutcome(scope=target[0], case_id=view.case.id, version=view.case.version),
                             lambda choice: choice and self._record_outcome(target[1], choice))

    @work(thread=True, group="decide", exit_on_error=False)
    def _record_outcome(self, consumer_id: str, choice: OutcomeChoice) -> None:
        session = self.session
        conn = session.connections.get()
        if choice.escalates:
            case = escalate_case(conn, consumer_id, to=choice.to or "", reason=choice.reason,
                                 reviewer=session.reviewer, clock=session.clock, expected_version=choice.version)
            self.post_message(Decided(f"Case #{case.id} of {visible(consumer_id)} is escalated to "
                                      f"{visible(case.escalated_to or '')}.", title="Case escalated"))
            return
        case = close_case(conn, consumer_id, outcome=choice.outcome or "", reason=choice.reason,
                          reviewer=session.reviewer, clock=session.clock, expected_version=choice.version)
        self.post_message(Decided(f"Case #{case.id} of {visible(consumer_id)} is {case.state_label}: "
                                  f"{CASE_OUTCOMES[case.outcome or '']}.", title="Case closed"))

    def action_overview(self) -> None:
        """``L``: the lead's overview; a number chosen there filters the queue."""
        from tui.screens.overview import OverviewScreen

        self.app.push_screen(OverviewScreen(self.session), self._overview_chosen)

    def _overview_chosen(self, text: str | None) -> None:
        """The queue filtered as the number chosen in the overview says."""
        if not text:
            return
        try:
            flt = parse_filter(text, today=self.session.clock().date())
        except FilterError as exc:
            self.app.post_message(Problem(exc, context="Overview"))
            return
        self._filter_chosen(flt)
