"""Benchmark of the review screen on a big database (not a test; run as a script).

    python tests/benchmarks/make_big_db.py --consumers 1000000 --out /tmp/big.db
    python tests/benchmarks/bench_tui.py /tmp/big.db

Measures, each app in a fresh Python process (headless Textual, 120x40):

- first paint: from starting the process to the first frame showing the queue's
  first rows and the top consumer's detail, against an empty Textual app started
  the same way in the same run (target: within 1 s of it);
- step: ``j`` pressed until the frame showing the next consumer's detail is
  drawn, over many steps from the top (``j``) and near the end (``k``) of the
  queue (target: median at most 12 ms, p95 at most 30 ms, over all steps);
  also the part before that frame (a frame waits for Textual's next frame
  tick: warden asks for 250 a second, so up to ~4 ms after the pane is ready);
  and, for scale, Textual's own floor: an empty app (one Static, changed by each
  key press) stepped the same way (no target: what warden cannot go below);
- jumps: ``G`` (last of a million) and ``]`` (next unreviewed);
- filter: a filter applied until its first page and detail are drawn;
- peak memory: the process's maximum resident set size (target: under 250 MB).

The database is only read (the decision keys are not pressed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIZE = (120, 40)
TARGET_MEDIAN_MS = 12.0
TARGET_P95_MS = 30.0
FILTERS = ["status:candidate", "category:volume", "over:10x", "name:north", "state:decided over:2"]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Frames:
    """Counts the frames an app hands to its terminal, rendering them as a real
    terminal would need (headless Textual skips that last step)."""

    def __init__(self, app) -> None:
        self.count = 0
        self.last = 0.0
        self.times: list[float] = []
        original = app._display

        def display(screen, renderable) -> None:
            from textual._compositor import CompositorUpdate

            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)
            original(screen, renderable)
            self.count += 1
            self.last = time.perf_counter()
            self.times.append(self.last)
            del self.times[:-50]

        app._display = display


async def _until(done, limit_s: float = 60.0) -> None:
    """Let the app run until ``done()`` holds (polling every ~0.5 ms)."""
    deadline = time.perf_counter() + limit_s
    while not done():
        if time.perf_counter() > deadline:
            raise RuntimeError("the app never reached the expected state")
        await asyncio.sleep(0.0005)


async def _next_frame(frames: Frames, after: float | None = None) -> float:
    """Wait for a frame drawn after ``after`` (default: now); returns its time."""
    after = time.perf_counter() if after is None else after
    await _until(lambda: frames.last > after)
    return next(t for t in frames.times if t > after)


def child_empty() -> None:
    from textual.app import App
    from textual.widgets import Static

    class Empty(App[None]):
        def compose(self):
            yield Static("empty")

    async def run() -> None:
        app = Empty()
        frames = Frames(app)
        async with app.run_test(size=SIZE):
            await _until(lambda: frames.count > 0)
            print(json.dumps({"painted_at": time.time() - (time.perf_counter() - frames.last)}), flush=True)

    asyncio.run(run())


def child_empty_steps(steps: int) -> None:
    """Textual's own cost of a step in this harness: one Static changed per key."""
    import tui  # noqa: F401  (warden's settings for Textual: the same frame rate)
    from textual import events
    from textual.app import App
    from textual.widgets import Static

    class Empty(App[None]):
        BINDINGS = [("j", "step", "Step")]
        count = 0
        changed_at = 0.0

        def compose(self):
            yield Static("step 0", id="one")

        def action_step(self) -> None:
            self.count += 1
            self.query_one("#one", Static).update(f"step {self.count}")
            self.changed_at = time.perf_counter()

    async def run() -> None:
        app = Empty()
        frames = Frames(app)
        async with app.run_test(size=SIZE):
            await _until(lambda: frames.count > 0)
            out = []
            for n in range(1, steps + 1):
                start = time.perf_counter()
                app._driver.send_message(events.Key("j", "j"))
                await _until(lambda n=n: app.count >= n)
                out.append((await _next_frame(frames, after=app.changed_at) - start) * 1000)
            print(json.dumps({"empty_step_ms": out}), flush=True)

    asyncio.run(run())


def _shown(app, index: int) -> bool:
    from tui.screens.review import ReviewScreen
    from tui.widgets.queue import QueueView

    screen = app.screen
    if not isinstance(screen, ReviewScreen):
        return False
    queue = screen.query_one(QueueView)
    row = queue.row_at(index)
    return (row is not None and queue.cursor == index and screen.detail is not None
            and screen.detail.consumer.id == row.consumer_id)


