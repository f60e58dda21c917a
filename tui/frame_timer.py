"""Textual's frame timer, with the tick after a long frame where Textual means it.

A screen draws its frames from a repeating timer (``TEXTUAL_FPS`` a second, 250
for warden: a tick every 4 ms) that skips the ticks a slow frame overran. Textual
8.2.8's ``Timer._run`` skips one too many: after a frame that began on a tick and
took longer than the interval, the next tick it waits for is not the first one
still ahead but the one after it. With a 4 ms tick and a 5.5 ms frame, the next
frame cannot begin before 12 ms after the last began, where 8 would do: a key
pressed just after a slow frame (the reviewer stepping through the queue, ``j``
held or typed quickly) waits 4 ms more for its own frame, for nothing.

:func:`install` replaces ``Timer._run`` with the same loop, its skip counting to
the first tick still ahead. Everything else is Textual's, line for line; it only
differs after a tick that ran past the next one. The upstream method it replaces
is pinned by its SHA-256 (``tests/test_frame_timer.py``): a Textual upgrade has to
look at this again.
"""

from __future__ import annotations

from textual import _time
from textual._time import sleep
from textual.timer import EventTargetGone, Timer

# Read through the module, so a test can run the loop on a clock of its own.
get_time = _time.get_time
wait = sleep


async def corrected_run(self: Timer) -> None:
    """Textual 8.2.8's ``Timer._run``, the skip counting to the first tick ahead."""
    count = 0
    _repeat = self._repeat
    _interval = self._interval
    self._active  # Force instantiation in same thread
    await self._active.wait()
    start = get_time()

    while _repeat is None or count <= _repeat:
        next_timer = start + ((count + 1) * _interval)
        now = get_time()
        if self._skip and next_timer < now:
            # Textual: int((now - start) / _interval + 1), one tick past the next.
            count = int((now - start) / _interval)
            continue
        now = get_time()
        wait_time = max(0, next_timer - now)
        await wait(wait_time)
        count += 1
        await self._active.wait()
        if self._reset:
            start = get_time()
            count = 0
            self._reset = False
            continue
        try:
            await self._tick(next_timer=next_timer, count=count)
        except EventTargetGone:
            break


TEXTUALS_RUN = Timer._run


def install() -> None:
    """Use :func:`corrected_run` for every Textual timer from now on (idempotent)."""
    Timer._run = corrected_run  # type: ignore[method-assign]
