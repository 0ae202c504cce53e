"""The tamper-evident usage log (M8): one RFC 9162 Merkle tree per
organization over canonical entries, signed checkpoints, proofs, and the
separate security log of refused attempts.

Public surface: :class:`AuditLog` (the service), :class:`EntryDraft` (what
callers append), :class:`LogSigner` (the checkpoint key), :class:`LogFilter`,
and the security-log helpers. Importing the package installs the ORM guard
that keeps entries append-only.
"""

from sealkeeper.audit import guard as _guard  # noqa: F401  (installs the listeners)
from sealkeeper.audit.drafts import EntryDraft
from sealkeeper.audit.encoding import EntryKind
from sealkeeper.audit.models import LogCheckpoint, LogEntry, LogHead, LogNode, SecurityEvent
from sealkeeper.audit.queries import LogFilter, Page, SecurityFilter
from sealkeeper.audit.security import (
    PendingSecurityEvents,
    SecurityEventDraft,
    record_security_event,
    record_security_event_independently,
)
from sealkeeper.audit.service import Appended, AuditLog, ConsistencyProof, InclusionProof
from sealkeeper.audit.signer import LogSigner

__all__ = [
    "Appended",
    "AuditLog",
    "ConsistencyProof",
    "EntryDraft",
    "EntryKind",
    "InclusionProof",
    "LogCheckpoint",
    "LogEntry",
    "LogFilter",
    "LogHead",
    "LogNode",
    "LogSigner",
    "Page",
    "PendingSecurityEvents",
    "SecurityEvent",
    "SecurityEventDraft",
    "SecurityFilter",
    "record_security_event",
    "record_security_event_independently",
]
