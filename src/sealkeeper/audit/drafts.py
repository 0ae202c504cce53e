"""What callers hand to the log: :class:`EntryDraft` (an entry before it gets
its place in the tree) with one constructor per kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from sealkeeper.audit.encoding import FIELDS, EntryKind, Scalar, check_fields
from sealkeeper.crypto.digests import Hashed

__all__ = ["EntryDraft"]


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """One log entry to append. The log adds ``org``, ``seq`` and ``time``.

    The named fields are copied into indexed columns; ``details`` holds the
    kind's other fields (for example who granted, the new status, the
    signing time), all of which go into the canonical entry.
    """

    kind: EntryKind
    seal_id: str | None = None
    seal_name: str | None = None
    seal_type: str | None = None
    user_id: str | None = None
    user_email: str | None = None
    file_name: str | None = None
    file_digest: str | None = None
    digest_algorithm: str | None = None
    api: str | None = None
    approval_id: str | None = None
    details: Mapping[str, Scalar] = field(default_factory=dict)

    def columns(self) -> dict[str, str | None]:
        """The indexed fields, by name."""
        return {name: getattr(self, name) for name in _COLUMNS}

    def body(self, columns: Mapping[str, str | None] | None = None) -> dict[str, Scalar]:
        """Validated fields and details, as they go into the canonical entry."""
        return check_fields(EntryKind(self.kind), self.columns() if columns is None else columns,
                            self.details)

    # -- one constructor per kind ------------------------------------------

    @classmethod
    def signature(cls, *, seal_id: str, seal_name: str, seal_type: str, user_id: str,
                  user_email: str, file_name: str, digest: Hashed, api: str,
                  approval_id: str | None = None, **details: Scalar) -> EntryDraft:
        """A seal (or personal signature) signed the document with ``digest``."""
        return cls(EntryKind.SIGNATURE, seal_id=seal_id, seal_name=seal_name,
                   seal_type=str(seal_type), user_id=user_id, user_email=user_email,
                   file_name=file_name, file_digest=digest.digest.hex(),
                   digest_algorithm=digest.algorithm.value, api=api, approval_id=approval_id,
                   details=details)

    @classmethod
    def grant(cls, *, seal_id: str, seal_name: str, seal_type: str, user_id: str,
              user_email: str, by_user_id: str, **details: Scalar) -> EntryDraft:
        """``user_id`` may use the seal from now on; ``by_user_id`` granted it."""
        return cls(EntryKind.GRANT, seal_id=seal_id, seal_name=seal_name,
                   seal_type=str(seal_type), user_id=user_id, user_email=user_email,
                   details={"by_user_id": by_user_id, **details})

    @classmethod
    def withdrawal(cls, *, seal_id: str, seal_name: str, seal_type: str, user_id: str,
                   user_email: str, by_user_id: str, **details: Scalar) -> EntryDraft:
        """``user_id`` may no longer use the seal (``reason`` e.g. "employee_deleted")."""
        return cls(EntryKind.WITHDRAWAL, seal_id=seal_id, seal_name=seal_name,
                   seal_type=str(seal_type), user_id=user_id, user_email=user_email,
                   details={"by_user_id": by_user_id, **details})

    @classmethod
    def seal_status(cls, *, seal_id: str, seal_name: str, seal_type: str, status: str,
                    by_user_id: str | None, **details: Scalar) -> EntryDraft:
        """The seal became ``status`` (active, disabled, revoked)."""
        extra: dict[str, Scalar] = {"status": str(status), **details}
        if by_user_id is not None:
            extra["by_user_id"] = by_user_id
        return cls(EntryKind.SEAL_STATUS, seal_id=seal_id, seal_name=seal_name,
                   seal_type=str(seal_type), details=extra)

    @classmethod
    def rekey(cls, *, seal_id: str, seal_name: str, seal_type: str, by_user_id: str | None,
              **details: Scalar) -> EntryDraft:
        """The seal got a new key (put e.g. ``certificate_sha256`` in details)."""
        extra: dict[str, Scalar] = dict(details)
        if by_user_id is not None:
            extra["by_user_id"] = by_user_id
        return cls(EntryKind.REKEY, seal_id=seal_id, seal_name=seal_name,
                   seal_type=str(seal_type), details=extra)

    @classmethod
    def approval_password_reset(cls, *, user_id: str, user_email: str,
                                **details: Scalar) -> EntryDraft:
        return cls(EntryKind.APPROVAL_PASSWORD_RESET, user_id=user_id, user_email=user_email,
                   details=details)

    @classmethod
    def decryption(cls, *, user_id: str, user_email: str, file_name: str | None = None,
                   seal_id: str | None = None, approval_id: str | None = None,
                   api: str | None = None, **details: Scalar) -> EntryDraft:
        """A content key was unwrapped for ``user_id``."""
        return cls(EntryKind.DECRYPTION, user_id=user_id, user_email=user_email,
                   file_name=file_name, seal_id=seal_id, approval_id=approval_id, api=api,
                   details=details)


_COLUMNS = tuple(f.name for f in fields(EntryDraft) if f.name in FIELDS)
