"""A fixgw acceptor killed with SIGKILL resumes its session from the durable store.

Real subprocess (``fixgw at-server --config``, LMDB store, ResetOnLogon=N), real TCP, a client
played by hand: sequence numbers survive the kill, every order answer the client saw is still in
the store, and the acceptor services the client's ResendRequest from it (PossDupFlag=Y,
OrigSendingTime); the acceptor's own ResendRequest for orders it never processed is answered
with a gap fill and the session goes on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixgw.rawfix_client import RawFixClient
from tests.support.at_process import AtServerProcess


def _config(tmp: Path, port: int) -> Path:
    cfg = tmp / "sessions.cfg"
    cfg.write_text(
        "[DEFAULT]\nConnectionType=acceptor\nSocketAcceptHost=127.0.0.1\n"
        f"SocketAcceptPort={port}\nSenderCompID=ISLD\nFileStorePath={tmp / 'store'}\n"
        "ResetOnLogon=N\nHeartBtInt=30\n\n[SESSION]\nBeginString=FIX.4.4\nTargetCompID=CLIENT\n"
    )
    return cfg


def _order(client: RawFixClient, n: int) -> bytes:
    cid = f"K{n}"
    client.send("D", [(11, cid), (21, 1), (55, "IBM"), (54, 1), (60, "20240101-00:00:00"), (38, 100), (40, 1)])
    return cid.encode()


@pytest.mark.timeout(90)
def test_sigkill_restart_resumes_sequence_numbers_and_serves_resend(tmp_path: Path) -> None:
    server = AtServerProcess(None)
    cfg = _config(tmp_path, server.port)
    server.extra = ["--config", str(cfg)]
    server.start()
    client = RawFixClient(server.port)
    try:
        logon = client.logon()
        assert logon[34] == b"1"
        sent = [_order(client, i) for i in range(5)]
        echoes = [client.expect("D") for _ in sent]
        assert [e[11] for e in echoes] == sent
        assert [e[34] for e in echoes] == [b"2", b"3", b"4", b"5", b"6"]

        # a burst the acceptor is still working on when it dies
        burst = [_order(client, 100 + i) for i in range(300)]
        seen = [client.expect("D", timeout=10) for _ in range(20)]
        server.kill()
        seen += client.wait_closed(timeout=10)
        while (m := client.recv(0.2)) is not None:  # whatever was in flight before the kill
            seen.append(m)
        seen_seqs = [int(m[34]) for m in seen if m.msg_type == b"D"]
        assert seen_seqs == list(range(7, 7 + len(seen_seqs)))  # no gaps, no duplicates
        client.close()

        server.start()
        client2 = RawFixClient(server.port, next_seq=client.seq)
        client2.send("A", [(98, 0), (108, 30)])
        logon2 = client2.expect("A")
        resumed_at = int(logon2[34])
        # no reset: the acceptor goes on after everything it ever sent (at least what we saw)
        assert resumed_at >= 7 + len(seen_seqs)
        assert b"Y" != logon2.get(141)

        # the acceptor asks for what it did not process before the kill (if anything)
        m = client2.recv(2.0)
        if m is not None and m.msg_type == b"2":
            begin = int(m[7])
            assert 7 <= begin <= 6 + 1 + len(burst)
            # we do not resend orders: gap-fill them (the acceptor then expects our next seq)
            client2.send("4", [(123, "Y"), (36, client2.seq)], seq=begin, possdup=True)

        # ask for everything from 2: orders come back as PossDup copies from the store
        client2.send("2", [(7, 2), (16, 0)])
        resent = []
        while True:
            r = client2.recv(5.0)
            assert r is not None, "the resend stopped early"
            if r.msg_type in (b"0",):
                continue
            resent.append(r)
            nxt = int(r[36]) if r.msg_type == b"4" else int(r[34]) + 1
            if nxt >= resumed_at + 1:
                break
        orders = [r for r in resent if r.msg_type == b"D"]
        assert all(r.get(43) == b"Y" and r.get(122) is not None for r in orders)
        resent_ids = [r[11] for r in orders]
        # every answer the client saw before the kill is still there, with the same seq
        assert resent_ids[:5] == sent
        by_seq = {int(r[34]): r[11] for r in orders}
        for m in seen:
            assert by_seq.get(int(m[34])) == m[11]
        # the stream of resent messages and gap fills covers 2 .. resumed_at (the logon) exactly
        cursor = 2
        for r in resent:
            assert int(r[34]) == cursor
            cursor = int(r[36]) if r.msg_type == b"4" else cursor + 1

        # the session still trades
        cid = _order(client2, 9999)
        assert client2.expect("D")[11] == cid
        client2.send("5")
        client2.expect("5")
        client2.close()
    finally:
        client.close()
        server.stop()
