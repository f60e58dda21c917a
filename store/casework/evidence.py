"""The evidence store: files received from consumers, kept beside the database
under the SHA-256 of their content, never modified.

``<database>-evidence/sha256/ab/<64 hex>`` holds the file whose SHA-256 is
``ab...``; folders are 0700, files 0600. A file is copied into
``incoming/`` first (hashed as it is read, flushed to disk), then linked under
its hash name, so a copy killed midway leaves no file under a hash name: only an
incoming file, which the next :func:`put` removes (once no process holds its
lock). A file whose hash is already stored is not written again.

:func:`check_file` says whether a stored file still has the content its name
promises (``warden verify`` checks every file the log records).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from store import folders
from store.errors import StoreError
from store.text import printable

CHUNK = 1 << 20
INCOMING = "incoming"
# The title of a refusal of the reviewer's file (missing, unreadable, not a file,
# too large): the file is at fault, not the database.
FILE_REFUSED = "File refused"


@dataclass(frozen=True)
class StoredFile:
    """A file now in the store: its hash, size and whether it was there already."""

    sha256: str
    bytes: int
    existed: bool


def evidence_dir(db_path: str | os.PathLike[str]) -> Path:
    """The store beside the database ``db_path``: ``warden.db`` -> ``warden.db-evidence``."""
    path = Path(db_path)
    return path.with_name(path.name + "-evidence")


def stored_path(root: Path, sha256: str) -> Path:
    """Where the file with this SHA-256 lives in the store at ``root``."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise StoreError(f"not a SHA-256: {sha256!r}")
    return root / "sha256" / sha256[:2] / sha256


def put(root: Path, source: str | os.PathLike[str], *, max_bytes: int) -> StoredFile:
    """Copy the file at ``source`` into the store at ``root``; return its hash.

    Refuses (StoreError) what is not a regular readable file, or is larger than
    ``max_bytes`` (checked before and while copying: a file that grows is caught).
    The copy is atomic: either the file is complete under its hash name or
    there is no file under that name.
    """
    src = Path(source)
    handle = _open_source(src)
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise StoreError(f"{printable(str(src))} is {size:,} bytes, over the limit of {max_bytes:,} bytes "
                             "([evidence] max_file_bytes); nothing stored", title=FILE_REFUSED)
        incoming = root / INCOMING
        folders.create(incoming)
        sweep(root)
        fd, tmp = tempfile.mkstemp(dir=incoming, prefix=".copy-")
        try:
            # Held until the file is linked: a sweep by another process leaves it alone.
            fcntl.flock(fd, fcntl.LOCK_EX)
            digest, copied = _copy(handle, fd, src, max_bytes)
            final = stored_path(root, digest)
            folders.create(final.parent)
            existed = not _link(Path(tmp), final)
            if not existed:
                folders.sync(final.parent)
        finally:
            os.close(fd)
            _unlink(Path(tmp))
    return StoredFile(digest, copied, existed)


def _open_source(src: Path) -> BinaryIO:
    name = printable(str(src))
    try:
        info = src.stat()
    except FileNotFoundError:
        raise StoreError(f"{name}: no such file; nothing stored", title=FILE_REFUSED) from None
    except OSError as exc:
        raise StoreError(f"{name}: cannot read it ({exc.strerror or exc}); nothing stored",
                         title=FILE_REFUSED) from None
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"{name} is not a regular file (a folder, a device or a pipe); nothing stored",
                         title=FILE_REFUSED)
    try:
        return open(src, "rb")
    except OSError as exc:
        raise StoreError(f"{name}: cannot read it ({exc.strerror or exc}); nothing stored",
                         title=FILE_REFUSED) from None


def _copy(handle: BinaryIO, fd: int, src: Path, max_bytes: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    copied = 0
    try:
        while chunk := handle.read(CHUNK):
            copied += len(chunk)
            if copied > max_bytes:
                raise StoreError(f"{printable(str(src))} grew past the limit of {max_bytes:,} bytes while it was copied; "
                                 "nothing stored", title=FILE_REFUSED)
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        os.fchmod(fd, 0o600)
        os.fsync(fd)
    except OSError as exc:
        raise StoreError(f"cannot copy {printable(str(src))} into the evidence store: {exc.strerror or exc}; nothing stored") \
            from None
    return digest.hexdigest(), copied


def _link(tmp: Path, final: Path) -> bool:
    """Put the complete copy ``tmp`` under its hash name; False when a file is
    there already (the same content: it is never written again)."""
    try:
        os.link(tmp, final)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise StoreError(f"cannot store {printable(final.name)} in the evidence store: {exc.strerror or exc}") from None
    # A filesystem without hard links: a rename, unless the name was taken meanwhile.
    if final.exists():
        return False
    os.rename(tmp, final)
    return True


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def sweep(root: Path) -> list[Path]:
    """Remove incoming copies their process left behind (killed before it
    finished); a copy whose lock is still held is in progress and stays."""
    removed: list[Path] = []
    try:
        entries = list((root / INCOMING).iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        try:
            fd = os.open(entry, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                continue   # its process is still copying
            raise
        try:
            _unlink(entry)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed


def check_file(root: Path, sha256: str, size: int) -> str | None:
    """Why the stored file with this hash is not as recorded (missing, unreadable,
    another size, edited), or None when it is intact."""
    path = stored_path(root, sha256)
    try:
        with open(path, "rb") as handle:
            digest = hashlib.sha256()
            length = 0
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                length += len(chunk)
    except FileNotFoundError:
        return f"{printable(str(path))} is missing (removed from the evidence store)"
    except OSError as exc:
        return f"{printable(str(path))} cannot be read: {exc.strerror or exc}"
    if digest.hexdigest() != sha256:
        return f"{printable(str(path))} was edited: its content now hashes to {digest.hexdigest()} ({length:,} bytes)"
    if length != size:
        return f"{printable(str(path))} holds {length:,} bytes; {size:,} were recorded"
    return None


def read_stored(root: Path, sha256: str) -> bytes:
    """The content of a stored file (for exports and tests)."""
    return stored_path(root, sha256).read_bytes()
