"""The embedded demo endpoint: deterministic synthetic usage served over loopback
HTTP in the ``warden-feed`` and ``x-usage`` shapes, with faults on request.

``warden demo`` starts it and syncs it; tests use it as a real server::

    with DemoEndpoint(consumers=300, seed=7) as endpoint:
        config = demo_config(endpoint)          # store.demo.config
        ...

See :mod:`store.demo.data` (who is in the data), :mod:`store.demo.server` (the
routes) and :mod:`store.demo.faults` (the fault spec syntax).
"""

from __future__ import annotations

from store.demo.data import CASE_ID, DEMO_END, DEMO_START, DEMO_TODAY, DemoData
from store.demo.faults import FAULTS_ENV, Fault, FaultList, FaultSpecError, parse_fault, parse_faults
from store.demo.server import DemoEndpoint

# The demo config names this variable as its sources' token_env; `warden demo`
# sets it to DEMO_TOKEN when unset (the demo endpoint accepts any token).
DEMO_TOKEN_ENV = "WARDEN_DEMO_TOKEN"
DEMO_TOKEN = "demo-token-not-a-secret"

__all__ = [
    "CASE_ID", "DEMO_END", "DEMO_START", "DEMO_TODAY", "DEMO_TOKEN", "DEMO_TOKEN_ENV", "FAULTS_ENV",
    "DemoData", "DemoEndpoint", "Fault", "FaultList", "FaultSpecError", "parse_fault", "parse_faults",
]
