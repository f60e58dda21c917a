"""What a reviewer reads, at every size (issue 10): label/value pairs never run
together at 80, 100 and 120 columns with long values, the header keeps the sync
time at 80x24, one name for a tier everywhere, a daily limit read as a worst day,
a chart legend that reads as words."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from rich.text import Text

from tests.test_tui_review import make_app, press, review_screen
from tests.tui_data import seed_review_db, settle
from tui.widgets.detail import DetailPane
from tui.widgets.pairs import fit_pairs, pair, wrap_pairs
from tui.widgets.queue import Columns, QueueView, case_cell, header_text

pytestmark = pytest.mark.anyio

LABELS = ("tier", "agreement", "contact", "use case", "government end users")
LONG = {
    "legal_name": "Northwind Analytics and Social Listening Holdings International Ltd",
    "notice_contact": "legal-department-notices-for-api-agreements@northwind-analytics-holdings.example",
    "declared_use_case": "Brand sentiment dashboards for retail clients in twelve countries, refreshed hourly",
    "agreement_version": "2021-06 (amended 2022-03, side letter 2022-09)",
}


def long_values_db(tmp_path: Path) -> Path:
    db = seed_review_db(tmp_path / "long.db")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE tier SET name = 'Enterprise Plus with Extended Historical Access'")
        sets = ", ".join(f"{k} = ?" for k in LONG)
        conn.execute(f"UPDATE consumer SET {sets}, government_end_users = 'Yes: two federal agencies'"
                     " WHERE id = 'northwind-analytics'", list(LONG.values()))
    conn.close()
    return db


def pane_lines(app) -> list[str]:
    return review_screen(app).query_one(DetailPane).lines


def assert_pairs_whole(lines: list[str], width: int) -> None:
    """Every label is followed by its value on its own line, and starts a line or
    stands two spaces after the pair before it."""
    for line in lines:
        assert len(line.rstrip()) <= width, line
        for label in LABELS:
            for m in re.finditer(re.escape(label) + ":", line):
                before = line[:m.start()]
                assert before.strip() == "" or before.endswith("  "), (label, line)
                assert line[m.end():].strip(), f"{label}: ends the line without its value: {line!r}"


@pytest.mark.parametrize("width", [80, 100, 120])
async def test_label_value_pairs_never_run_together(tmp_path: Path, width: int) -> None:
    app = make_app(long_values_db(tmp_path))
    async with app.run_test(size=(width, 40)) as pilot:
        await settle(pilot)
        lines = pane_lines(app)
        lines = lines[:lines.index("")]          # the consumer's facts, before the chart
        head = "\n".join(lines)
        pane_width = review_screen(app).query_one(DetailPane).scrollable_content_region.width
        assert_pairs_whole(lines, pane_width)
        for label in LABELS:
            assert f"{label}:" in head
        # Every value is there, whole, once the lines are joined back.
        joined = re.sub(r"\s+", " ", head)
        for value in ("Enterprise Plus with Extended Historical Access", "Yes: two federal agencies",
                      "none declared") + tuple(v for k, v in LONG.items() if k != "legal_name"):
            if value != "none declared":
                assert re.sub(r"\s+", "", value) in re.sub(r"\s+", "", joined), value


@pytest.mark.parametrize("width", [80, 100, 120])
def test_wrap_pairs_moves_whole_pairs_and_wraps_only_a_pair_wider_than_the_line(width: int) -> None:
    pairs = [pair("tier", "Enterprise"), pair("agreement", "2021-06"), pair("contact", "x" * (width + 30)),
             pair("use case", "none declared"), pair("government end users", "none")]
    lines = wrap_pairs(pairs, width).plain.split("\n")
    assert lines[0] == "tier: Enterprise  agreement: 2021-06"
    assert lines[1] == "contact: " + "x" * (width - len("contact: "))   # no space in it: cut at the width
    assert lines[2].startswith("    x")                     # the rest, indented
    assert lines[-1] == "use case: none declared  government end users: none"
    assert all(len(line) <= width for line in lines)


def test_fit_pairs_shortens_then_cuts_the_one_pair_allowed() -> None:
    pairs = [pair("", "1 / 304", short="1/304"), pair("filter", "state:open over:1.1 name:northwind", cut=True),
             pair("sync", "2/2 sources ok, 2023-01-02 09:30 UTC", short="2/2 ok, 01-02 09:30Z")]
    assert fit_pairs(pairs, 200).plain == ("1 / 304  filter: state:open over:1.1 name:northwind  "
                                           "sync: 2/2 sources ok, 2023-01-02 09:30 UTC")
    assert fit_pairs(pairs, 80, shorten_first=(2, 0)).plain == (
        "1 / 304  filter: state:open over:1.1 name:northwind  sync: 2/2 ok, 01-02 09:30Z")
    fitted = fit_pairs(pairs, 60, shorten_first=(2, 0)).plain
    assert fitted == "1/304  filter: state:open over:…  sync: 2/2 ok, 01-02 09:30Z"
    assert len(fitted) == 60
    assert isinstance(fit_pairs([], 10), Text)


async def test_the_header_keeps_the_sync_time_at_80_columns(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        line = str(review_screen(app).query_one("#status-line").render())
        assert line.rstrip() == " warden   1 / 45  sort: overage ↓  filter: none  sync: 1/1 ok, 01-01 06:02Z"
        await press(pilot, "slash")
        await pilot.press(*"state:open name:northwind tier:standard over:1.1")
        await press(pilot, "enter")
        line = str(review_screen(app).query_one("#status-line").render())
        assert len(line.rstrip()) <= 80
        assert line.rstrip().endswith("…  sync: 1/1 ok, 01-01 06:02Z")
        assert "filter: state:open" in line


async def test_the_header_says_the_sync_time_in_full_when_there_is_room(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        line = str(review_screen(app).query_one("#status-line").render())
        assert "filter: none  sync: 1/1 sources ok, 2023-01-01 06:02 UTC" in line


async def test_the_queue_names_a_tier_as_the_detail_does(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE tier SET name = 'Pro' WHERE id = 'standard'")
    conn.close()
    app = make_app(db)
    async with app.run_test(size=(80, 24)) as pilot:     # the queue has a tier column when stacked
        await settle(pilot)
        q = review_screen(app).query_one(QueueView)
        line = "".join(s.text for s in q.render_line(0))
        assert " Pro " in line and "standard" not in line
        assert "tier: Pro" in "\n".join(pane_lines(app))


async def test_a_daily_limit_is_read_as_its_worst_day(db: Path) -> None:
    import json

    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO finding (id, consumer_id, category, period, period_start, period_end, severity, status,"
            " rule_id, metric, actual, limit_value, ratio, figures, detected_at, updated_at) VALUES"
            " (9, 'fabrikam', 'rate_limit', '2022-10', '2022-10-01', '2022-10-31', 'medium', 'candidate',"
            " 'rate_limit.calls_per_day', 'calls', 2272400, 1000000, 2.2724, ?, 't', 't')",
            (json.dumps({"worst_day": {"day": "2022-10-02", "total": 2272400}, "limit": {"period": "day"},
                         "days_over": ["2022-10-02", "2022-10-09"]}),))
        conn.execute("UPDATE consumer SET review_state = 'open', worst_ratio = 2.2724, open_findings = 1"
                     " WHERE id = 'fabrikam'")
    conn.close()
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "j")
        findings = review_screen(app).query_one(DetailPane).text.split("\nFindings\n")[1]
        assert "#9 Rate limit exceeded, worst day 2 October 2022: 2,272,400 / 1,000,000 calls a day (2.27x)" \
            in findings
        assert "2022-10: 2,272,400" not in findings


async def test_the_chart_legend_reads_as_words(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = review_screen(app).query_one(DetailPane).text
        assert "│ = monthly cap, ▓ = over the cap" in text
        assert re.search(r"year total [\d,]+ against a yearly cap of 200,000,000: [\d.]+x", text)
        await press(pilot, "t")
        text = review_screen(app).query_one(DetailPane).text
        assert "┈ = daily cap 1.0M, ▓ = over the cap" in text
        assert re.search(r"month total [\d,]+ against a monthly cap of 20,000,000: [\d.]+x", text)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = st.text(alphabet=st.sampled_from("ab 漢x-@."), max_size=60)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(["", "tier", "government end users"]), _WORDS), max_size=6),
       width=st.integers(min_value=1, max_value=130))
def test_wrap_pairs_ends_keeps_every_character_and_fits(pairs: list[tuple[str, str]], width: int) -> None:
    text = wrap_pairs([pair(label, value) for label, value in pairs], width)
    lines = text.plain.split("\n")
    from rich.cells import cell_len

    assert all(cell_len(line) <= max(width, 6) for line in lines)
    squeezed = "".join(f"{label}: {value}" if label else value for label, value in pairs)
    assert text.plain.replace("\n", "").replace(" ", "") == squeezed.replace(" ", "")


def test_spaces_that_begin_a_style_join_the_text_before_them() -> None:
    from rich.segment import Segment
    from rich.style import Style

    from tui.text import glue_spaces

    bold, dim, reverse = Style(bold=True), Style(dim=True), Style(reverse=True)
    assert glue_spaces([Segment("draft", bold), Segment("  v1", None)]) == [Segment("draft  ", bold),
                                                                           Segment("v1", None)]
    assert glue_spaces([Segment("none", dim), Segment("  ", None), Segment("sync: ", dim)]) == [
        Segment("none  ", dim), Segment("sync: ", dim)]
    # A reversed or underlined run would show the spaces it took: left alone.
    assert glue_spaces([Segment(" warden ", reverse), Segment("  1 / 45", None)]) == [
        Segment(" warden ", reverse), Segment("  1 / 45", None)]
    assert glue_spaces([Segment("a", Style(underline=True)), Segment(" b", None)]) == [
        Segment("a", Style(underline=True)), Segment(" b", None)]


async def test_a_cut_name_never_runs_into_the_tier(db: Path) -> None:
    app = make_app(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        q = review_screen(app).query_one(QueueView)
        line = "".join(s.text for s in q.render_line(1))     # the long hostile name, cut
        header = header_text(q.scrollable_content_region.width).plain
        # The cut name, a space, the case column (empty: no case), the tier where its title is.
        case_at, tier_at = header.index("case"), header.index("tier")
        assert line[case_at - 2:tier_at] == "… " + " " * (tier_at - case_at)
        assert line[tier_at:].startswith("Standard ")


@pytest.mark.parametrize(("state", "due", "cell"), [
    ("letter_sent", "2025-03-17", "overdue 99d"),      # the longest in days
    ("letter_sent", "2023-07-26", "overdue 99w"),      # in weeks (699 days)
    ("letter_sent", "1935-06-24", "overdue 90y"),      # in years
    ("escalated", None, "⚑ escalated"),                # the longest state word
    ("letter_sent", "2052-11-08", "due 27y"),          # a clock far behind still fits
])
def test_the_case_column_holds_its_longest_words_and_a_space(state: str, due: str | None, cell: str) -> None:
    from datetime import date

    today = date(2025, 6, 24)
    assert case_cell(state, due, today) == cell
    for width in (54, 78, 118):
        cols = Columns.for_width(width)
        assert len(cell) <= cols.case - 1     # the last one is the gap before the tier


def test_the_header_keeps_a_partial_syncs_time_at_80_columns() -> None:
    from tui.widgets.status import status_text

    line = status_text(position=(1, 303), tagged=0, sort="overage", reverse=False, filter_text="",
                       sync="1/2 sources ok (demo-x partial), 2023-01-02T09:30:00Z", width=80).plain
    assert line == "1/303  sort: overage ↓  filter: none  sync: 1/2 ok (1 partial), 01-02 09:30Z"
    wide = status_text(position=(1, 303), tagged=2, sort="name", reverse=True, filter_text="state:open",
                       sync="1/2 sources ok (demo-x partial), 2023-01-02T09:30:00Z", width=160).plain
    assert wide == (" warden   1 / 303  2 tagged  sort: name ↑  filter: state:open  "
                    "sync: 1/2 sources ok (demo-x partial), 2023-01-02 09:30 UTC")


def test_wrap_lines_gives_the_lines_rich_wraps_at_the_width_and_past_it() -> None:
    """The detail pane's short cut past Rich's wrap (lines that fit are taken as
    they are) gives Rich's own lines, styles included: for a line exactly as wide
    as the pane, one cell wider, wide characters on the edge, a tab, trailing and
    leading spaces, blank lines."""
    from rich.console import Console

    from tui.text import wrap_lines

    console = Console(width=200)
    width = 20
    text = Text(end="")
    text.append("exactly twenty cells\n")                 # 20: fits
    text.append("twenty-one cells wide\n", "bold")         # 21: one past
    text.append("wide 漢字漢字漢字漢字x\n")                   # 5 + 16 + 1 = 22 cells in 14 characters
    text.append("wide 漢字漢字漢字漢\n")                      # 5 + 14 = 19 cells
    text.append("tab\there\n")
    text.append("\n")
    text.append("  lead and trail    \n", "italic")        # 20 with the spaces
    text.append("trail past the edge      \n")
    text.append("a very long line of evidence that wraps over several lines of the pane", "dim")
    text.stylize("underline", 3, 40)
    ours = wrap_lines(text, console, width)
    rich = list(text.wrap(console, width))
    assert [line.plain for line in ours] == [line.plain for line in rich]
    assert [line.spans for line in ours] == [line.spans for line in rich]
    assert [line.style for line in ours] == [line.style for line in rich]
    # 1 + 2 + 2 + 1 + tab + blank + 1 + 1 (the spaces past the edge dropped) + 4
    assert len(ours) == 14
    assert ours[9].plain == "trail past the edge "
