"""Tables of the seals area: seals and grants."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sealkeeper.db import Base, UTCDateTime, new_id, str_enum


class SealType(StrEnum):
    OFFICIAL = "official"
    AUTHORIZED_SIGNATURE = "authorized_signature"
    CONTRACT = "contract"
    EMPLOYMENT_AGREEMENT = "employment_agreement"
    FINANCIAL = "financial"
    INVOICE = "invoice"
    PERSONAL = "personal"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def is_organizational(self) -> bool:
        return self is not SealType.PERSONAL


_LABELS = {
    SealType.OFFICIAL: "Official Seal",
    SealType.AUTHORIZED_SIGNATURE: "Authorized E-signature",
    SealType.CONTRACT: "Contract Seal",
    SealType.EMPLOYMENT_AGREEMENT: "Employment Agreement Seal",
    SealType.FINANCIAL: "Financial Seal",
    SealType.INVOICE: "Invoice Seal",
    SealType.PERSONAL: "Personal E-signature",
}

ORGANIZATION_SEAL_TYPES = [t for t in SealType if t.is_organizational]


class SealStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"    # may be enabled again
    REVOKED = "revoked"      # final; the SealID is never reused


class Seal(Base):
    __tablename__ = "seals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    seal_id: Mapped[str] = mapped_column(String(32), unique=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    type: Mapped[SealType] = mapped_column(str_enum(SealType, 32))
    name: Mapped[str] = mapped_column(String(300))
    owner_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), default=None)
    status: Mapped[SealStatus] = mapped_column(str_enum(SealStatus, 16), default=SealStatus.ACTIVE)
    key_algorithm: Mapped[str | None] = mapped_column(String(16), default=None)
    key_ref: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    custom_image_png: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Grant(Base):
    """The right of one employee to use one seal, from granted_at to withdrawn_at."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    seal_pk: Mapped[str] = mapped_column(ForeignKey("seals.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    granted_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), default=None)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (
        # At most one grant in force per (seal, user).
        Index(
            "uq_grants_active", "seal_pk", "user_id", unique=True,
            sqlite_where=text("withdrawn_at IS NULL"),
            postgresql_where=text("withdrawn_at IS NULL"),
        ),
    )
