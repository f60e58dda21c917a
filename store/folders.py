"""Folders warden creates, for the database, exports and the evidence store:
private (0700) from the first missing one down, and the renames and links made
in them durable."""

from __future__ import annotations

import os
from pathlib import Path


def create(path: Path) -> list[Path]:
    """Create ``path`` and every missing folder above it, each 0700 (one by one:
    ``mkdir(parents=True)`` gives the parents the default mode); one that another
    process creates meanwhile is fine. Returns the folders this call created,
    outermost first (so a failed export can remove them again)."""
    created = []
    for folder in reversed([p for p in (path, *path.parents) if not p.exists()]):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        created.append(folder)
    return created


def sync(folder: Path) -> None:
    """Make the renames and links in ``folder`` durable (a crash after this keeps
    them); a filesystem that cannot sync a folder is left to its own guarantees."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
