"""warden's Textual app and command line. Calls ``store`` for all real work."""

import os

# Frames at most every 1/250 s (Textual's default is 60). A change waits for the
# screen's next frame tick, counted from the last frame drawn: a step to the next
# consumer, whose detail is ready some 5-10 ms after the key, waited for that
# tick up to 8 ms at 120 a second, and an empty Textual app stepped the same way
# measures the tick alone (8.1 ms at 120, 4.3 at 240); after a frame longer than
# a tick Textual waited one tick more than it meant (tui/frame_timer.py). Frames are drawn only when
# something changed, and Textual's animations keep their own 60 a second; set
# TEXTUAL_FPS to choose.
os.environ.setdefault("TEXTUAL_FPS", "250")
