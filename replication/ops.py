"""Operations on record logs without MQTT: dump, verify, export, import.

These open data directories directly (read-only, except import), so they work on a
stopped node and, for the read-only ones, on a running node's directory from another
process. The command line wiring is in ``fixgw/cli/log.py``. What retention moved out of a
log into its archive files (:mod:`replication.archive`) is read too: ``dump`` shows it on
request, ``verify`` counts it as held (a node that archived and one that did not yet agree
when they hold the same records in all).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from replication.archive import Archive, archive_files, is_archive, read_archive
from replication.codec import encode_record, record_from_json, record_to_json_line
from replication.errors import ArchiveError, LogFullError, RecordDecodeError
from replication.log import RecordLog, split_key
from replication.matrix import Holding, holding_for
from replication.record import Record, Role

# -- dump ---------------------------------------------------------------------------------


def format_record(rec: Record, holding: Holding | None = None) -> str:
    """One readable line: key, time, type, status, txn, then the fields that are set."""
    when = datetime.fromtimestamp(rec.hlc.wall_ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    parts = [f"{rec.origin}#{rec.seq}", f"{when}Z+{rec.hlc.logical}", rec.type.value, rec.status or "-",
             f"txn={rec.txn}"]
    for name in ("account", "symbol", "side", "order_qty", "cash_order_qty", "price", "ord_type", "tif",
                 "cl_ord_id", "orig_cl_ord_id", "venue", "session", "venue_order_id", "exec_id",
                 "last_qty", "last_px", "cum_qty", "avg_px"):
        v = getattr(rec, name)
        if v is not None and v != "":
            parts.append(f"{name}={v}")
    if rec.text:
        parts.append(f"text={rec.text!r}")
    for k, v in rec.extra.items():
        parts.append(f"{k}={v}")
    if holding is not None:
        parts.append("[ro]" if holding is Holding.READ_ONLY else "[auth]")
    return " ".join(parts)


def select(log: RecordLog, origin: str | None = None, txn: str | None = None) -> Iterator[Record]:
    """Records of a log: one order (``txn``), one origin, or all (own first, then by key)."""
    if txn is not None:
        for rec in log.records_for_txn(txn):
            if origin is None or rec.origin == origin:
                yield rec
        return
    if origin is not None:
        yield from log.iter_origin(origin)
        return
    yield from log.iter_all()


def _dump_line(rec: Record, origin_role: Role | None, how: Holding | None, as_json: bool, archived: bool) -> str:
    if as_json:
        more: dict[str, object] = {"origin_role": origin_role.value if origin_role else None,
                                   "holding": how.value if how else None}
        if archived:
            more["archived"] = True
        return record_to_json_line(rec, **more) + "\n"
    return format_record(rec, how) + (" [archived]" if archived else "") + "\n"


def _chosen(items: Iterable[tuple[Record, Role | None, Holding | None]], origin: str | None,
            txn: str | None) -> Iterator[tuple[Record, Role | None, Holding | None]]:
    """The items ``select`` would pick: one origin's, or one order's (then in HLC order)."""
    picked = (i for i in items if (origin is None or i[0].origin == origin) and (txn is None or i[0].txn == txn))
    if txn is None:
        yield from picked
    else:
        yield from sorted(picked, key=lambda i: i[0].hlc)


def archived_records(log: RecordLog) -> Iterator[tuple[Record, Role | None, Holding | None]]:
    """The records of ``log``'s archive files that its live part does not hold (each once)."""
    for path in archive_files(log.path):
        arch = read_archive(path)
        check_owner(arch, log)
        for e, rec in arch.records():
            if log.get_raw(e.origin, e.seq) is None:
                yield rec, e.origin_role, e.holding


def check_owner(arch: Archive, log: RecordLog) -> None:
    """ArchiveError unless the archive holds ``log``'s node's records."""
    h = arch.header
    if (h.node, h.role) != (log.node_id, log.role):
        raise ArchiveError(f"{arch.path}: an archive of {h.role.value} node {h.node}, found beside the log of "
                           f"{log.role.value} node {log.node_id} ({log.path})")


def dump(data_dir: Path, out: IO[str], *, origin: str | None = None, txn: str | None = None,
         as_json: bool = False, archived: bool = False) -> int:
    """Write the selected records to ``out``; returns how many. ``archived``: then the records
    of the node's archive files (those its live log does not hold too), marked as archived."""
    n = 0
    with RecordLog(data_dir, readonly=True) as log:
        for rec in select(log, origin, txn):
            st = log.origin_state(rec.origin)
            out.write(_dump_line(rec, st.role if st else None, log.holding_of(rec.origin), as_json, False))
            n += 1
        if archived:
            for rec, role, how in _chosen(archived_records(log), origin, txn):
                out.write(_dump_line(rec, role, how, as_json, True))
                n += 1
    return n


