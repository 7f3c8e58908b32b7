"""PostgreSQL's ``pgoutput`` logical decoding messages (protocol version 1), read from bytes.

The built-in plugin needs no server package (wal2json does), and the SQL function
``pg_logical_slot_peek_binary_changes`` returns its messages to any client, ADBC included.
Only what a replica needs is kept: transactions (their end position and commit time),
relations (columns, types, which are the key) and the rows of inserts, updates, deletes
and truncates, with values in PostgreSQL's text form. Message layouts:
https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
UNCHANGED = object()
"""A TOASTed value an update left alone: pgoutput does not send it again."""

Row = tuple[object, ...]
"""A row's values in text form: str, None for NULL, or UNCHANGED."""


@dataclass
class Relation:
    """A table as the stream describes it: its columns, their type oids and modifiers, and
    which of them identify a row (the primary key or replica identity)."""

    oid: int
    schema: str
    name: str
    columns: list[str]
    types: list[tuple[int, int]]
    key: list[int]


@dataclass
class Begin:
    final_lsn: int
    commit_time: datetime


@dataclass
class Commit:
    end_lsn: int
    """Where the next transaction starts: the slot advances to it once this one is applied."""
    commit_time: datetime


@dataclass
class Change:
    """An insert (``I``), update (``U``) or delete (``D``) of one row of `relation`."""

    op: str
    relation: int
    new: Row | None = None
    old_key: Row | None = None
    """Key (or whole old row) of an update that changed the key, or of a delete."""


@dataclass
class Truncate:
    relations: list[int] = field(default_factory=list)


Message = Relation | Begin | Commit | Change | Truncate | None


def lsn_text(lsn: int) -> str:
    """An LSN as PostgreSQL writes it (``0/1925AB8``)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_int(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def decode(data: bytes) -> Message:
    """One message; None for kinds a replica ignores (origin, type, logical messages)."""
    kind = chr(data[0])
    if kind == "B":
        final_lsn, stamp, _xid = struct.unpack_from("!qqi", data, 1)
        return Begin(final_lsn, _time(stamp))
    if kind == "C":
        _flags, _commit_lsn, end_lsn, stamp = struct.unpack_from("!bqqq", data, 1)
        return Commit(end_lsn, _time(stamp))
    if kind == "R":
        return _relation(data)
    if kind == "I":
        (relation,) = struct.unpack_from("!i", data, 1)
        new, _ = _tuple(data, 6)  # 'N' at 5
        return Change("I", relation, new=new)
    if kind in "UD":
        (relation,) = struct.unpack_from("!i", data, 1)
        at, old = 5, None
        if chr(data[at]) in "KO":
            old, at = _tuple(data, at + 1)
        new = _tuple(data, at + 1)[0] if kind == "U" else None
        return Change(kind, relation, new=new, old_key=old)
    if kind == "T":
        count, _options = struct.unpack_from("!ib", data, 1)
        return Truncate(list(struct.unpack_from(f"!{count}i", data, 6)))
    return None


def _time(microseconds: int) -> datetime:
    return POSTGRES_EPOCH + timedelta(microseconds=microseconds)


def _string(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(0, at)
    return data[at:end].decode(), end + 1


def _relation(data: bytes) -> Relation:
    (oid,) = struct.unpack_from("!i", data, 1)
    schema, at = _string(data, 5)
    name, at = _string(data, at)
    _identity, count = struct.unpack_from("!bh", data, at)
    at += 3
    columns, types, key = [], [], []
    for index in range(count):
        flags = data[at]
        column, at = _string(data, at + 1)
        type_oid, modifier = struct.unpack_from("!ii", data, at)
        at += 8
        columns.append(column)
        types.append((type_oid, modifier))
        if flags & 1:
            key.append(index)
    return Relation(oid, schema, name, columns, types, key)


def _tuple(data: bytes, at: int) -> tuple[Row, int]:
    (count,) = struct.unpack_from("!h", data, at)
    at += 2
    values: list[object] = []
    for _ in range(count):
        kind = chr(data[at])
        at += 1
        if kind == "n":
            values.append(None)
        elif kind == "u":
            values.append(UNCHANGED)
        else:  # 't' (text) or 'b' (binary, never asked for)
            (length,) = struct.unpack_from("!i", data, at)
            at += 4
            values.append(data[at : at + length].decode())
            at += length
    return tuple(values), at
