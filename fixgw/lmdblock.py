"""LMDB's lock file, allocated up front: a full disk must refuse writes, not kill the process.

LMDB keeps its reader table in ``lock.mdb``, a file it sizes with ftruncate (sparse) and maps
shared; a thread's first read transaction takes a reader slot by writing into that mapping. On a
full filesystem, a store into a page of a sparse file that has no block yet cannot be backed, and
the kernel sends SIGBUS: the process dies. Measured here: a record log's ``lock.mdb`` is 16,512
bytes with 4,096 allocated (256 reader slots of 64 bytes); on a full 2 MiB tmpfs the replication
test of a full disk (tests/replication/test_repl_full_disk.py) lost its pytest worker once in a
loaded run (a new thread's read transaction). Allocating the file's blocks once it exists
(``posix_fallocate``, 16 KiB) makes every later store into the mapping a write to a block the
file owns. Data pages are not concerned: without MDB_WRITEMAP LMDB writes them with pwrite,
which fails with ENOSPC (LMDB says EIO) and aborts the transaction.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["allocate_lock_file"]

LOCK_FILE = "lock.mdb"


def allocate_lock_file(env_dir: Path) -> None:
    """Give ``env_dir/lock.mdb`` real blocks for its whole size (OSError: the disk is full now)."""
    path = env_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return  # opened without a lock file (lock=False): nothing is mapped shared
    try:
        size = os.fstat(fd).st_size
        if size > 0:
            os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
