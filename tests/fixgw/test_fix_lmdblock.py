"""LMDB's lock file gets real blocks (fixgw.lmdblock): on a full filesystem, new readers of a log
or a FIX store must not kill the process with SIGBUS. Real LMDB, a real full tmpfs, a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from fixgw.config import SessionID
from fixgw.store import LmdbStore
from replication.log import RecordLog
from replication.record import Role
from tests.support.tmpfs import small_tmpfs

ROOT = Path(__file__).resolve().parents[2]

# 200 threads each hold a read transaction (a reader slot of its own in lock.mdb) on a full disk
READERS = textwrap.dedent("""
    import errno, sys, threading
    from pathlib import Path
    import lmdb
    from fixgw.lmdblock import allocate_lock_file
    d = Path(sys.argv[1])
    env = lmdb.open(str(d / "env"), map_size=1 << 24, max_readers=256)
    if sys.argv[2] == "allocated":
        allocate_lock_file(d / "env")
    with open(d / "filler", "wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512):
            try:
                while True:
                    f.write(b"\\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    barrier = threading.Barrier(200)
    def reader():
        txn = env.begin()
        barrier.wait()
        txn.abort()
    threads = [threading.Thread(target=reader) for _ in range(200)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("survived")
""")


def allocated(path: Path) -> bool:
    st = os.stat(path)
    return st.st_blocks * 512 >= st.st_size


def test_readers_on_a_full_disk_survive_once_the_lock_file_is_allocated(tmp_path: Path) -> None:
    results = {}
    for how in ("sparse", "allocated"):
        with small_tmpfs(tmp_path / how, "1m") as mnt:
            p = subprocess.run([sys.executable, "-c", READERS, str(mnt), how], capture_output=True, text=True,
                               timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
            results[how] = (p.returncode, p.stdout.strip())
    assert results["allocated"] == (0, "survived")
    assert results["sparse"][0] == -7, results   # SIGBUS: what the record log and the FIX store avoid


def test_the_record_log_and_the_fix_store_allocate_their_lock_files(tmp_path: Path) -> None:
    with RecordLog(tmp_path / "log", node_id="c1", role=Role.CUSTOMER):
        assert allocated(tmp_path / "log" / "lock.mdb")
    store = LmdbStore(tmp_path / "fixstore", SessionID("FIX.4.4", "A", "B"), sync=False)
    try:
        assert allocated(tmp_path / "fixstore" / "lock.mdb")
    finally:
        store.close()
