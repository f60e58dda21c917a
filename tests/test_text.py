"""store.text: text from data made safe for a screen, a document and a message."""

from __future__ import annotations

import pytest

from store.text import clean_text, month_short, printable, ratio_text, visible

HOSTILE = "a\x1b[31mb\x07\tc\r\nd\u202ee\x9b\x00"


def test_visible_shows_control_characters_as_pictures_and_escapes() -> None:
    assert visible(HOSTILE) == "a␛[31mb␇␉c␍␊d\\u202ee\\u009b␀"
    assert visible("del\x7f") == "del\u2421"
    assert visible("[bold]plain ünïcode[/]") == "[bold]plain ünïcode[/]"
    assert visible(None) == "" and visible(12) == "12"


def test_clean_text_replaces_controls_and_folds_line_breaks() -> None:
    assert clean_text(HOSTILE) == "a\ufffd[31mb\ufffd c  d\ufffde\ufffd\ufffd"
    assert clean_text(HOSTILE, newlines=True) == "a\ufffd[31mb\ufffd c\nd\ufffde\ufffd\ufffd"
    assert clean_text("left\u200fright\u2066x") == "left\ufffdright\ufffdx"
    assert clean_text(None) == ""


def test_printable_escapes_what_is_not_printable() -> None:
    assert printable(HOSTILE) == "a\\u001b[31mb\\u0007\\u0009c\\u000d\\u000ad\\u202ee\\u009b\\u0000"
    assert printable("no\u00a0break") == "no\\u00a0break"
    assert printable("plain text, ünïcode") == "plain text, ünïcode"


@pytest.mark.parametrize("form", [visible, clean_text, printable])
def test_no_form_lets_an_escape_character_through(form: object) -> None:
    out = form("\x1b]52;c;cHduZWQ=\x07 \x1b[2J")  # type: ignore[operator]
    assert "\x1b" not in out and "\x07" not in out


def test_each_kind_of_invisible_character_is_shown_as_an_escape() -> None:
    # One of each Unicode category that is not printable: a C1 control (Cc), a format
    # character (Cf: a bidi override), a lone surrogate (Cs), a private-use character
    # (Co), the line and paragraph separators (Zl, Zp).
    assert visible("a\x85b\u202ec\ud800d\ue000e\u2028f\u2029g") == \
        "a\\u0085b\\u202ec\\ud800d\\ue000e\\u2028f\\u2029g"
    assert printable("a\u2028b\ud800") == "a\\u2028b\\ud800"


def test_clean_text_keeps_line_breaks_of_a_body_only_when_asked() -> None:
    assert clean_text("a\r\nb\tc\rd") == "a  b c d"
    assert clean_text("a\r\nb\tc\rd", newlines=True) == "a\nb cd"
    assert clean_text("\u202e\x00\x1b") == "\ufffd\ufffd\ufffd"
    assert clean_text(0) == "0"
    # Only tabs and line breaks become spaces: every printable character is kept, capitals included.
    assert clean_text("X-Ray Analytics XL, Québec\u00a0Inc.") == "X-Ray Analytics XL, Québec\u00a0Inc."


@pytest.mark.parametrize(("month", "expected"), [("2022-01", "Jan"), ("2022-07", "Jul"), ("2021-12", "Dec")])
def test_a_month_is_named_short_as_the_overview_and_report_label_it(month: str, expected: str) -> None:
    assert month_short(month) == expected


# An overage ratio as the queue, the detail and the report show it; each limit exactly and just past it.
@pytest.mark.parametrize(("ratio", "shown"), [
    (None, "-"), (0.0, "-"), (0.5, "-"), (1.0, "-"),      # no figure, or not over: a dash
    (1.004, "1.00x"), (1.02, "1.02x"), (1.5, "1.50x"), (2.0, "2.00x"), (9.99, "9.99x"),
    (10.0, "10.0x"), (10.5, "10.5x"), (812.34, "812.3x"), (999.9, "999.9x"),
    (1000.0, "1,000x"), (1000.5, "1,000x"), (1000.6, "1,001x"), (1234567.8, "1,234,568x"),
])
def test_an_overage_ratio_is_shown_with_fewer_decimals_the_larger_it_is(ratio: float | None, shown: str) -> None:
    assert ratio_text(ratio) == shown
