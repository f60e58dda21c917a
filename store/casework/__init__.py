"""After the letter: a consumer's case from its audit request to its outcome.

:mod:`.state` (the case: opened when the letter is exported, its states, due
date, outcome and escalation, each change in the decision log),
:mod:`.items` (what the letter asks for, item by item: the one definition the
letter and the checklist share, and each item's answer), :mod:`.evidence` (the
store of files received, by SHA-256, beside the database), :mod:`.responses`
(a reply and its files), :mod:`.recurrence` (the rule that reopens a case when
the same limits break again), :mod:`.summary` (what the queue shows of a case).
Due dates are counted by :mod:`store.deadlines`.
"""
