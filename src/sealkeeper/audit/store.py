"""The Merkle tree of one organization in the database.

Scope: :class:`DbNodeStore` (the :class:`~sealkeeper.crypto.merkle.NodeStore`
over ``log_nodes``: one ``SELECT`` per proof or append) and the head row that
serializes appends: ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every
transaction already starts with ``BEGIN IMMEDIATE``, so writers serialize.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple

from sqlalchemy import Table, TextClause, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealkeeper.audit.models import LOG_HEADS, LOG_NODES
from sealkeeper.crypto import merkle
from sealkeeper.errors import NotFound
from sealkeeper.orgs.models import Organization

__all__ = ["DbNodeStore", "Head", "LockedHead", "bulk_insert", "lock_head", "read_head",
           "write_head"]

Head = tuple[int, bytes]
"""(tree size, root hash)."""


class LockedHead(NamedTuple):
    """The head under the append lock; ``updated_at`` is the last append's time."""

    size: int
    root: bytes
    updated_at: datetime


_NODES = LOG_NODES
_HEADS = LOG_HEADS


@functools.lru_cache(maxsize=256)
def _nodes_query(n: int) -> TextClause:
    values = ", ".join(f"(:l{i}, :i{i})" for i in range(n))
    return text(f"WITH k(level, idx) AS (VALUES {values}) "  # noqa: S608 (placeholders only)
                "SELECT n.level, n.idx, n.hash FROM k JOIN log_nodes n "
                "ON n.organization_id = :org AND n.level = k.level AND n.idx = k.idx")


class DbNodeStore:
    """Stored perfect-subtree hashes of one organization's tree."""

    def __init__(self, session: Session, organization_id: str) -> None:
        self.s = session
        self.org = organization_id

    def get_nodes(self, keys: Sequence[merkle.NodeKey]) -> Mapping[merkle.NodeKey, bytes]:
        if not keys:
            return {}
        # One index lookup per key: the keys as a VALUES list joined to the
        # (organization, level, idx) primary key, on both backends. (A row-value
        # IN makes SQLite scan the organization's nodes; "level IN AND idx IN"
        # fetches their cross product; an OR of ANDs costs more to build.)
        wanted = sorted(set(keys))
        params: dict[str, object] = {"org": self.org}
        for i, (level, idx) in enumerate(wanted):
            params[f"l{i}"], params[f"i{i}"] = level, idx
        rows = self.s.execute(_nodes_query(len(wanted)), params)
        return {(int(level), int(idx)): bytes(h) for level, idx, h in rows}

    def put_nodes(self, nodes: Sequence[merkle.Node]) -> None:
        """Insert new nodes (one multi-row ``INSERT``); a stored node is never rewritten."""
        if nodes:
            bulk_insert(self.s, _NODES, [
                {"organization_id": self.org, "level": n.level, "idx": n.index,
                 "hash": n.hash} for n in nodes])


def read_head(session: Session, organization_id: str) -> Head:
    """The committed (size, root) without locking; the empty tree if nothing was logged."""
    row = session.execute(select(_HEADS.c.size, _HEADS.c.root)
                          .where(_HEADS.c.organization_id == organization_id)).first()
    if row is None:
        return 0, merkle.EMPTY_ROOT
    return int(row[0]), bytes(row[1])


def lock_head(session: Session, organization_id: str, now: datetime) -> LockedHead:
    """Take the organization's append lock and return its head.

    Creates the head row on the first append (concurrent first appends
    converge on one row: the losers' inserts are ignored).
    """
    head = _select_for_update(session, organization_id)
    if head is not None:
        return head
    if session.get(Organization, organization_id) is None:
        raise NotFound("organization not found")
    row = {"organization_id": organization_id, "size": 0, "root": merkle.EMPTY_ROOT,
           "updated_at": now}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(_HEADS).values(row).on_conflict_do_nothing(
            index_elements=["organization_id"]))
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(_HEADS).values(row).on_conflict_do_nothing(
            index_elements=["organization_id"]))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        try:
            with session.begin_nested():
                session.execute(insert(_HEADS).values(row))
        except IntegrityError:
            pass
    head = _select_for_update(session, organization_id)
    assert head is not None
    return head


def write_head(session: Session, organization_id: str, size: int, root: bytes,
               now: datetime) -> None:
    session.execute(update(_HEADS).where(_HEADS.c.organization_id == organization_id)
                    .values(size=size, root=root, updated_at=now))


def _select_for_update(session: Session, organization_id: str) -> LockedHead | None:
    row = session.execute(select(_HEADS.c.size, _HEADS.c.root, _HEADS.c.updated_at)
                          .where(_HEADS.c.organization_id == organization_id)
                          .with_for_update()).first()
    return None if row is None else LockedHead(int(row[0]), bytes(row[1]), row[2])


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows with one statement.

    On PostgreSQL one ``INSERT ... SELECT * FROM unnest(<one array per
    column>)`` (about twice as fast as ``executemany`` for a batch of a few
    hundred rows); elsewhere ``executemany``. Every row has the same keys.
    """
    if not rows:
        return
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    names = list(rows[0])
    casts = ", ".join(
        f"CAST(:c{i} AS {table.c[n].type.compile(bind.dialect)}[])" for i, n in enumerate(names))
    sql = text(f'INSERT INTO {table.name} ({", ".join(names)}) '  # noqa: S608 (names are ours)
               f"SELECT * FROM unnest({casts})")
    session.execute(sql, {f"c{i}": [_plain(r[n]) for r in rows] for i, n in enumerate(names)})


def _plain(value: object) -> object:
    """A value as the driver takes it inside an array (enums by value)."""
    return value.value if isinstance(value, Enum) else value
