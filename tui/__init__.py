"""warden's Textual app and command line. Calls ``store`` for all real work."""

import os

# Frames at most every 1/120 s (Textual's default is 60): a change waits for the
# next frame tick, so a step to the next consumer is painted up to 8 ms sooner.
# Frames are drawn only when something changed; set TEXTUAL_FPS to choose.
os.environ.setdefault("TEXTUAL_FPS", "120")
