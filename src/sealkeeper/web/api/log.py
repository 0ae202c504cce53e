"""Routes: the usage log (entries, CSV export, checkpoints, proofs, raw
entries for verifiers) and the security log.

Hashes (leaf hashes, roots, proof paths) travel as lowercase hex; canonical
entry bytes as standard base64. Who may read what is decided by
:class:`sealkeeper.audit.AuditLog`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from sealkeeper.audit import (
    ConsistencyProof,
    InclusionProof,
    LogEntry,
    LogFilter,
    Page,
    SecurityEvent,
    SecurityFilter,
)
from sealkeeper.audit.encoding import Scalar, entry_details
from sealkeeper.errors import InvalidInput
from sealkeeper.web.deps import CurrentActor, UoW

router = APIRouter(tags=["usage log"])

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
_TEXT = Annotated[str | None, Query(max_length=1024)]
_ID = Annotated[str | None, Query(max_length=64)]
_INDEX = Query(ge=0, le=2**53 - 1)


# -- wire models ---------------------------------------------------------------


class LogEntryOut(BaseModel):
    seq: int
    time: datetime
    kind: str
    seal_id: str | None
    seal_name: str | None
    seal_type: str | None
    user_id: str | None
    user_email: str | None
    file_name: str | None
    file_digest: str | None
    digest_algorithm: str | None
    api: str | None
    approval_id: str | None
    details: dict[str, Scalar] | None = Field(
        description="The kind's other fields; null if the stored entry is not canonical")
    leaf_hash: str = Field(description="RFC 9162 leaf hash of the canonical entry, hex")

    @classmethod
    def from_row(cls, e: LogEntry) -> LogEntryOut:
        return cls(seq=e.seq, time=e.created_at, kind=e.kind.value, seal_id=e.seal_id,
                   seal_name=e.seal_name, seal_type=e.seal_type, user_id=e.user_id,
                   user_email=e.user_email, file_name=e.file_name, file_digest=e.file_digest,
                   digest_algorithm=e.digest_algorithm, api=e.api, approval_id=e.approval_id,
                   details=entry_details(e.entry), leaf_hash=e.leaf_hash.hex())


class LogPageOut(BaseModel):
    items: list[LogEntryOut]
    total: int
    page: int
    page_size: int


class SecurityEventOut(BaseModel):
    id: str
    time: datetime
    user_id: str | None
    seal_id: str | None
    action: str
    reason: str
    message: str
    api: str | None
    remote_addr: str | None

    @classmethod
    def from_row(cls, e: SecurityEvent) -> SecurityEventOut:
        return cls(id=e.id, time=e.created_at, user_id=e.user_id, seal_id=e.seal_id,
                   action=e.action, reason=e.reason, message=e.message, api=e.api,
                   remote_addr=e.remote_addr)


class SecurityPageOut(BaseModel):
    items: list[SecurityEventOut]
    total: int
    page: int
    page_size: int


class InclusionProofOut(BaseModel):
    seq: int
    tree_size: int
    leaf_hash: str
    root: str
    path: list[str]
    entry: str = Field(description="the canonical entry bytes, base64")

    @classmethod
    def build(cls, p: InclusionProof) -> InclusionProofOut:
        return cls(seq=p.seq, tree_size=p.tree_size, leaf_hash=p.leaf_hash.hex(),
                   root=p.root.hex(), path=[h.hex() for h in p.path],
                   entry=base64.b64encode(p.entry).decode())


class ConsistencyProofOut(BaseModel):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: list[str]

    @classmethod
    def build(cls, p: ConsistencyProof) -> ConsistencyProofOut:
        return cls(old_size=p.old_size, new_size=p.new_size, old_root=p.old_root.hex(),
                   new_root=p.new_root.hex(), path=[h.hex() for h in p.path])


class RawEntryOut(BaseModel):
    seq: int
    entry: str = Field(description="the canonical entry bytes, base64")


class RawEntriesOut(BaseModel):
    start: int
    end: int
    tree_size: int
    entries: list[RawEntryOut]


# -- parameters ----------------------------------------------------------------


def log_filter(seal_id: _ID = None, user_id: _ID = None, since: datetime | None = None,
               until: datetime | None = None, file_name: _TEXT = None,
               file_digest: Annotated[str | None, Query(max_length=128)] = None,
               kind: Annotated[str | None, Query(max_length=32)] = None,
               api: Annotated[str | None, Query(max_length=16)] = None) -> LogFilter:
    """Filters shared by the list and the CSV export (times without a zone are UTC;
    ``since`` is inclusive, ``until`` exclusive; ``file_name`` matches a substring)."""
    return LogFilter(seal_id=seal_id, user_id=user_id, since=since, until=until,
                     file_name=file_name, file_digest=file_digest, kind=kind, api=api)


def security_filter(user_id: _ID = None, seal_id: _ID = None,
                    action: Annotated[str | None, Query(max_length=64)] = None,
                    reason: Annotated[str | None, Query(max_length=64)] = None,
                    since: datetime | None = None,
                    until: datetime | None = None) -> SecurityFilter:
    return SecurityFilter(user_id=user_id, seal_id=seal_id, action=action, reason=reason,
                          since=since, until=until)


Filters = Annotated[LogFilter, Depends(log_filter)]
SecurityFilters = Annotated[SecurityFilter, Depends(security_filter)]
PageNo = Annotated[int, Query(ge=1, le=10_000_000)]
PageSize = Annotated[int, Query(ge=1, le=500)]
Order = Literal["asc", "desc"]


def _page_out(page: Page[LogEntry]) -> LogPageOut:
    return LogPageOut(items=[LogEntryOut.from_row(e) for e in page.items], total=page.total,
                      page=page.page, page_size=page.page_size)


def _csv(lines: Iterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(lines, media_type=CSV_MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- the usage log -------------------------------------------------------------


@router.get("/organizations/{org_id}/log", response_model=LogPageOut)
def list_log(org_id: str, actor: CurrentActor, uow: UoW, filters: Filters, page: PageNo = 1,
             page_size: PageSize = 50, order: Order = "desc") -> LogPageOut:
    """Entries of the organization's usage log, newest first. The administrators
    see every entry; any other member only the entries about themselves."""
    return _page_out(uow.audit.entries(actor, org_id, filters, page=page, page_size=page_size,
                                       order=order))


@router.get("/organizations/{org_id}/log.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_log(org_id: str, actor: CurrentActor, uow: UoW,
               filters: Filters) -> StreamingResponse:
    """The same entries as CSV (oldest first, as the log stood when the export began)."""
    export = uow.audit.csv_export(actor, org_id, filters)
    return _csv(export.stream(uow.rt.session_factory), "usage-log.csv")


@router.get("/me/log", response_model=LogPageOut)
def my_log(actor: CurrentActor, uow: UoW, filters: Filters, page: PageNo = 1,
           page_size: PageSize = 50, order: Order = "desc") -> LogPageOut:
    """The caller's own entries."""
    return _page_out(uow.audit.my_entries(actor, filters, page=page, page_size=page_size,
                                          order=order))


