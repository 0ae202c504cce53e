"""The usage log service: append entries to an organization's Merkle tree,
read them back (filtered, paged, exported), prove inclusion and consistency,
and publish signed checkpoints.

Who reads what: the account and e-seal administrators read their whole
organization's log (entries of deleted employees and withdrawn grants
included) and its security log; every other member reads only the entries
about themselves. Another organization's log does not exist for anyone
(:class:`~sealkeeper.errors.NotFound`). Checkpoints and consistency proofs
reveal only the log's size and roots; any member may fetch them.

There is no way to change or delete an entry: this class has no such method
and :mod:`sealkeeper.audit.guard` refuses it through the ORM.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.orm import Session

from sealkeeper.audit.drafts import EntryDraft
from sealkeeper.audit.encoding import EntryEncoder, EntryKind
from sealkeeper.audit.export import CsvExport, SecurityCsvExport
from sealkeeper.audit.models import (
    LOG_CHECKPOINTS,
    LOG_ENTRIES,
    LOG_HEADS,
    LogCheckpoint,
    LogEntry,
    SecurityEvent,
)
from sealkeeper.audit.queries import LogFilter, Order, Page, SecurityFilter, check_paging
from sealkeeper.audit.signer import LogSigner, SignerSource
from sealkeeper.audit.store import DbNodeStore, bulk_insert, lock_head, read_head, write_head
from sealkeeper.authz import Actor, require_admin, require_member
from sealkeeper.clock import Clock
from sealkeeper.crypto import checkpoint as notes
from sealkeeper.crypto import merkle
from sealkeeper.db import new_id
from sealkeeper.errors import ConfigurationError, CryptoError, InvalidInput, NotFound

__all__ = ["MAX_APPEND_BATCH", "MAX_RAW_ENTRIES", "Appended", "AuditLog", "ConsistencyProof",
           "InclusionProof"]

MAX_APPEND_BATCH = 10_000
MAX_RAW_ENTRIES = 1000
_MAX_INDEX = 2**53 - 1


def _visible_where(organization_id: str, only_user: str | None, seq: int | None,
                   leaf_hash: bytes | None) -> list[ColumnElement[bool]]:
    where = [LogEntry.organization_id == organization_id]
    if seq is not None:
        where.append(LogEntry.seq == _index(seq, "seq"))
    else:
        where.append(LogEntry.leaf_hash == leaf_hash)
    if only_user is not None:
        where.append(LogEntry.user_id == only_user)
    return where


def _index(value: object, field: str) -> int:
    """A tree index or size from a caller: an integer in [0, 2**53)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_INDEX:
        raise InvalidInput(f"{field} must be an integer from 0 to {_MAX_INDEX}", field=field)
    return value

_ENTRIES = LOG_ENTRIES


