"""Benchmark of the note editor's preview (not a test; run as a script).

    python tests/benchmarks/bench_note_preview.py

Syncs the demo endpoint (300 consumers, seed 7) into a temporary database,
confirms the case consumer's findings (its letter then cites all of them: the
longest note of the demo), opens the note editor headless at 120x40 and measures
``ctrl+o`` pressed until the frame showing the preview of the text as typed
is drawn, ten times, each after a change to the text and a pause (the editor
draws the preview in a thread once typing pauses; target: within 200 ms).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from store import review  # noqa: E402
from store.db import connect  # noqa: E402
from store.demo import CASE_ID, DEMO_TOKEN, DEMO_TOKEN_ENV, DemoEndpoint  # noqa: E402
from store.demo.config import demo_config  # noqa: E402
from store.sync.engine import sync_all  # noqa: E402
from tests.benchmarks.bench_tui import Frames, _until  # noqa: E402
from tests.tui_data import CLOCK, settle  # noqa: E402

TIMES = 10


async def measure(db: Path, config: object) -> list[float]:
    from textual import events
    from textual.widgets import TextArea

    from tui.app import WardenApp
    from tui.widgets.preview import NotePreview

    app = WardenApp(db_path=db, config=config, reviewer="bench", clock=CLOCK, mouse=False)
    took: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        frames = Frames(app)
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        editor = app.screen
        lines = editor.query_one(TextArea).document.line_count
        preview = editor.query_one(NotePreview)
        for n in range(TIMES):
            # A new text each time; the editor draws it while the reviewer pauses.
            editor.query_one(TextArea).insert(f"{n}", (0, 0))
            await asyncio.sleep(0.5)
            await settle(pilot)
            started = time.perf_counter()
            app._driver.send_message(events.Key("ctrl+o", None))   # as the terminal driver sends it
            await _until(lambda: preview.display and preview.is_current(editor.query_one(TextArea).text))
            drawn = time.perf_counter()
            await _until(lambda: frames.last > drawn)
            took.append((frames.last - started) * 1000)
            await pilot.press("ctrl+o")
            await settle(pilot)
    print(f"note: {lines} lines of Markdown")
    return took


def main() -> int:
    os.environ.setdefault(DEMO_TOKEN_ENV, DEMO_TOKEN)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        with DemoEndpoint(consumers=300, seed=7) as endpoint:
            config = demo_config(endpoint, db_path=db)
            sync_all(db, config, clock=CLOCK)
        conn = connect(db)
        review.bulk_decide(conn, action="confirm", consumer_ids=[CASE_ID], severity="high",
                           reason="benchmark", reviewer="bench", clock=CLOCK)
        conn.close()
        took = asyncio.run(measure(db, config))
    print(f"preview (ctrl+o to the frame showing it), {TIMES} times: median {statistics.median(took):.0f} ms, "
          f"max {max(took):.0f} ms (target: within 200 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
