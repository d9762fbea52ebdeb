"""Micro-benchmarks of the FIX core (not a test): validation µs/message, LMDB store saves/s.

Run:  .venv/bin/python tests/fixgw/bench_fixcore.py
"""

from __future__ import annotations

import functools
import tempfile
import time
import timeit

from fixgw.config import SessionID
from fixgw.dictionary import DataDictionary
from fixgw.store import LmdbStore
from fixgw.validation import validate


def _fields(text: bytes) -> list[tuple[int, bytes]]:
    return [(int(t), v) for t, _, v in (p.partition(b"=") for p in text.split(b"|"))]


def bench_validation() -> None:
    """Best-of-7 µs per validate() call for typical messages."""
    dd44 = DataDictionary.builtin("FIX.4.4")
    dd42 = DataDictionary.builtin("FIX.4.2")
    nos = (
        b"8=FIX.4.4|9=150|35=D|34=1234|49=CLIENT1|52=20260101-12:00:00.123|56=CFU1|11=ORD-000001"
        b"|1=ACC-42|21=1|38=100|40=2|44=123.45|54=1|55=IBM|59=0|60=20260101-12:00:00.123|10=123"
    )
    parties = nos.replace(b"|10=", b"|453=2|448=P1|447=D|452=1|448=P2|447=D|452=3|10=")
    hb = b"8=FIX.4.4|9=50|35=0|34=5|49=A|52=20260101-12:00:00|56=B|10=000"
    cases = [
        ("NewOrderSingle FIX.4.4 (18 fields)", dd44, _fields(nos)),
        ("NewOrderSingle FIX.4.2 (18 fields)", dd42, _fields(nos)),
        ("NewOrderSingle + 2 parties (25 fields)", dd44, _fields(parties)),
        ("Heartbeat", dd44, _fields(hb)),
        (
            "NewOrderSingle, bad enum (reject path)",
            dd44,
            _fields(nos.replace(b"|21=1|", b"|21=9|")),
        ),
    ]
    for name, dd, fields in cases:
        n = 20000
        call = functools.partial(validate, dd, fields)
        best = min(timeit.repeat(call, number=n, repeat=7)) / n
        print(f"validate  {name:40s} {best * 1e6:7.2f} us/message")


def bench_store() -> None:
    """Synced LMDB commits: messages/s with commit_batch of 1 and of 50 messages."""
    msg = (
        b"8=FIX.4.4\x019=150\x0135=8\x0134=1234\x0149=GW\x0152=20260101-12:00:00.123\x0156=CLIENT"
        b"\x0137=O1\x0111=ORD-000001\x0117=E1\x01150=0\x0139=0\x0155=IBM\x0154=1\x0138=100\x01"
        b"44=123.45\x0132=0\x0131=0\x01151=100\x0114=0\x016=0\x0160=20260101-12:00:00.123\x0110=123\x01"
    )
    for batch, total in ((1, 3000), (50, 100_000)):
        with tempfile.TemporaryDirectory() as d:
            s = LmdbStore(d, SessionID("FIX.4.4", "GW", "CLIENT"))
            seq = 1
            t = time.perf_counter()
            while seq <= total:
                s.commit_batch([(seq + k, msg) for k in range(batch)], seq + batch, None)
                seq += batch
            dt = time.perf_counter() - t
            s.close()
        print(
            f"LmdbStore commit_batch of {batch:2d}: {total / dt:9.0f} messages/s, "
            f"{dt / (total / batch) * 1e6:6.1f} us/commit ({len(msg)}-byte messages, synced)"
        )


if __name__ == "__main__":
    bench_validation()
    bench_store()