@router.get("/me/log.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_my_log(actor: CurrentActor, uow: UoW, filters: Filters) -> StreamingResponse:
    export = uow.audit.my_csv_export(actor, filters)
    return _csv(export.stream(uow.rt.session_factory), "my-usage-log.csv")


# -- tamper evidence -------------------------------------------------------------


@router.get("/organizations/{org_id}/log/checkpoint", response_class=PlainTextResponse)
def checkpoint(org_id: str, actor: CurrentActor, uow: UoW) -> PlainTextResponse:
    """The signed checkpoint of the log now (C2SP signed-note checkpoint)."""
    return PlainTextResponse(uow.audit.checkpoint(actor, org_id))


@router.get("/organizations/{org_id}/log/verifier-key", response_class=PlainTextResponse)
def verifier_key(org_id: str, actor: CurrentActor, uow: UoW) -> PlainTextResponse:
    """The signed-note verifier key (``name+keyid+key``) of the checkpoints."""
    return PlainTextResponse(uow.audit.verifier_key(actor, org_id) + "\n")


@router.get("/organizations/{org_id}/log/proof/inclusion", response_model=InclusionProofOut)
def inclusion_proof(org_id: str, actor: CurrentActor, uow: UoW,
                    seq: Annotated[int | None, _INDEX] = None,
                    leaf_hash: Annotated[str | None, Query(max_length=64)] = None,
                    tree_size: Annotated[int | None, _INDEX] = None) -> InclusionProofOut:
    """Inclusion proof of one entry (by ``seq`` or by hex ``leaf_hash``) in the tree
    of ``tree_size`` entries (default: now). Check it against a signed checkpoint."""
    lh: bytes | None = None
    if leaf_hash is not None:
        try:
            lh = bytes.fromhex(leaf_hash)
        except ValueError:
            raise InvalidInput("leaf_hash must be 64 hex digits", field="leaf_hash") from None
    return InclusionProofOut.build(uow.audit.inclusion_proof(
        actor, org_id, seq=seq, leaf_hash=lh, tree_size=tree_size))


@router.get("/organizations/{org_id}/log/proof/consistency",
            response_model=ConsistencyProofOut)
def consistency_proof(org_id: str, actor: CurrentActor, uow: UoW,
                      old: Annotated[int, _INDEX],
                      new: Annotated[int | None, _INDEX] = None) -> ConsistencyProofOut:
    """Proof that the tree of ``old`` entries is a prefix of the tree of ``new``
    (default: now)."""
    return ConsistencyProofOut.build(uow.audit.consistency_proof(actor, org_id, old, new))


@router.get("/organizations/{org_id}/log/entries", response_model=RawEntriesOut)
def raw_entries(org_id: str, actor: CurrentActor, uow: UoW,
                start: Annotated[int, _INDEX] = 0,
                end: Annotated[int | None, _INDEX] = None) -> RawEntriesOut:
    """Canonical entries ``start <= seq < end`` (at most 1000; ``end`` defaults to
    ``start + 1000`` and is clamped to the log's size), for verifiers that
    recompute the tree. Administrators only."""
    stop = start + 1000 if end is None else end
    rows = uow.audit.raw_entries(actor, org_id, start, stop)
    size = uow.audit.size(actor, org_id)
    return RawEntriesOut(start=start, end=min(stop, max(size, start)), tree_size=size,
                         entries=[RawEntryOut(seq=seq, entry=base64.b64encode(data).decode())
                                  for seq, data in rows])


# -- the security log ------------------------------------------------------------


@router.get("/organizations/{org_id}/security-events", response_model=SecurityPageOut)
def security_events(org_id: str, actor: CurrentActor, uow: UoW, filters: SecurityFilters,
                    page: PageNo = 1, page_size: PageSize = 50) -> SecurityPageOut:
    """Refused attempts (wrong approval password, no grant, no quota...), newest
    first. Administrators only."""
    p = uow.audit.security_events(actor, org_id, filters, page=page, page_size=page_size)
    return SecurityPageOut(items=[SecurityEventOut.from_row(e) for e in p.items],
                           total=p.total, page=p.page, page_size=p.page_size)


@router.get("/organizations/{org_id}/security-events.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_security_events(org_id: str, actor: CurrentActor, uow: UoW,
                           filters: SecurityFilters) -> StreamingResponse:
    """The same refused attempts as CSV (oldest first, up to the moment the
    export began). Administrators only."""
    export = uow.audit.security_csv_export(actor, org_id, filters)
    return _csv(export.stream(uow.rt.session_factory), "security-log.csv")
