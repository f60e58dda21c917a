"""A consumer's reply: refused without a letter, a date in the future or before
the letter, a file that cannot be stored; recorded with each file's hash, name,
size and date in the log; a duplicate recorded once; and ``warden response add``
killed midway, then run again."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store.casework.evidence import evidence_dir, stored_path
from store.casework.responses import add_response, file_reason
from store.db import connect
from store.decision_log import verify_chain
from store.errors import DecisionRefused, StoreError
from tests.cases_data import at, case_columns, log, sent_case
from tests.notes_case import CASE_ID, seed
from tui.cli import main

REPO = Path(__file__).resolve().parents[1]


def _files(tmp_path: Path, **contents: bytes) -> list[Path]:
    paths = []
    for name, data in contents.items():
        path = tmp_path / name.replace("_", ".")
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_a_reply_is_stored_and_logged_and_the_case_moves_on(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    reply, sheet = _files(tmp_path, reply_pdf=b"%PDF-1.7 reply", sheet_csv=b"a,b\n1,2\n")
    done = add_response(conn, CASE_ID, [reply, sheet, reply], reviewer="bo", clock=at("2023-05-22"),
                        max_bytes=1000, received="2023-05-20", note="answers 1-3")
    digest = hashlib.sha256(b"%PDF-1.7 reply").hexdigest()
    assert (done.response_id, done.case_id, done.received_on, done.state) == \
        (1, 1, "2023-05-20", "response_received")
    assert [(f.name, f.sha256, f.bytes, f.already) for f in done.files] == [
        ("reply.pdf", digest, 14, None), ("sheet.csv", hashlib.sha256(b"a,b\n1,2\n").hexdigest(), 8, None)]
    assert log(conn, "response") == [
        (1, "received", None, "2023-05-20", "answers 1-3"),
        (1, "file", None, digest, "reply.pdf; 14 bytes; received 2023-05-20"),
        (1, "file", None, done.files[1].sha256, "sheet.csv; 8 bytes; received 2023-05-20"),
    ]
    assert log(conn, "case")[-1] == (1, "state", "letter_sent", "response_received",
                                     "response #1 received 2023-05-20")
    assert stored_path(evidence_dir(tmp_path / "w.db"), digest).read_bytes() == b"%PDF-1.7 reply"
    assert case_columns(conn) == ("response_received", "2023-05-23")
    assert verify_chain(conn).ok


def test_a_file_the_case_holds_already_is_not_recorded_again(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    (reply,) = _files(tmp_path, reply_pdf=b"same")
    add_response(conn, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-20"), max_bytes=100)
    (again,) = _files(tmp_path, again_pdf=b"same")
    with pytest.raises(DecisionRefused, match=r"every file is already recorded for case #1 \(again.pdf in "
                                              r"response #1\); nothing recorded"):
        add_response(conn, CASE_ID, [again], reviewer="bo", clock=at("2023-05-21"), max_bytes=100)
    done = add_response(conn, CASE_ID, [again], reviewer="bo", clock=at("2023-05-21"), max_bytes=100,
                        note="the same file, sent again with a cover note")
    assert [(f.name, f.already) for f in done.files] == [("again.pdf", 1)]
    assert done.warnings == ("again.pdf is already recorded for case #1 (response #1); not recorded again",)
    assert conn.execute("SELECT count(*) FROM response_file").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM evidence_file").fetchone()[0] == 1


@pytest.mark.parametrize(("received", "message"), [
    ("2023-05-23", "received date 2023-05-23 is in the future (today is 2023-05-22, UTC)"),  # one past today
    ("2023-05-01", "received date 2023-05-01 is before the letter was sent (2023-05-02)"),
    ("20 May", "received date '20 May' is not a date like 2023-05-20"),
])
def test_bad_dates_are_refused(tmp_path: Path, received: str, message: str) -> None:
    conn = sent_case(tmp_path)
    (reply,) = _files(tmp_path, reply_pdf=b"r")
    with pytest.raises(DecisionRefused, match=re.escape(message)):
        add_response(conn, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-22"), max_bytes=10,
                     received=received)
    assert conn.execute("SELECT count(*) FROM response").fetchone()[0] == 0
    assert not evidence_dir(tmp_path / "w.db").exists()


def test_today_and_the_letters_day_are_accepted(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    a, b = _files(tmp_path, a_txt=b"a", b_txt=b"b")
    assert add_response(conn, CASE_ID, [a], reviewer="bo", clock=at("2023-05-22"), max_bytes=10,
                        received="2023-05-22").received_on == "2023-05-22"
    assert add_response(conn, CASE_ID, [b], reviewer="bo", clock=at("2023-05-22"), max_bytes=10,
                        received="2023-05-02").received_on == "2023-05-02"


def test_no_reply_without_a_letter(tmp_path: Path) -> None:
    conn = seed(tmp_path / "w.db")
    (reply,) = _files(tmp_path, reply_pdf=b"r")
    with pytest.raises(DecisionRefused, match="no audit request has been sent to northwind-analytics"):
        add_response(conn, CASE_ID, [reply], reviewer="bo", clock=at("2023-05-22"), max_bytes=10)
    assert not evidence_dir(tmp_path / "w.db").exists()


def test_one_bad_file_stores_nothing(tmp_path: Path) -> None:
    conn = sent_case(tmp_path)
    good, big = _files(tmp_path, good_txt=b"fine", big_bin=b"x" * 11)
    with pytest.raises(StoreError) as caught:
        add_response(conn, CASE_ID, [good, tmp_path / "missing.pdf", big], reviewer="bo", clock=at("2023-05-22"),
                     max_bytes=10)
    assert str(caught.value) == (f"{tmp_path}/missing.pdf: no such file; {tmp_path}/big.bin is 11 bytes, over the "
                                 "limit of 10 bytes ([evidence] max_file_bytes); nothing stored or recorded")
    assert caught.value.title == "File refused"     # the file is at fault, not the database
    assert not evidence_dir(tmp_path / "w.db").exists()
    assert conn.execute("SELECT count(*) FROM response").fetchone()[0] == 0


def test_the_command_refuses_a_reply_without_a_letter_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed(tmp_path / "w.db").close()
    (reply,) = _files(tmp_path, reply_pdf=b"r")
    assert main(["response", "add", CASE_ID, str(reply), "--db", str(tmp_path / "w.db")]) == 1
    assert "no audit request has been sent to northwind-analytics" in capsys.readouterr().err


def test_the_command_records_a_reply_and_case_show_gives_its_sha256(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    sent_case(tmp_path).close()
    (reply,) = _files(tmp_path, reply_pdf=b"We will review these questions and respond appropriately.")
    db = str(tmp_path / "w.db")
    assert main(["response", "add", CASE_ID, str(reply), "--db", db, "--note", "holding reply",
                 "--reviewer", "bo"]) == 0
    err = capsys.readouterr().err
    digest = hashlib.sha256(reply.read_bytes()).hexdigest()
    assert f"  reply.pdf  57 bytes  sha256 {digest}" in err
    assert main(["case", "show", CASE_ID, "--db", db]) == 0
    out = capsys.readouterr().out
    assert "response #1 received " in out and f"reply.pdf  57 bytes  sha256 {digest}" in out
    assert main(["case", "show", CASE_ID, "--db", db, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["cases"][0]["responses"][0]["files"] == [{"name": "reply.pdf", "sha256": digest, "bytes": 57}]
    assert main(["case", "show", "nobody", "--db", db]) == 2


def test_the_command_refuses_a_file_over_the_configured_limit(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    sent_case(tmp_path).close()
    config = tmp_path / "warden.toml"
    config.write_text("[evidence]\nmax_file_bytes = 4\n")
    ok, over = _files(tmp_path, ok_txt=b"1234", over_txt=b"12345")
    db = str(tmp_path / "w.db")
    assert main(["response", "add", CASE_ID, str(over), "--db", db, "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "File refused: " in err and "over.txt is 5 bytes, over the limit of 4 bytes" in err
    assert "Database error" not in err
    assert main(["response", "add", CASE_ID, str(ok), "--db", db, "--config", str(config)]) == 0


def _without_file_permission_override() -> list[str] | None:
    """A command prefix running a process that file permissions apply to: as
    root, without the capabilities that override them (setpriv); else as is."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    return ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"]


