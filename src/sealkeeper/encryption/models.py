"""Tables of the encryption area: encryption keys (one current per employee
and per organization) and the grants that let employees decrypt with their
organization's key."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sealkeeper.db import Base, UTCDateTime, new_id, str_enum


class KeyOwner(StrEnum):
    USER = "user"
    ORGANIZATION = "organization"


class EncryptionKeyStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"     # final: never decrypts again


class EncryptionKey(Base):
    """A decryption key in the key store with its encryption certificate.

    Old keys are kept (``is_current`` false) so that files encrypted for them
    still decrypt; only a revoked key never decrypts again.
    """

    __tablename__ = "encryption_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    owner: Mapped[KeyOwner] = mapped_column(str_enum(KeyOwner, 16))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), default=None,
                                                index=True)
    key_algorithm: Mapped[str] = mapped_column(String(16))
    key_ref: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    issuer_key_id: Mapped[str] = mapped_column(ForeignKey("ca_keys.id"))
    serial: Mapped[str] = mapped_column(String(64))              # hex, lower case
    key_identifier: Mapped[str] = mapped_column(String(128), index=True)  # SKI, hex
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[EncryptionKeyStatus] = mapped_column(
        str_enum(EncryptionKeyStatus, 16), default=EncryptionKeyStatus.ACTIVE)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("uq_encryption_keys_serial", "issuer_key_id", "serial", unique=True),
        # One current key per employee, and one per organization.
        Index("uq_encryption_keys_current_user", "user_id", unique=True,
              sqlite_where=text("is_current AND user_id IS NOT NULL"),
              postgresql_where=text("is_current AND user_id IS NOT NULL")),
        Index("uq_encryption_keys_current_org", "organization_id", unique=True,
              sqlite_where=text("is_current AND user_id IS NULL"),
              postgresql_where=text("is_current AND user_id IS NULL")),
    )


class EncryptionGrant(Base):
    """The right of one employee to decrypt with their organization's
    encryption keys (current and past), from granted_at to withdrawn_at."""

    __tablename__ = "encryption_grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    granted_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), default=None)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (
        Index("uq_encryption_grants_active", "organization_id", "user_id", unique=True,
              sqlite_where=text("withdrawn_at IS NULL"),
              postgresql_where=text("withdrawn_at IS NULL")),
    )
