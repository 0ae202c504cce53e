"""Tables of the usage log: entries, Merkle nodes, heads, checkpoints, and
the separate security log of refused attempts.

Entries and nodes are insert-only. :mod:`sealkeeper.audit.guard` makes any
ORM update or delete of them fail; the Merkle tree makes any change made
behind the ORM's back (raw SQL, a database console) detectable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sealkeeper.audit.encoding import EntryKind
from sealkeeper.db import Base, UTCDateTime, new_id, str_enum


class LogEntry(Base):
    """One entry of an organization's log: leaf ``seq`` of its Merkle tree.

    ``entry`` holds the canonical bytes (the only thing the tree commits to);
    the other columns are copies of its fields for filtering and display.
    """

    __tablename__ = "log_entries"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"),
                                                 primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind, 32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    seal_id: Mapped[str | None] = mapped_column(String(32), default=None)
    seal_name: Mapped[str | None] = mapped_column(String(300), default=None)
    seal_type: Mapped[str | None] = mapped_column(String(32), default=None)
    user_id: Mapped[str | None] = mapped_column(String(32), default=None)
    user_email: Mapped[str | None] = mapped_column(String(320), default=None)
    file_name: Mapped[str | None] = mapped_column(String(1024), default=None)
    file_digest: Mapped[str | None] = mapped_column(String(128), default=None)
    digest_algorithm: Mapped[str | None] = mapped_column(String(16), default=None)
    api: Mapped[str | None] = mapped_column(String(16), default=None)
    approval_id: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        Index("ix_log_entries_leaf_hash", "organization_id", "leaf_hash"),
        Index("ix_log_entries_seal", "organization_id", "seal_id", "seq"),
        Index("ix_log_entries_user", "organization_id", "user_id", "seq"),
        Index("ix_log_entries_time", "organization_id", "created_at"),
        Index("ix_log_entries_digest", "organization_id", "file_digest"),
        Index("ix_log_entries_kind", "organization_id", "kind", "seq"),
    )


class LogNode(Base):
    """The hash of one perfect subtree: leaves [idx * 2**level, (idx + 1) * 2**level)."""

    __tablename__ = "log_nodes"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"),
                                                 primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogHead(Base):
    """The current size and root of an organization's tree; its row is the
    organization's append lock."""

    __tablename__ = "log_heads"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"),
                                                 primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LogCheckpoint(Base):
    """A signed checkpoint (C2SP signed note) the service has published."""

    __tablename__ = "log_checkpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_log_checkpoints_org_size", "organization_id", "size"),)


class SecurityEvent(Base):
    """A refused attempt (wrong approval password, no grant, no quota...).

    Not part of the Merkle tree. No foreign keys: an event must be recordable
    whatever the request named, in its own transaction.
    """

    __tablename__ = "security_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    organization_id: Mapped[str | None] = mapped_column(String(32), default=None)
    user_id: Mapped[str | None] = mapped_column(String(32), default=None)
    seal_id: Mapped[str | None] = mapped_column(String(32), default=None)
    action: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(1000))
    api: Mapped[str | None] = mapped_column(String(16), default=None)
    remote_addr: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        Index("ix_security_events_org_time", "organization_id", "created_at"),
        Index("ix_security_events_user", "organization_id", "user_id", "created_at"),
    )


def _table(cls: type[Base]) -> Table:
    table = cls.__table__
    assert isinstance(table, Table)
    return table


# The tables, typed for Core statements (bulk inserts skip the ORM's per-object work).
LOG_ENTRIES = _table(LogEntry)
LOG_NODES = _table(LogNode)
LOG_HEADS = _table(LogHead)
LOG_CHECKPOINTS = _table(LogCheckpoint)
SECURITY_EVENTS = _table(SecurityEvent)
