"""Tables of the organizations area."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sealkeeper.db import Base, UTCDateTime, new_id, str_enum


class OrgStatus(StrEnum):
    PENDING = "pending"
    VALIDATED = "validated"
    REJECTED = "rejected"


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    legal_name: Mapped[str] = mapped_column(String(300))
    registration_number: Mapped[str] = mapped_column(String(100))
    status: Mapped[OrgStatus] = mapped_column(str_enum(OrgStatus, 16), default=OrgStatus.PENDING)
    rejection_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # The two management positions. A single column each makes "exactly one
    # e-seal administrator at any time" a property of the schema.
    account_admin_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    eseal_admin_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), default=None)
    quota_balance: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), default=None)


class DomainStatus(StrEnum):
    PENDING = "pending"
    VALIDATED = "validated"


class Domain(Base):
    __tablename__ = "domains"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(253))
    status: Mapped[DomainStatus] = mapped_column(str_enum(DomainStatus, 16),
                                                 default=DomainStatus.PENDING)
    validation_method: Mapped[str | None] = mapped_column(String(32), default=None)
    challenge: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (UniqueConstraint("organization_id", "name"),)


class LetterStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class AuthorizationLetter(Base):
    """The uploaded letter designating the e-seal administrator's mailbox."""

    __tablename__ = "authorization_letters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    eseal_admin_email: Mapped[str] = mapped_column(String(320))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[LetterStatus] = mapped_column(str_enum(LetterStatus, 16),
                                                 default=LetterStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    submitted_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
