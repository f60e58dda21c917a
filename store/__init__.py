"""warden's headless core: schema, sync, rules, review decisions, notes, export.

Nothing in this package imports ``textual`` or ``tui``; ``tests/test_import_hygiene.py``
proves it.
"""

__version__ = "0.1.0"
