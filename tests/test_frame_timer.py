"""The frame timer after a slow frame (tui/frame_timer.py), on a clock of the
test's own: when each tick begins, in milliseconds, with a 4 ms interval."""

from __future__ import annotations

import asyncio
import hashlib
import inspect

from textual.timer import Timer

import tui.app  # noqa: F401  (installs the timer as the app runs it)
from tui import frame_timer

# Textual 8.2.8's Timer._run, as frame_timer.py copied it (sha256 of its source).
TEXTUAL_RUN_SHA256 = "60c942a84c1a8765932ea4fe897d61a94d0a74dcd249ec0b4a6aad75757ade50"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def get_time(self) -> float:
        return self.now

    async def wait(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def ticks_of(run, frame_ms: list[float], monkeypatch) -> list[float]:
    """Start times (ms) of the ticks of a 4 ms timer whose n-th callback takes
    ``frame_ms[n]``, run by ``run`` (a Timer._run) until they are spent."""
    clock = Clock()
    monkeypatch.setattr(frame_timer, "get_time", clock.get_time)
    monkeypatch.setattr(frame_timer, "wait", clock.wait)
    monkeypatch.setattr("textual.timer._time.get_time", clock.get_time)   # Textual's own loop reads these
    monkeypatch.setattr("textual.timer.sleep", clock.wait)
    started: list[float] = []

    class Target:
        pass

    async def main() -> None:
        target = Target()
        timer = Timer(target, 0.004, callback=lambda: None)

        async def tick(*, next_timer: float, count: int) -> None:
            started.append(round(clock.now * 1000, 3))
            clock.now += frame_ms[len(started) - 1] / 1000
            if len(started) == len(frame_ms):
                raise frame_timer.EventTargetGone()

        timer._tick = tick  # type: ignore[method-assign]
        await run(timer)

    asyncio.run(main())
    return started


def test_the_app_runs_the_corrected_timer():
    assert Timer._run is frame_timer.corrected_run


def test_after_a_frame_longer_than_the_tick_the_next_one_is_the_first_ahead(monkeypatch):
    # A 5.5 ms frame from 4 ms: it ends at 9.5; the first tick ahead is 12.
    assert ticks_of(frame_timer.corrected_run, [5.5, 1, 1], monkeypatch) == [4.0, 12.0, 16.0]


def test_frames_shorter_than_the_tick_keep_every_tick(monkeypatch):
    assert ticks_of(frame_timer.corrected_run, [1, 3.9, 1, 1], monkeypatch) == [4.0, 8.0, 12.0, 16.0]


def test_a_frame_ending_exactly_on_a_tick_waits_for_none(monkeypatch):
    # From 4 ms, 4 ms long: it ends on the tick at 8, which is not behind.
    assert ticks_of(frame_timer.corrected_run, [4, 1], monkeypatch) == [4.0, 8.0]


def test_a_frame_over_two_ticks_skips_both(monkeypatch):
    # From 4 ms, 9 ms long: ends at 13; 8 and 12 are gone, 16 is next.
    assert ticks_of(frame_timer.corrected_run, [9, 1], monkeypatch) == [4.0, 16.0]


def test_textuals_own_loop_skipped_one_tick_more(monkeypatch):
    """What the replacement is for: Textual's loop, on the same clock, waits for
    the tick after the first one ahead."""
    assert ticks_of(frame_timer.TEXTUALS_RUN, [5.5, 1], monkeypatch) == [4.0, 16.0]


def test_the_replaced_method_is_textual_8_2_8s():
    source = inspect.getsource(frame_timer.TEXTUALS_RUN)
    assert hashlib.sha256(source.encode()).hexdigest() == TEXTUAL_RUN_SHA256, (
        "Textual's Timer._run changed: check tui/frame_timer.py against it")
