"""The warden review application.

The App owns what every screen shares: the database path, the configuration,
the reviewer, the clock and the per-thread connections. Screens do the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from store.clock import Clock, system_clock
from store.config import Config
from tui.connections import ThreadConnections


class WardenApp(App[int]):
    """Review consumers' usage against their agreements and decide findings."""

    CSS_PATH = "warden.tcss"
    TITLE = "warden"
    # The palette lists every action of the screen (see get_system_commands).
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = [
        Binding("ctrl+p", "command_palette", "Palette", show=False, id="app.palette"),
    ]

    def __init__(
        self,
        *,
        db_path: Path | str,
        config: Config | None = None,
        reviewer: str = "reviewer",
        clock: Clock = system_clock,
        mouse: bool = True,
    ) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.config = config if config is not None else Config()
        self.reviewer = reviewer
        self.clock = clock
        self.mouse = mouse
        self.connections = ThreadConnections(self.db_path)
        # The config's [keymap] maps binding ids (see the help screen) to keys.
        self.set_keymap(dict(self.config.keymap))

    def on_mount(self) -> None:
        from tui.screens.review import ReviewScreen

        self.push_screen(ReviewScreen())

    def on_app_focus(self, event: events.AppFocus) -> None:
        # Back in the terminal: show what other sessions and cron syncs changed.
        refresh = getattr(self.screen, "action_refresh", None)
        if refresh is not None:
            refresh()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action of the current screen, then the app's own (theme, quit...)."""
        commands = getattr(screen, "palette_commands", None)
        if commands is not None:
            yield from commands()
        yield from super().get_system_commands(screen)


def run_app(
    *,
    db_path: Path | str,
    config: Config | None = None,
    reviewer: str = "reviewer",
    clock: Clock = system_clock,
    mouse: bool = True,
) -> int:
    """Run the TUI until the reviewer quits; returns the exit code."""
    app = WardenApp(db_path=db_path, config=config, reviewer=reviewer, clock=clock, mouse=mouse)
    app.run(mouse=mouse)
    return int(app.return_code or 0)
