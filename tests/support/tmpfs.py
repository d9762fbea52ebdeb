"""A small tmpfs of a test's own: a real full filesystem (the tests run as root), unmounted after."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (mount's syntax: "2m") on ``path`` for the block; unmount after."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, timeout=10)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False, timeout=10)
        if path.is_mount():   # still busy (a process of the test holds a file): detach it
            subprocess.run(["umount", "-l", str(path)], check=False, timeout=10)


def fill(path: Path) -> None:
    """Take every free block of the filesystem under ``path`` with this file (bounded: 64 MiB at most)."""
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 512):
            block = b"\0" * chunk
            for _ in range(64):
                try:
                    f.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
