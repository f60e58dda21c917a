"""The headless core must never pull in the TUI: cron jobs and exports run without it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import store


def _store_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(store.__path__, prefix="store.")
    )


def test_store_has_modules_to_check() -> None:
    # Guards the test below against silently checking nothing.
    assert "store.db" in _store_modules()
    assert "store.sync.engine" in _store_modules()


def test_importing_every_store_module_loads_no_textual_and_no_tui() -> None:
    modules = _store_modules()
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "print('\\n'.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"store imported: {result.stdout}"
