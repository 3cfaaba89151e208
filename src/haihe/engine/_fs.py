"""File-system steps that make a version durable and visible atomically (POSIX, local disks).

Locks are ``flock`` locks: they belong to an open file description, so they exclude other threads
of the same process as well as other processes, and the kernel drops them when a process dies.
They do not work on every network file system; the store's root belongs on a local disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (new, renamed or removed names) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_and_hash(path: Path) -> tuple[str, int]:
    """Flush a closed file to disk and return its SHA-256 (hex) and size in bytes."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        os.fsync(fh.fileno())
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    """Return the SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_synced(path: Path, text: str) -> None:
    """Write a new text file and flush it to disk (its directory entry is flushed separately)."""
    with path.open("x", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def replace_synced(path: Path, text: str) -> None:
    """Replace a small text file atomically: readers see the old or the new content, never part."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        write_synced(tmp, text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing, never removed) for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def lock_new(path: Path) -> int | None:
    """Create and exclusively lock a lock file; return its descriptor, or None if it was lost.

    Lost means a cleaner removed the file between our open and our lock; the caller retries
    under a new name. Checking the inode after locking closes that race.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    if not _same_file(fd, path):
        os.close(fd)
        return None
    return fd


def try_lock_existing(path: Path) -> int | None:
    """Lock an existing lock file without waiting; return its descriptor, or None if it is held.

    None also when the file is gone. A lock won here means its owner has died: a live owner
    holds its lock until it has removed the file.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not _same_file(fd, path):
        os.close(fd)
        return None
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino)