def file_records(path: Path, progress: Callable[[int], None] | None = None
                 ) -> Iterator[tuple[Record, Role | None, Holding | None]]:
    """The records of an archive file or of an export of ``fixgw log export`` (JSON lines), with
    their origin's role and holding (an export has no holding); ``progress``: bytes read."""
    if is_archive(path):
        for e, rec in read_archive(path, progress).records():
            yield rec, e.origin_role, e.holding
        return
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    with f:
        try:
            for lineno, line in enumerate(f, 1):
                if progress is not None:
                    progress(len(line))
                if not line.strip():
                    continue
                try:
                    role, rec = parse_export_line(line)
                except RecordDecodeError as exc:
                    raise RecordDecodeError(f"{path}:{lineno}: neither an archive file nor an export of "
                                            f"`fixgw log export`: {exc}") from None
                yield rec, role, None
        except UnicodeDecodeError:
            raise RecordDecodeError(f"{path}: neither an archive file nor an export of `fixgw log export` "
                                    "(not UTF-8 text)") from None


def dump_file(path: Path, out: IO[str], *, origin: str | None = None, txn: str | None = None,
              as_json: bool = False) -> int:
    """Write the selected records of an archive file or an export to ``out``, as :func:`dump`
    writes a log's (an archive's read exactly like the log they were removed from)."""
    n = 0
    for rec, role, how in _chosen(file_records(path), origin, txn):
        out.write(_dump_line(rec, role, how, as_json, False))
        n += 1
    return n


# -- verify -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OriginSummary:
    """What one node holds of one origin: enough to tell whether two nodes agree."""

    count: int
    hwm: int
    max_seq: int
    sha256: str
    holdings: frozenset[Holding]
    archived: int = 0  # of count, held in the node's archive files (not in its live log)

    def describe(self) -> str:
        archived = f"{self.archived:,} archived, " if self.archived else ""
        return f"{self.count:,} records ({archived}hwm {self.hwm}, max seq {self.max_seq})"


@dataclass(slots=True)
class NodeView:
    path: Path
    node_id: str
    role: Role
    origins: dict[str, OriginSummary]
    roles: dict[str, Role]
    seqs: dict[str, dict[int, bytes]]  # per origin: seq -> a digest of the record's bytes
    archived_seqs: dict[str, set[int]] = field(default_factory=dict)   # per origin: the seqs held only in archives


def read_node(path: Path) -> NodeView:
    """What a node holds: its live log and its archive files (:mod:`replication.archive`), each
    record once. An origin's hash is over its records' digests in seq order, so two nodes
    holding the same records agree however they are split between log and archives."""
    with RecordLog(path, readonly=True) as log:
        states = log.origin_states()
        seqs: dict[str, dict[int, bytes]] = {}
        holdings: dict[str, set[Holding]] = {}
        archived: dict[str, int] = {}
        archived_seqs: dict[str, set[int]] = {}
        for how in (Holding.AUTHORITATIVE, Holding.READ_ONLY):
            for key, raw in log.iter_holding(how):
                origin, seq = split_key(key)
                seqs.setdefault(origin, {})[seq] = hashlib.blake2b(raw, digest_size=16).digest()
                holdings.setdefault(origin, set()).add(how)
        for file in archive_files(path):
            arch = read_archive(file)
            check_owner(arch, log)
            for e in arch.entries:
                held = seqs.setdefault(e.origin, {})
                if e.seq not in held:
                    held[e.seq] = hashlib.blake2b(e.raw, digest_size=16).digest()
                    archived[e.origin] = archived.get(e.origin, 0) + 1
                    archived_seqs.setdefault(e.origin, set()).add(e.seq)
                    holdings.setdefault(e.origin, set()).add(e.holding)
        origins = {}
        for origin, held in seqs.items():
            st = states.get(origin)
            digest = hashlib.sha256()
            for seq in sorted(held):
                digest.update(seq.to_bytes(8, "big") + held[seq])
            origins[origin] = OriginSummary(len(held), st.hwm if st else 0, st.max_seq if st else 0,
                                            digest.hexdigest(), frozenset(holdings[origin]),
                                            archived.get(origin, 0))
        roles = {o: st.role for o, st in states.items()}
        roles[log.node_id] = log.role
        return NodeView(path, log.node_id, log.role, origins, roles, seqs, archived_seqs)