def child_warden(db: Path, steps: int, full: bool) -> None:
    sys.path.insert(0, str(ROOT))
    import tui  # noqa: F401  (first: warden's settings for Textual, as `warden` has them)
    from textual import events

    from store.clock import system_clock
    from tui.app import WardenApp
    from tui.screens.review import ReviewScreen
    from tui.widgets.detail import DetailPane
    from tui.widgets.queue import QueueView

    shown_at = [0.0]
    show = DetailPane.show

    def timed_show(pane, detail) -> None:
        show(pane, detail)
        shown_at[0] = time.perf_counter()   # the frame after this one draws it

    DetailPane.show = timed_show  # type: ignore[method-assign]

    async def run() -> None:
        app = WardenApp(db_path=db, reviewer="bench", clock=system_clock, mouse=False)
        frames = Frames(app)
        async with app.run_test(size=SIZE):
            await _until(lambda: _shown(app, 0))
            painted = await _next_frame(frames, after=shown_at[0])
            print(json.dumps({"painted_at": time.time() - (time.perf_counter() - painted)}), flush=True)
            if not full:
                return
            screen = app.screen
            assert isinstance(screen, ReviewScreen)
            queue = screen.query_one(QueueView)
            result: dict[str, object] = {"total": screen.total}

            async def step(key: str, expect) -> float:
                """Key sent to the app (as the terminal driver does) until the frame
                showing the new consumer's detail."""
                char = {"right_square_bracket": "]"}.get(key, key)
                start = time.perf_counter()
                app._driver.send_message(events.Key(key, char))
                await _until(expect)
                ready.append((shown_at[0] - start) * 1000)
                return (await _next_frame(frames, after=shown_at[0]) - start) * 1000

            ready: list[float] = []
            result["step_top_ms"] = [await step("j", lambda i=i: _shown(app, i + 1)) for i in range(steps)]
            result["step_top_ready_ms"] = list(ready)
            result["jump_last_ms"] = await step("G", lambda: _shown(app, screen.total - 1))
            end = []
            for _ in range(steps):
                here = queue.cursor
                end.append(await step("k", lambda h=here: _shown(app, h - 1)))
            result["step_end_ms"] = end
            await step("g", lambda: _shown(app, 0))
            here = queue.cursor
            result["next_unreviewed_ms"] = await step(
                "right_square_bracket", lambda: queue.cursor != here and _shown(app, queue.cursor))

            from store.queue import QueueQuery
            from store.queue_filter import parse_filter

            filters = {}
            for text in FILTERS:
                start = time.perf_counter()
                generation = queue.generation
                screen._set_query(QueueQuery(parse_filter(text), screen.query_spec.sort))
                await _until(lambda g=generation: queue.generation > g and (
                    screen.total == 0 or _shown(app, queue.cursor)))
                drawn = await _next_frame(frames, after=max(shown_at[0], start))
                filters[text] = {"ms": (drawn - start) * 1000, "matches": screen.total}
            result["filters"] = filters
            result["peak_mb"] = _peak_mb()
            print(json.dumps(result), flush=True)

    asyncio.run(run())


def _spawn(args: list[str], *, paints: bool = True) -> tuple[float, list[dict]]:
    """Run a child; return seconds from start to its 'painted' line (0 for a child
    that does not print one: ``paints`` False), and its JSON lines."""
    start = time.time()
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    painted = None
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        record = json.loads(line)
        if "painted_at" in record and painted is None:
            painted = record["painted_at"] - start
        else:
            lines.append(record)
    if proc.wait() != 0 or (painted is None and paints):
        raise SystemExit(f"child {args} failed")
    return painted or 0.0, lines


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[max(0, int(len(values) * 0.95) - 1)]
    return f"median {statistics.median(values):6.1f} ms  p95 {p95:6.1f} ms  max {values[-1]:6.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3, help="first-paint runs of each app")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=("empty", "empty-steps", "warden", "warden-full"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "empty":
        child_empty()
        return 0
    if args.child == "empty-steps":
        child_empty_steps(args.steps * 2)
        return 0
    if args.child:
        child_warden(args.db, args.steps, args.child == "warden-full")
        return 0
    if not args.db.exists():
        parser.error(f"no database at {args.db} (make one with tests/benchmarks/make_big_db.py)")

    empty, warden = [], []
    for _ in range(args.runs):  # interleaved so machine load hits both alike
        empty.append(_spawn(["--child", "empty", str(args.db)])[0])
        warden.append(_spawn(["--child", "warden", str(args.db)])[0])
    _, (full,) = _spawn(["--child", "warden-full", "--steps", str(args.steps), str(args.db)])
    _, (floor,) = _spawn(["--child", "empty-steps", "--steps", str(args.steps), str(args.db)], paints=False)
    full["empty_step_ms"] = floor["empty_step_ms"]
    report = {
        "db": str(args.db),
        "consumers": full["total"],
        "first_paint_empty_s": statistics.median(empty),
        "first_paint_warden_s": statistics.median(warden),
        **full,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    gap = report["first_paint_warden_s"] - report["first_paint_empty_s"]
    import sqlite3
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    usage = conn.execute("SELECT count(*) FROM usage").fetchone()[0]
    conn.close()
    steps = sorted(full["step_top_ms"] + full["step_end_ms"])
    median, p95 = statistics.median(steps), steps[max(0, int(len(steps) * 0.95) - 1)]
    met = median <= TARGET_MEDIAN_MS and p95 <= TARGET_P95_MS
    print(f"database            {args.db} ({full['total']:,} consumers, {usage:,} usage rows; "
          f"load {os.getloadavg()[0]:.1f})")
    print(f"first paint         warden {report['first_paint_warden_s']:.2f} s, empty Textual app "
          f"{report['first_paint_empty_s']:.2f} s: +{gap:.2f} s (target < 1 s)")
    print(f"step j (top)        {_ms(full['step_top_ms'])}")
    print(f"  of which: key to detail laid out in the pane (before the frame) {_ms(full['step_top_ready_ms'])}")
    print(f"step k (near end)   {_ms(full['step_end_ms'])}")
    print(f"steps, key press to painted frame ({len(steps)}): median {median:.1f} ms, p95 {p95:.1f} ms "
          f"(target: median <= {TARGET_MEDIAN_MS:.0f} ms, p95 <= {TARGET_P95_MS:.0f} ms: {'met' if met else 'MISSED'})")
    print(f"  for scale: an empty Textual app, one Static changed per key press, the same harness "
          f"({len(full['empty_step_ms'])}): {_ms(full['empty_step_ms'])}")
    print(f"jump G (last)       {full['jump_last_ms']:.1f} ms")
    print(f"jump ] (unreviewed) {full['next_unreviewed_ms']:.1f} ms")
    for text, f in full["filters"].items():
        print(f"filter {text!r:24} {f['ms']:7.1f} ms  {f['matches']:>9,} consumers")
    print(f"peak memory         {full['peak_mb']:.0f} MB (target < 250 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
