"""An export's files on disk: staged in a folder beside their names (same
filesystem, so each move is one rename), moved in only once all are written, put
back as they were if a move fails, and finished or undone after a crash.

The staging folder is ``<out>/.warden-export-<token>/``: the files, a ``.lock``
its process holds (``flock``) while it runs, and ``old/`` for the files a
``--force`` export replaces until it completes. A staging folder whose lock
nobody holds belongs to a process that died.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterable

from store import folders
from store.errors import ExportError

STAGING_PREFIX = ".warden-export-"
_LOCK = ".lock"
_OLD = "old"
# What an older warden left when it was killed while writing (one temporary file per target).
_OLD_TEMP_PREFIX, _OLD_TEMP_SUFFIX = ".warden-", ".tmp"

Step = Callable[[str], None]


def resolve_out(out_dir: str | os.PathLike[str]) -> Path:
    """The export folder, resolved once (``~`` expanded, symlinks and ``..``
    resolved): every check, folder created and path recorded uses this one, so
    ``ghost/../x`` is ``x`` and never creates ``ghost``."""
    return Path(out_dir).expanduser().resolve()


def remove_empty(folders: Iterable[Path]) -> None:
    """Remove the folders an export created, innermost first, if nothing is in them."""
    for folder in reversed(list(folders)):
        try:
            folder.rmdir()
        except OSError:
            return


class Staging:
    """The folder an export's files wait in, locked while this process runs."""

    def __init__(self, out: Path) -> None:
        self.path = out / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
        self.path.mkdir(mode=0o700)
        self._lock: int | None = os.open(self.path / _LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)

    def write(self, name: str, data: bytes) -> None:
        """Write ``name`` (0600) and flush it to disk."""
        fd = os.open(self.path / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def sync(self) -> None:
        folders.sync(self.path)

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def remove(self) -> None:
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)


def claim(staging: Path) -> int | None:
    """Take the lock of a staging folder whose process died: the open lock file
    (keep it until done), or None while its process (or another recovery) holds it."""
    try:
        fd = os.open(staging / _LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def move_in(staging: Path, out: Path, names: list[str], on_step: Step) -> None:
    """Move each staged file over its name in ``out`` (a file it replaces goes to
    the staging folder's ``old/``). If a move fails, every file is put back as it
    was and the error raised: the set is replaced whole, or not at all."""
    done: list[tuple[str, bool]] = []
    try:
        for name in names:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                raise IsADirectoryError(errno.EISDIR, "a folder is in the way of an export file", str(target))
            aside = os.path.lexists(target)
            if aside:
                (staging / _OLD).mkdir(mode=0o700, exist_ok=True)
                os.replace(target, staging / _OLD / name)
            done.append((name, aside))
            os.replace(staging / name, target)
            on_step(f"moved {name}")
        folders.sync(out)
    except BaseException:
        put_back(staging, out, done)
        raise


def put_back(staging: Path, out: Path, done: list[tuple[str, bool]]) -> None:
    """Undo :func:`move_in` for ``done`` (name, whether an old file was moved aside), newest first."""
    for name, aside in reversed(done):
        target = out / name
        if not (staging / name).exists() and os.path.lexists(target) and not target.is_dir():
            os.replace(target, staging / name)
        if aside:     # in ``done`` only once its old file is in old/
            os.replace(staging / _OLD / name, target)
    folders.sync(out)


def finish(staging: Path | None, out: Path, expected: dict[str, str]) -> bool:
    """After a crash between recording and completing: move in what is still
    staged (``staging`` None: it is gone), then check every file against its
    recorded SHA-256. True when the set is whole; False (nothing changed further)
    when it cannot be."""
    if not expected or not all((staging is not None and (staging / name).exists()) or _sha256(out / name) == digest
                               for name, digest in expected.items()):
        return False
    for name in expected:
        if staging is None or not (staging / name).exists():
            continue
        target = out / name
        if target.is_dir() and not target.is_symlink():
            return False
        if os.path.lexists(target) and not os.path.lexists(staging / _OLD / name):
            (staging / _OLD).mkdir(mode=0o700, exist_ok=True)
            os.replace(target, staging / _OLD / name)
        os.replace(staging / name, target)
    folders.sync(out)
    return all(_sha256(out / name) == digest for name, digest in expected.items())


def undo(staging: Path | None, out: Path, expected: dict[str, str]) -> None:
    """After a crash, when the set cannot be finished: remove the files of this
    export that made it in and put back the ones they replaced.

    A file still waiting in the staging folder never made it in: the file of its
    name in ``out`` is the one before, even when it has the same bytes (a forced
    Markdown re-export of unchanged notes), and stays."""
    for name, digest in expected.items():
        target = out / name
        waiting = staging is not None and os.path.lexists(staging / name)
        if not waiting and _sha256(target) == digest:
            target.unlink()
        if staging is not None and os.path.lexists(staging / _OLD / name) and not os.path.lexists(target):
            os.replace(staging / _OLD / name, target)


def strays(out: Path, keep: set[Path]) -> list[Path]:
    """Staging folders in ``out`` no live process holds and no unfinished export
    names, and an older warden's temporary files: what a killed export left."""
    found: list[Path] = []
    try:
        entries = list(os.scandir(out))
    except OSError:
        return found
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False) and path not in keep:
            fd = claim(path)
            if fd is not None:
                os.close(fd)
                found.append(path)
        elif (entry.name.startswith(_OLD_TEMP_PREFIX) and entry.name.endswith(_OLD_TEMP_SUFFIX)
              and entry.is_file(follow_symlinks=False)):
            found.append(path)
    return found


def write_file(path: Path, data: bytes, *, force: bool = False) -> Path:
    """One file written whole or not at all (``warden report --out``): staged as a
    temporary file beside it (0600; the name an export's recovery sweeps up if
    killed), then renamed over it. An existing file is replaced only with
    ``force`` (ExportError otherwise, nothing written); missing folders are
    created 0700. Returns the path, resolved once."""
    target = resolve_out(path)
    if target.is_dir():
        raise ExportError(f"{target} is a folder; nothing written", title="Report refused")
    if os.path.lexists(target) and not force:
        raise ExportError(f"{target} exists; nothing written (use --force to replace it)", title="Report refused")
    created = folders.create(target.parent)
    tmp = target.parent / f"{_OLD_TEMP_PREFIX}{secrets.token_hex(6)}{_OLD_TEMP_SUFFIX}"
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)      # fails, writing nothing, if the file appeared meanwhile
        folders.sync(target.parent)
    except OSError as exc:
        remove(tmp)
        remove_empty(created)
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}; nothing written",
                          title="Report failed") from None
    except BaseException:
        remove(tmp)
        raise
    remove(tmp)
    return target


def remove(path: Path) -> bool:
    """Remove what a killed export left (a staging folder, a temporary file) as far
    as it can be; whether it is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass    # gone already, or left: the answer below says which
    return not os.path.lexists(path)


def _sha256(path: Path) -> str | None:
    try:
        if path.is_dir():
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
