"""The lead's overview: every number worked out by hand for a database of cases
in every state, each with the queue filter that lists it; written as Markdown,
HTML and JSON, hostile names inert; findings per month kept by triggers."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from store.db import connect
from store.errors import ExportError
from store.export.files import write_file
from store.queue import QueueQuery, QueueReader
from store.queue_filter import parse_filter
from store.report import lead_overview
from store.report.formats import bar, render_report
from tests.cases_data import cases_in_every_state
from tests.notes_case import CASE_ID, HOSTILE_ID, HOSTILE_NAME
from tui.cli import main

TODAY = date(2023, 6, 1)   # a Thursday: the weeks are those of 8, 15, 22 and 29 May


@pytest.fixture(scope="module")
def cases_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cases_in_every_state(tmp_path_factory.mktemp("report"))


def test_the_overview_counts_what_the_cases_are(cases_db: Path) -> None:
    o = lead_overview(connect(cases_db), TODAY)
    assert [(c.label, c.value, c.filter) for c in o.cases] == [
        ("open", 3, "case:open"), ("reopened", 0, "case:reopened"), ("letter sent", 2, "case:letter-sent"),
        ("response received", 2, "case:response-received"), ("escalated", 1, "case:escalated"),
        ("resolved", 1, "case:resolved"), ("closed", 0, "case:closed")]
    assert (o.awaiting.value, o.awaiting.filter, o.overdue.value, o.overdue.filter) == (3, "due:any", 1, "due:overdue")
    assert [(d.consumer_id, d.case_id, d.due_date, d.days_left, d.items_pending, d.items) for d in o.overdue_cases] \
        == [(CASE_ID, 1, "2023-05-23", -9, 6, 6)]


def test_findings_per_month_by_category(cases_db: Path) -> None:
    o = lead_overview(connect(cases_db), TODAY)
    assert o.months == ["2021-04", "2021-05", "2021-06", "2021-07", "2021-08", "2021-09", "2021-10", "2021-11",
                        "2021-12", "2022-01", "2022-02", "2022-03"]
    assert {c.label: c.value for c in o.month_totals if c.value} == {"2021-10": 1, "2022-01": 9, "2022-03": 2}
    assert [(c.category, c.total) for c in o.categories] == [
        ("volume_cap", 8), ("rate_limit", 1), ("missing_use_case", 1), ("government_end_user", 1),
        ("restricted_use", 1)]
    jan = o.categories[0].counts[9]
    assert (jan.label, jan.value) == ("2022-01", 8)
    assert jan.filter == ("category:volume_cap month:2022-01 "
                          "status:candidate,confirmed,needs_info,audit_requested,resolved")


def test_the_largest_overage_and_the_decisions_per_week(cases_db: Path) -> None:
    o = lead_overview(connect(cases_db), TODAY)
    # bulk-00003's case is resolved: its finding no longer counts.
    assert [(t.consumer_id, round(t.worst_ratio, 4), t.case_state) for t in o.top] == [
        (CASE_ID, 7.9012, "letter_sent"), ("bulk-00006", 1.5, "response_received"), ("bulk-00005", 1.5, "open"),
        ("bulk-00004", 1.5, "open"), ("bulk-00002", 1.5, "escalated")]
    assert o.weeks == ["2023-W19", "2023-W20", "2023-W21", "2023-W22"]
    assert o.week_starts == ["2023-05-08", "2023-05-15", "2023-05-22", "2023-05-29"]
    # bo: a letter (draft, exported, case, six items, one finding) in W19, W20, W21; in W21 also a reply and an
    # item; in W22 a reply and six items. cy: an escalation, a closing and its finding in W22. ana's letter was
    # in W18.
    assert [(r.reviewer, [c.value for c in r.counts], r.total) for r in o.reviewers] == [
        ("bo", [10, 10, 12, 7], 39), ("cy", [0, 0, 0, 3], 3)]
    assert o.reviewers[1].counts[3].filter == "by:cy week:2023-W22"


def test_each_number_lists_what_it_counts_in_the_queue(cases_db: Path) -> None:
    o = lead_overview(connect(cases_db), TODAY)
    reader = QueueReader(lambda: connect(cases_db))
    counts = [*o.cases, o.awaiting, o.overdue, *(c for cat in o.categories for c in cat.counts if c.value)]
    for count in counts:
        shown = reader.count(QueueQuery(parse_filter(count.filter, today=TODAY)))
        if count.filter.startswith("category:"):
            assert shown >= 1    # consumers, while the chart counts findings
        else:
            assert shown == count.value, count


def test_markdown_draws_the_charts_as_text(cases_db: Path) -> None:
    text = render_report(lead_overview(connect(cases_db), TODAY), "md", organisation="Example *Platform*")
    assert text.startswith("# Compliance overview: Example \\*Platform\\*\n")
    assert "| letter sent | 2 |" in text
    assert "Awaiting a reply: **3**, of which overdue: **1**." in text
    assert "| Northwind Analytics Ltd (northwind-analytics) | #1 | 2023-05-23 | overdue by 9 days | 6 of 6 |" in text
    assert f"Jan 2022  {'█' * 40}  9" in text
    assert f"Oct 2021  {'█' * 4}▌{' ' * 36} 1" in text
    assert "| bo | 10 | 10 | 12 | 7 | 39 |" in text
    # The overage as the queue and the detail write it (7.9012 times the limit), not rounded another way.
    assert "| Northwind Analytics Ltd (northwind-analytics) | 7.90x | letter sent |" in text
    assert "| 1.50x |" in text


def test_bars_are_drawn_in_eighths() -> None:
    assert bar(0, 9) == "" and bar(5, 0) == ""
    assert bar(9, 9, 4) == "████"
    assert bar(1, 8, 1) == "▏"
    assert bar(1, 9, 40) == "████▌"      # 1/9 of 40 cells = 4.44: 4 and 4 eighths


def test_html_is_a_standalone_page_with_svg_charts_and_nothing_unescaped(tmp_path: Path) -> None:
    from tests.cases_data import send_letter
    from tests.notes_case import seed

    conn = seed(tmp_path / "w.db")
    send_letter(conn, tmp_path / "out", consumer_id=HOSTILE_ID)
    page = render_report(lead_overview(conn, date(2023, 5, 24)), "html", organisation="<Org & Co>")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<title>Compliance overview: &lt;Org &amp; Co&gt;, 2023-05-24</title>" in page
    assert page.count("<svg") == 2 and "<script" not in page
    assert "<rect" in page and "Volume cap exceeded, Jan 2022: 1" in page
    assert "\x1b" not in page and "\u202e" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE_NAME not in page


def test_json_holds_every_number(cases_db: Path) -> None:
    data = json.loads(render_report(lead_overview(connect(cases_db), TODAY), "json", organisation="Org"))
    assert (data["format"], data["today"], data["organisation"]) == ("warden-overview", "2023-06-01", "Org")
    assert data["overdue"] == {"label": "overdue", "value": 1, "filter": "due:overdue"}
    assert data["reviewers"][0]["total"] == 39


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_the_command_writes_the_report(cases_db: Path, tmp_path: Path, fmt: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports" / f"overview.{fmt}"
    assert main(["report", "--format", fmt, "--out", str(out), "--db", str(cases_db)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert main(["report", "--format", fmt, "--out", str(out), "--db", str(cases_db)]) == 1
    assert "exists; nothing written (use --force to replace it)" in capsys.readouterr().err
    assert main(["report", "--format", fmt, "--db", str(cases_db)]) == 0
    assert "Northwind Analytics Ltd" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        main(["report", "--format", "pdf", "--db", str(cases_db)])
    assert bad.value.code == 2


def test_the_report_refuses_a_folder_and_an_existing_file_word_for_word(cases_db: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    assert main(["report", "--format", "md", "--out", str(folder), "--db", str(cases_db)]) == 1
    assert capsys.readouterr().err == f"warden: Report refused: {folder} is a folder; nothing written\n"
    assert list(folder.iterdir()) == []
    out = tmp_path / "overview.md"
    out.write_text("last week's overview")
    assert main(["report", "--format", "md", "--out", str(out), "--db", str(cases_db)]) == 1
    assert capsys.readouterr().err == (f"warden: Report refused: {out} exists; nothing written "
                                       "(use --force to replace it)\n")
    assert out.read_text() == "last week's overview"
    # Called without force (its default), the file is kept just the same.
    with pytest.raises(ExportError, match="exists; nothing written"):
        write_file(out, b"# another overview\n")
    assert out.read_text() == "last week's overview"


def test_force_replaces_the_report_whole_and_leaves_no_temporary_file(cases_db: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "overview.md"
    out.write_text("last week's overview")
    out.chmod(0o644)
    assert main(["report", "--format", "md", "--out", str(out), "--db", str(cases_db), "--force"]) == 0
    assert capsys.readouterr().err == f"warden: wrote the overview as md to {out}\n"
    assert out.read_text().startswith("# Compliance overview: ")
    assert out.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["overview.md"]


@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
def test_a_report_the_disk_refuses_leaves_nothing_behind(cases_db: Path, tmp_path: Path, force: bool,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # A name longer than the file system allows (255 bytes): the temporary file is written, then
    # naming it fails. Neither it nor the folders created for it stay.
    out = tmp_path / "reports" / "2023" / ("o" * 256 + ".md")
    assert main(["report", "--format", "md", "--out", str(out), "--db", str(cases_db)]
                + (["--force"] if force else [])) == 1
    assert capsys.readouterr().err == (f"warden: Report failed: cannot write {out}: File name too long; "
                                       "nothing written\n")
    assert list(tmp_path.iterdir()) == []


def test_a_report_interrupted_while_written_leaves_nothing_behind(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt        # Ctrl-C while the file is flushed to disk

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file(tmp_path / "overview.md", b"# Compliance overview\n")
    assert list(tmp_path.iterdir()) == []


def test_findings_per_month_follow_every_change_of_a_finding(tmp_path: Path) -> None:
    conn = connect(tmp_path / "w.db")
    conn.execute("INSERT INTO consumer (id, legal_name) VALUES ('c', 'C')")

    def add(category: str, start: str, status: str = "candidate") -> int:
        return int(conn.execute(
            "INSERT INTO finding (consumer_id, category, period, period_start, period_end, status, detected_at, "
            "updated_at) VALUES ('c', ?, ?, ?, ?, ?, 't', 't')", (category, start, start, start, status)).lastrowid)

    def months() -> dict[tuple[str, str], int]:
        return {(r[0], r[1]): r[2] for r in conn.execute("SELECT * FROM finding_month WHERE findings > 0")}

    a = add("volume_cap", "2022-07-01")
    add("volume_cap", "2022-07-15")
    add("rate_limit", "2022-08-01", "dismissed")
    assert months() == {("volume_cap", "2022-07"): 2}
    conn.execute("UPDATE finding SET status = 'dismissed' WHERE id = ?", (a,))
    assert months() == {("volume_cap", "2022-07"): 1}
    conn.execute("UPDATE finding SET status = 'candidate' WHERE id = ?", (a,))
    conn.execute("UPDATE finding SET category = 'circumvention', period_start = '2022-09-01' WHERE id = ?", (a,))
    assert months() == {("volume_cap", "2022-07"): 1, ("circumvention", "2022-09"): 1}
    conn.execute("UPDATE finding SET status = 'confirmed' WHERE id = ?", (a,))        # still standing
    assert months() == {("volume_cap", "2022-07"): 1, ("circumvention", "2022-09"): 1}
    conn.execute("DELETE FROM finding WHERE id = ?", (a,))
    assert months() == {("volume_cap", "2022-07"): 1}
