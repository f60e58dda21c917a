"""The evidence store: files under their SHA-256, private, never modified, no
partial file under a hash name whatever kills the copy; and verify's check of a
stored file."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from store.casework.evidence import INCOMING, check_file, evidence_dir, put, stored_path, sweep
from store.errors import StoreError

# sha256 of b"abc", written out (FIPS 180-2, appendix B.1).
ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_is_stored_under_its_sha256_readable_by_its_owner_only(tmp_path: Path) -> None:
    source = tmp_path / "reply.txt"
    source.write_bytes(b"abc")
    root = evidence_dir(tmp_path / "warden.db")
    assert root == tmp_path / "warden.db-evidence"
    stored = put(root, source, max_bytes=3)
    assert (stored.sha256, stored.bytes, stored.existed) == (ABC, 3, False)
    path = root / "sha256" / "ba" / ABC
    assert stored_path(root, ABC) == path and path.read_bytes() == b"abc"
    assert _mode(path) == 0o600
    for folder in (root, root / "sha256", root / "sha256" / "ba", root / INCOMING):
        assert _mode(folder) == 0o700, folder
    assert list((root / INCOMING).iterdir()) == []
    assert check_file(root, ABC, 3) is None


def test_the_same_content_again_is_not_written_again(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    first, second = tmp_path / "a.txt", tmp_path / "copy of a.txt"
    first.write_bytes(b"abc")
    second.write_bytes(b"abc")
    put(root, first, max_bytes=10)
    path = stored_path(root, ABC)
    before = path.stat()
    again = put(root, second, max_bytes=10)
    assert again.existed and again.sha256 == ABC
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_the_size_limit_is_exact(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 1000)
    assert put(root, source, max_bytes=1000).bytes == 1000          # on the limit: stored
    source.write_bytes(b"x" * 1001)
    with pytest.raises(StoreError, match="is 1,001 bytes, over the limit of 1,000 bytes") as caught:
        put(root, source, max_bytes=1000)                              # one past: refused
    assert caught.value.title == "File refused"
    assert [p.name for p in (root / "sha256").rglob("*") if p.is_file()] == \
        [hashlib.sha256(b"x" * 1000).hexdigest()]


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo"])
def test_what_is_not_a_readable_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "thing"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(StoreError, match="no such file" if kind == "missing" else "not a regular file") as caught:
        put(tmp_path / "ev", path, max_bytes=100)
    assert caught.value.title == "File refused"
    assert not (tmp_path / "ev" / "sha256").exists()


def test_check_file_names_an_edited_a_removed_and_a_truncated_file(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    source = tmp_path / "reply.txt"
    source.write_bytes(b"abc")
    put(root, source, max_bytes=10)
    path = stored_path(root, ABC)
    os.chmod(path, 0o600)
    path.write_bytes(b"abd")
    assert check_file(root, ABC, 3) == (f"{path} was edited: its content now hashes to "
                                        f"{hashlib.sha256(b'abd').hexdigest()} (3 bytes)")
    path.unlink()
    assert check_file(root, ABC, 3) == f"{path} is missing (removed from the evidence store)"
    put(root, source, max_bytes=10)
    assert check_file(root, ABC, 4) == f"{path} holds 3 bytes; 4 were recorded"


def test_a_copy_left_by_a_killed_process_is_swept_but_not_one_in_progress(tmp_path: Path) -> None:
    import fcntl

    root = tmp_path / "ev"
    (root / INCOMING).mkdir(parents=True)
    left = root / INCOMING / ".copy-left"
    left.write_bytes(b"half")
    busy = root / INCOMING / ".copy-busy"
    busy.write_bytes(b"writing")
    fd = os.open(busy, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert sweep(root) == [left]
        assert not left.exists() and busy.exists()
    finally:
        os.close(fd)
    assert sweep(root) == [busy]


def test_a_stored_path_is_only_made_of_a_hash(tmp_path: Path) -> None:
    for bad in ("../../etc/passwd", ABC.upper(), ABC[:-1], ABC + "0"):
        with pytest.raises(StoreError, match="not a SHA-256"):
            stored_path(tmp_path, bad)