@dataclass(frozen=True, slots=True)
class Appended:
    """An entry as it was appended: its place in the tree and its canonical bytes.

    (A plain record rather than a :class:`LogEntry` row: building ORM objects
    would cost more than the whole append.)
    """

    organization_id: str
    seq: int
    kind: EntryKind
    created_at: datetime
    leaf_hash: bytes
    entry: bytes


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Entry ``seq`` (with ``leaf_hash``) is in the tree of ``tree_size`` with ``root``."""

    seq: int
    tree_size: int
    leaf_hash: bytes
    root: bytes
    path: list[bytes]
    entry: bytes

    def verify(self) -> None:
        merkle.verify_inclusion(self.leaf_hash, self.seq, self.tree_size, self.path, self.root)


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    path: list[bytes]

    def verify(self) -> None:
        merkle.verify_consistency(self.old_size, self.new_size, self.old_root,
                                  self.new_root, self.path)


class AuditLog:
    """One organization-scoped tamper-evident log per organization.

    ``base_url`` is the public base URL (checkpoint origins are
    ``<host and path of base_url>/log/<organization id>``); ``signer`` signs
    checkpoints (a :class:`LogSigner`, or a function returning one, called the
    first time a checkpoint is signed); without it checkpoints are refused.
    """

    def __init__(self, session: Session, clock: Clock, *, base_url: str,
                 signer: SignerSource | None = None) -> None:
        self.s = session
        self.clock = clock
        self.base_url = base_url
        self._signer_source = signer
        self._signer_built: LogSigner | None = None

    # -- appending -----------------------------------------------------------

    def append(self, organization_id: str, entries: Sequence[EntryDraft]) -> list[Appended]:
        """Append ``entries``, in order, to the organization's log in the caller's
        transaction; returns what was appended (``seq``, ``leaf_hash``, bytes).

        Holds the organization's append lock until the caller's transaction
        ends: commit soon after. All entries of a batch get the same time, never
        earlier than the previous batch's.
        """
        if not entries:
            return []
        if len(entries) > MAX_APPEND_BATCH:
            raise InvalidInput(f"at most {MAX_APPEND_BATCH} entries per append",
                               field="entries")
        columns = [d.columns() for d in entries]
        bodies = [d.body(c) for d, c in zip(entries, columns, strict=True)]  # before locking
        size, root, last = lock_head(self.s, organization_id, self.clock())
        # Taken under the lock, and never before the previous batch: entry times
        # do not decrease along the log, whatever the clocks of several processes.
        now = max(self.clock(), last)
        store = DbNodeStore(self.s, organization_id)
        front = merkle.frontier(size, store)
        if not hmac.compare_digest(merkle.frontier_root(front), root):
            raise CryptoError("the stored log tree does not match its head; run the log "
                              "verifier")
        encoder = EntryEncoder(organization_id, now)
        rows: list[dict[str, object]] = []
        out: list[Appended] = []
        for i, (draft, body, cols) in enumerate(zip(entries, bodies, columns, strict=True)):
            seq = size + i
            kind = EntryKind(draft.kind)
            data = encoder.encode(seq, kind, body)
            lh = merkle.leaf_hash(data)
            out.append(Appended(organization_id, seq, kind, now, lh, data))
            row: dict[str, object] = {"organization_id": organization_id, "seq": seq,
                                      "kind": kind, "created_at": now, "entry": data,
                                      "leaf_hash": lh}
            row.update(cols)
            rows.append(row)
        nodes, new_front = merkle.append_leaves(size, front, [a.leaf_hash for a in out])
        bulk_insert(self.s, _ENTRIES, rows)
        store.put_nodes(nodes)
        write_head(self.s, organization_id, size + len(rows), merkle.frontier_root(new_front),
                   now)
        return out

    # -- reading -------------------------------------------------------------

    def _reader_scope(self, actor: Actor, organization_id: str) -> str | None:
        """The user id the actor is limited to, or None for the whole organization."""
        require_member(actor, organization_id, "log")
        if actor.is_account_admin or actor.is_eseal_admin:
            return None
        return actor.user_id

    def entries(self, actor: Actor, organization_id: str, filters: LogFilter | None = None,
                *, page: int = 1, page_size: int = 50, order: Order = "desc") -> Page[LogEntry]:
        """A page of the entries the actor may read, newest first by default."""
        only_user = self._reader_scope(actor, organization_id)
        return self._page(organization_id, only_user, filters, page, page_size, order)

    def my_entries(self, actor: Actor, filters: LogFilter | None = None, *, page: int = 1,
                   page_size: int = 50, order: Order = "desc") -> Page[LogEntry]:
        """A page of the actor's own entries (empty for someone in no organization)."""
        if actor.organization_id is None:
            check_paging(page, page_size)
            return Page([], 0, page, page_size)
        return self._page(actor.organization_id, actor.user_id, filters, page, page_size,
                          order)

    def _page(self, organization_id: str, only_user: str | None, filters: LogFilter | None,
              page: int, page_size: int, order: Order) -> Page[LogEntry]:
        offset, limit = check_paging(page, page_size)
        if order not in ("asc", "desc"):
            raise InvalidInput("order is 'asc' or 'desc'", field="order")
        conds = [LogEntry.organization_id == organization_id,
                 *(filters or LogFilter()).checked().conditions()]
        if only_user is not None:
            conds.append(LogEntry.user_id == only_user)
        total = self.s.scalar(select(func.count()).select_from(LogEntry).where(*conds)) or 0
        seq = LogEntry.seq.desc() if order == "desc" else LogEntry.seq.asc()
        items = list(self.s.scalars(select(LogEntry).where(*conds).order_by(seq)
                                    .offset(offset).limit(limit)))
        return Page(items, total, page, page_size)

    def entry(self, actor: Actor, organization_id: str, seq: int) -> LogEntry:
        only_user = self._reader_scope(actor, organization_id)
        return self._visible_entry(organization_id, only_user, seq=seq)

    def csv_export(self, actor: Actor, organization_id: str,
                   filters: LogFilter | None = None) -> CsvExport:
        """An export of what the actor may read, as the log is now: read it with
        ``.lines(session)`` or stream it with ``.stream(session_factory)``."""
        only_user = self._reader_scope(actor, organization_id)
        size, _ = read_head(self.s, organization_id)
        return CsvExport(organization_id, only_user, (filters or LogFilter()).checked(), size)

    def my_csv_export(self, actor: Actor, filters: LogFilter | None = None) -> CsvExport:
        if actor.organization_id is None:
            return CsvExport("", actor.user_id, LogFilter(), 0)
        size, _ = read_head(self.s, actor.organization_id)
        return CsvExport(actor.organization_id, actor.user_id,
                         (filters or LogFilter()).checked(), size)

    def raw_entries(self, actor: Actor, organization_id: str, start: int,
                    end: int) -> list[tuple[int, bytes]]:
        """(seq, canonical bytes) of entries ``start <= seq < end`` (end clamped to the
        log's size), for verifiers that recompute the tree. Administrators only."""
        require_admin(actor, organization_id, "log")
        start, end = _index(start, "start"), _index(end, "end")
        if end < start:
            raise InvalidInput("end must not be smaller than start", field="end")
        if end - start > MAX_RAW_ENTRIES:
            raise InvalidInput(f"at most {MAX_RAW_ENTRIES} entries per call", field="end")
        rows = self.s.execute(select(_ENTRIES.c.seq, _ENTRIES.c.entry).where(
            _ENTRIES.c.organization_id == organization_id, _ENTRIES.c.seq >= start,
            _ENTRIES.c.seq < end).order_by(_ENTRIES.c.seq))
        return [(int(seq), bytes(data)) for seq, data in rows]

    def size(self, actor: Actor, organization_id: str) -> int:
        require_member(actor, organization_id, "log")
        return read_head(self.s, organization_id)[0]

    # -- the security log ------------------------------------------------------

    def security_events(self, actor: Actor, organization_id: str,
                        filters: SecurityFilter | None = None, *, page: int = 1,
                        page_size: int = 50) -> Page[SecurityEvent]:
        """Refused attempts in the organization, newest first. Administrators only."""
        require_admin(actor, organization_id, "log")
        offset, limit = check_paging(page, page_size)
        conds = [SecurityEvent.organization_id == organization_id,
                 *(filters or SecurityFilter()).checked().conditions()]
        total = self.s.scalar(select(func.count()).select_from(SecurityEvent)
                              .where(*conds)) or 0
        items = list(self.s.scalars(
            select(SecurityEvent).where(*conds)
            .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id)
            .offset(offset).limit(limit)))
        return Page(items, total, page, page_size)

    def security_csv_export(self, actor: Actor, organization_id: str,
                            filters: SecurityFilter | None = None) -> SecurityCsvExport:
        """An export of the refused attempts recorded until now (administrators);
        stream it with ``.stream(session_factory)``."""
        require_admin(actor, organization_id, "log")
        return SecurityCsvExport(organization_id, (filters or SecurityFilter()).checked(),
                                 self.clock())

    # -- proofs ----------------------------------------------------------------

    def inclusion_proof(self, actor: Actor, organization_id: str, *, seq: int | None = None,
                        leaf_hash: bytes | None = None,
                        tree_size: int | None = None) -> InclusionProof:
        """Proof that an entry (by ``seq`` or ``leaf_hash``) is in the tree of
        ``tree_size`` leaves (default: the current size). Verify it against the
        root of a signed checkpoint of that size."""
        only_user = self._reader_scope(actor, organization_id)
        if (seq is None) == (leaf_hash is None):
            raise InvalidInput("give exactly one of seq and leaf_hash", field="seq")
        if leaf_hash is not None and len(leaf_hash) != merkle.HASH_SIZE:
            raise InvalidInput(f"a leaf hash is {merkle.HASH_SIZE} bytes", field="leaf_hash")
        index, leaf, entry, current = self._visible_leaf(organization_id, only_user, seq=seq,
                                                         leaf_hash=leaf_hash)
        size = current if tree_size is None else _index(tree_size, "tree_size")
        if not index < size <= current:
            raise InvalidInput(f"tree_size must be more than {index} and at most {current}",
                               field="tree_size")
        path, root = merkle.inclusion_proof_and_root(index, size,
                                                     DbNodeStore(self.s, organization_id))
        return InclusionProof(index, size, leaf, root, path, entry)

    def consistency_proof(self, actor: Actor, organization_id: str, old_size: int,
                          new_size: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``old_size`` is a prefix of the tree of ``new_size``
        (default: the current size)."""
        require_member(actor, organization_id, "log")
        current, _ = read_head(self.s, organization_id)
        old_size = _index(old_size, "old")
        new = current if new_size is None else _index(new_size, "new")
        if not old_size <= new <= current:
            raise InvalidInput(f"need old <= new <= {current} (the log's size)", field="new")
        path, old_root, new_root = merkle.consistency_proof_and_roots(
            old_size, new, DbNodeStore(self.s, organization_id))
        return ConsistencyProof(old_size, new, old_root, new_root, path)

    def _visible_entry(self, organization_id: str, only_user: str | None, *,
                       seq: int | None = None, leaf_hash: bytes | None = None) -> LogEntry:
        where = _visible_where(organization_id, only_user, seq, leaf_hash)
        entry = self.s.scalars(select(LogEntry).where(*where).order_by(LogEntry.seq)
                               .limit(1)).first()
        if entry is None:
            raise NotFound("log entry not found")
        return entry

    def _visible_leaf(self, organization_id: str, only_user: str | None, *,
                      seq: int | None = None, leaf_hash: bytes | None = None,
                      ) -> tuple[int, bytes, bytes, int]:
        """(seq, leaf hash, entry bytes) of a visible entry, and the log's committed
        size, in one query: what a proof needs."""
        where = _visible_where(organization_id, only_user, seq, leaf_hash)
        size = select(LOG_HEADS.c.size).where(
            LOG_HEADS.c.organization_id == organization_id).scalar_subquery()
        row = self.s.execute(select(LogEntry.seq, LogEntry.leaf_hash, LogEntry.entry, size)
                             .where(*where).order_by(LogEntry.seq).limit(1)).first()
        if row is None:
            raise NotFound("log entry not found")
        return int(row[0]), bytes(row[1]), bytes(row[2]), int(row[3] or 0)

    # -- checkpoints -----------------------------------------------------------

    def origin(self, organization_id: str) -> str:
        """The checkpoint origin: ``<host[/path] of the base URL>/log/<organization id>``."""
        parsed = urlparse(self.base_url)
        host = (parsed.netloc + parsed.path).rstrip("/") or "sealkeeper"
        return f"{host}/log/{organization_id}"

    def _signer(self) -> LogSigner:
        if self._signer_built is None:
            source = self._signer_source
            if source is None:
                raise ConfigurationError("no log key is configured: checkpoints cannot be "
                                         "signed")
            self._signer_built = source if isinstance(source, LogSigner) else source()
        return self._signer_built

    def key_name(self, organization_id: str) -> str:
        return self._signer().key_name or self.origin(organization_id)

    def verifier_key(self, actor: Actor, organization_id: str) -> str:
        """The signed-note verifier key (``name+id+key``) of this organization's checkpoints."""
        require_member(actor, organization_id, "log")
        return notes.verifier_key(self.key_name(organization_id), self._signer().public_key)

    def checkpoint(self, actor: Actor, organization_id: str) -> str:
        """The signed checkpoint note of the log as it is now."""
        require_member(actor, organization_id, "log")
        return self.publish_checkpoint(organization_id)

    def publish_checkpoint(self, organization_id: str) -> str:
        """Sign (or reuse) and store the checkpoint of the current tree (no
        authorization: for the service's own use)."""
        signer = self._signer()
        key_name = self.key_name(organization_id)
        origin = self.origin(organization_id)
        size, root = read_head(self.s, organization_id)
        store = DbNodeStore(self.s, organization_id)
        if not hmac.compare_digest(merkle.root(size, store), root):
            raise CryptoError("the stored log tree does not match its head; run the log "
                              "verifier")
        cached = self.s.scalars(
            select(LogCheckpoint).where(LogCheckpoint.organization_id == organization_id,
                                        LogCheckpoint.size == size)
            .order_by(LogCheckpoint.created_at.desc()).limit(1)).first()
        if cached is not None and self._still_valid(cached.note, key_name, origin, size, root):
            return cached.note
        note = notes.sign_checkpoint(notes.Checkpoint(origin, size, root), key_name,
                                     signer.public_key, signer.sign)
        self.s.execute(insert(LOG_CHECKPOINTS), [{
            "id": new_id(), "organization_id": organization_id, "size": size, "root": root,
            "note": note, "created_at": self.clock()}])
        return note

    def _still_valid(self, note: str, key_name: str, origin: str, size: int,
                     root: bytes) -> bool:
        """A stored note is reused only if it verifies under the current key."""
        try:
            cp = notes.parse_and_verify(note, key_name, self._signer().public_key)
        except (InvalidInput, CryptoError):
            return False
        return cp.origin == origin and cp.size == size and hmac.compare_digest(cp.root_hash,
                                                                               root)