@dataclass(frozen=True, slots=True)
class KeyConflict:
    """``node`` holds ``origin#seq`` with other bytes than the reference copy."""

    origin: str
    seq: int
    node: str
    reference: str


@dataclass(slots=True)
class VerifyReport:
    ok: bool = True
    lines: list[str] = field(default_factory=list)
    conflicts: list[KeyConflict] = field(default_factory=list)  # same key, other record: apart from missing ones


def _ranges(seqs: Iterable[int], limit: int = 8) -> str:
    out: list[str] = []
    run: list[int] = []
    for s in sorted(seqs):
        if run and s == run[-1] + 1:
            run.append(s)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [s]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out[:limit]) + (f", ... ({len(out) - limit} more ranges)" if len(out) > limit else "")


def _archived_note(origin: str, holders: list[NodeView]) -> str:
    """`` (800 archived)`` when every holder archived as many, else per node; "" when none did."""
    per = {v.node_id: v.origins[origin].archived for v in holders if origin in v.origins}
    if not any(per.values()):
        return ""
    if len(set(per.values())) == 1:
        return f" ({next(iter(per.values())):,} archived)"
    return " (" + ", ".join(f"{n:,} archived on {node}" for node, n in per.items() if n) + ")"


def verify(paths: list[Path]) -> VerifyReport:
    """Compare, per origin, what each node holds against what the matrix says it must hold.

    The reference for an origin is the origin's own log when its directory is given, else
    the most complete copy among the others. A node must hold exactly the reference
    records of every origin its role holds (in the right database), and nothing of the
    origins it does not hold.
    """
    report = VerifyReport()
    views = [read_node(p) for p in paths]
    ids = [v.node_id for v in views]
    if len(set(ids)) != len(ids):
        report.ok = False
        report.lines.append(f"the same node id appears twice: {', '.join(ids)}")
        return report
    roles: dict[str, Role] = {}
    for v in views:
        for origin, role in v.roles.items():
            if roles.setdefault(origin, role) is not role:
                report.ok = False
                report.lines.append(f"origin {origin}: {v.node_id} says {role.value}, another says {roles[origin].value}")
    by_id = {v.node_id: v for v in views}
    for origin in sorted(roles):
        role = roles[origin]
        owner = by_id.get(origin)
        holders = [v for v in views if holding_for(v.node_id, v.role, origin, role) is not None]
        if owner is not None:
            ref = owner.origins.get(origin)
            ref_view: NodeView | None = owner
        else:
            copies = [(v.origins[origin], v) for v in holders if origin in v.origins]
            ref, ref_view = max(copies, key=lambda c: c[0].count) if copies else (None, None)
        problems: list[str] = []
        passed_over: dict[str, int] = {}
        for v in views:
            how = holding_for(v.node_id, v.role, origin, role)
            has = v.origins.get(origin)
            if how is None:
                if has is not None:
                    problems.append(f"{v.node_id} ({v.role.value}) holds {has.count} records it must not hold")
                continue
            if ref is None:
                continue
            if has is None:
                problems.append(f"{v.node_id}: holds none, expected {ref.describe()}")
                continue
            if has.holdings != frozenset({how}):
                problems.append(f"{v.node_id}: records stored as {sorted(h.value for h in has.holdings)}, "
                                f"expected {how.value}")
            if (has.count, has.hwm, has.max_seq, has.sha256) != (ref.count, ref.hwm, ref.max_seq, ref.sha256):
                assert ref_view is not None
                mine_d, theirs_d = v.seqs.get(origin, {}), ref_view.seqs.get(origin, {})
                mine, theirs = set(mine_d), set(theirs_d)
                # archived at the reference before this node got them: it moved over them (its
                # high-water mark is past them) and never held them: not missing
                passed = {s for s in ref_view.archived_seqs.get(origin, ()) if s <= has.hwm} - mine
                if passed:
                    passed_over[v.node_id] = passed_over.get(v.node_id, 0) + len(passed)
                    theirs -= passed
                    if not theirs ^ mine and (has.hwm, has.max_seq) == (ref.hwm, ref.max_seq) and \
                            all(mine_d[s] == theirs_d[s] for s in mine):
                        continue
                clash = sorted(s for s in mine & theirs if mine_d[s] != theirs_d[s])
                if clash:
                    report.conflicts.extend(KeyConflict(origin, s, v.node_id, ref_view.node_id) for s in clash)
                    problems.append(f"{v.node_id}: CONFLICT: {len(clash)} record(s) differ from {ref_view.node_id}'s "
                                    f"under the same key, seq {_ranges(clash)} (fixgw log dump --origin {origin} "
                                    "on both shows them)")
                if theirs - mine or mine - theirs:
                    detail = f"{v.node_id}: {has.describe()}, expected {ref.describe()}"
                    if theirs - mine:
                        detail += f"; missing seq {_ranges(theirs - mine)}"
                    if mine - theirs:
                        detail += f"; extra seq {_ranges(mine - theirs)}"
                    problems.append(detail)
        held_on = [v.node_id for v in holders]
        if problems:
            report.ok = False
            report.lines.append(f"origin {origin} ({role.value}): DIFFERS")
            report.lines.extend(f"  {p}" for p in problems)
        else:
            n = ref.count if ref is not None else 0
            where = ", ".join(held_on) if held_on else "no given node"
            src = "" if owner is not None else " (origin's own log not given)"
            never = "".join(f"; {node} never held {k:,} of them (archived before it caught up)"
                            for node, k in sorted(passed_over.items()))
            report.lines.append(f"origin {origin} ({role.value}): OK, {n:,} records"
                                f"{_archived_note(origin, holders)} on {where}{src}{never}")
    return report