def test_an_unreadable_file_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    prefix = _without_file_permission_override()
    if prefix is None:
        pytest.skip("root without setpriv: file permissions cannot be made to apply")
    sent_case(tmp_path).close()
    (secret,) = _files(tmp_path, secret_pdf=b"nobody may read this")
    os.chmod(secret, 0o000)
    script = ("import sys; from tui.cli import main; "
              f"sys.exit(main(['response', 'add', {CASE_ID!r}, {str(secret)!r}, '--db', {str(tmp_path / 'w.db')!r}]))")
    run = subprocess.run([*prefix, sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 1, run.stderr
    assert f"{secret}: cannot read it (permission denied); nothing stored or recorded" in run.stderr
    assert not evidence_dir(tmp_path / "w.db").exists()
    conn = connect(tmp_path / "w.db")
    assert conn.execute("SELECT count(*) FROM response").fetchone()[0] == 0


def test_hostile_file_names_are_stored_as_given_and_shown_inert(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    conn = sent_case(tmp_path)
    name = "\x1b]52;c;aGk=\x07reply \u202eFDP.exe [bold]x[not bold] <b>.pdf"
    path = tmp_path / name
    path.write_bytes(b"hostile")
    add_response(conn, CASE_ID, [path], reviewer="bo", clock=at("2023-05-22"), max_bytes=100,
                 note="\x1b[31mred\x1b[0m note")
    assert conn.execute("SELECT name FROM response_file").fetchone()[0] == name
    assert file_reason(name, 7, "2023-05-22") == "\ufffd]52;c;aGk=\ufffdreply \ufffdFDP.exe [bold]x[not bold] <b>.pdf; " \
                                                 "7 bytes; received 2023-05-22"
    conn.close()
    assert main(["case", "show", CASE_ID, "--db", str(tmp_path / "w.db")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\u001b]52;c;aGk=\\u0007reply \\u202eFDP.exe [bold]x[not bold] <b>.pdf  7 bytes" in out


# --- killed midway ---------------------------------------------------------------------

KILL_SCRIPT = """
import sys
from tui.cli import main
sys.exit(main(["response", "add", sys.argv[1], *sys.argv[2:-1], "--db", sys.argv[-1], "--reviewer", "bo"]))
"""


def _stored_files_are_whole(root: Path) -> list[str]:
    """Every file under a hash name holds exactly that hash's content."""
    names = []
    for path in sorted((root / "sha256").rglob("*")) if (root / "sha256").exists() else []:
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
            names.append(path.name)
    return names


def _kill_when_copied(process: subprocess.Popen[bytes], incoming: Path, size: int, deadline: float) -> int:
    """SIGKILL ``process`` once a copy in ``incoming`` holds ``size`` bytes (or at
    ``deadline``); returns the size the copy had."""
    while time.monotonic() < deadline and process.poll() is None:
        try:
            sizes = [entry.stat().st_size for entry in os.scandir(incoming)]
        except FileNotFoundError:
            sizes = []
        if sizes and max(sizes) >= size:
            process.send_signal(signal.SIGKILL)
            return max(sizes)
    process.send_signal(signal.SIGKILL)
    return -1


BLOB_MIB = 48


@pytest.mark.slow
@pytest.mark.parametrize("seed_", range(8))
def test_response_add_killed_at_any_moment_leaves_no_partial_file_and_a_rerun_completes(
        tmp_path: Path, seed_: int) -> None:
    sent_case(tmp_path).close()
    rng = random.Random(seed_)
    blob = tmp_path / "export.bin"
    with open(blob, "wb") as handle:
        for _ in range(BLOB_MIB):
            handle.write(rng.randbytes(1 << 20))        # the copy takes a while
    small = tmp_path / "cover.txt"
    small.write_bytes(b"cover letter")
    db = tmp_path / "w.db"
    root = evidence_dir(db)
    args = [sys.executable, "-c", KILL_SCRIPT, CASE_ID, str(small), str(blob), str(db)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if seed_ % 2 == 0:
        # Midway through copying the large file: at a seeded fraction of it.
        _kill_when_copied(process, root / "incoming", int(rng.uniform(0.05, 0.95) * (BLOB_MIB << 20)),
                          time.monotonic() + 30)
    else:
        time.sleep(rng.uniform(0.05, 0.8))               # anywhere: starting, copying, recording, done
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    whole = _stored_files_are_whole(root)
    conn = connect(db)
    recorded = conn.execute("SELECT count(*) FROM response").fetchone()[0]
    assert recorded in (0, 1)
    if recorded:
        assert len(whole) == 2
    if seed_ % 2 == 0:
        # Killed while copying: the large file is nowhere under its hash name.
        assert hashlib.sha256(blob.read_bytes()).hexdigest() not in whole and recorded == 0
    conn.close()
    # Run again: the reply is recorded once, whole, and nothing is left in incoming.
    rerun = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    conn = connect(db)
    assert conn.execute("SELECT count(*) FROM response").fetchone()[0] == 1
    files = {r[0] for r in conn.execute("SELECT sha256 FROM response_file")}
    assert files == {hashlib.sha256(blob.read_bytes()).hexdigest(), hashlib.sha256(b"cover letter").hexdigest()}
    assert set(_stored_files_are_whole(root)) == files
    assert list((root / "incoming").iterdir()) == []
    assert verify_chain(conn).ok
    if recorded:
        assert rerun.returncode == 1 and "every file is already recorded" in rerun.stderr
    else:
        assert rerun.returncode == 0, rerun.stderr
