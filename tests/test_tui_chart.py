"""The usage chart reads without colour: overage has its own glyph, the cap its own mark."""

from __future__ import annotations

from tui.widgets.chart import day_columns, human, month_bars


def test_month_bars_mark_the_cap_and_the_overage_with_glyphs() -> None:
    chart = month_bars([("2022-01", 50), ("2022-02", 150)], 100, 40).plain.splitlines()
    assert len(chart) == 2
    under, over = chart
    assert "│" in under and "▓" not in under and under.rstrip().endswith("0.5x")
    assert "▓" in over and over.rstrip().endswith("1.5x")
    # The cap sits at the same column on every line.
    assert under.index("│") == over.index("│")


def test_month_bars_without_a_cap() -> None:
    chart = month_bars([("2022-01", 10)], None, 40).plain
    assert "│" not in chart and "x" not in chart.split()[-1]


def test_day_columns_draw_the_daily_cap_as_a_line() -> None:
    series = [(f"2022-03-{d:02d}", v) for d, v in zip(range(1, 6), (10, 20, 200, 30, 40))]
    rows = day_columns(series, 100, height=4).plain.splitlines()
    cap_rows = [r for r in rows if "cap 100/day" in r]
    assert len(cap_rows) == 1
    assert "┈" in cap_rows[0][:5]
    assert "▓" in "".join(rows[:-1])          # day 3 goes over the cap
    assert rows[-1].startswith("01")          # day-of-month ticks


def test_empty_series_says_so() -> None:
    assert "no usage stored" in month_bars([], 100, 40).plain
    assert "no usage stored" in day_columns([], 100).plain


def test_human_figures() -> None:
    assert human(780_412_345) == "780.4M"
    assert human(26_170_000_000) == "26.2G"
    assert human(999) == "999"
    assert human(None) == "-"