# -- export / import ----------------------------------------------------------------------


def count(data_dir: Path, *, origin: str | None = None) -> int:
    """How many records :func:`export` would write (a progress bar's total)."""
    with RecordLog(data_dir, readonly=True) as log:
        if origin is None:
            return log.count()
        st = log.origin_state(origin)
        return 0 if st is None else sum(1 for _ in log.iter_raw(origin))


def export(data_dir: Path, out: IO[str], *, origin: str | None = None,
           progress: Callable[[int], None] | None = None) -> int:
    """Every record (or one origin's) as JSON lines with its ``origin_role``; returns count.

    ``progress`` is called with the records written since its last call, every 4,096."""
    n = 0
    with RecordLog(data_dir, readonly=True) as log:
        roles = {o: st.role.value for o, st in log.origin_states().items()}
        for rec in select(log, origin):
            out.write(record_to_json_line(rec, origin_role=roles[rec.origin]) + "\n")
            n += 1
            if progress is not None and n % 4096 == 0:
                progress(4096)
    if progress is not None:
        progress(n % 4096)
    return n


@dataclass(slots=True)
class ImportResult:
    inserted: int = 0
    duplicates: int = 0
    not_held: int = 0
    malformed: list[str] = field(default_factory=list)


def parse_export_line(line: str) -> tuple[Role, Record]:
    """One export line; RecordDecodeError if it is not one."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise RecordDecodeError(f"not JSON: {exc}") from None
    if type(obj) is not dict:
        raise RecordDecodeError("a line must be a JSON object")
    role_s = obj.pop("origin_role", None)
    obj.pop("holding", None)  # present in dump --json output; not part of the record
    obj.pop("archived", None)  # dump --json --archived
    try:
        role = Role(role_s)
    except ValueError:
        raise RecordDecodeError(f"origin_role must be one of {[r.value for r in Role]}, got {role_s!r}") from None
    return role, record_from_json(obj)


def import_lines(data_dir: Path, lines: Iterable[str], *, node_id: str | None = None,
                 role: Role | None = None, batch_size: int = 2000) -> ImportResult:
    """Insert exported records into a node's log, idempotently (the node must be stopped).

    Records the node's role does not hold are skipped (counted in ``not_held``), so a
    node can be rebuilt from any peer's export.
    """
    result = ImportResult()
    with RecordLog(data_dir, node_id=node_id, role=role) as log:
        pending: dict[Role, list[tuple[Record, bytes]]] = {}
        count = 0

        def flush() -> None:
            nonlocal count
            while True:
                outs = []
                try:
                    with log.write() as batch:
                        outs = [batch.insert(r, items) for r, items in pending.items()]
                    break
                except LogFullError as exc:
                    if not exc.map_grown:  # the map has grown meanwhile: the same batch again
                        raise
            for out in outs:
                result.inserted += len(out.inserted)
                result.duplicates += out.duplicates
                result.not_held += len(out.rejected)
            pending.clear()
            count = 0

        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                origin_role, rec = parse_export_line(line)
            except RecordDecodeError as exc:
                result.malformed.append(f"line {lineno}: {exc}")
                continue
            pending.setdefault(origin_role, []).append((rec, encode_record(rec)))
            count += 1
            if count >= batch_size:
                flush()
        if pending:
            flush()
    return result
