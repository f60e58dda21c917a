"""Usage against a limit, drawn with characters that read without colour.

Two shapes: monthly totals as horizontal bars with the monthly cap as a ``│``
column, and daily figures as vertical bars with the daily cap as a ``┈`` line.
The part of a bar above its limit uses a different glyph (``▓``) as well as the
``chart--over`` style, so an overage shows under ``NO_COLOR`` too.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

_EIGHTHS = " ▁▂▃▄▅▆▇█"


def human(value: int | float | None) -> str:
    """``780,123,456`` -> ``780.1M``: short figures for chart labels."""
    if value is None:
        return "-"
    value = float(value)
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:.0f}"


def month_bars(
    series: list[tuple[str, int]],
    limit: int | None,
    width: int,
    *,
    over: Style | str = "bold red",
    bar: Style | str = "",
    limit_style: Style | str = "bold",
) -> Text:
    """One line per period: ``label  ████▓▓  total  ratio`` with the cap at ``│``."""
    text = Text(no_wrap=True, end="")
    if not series:
        text.append("no usage stored for this period")
        return text
    label_w = max(len(label) for label, _ in series)
    value_w = 7
    ratio_w = 7
    bar_w = max(10, width - label_w - value_w - ratio_w - 4)
    scale = max([v for _, v in series] + [limit or 0]) or 1
    limit_col = min(bar_w - 1, round(limit / scale * bar_w)) if limit else None
    for number, (label, value) in enumerate(series):
        if number:
            text.append("\n")
        text.append(label.ljust(label_w) + " ")
        filled = min(bar_w, round(value / scale * bar_w)) if value else 0
        # Runs, not single cells: one span per run keeps rendering cheap.
        if limit_col is None:
            text.append("█" * filled, bar)
            text.append(" " * (bar_w - filled))
        else:
            text.append("█" * min(filled, limit_col), bar)
            text.append(" " * max(0, limit_col - filled))
            text.append("│", limit_style)
            beyond = max(0, filled - limit_col - 1)
            text.append("▓" * beyond, over)
            text.append(" " * (bar_w - limit_col - 1 - beyond))
        text.append(" " + human(value).rjust(value_w))
        if limit:
            ratio = value / limit
            text.append(f" {ratio:5.1f}x".rjust(ratio_w + 1), over if ratio > 1 else "")
    return text


def day_columns(
    series: list[tuple[str, int]],
    limit: int | None,
    *,
    height: int = 6,
    over: Style | str = "bold red",
    bar: Style | str = "",
    limit_style: Style | str = "bold",
) -> Text:
    """Vertical bars, one column per day, the daily cap drawn as a ``┈`` row."""
    text = Text(no_wrap=True, end="")
    if not series:
        text.append("no usage stored for this period")
        return text
    values = [v for _, v in series]
    scale = max(values + [limit or 0]) or 1
    eighths = [round(v / scale * height * 8) for v in values]
    limit_row = min(height - 1, int(limit / scale * height)) if limit else None
    for row in range(height - 1, -1, -1):
        for col, amount in enumerate(eighths):
            fill = min(8, max(0, amount - row * 8))
            beyond = limit is not None and values[col] > limit and row >= (limit_row or 0)
            if row == limit_row and fill < 8:
                text.append("┈", limit_style)
            elif row == limit_row:
                text.append("╪", over if beyond else limit_style)  # the cap line through a bar
            elif fill and beyond and row > (limit_row or 0):
                text.append("▓", over)
            else:
                text.append(_EIGHTHS[fill], over if beyond and fill else bar)
        if row == limit_row:
            text.append(f" ┈ cap {human(limit)}/day", limit_style)
        text.append("\n")
    # Day-of-month ticks every 5 days under the bars.
    ticks = ""
    for col, (label, _) in enumerate(series):
        day = label[-2:]
        if len(ticks) > col:
            continue
        ticks += day if int(day) % 5 == 0 or col == 0 else " "
    text.append(ticks[: len(series)])
    return text
