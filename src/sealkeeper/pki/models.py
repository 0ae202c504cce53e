"""Tables of the PKI area: CA keys, seal certificates, CRL state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sealkeeper.db import Base, UTCDateTime, new_id, str_enum


class CaRole(StrEnum):
    ROOT = "root"
    ISSUING = "issuing"
    OCSP = "ocsp"
    TSA = "tsa"
    LOG = "log"        # signs the usage-log checkpoints (no certificate)


class CaKey(Base):
    """A key of the service itself, with its certificate (one active per role)."""

    __tablename__ = "ca_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    role: Mapped[CaRole] = mapped_column(str_enum(CaRole, 16))
    key_algorithm: Mapped[str] = mapped_column(String(16))
    key_ref: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_der: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("uq_ca_keys_active_role", "role", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )


class CertStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"


class CertSource(StrEnum):
    INTERNAL = "internal"     # issued by our CA
    EXTERNAL = "external"     # issued by an outside CA from our CSR


class SealCertificate(Base):
    """Every certificate a seal ever had; old ones stay to verify old signatures."""

    __tablename__ = "seal_certificates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    seal_pk: Mapped[str] = mapped_column(ForeignKey("seals.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64))           # hex, lower case
    issuer_key_id: Mapped[str | None] = mapped_column(ForeignKey("ca_keys.id"), default=None)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    chain_pem: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # external
    source: Mapped[CertSource] = mapped_column(str_enum(CertSource, 16))
    key_fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the SPKI
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[CertStatus] = mapped_column(str_enum(CertStatus, 16), default=CertStatus.GOOD)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("uq_seal_certificates_serial", "issuer_key_id", "serial", unique=True),
        Index("uq_seal_certificates_current", "seal_pk", unique=True,
              sqlite_where=text("is_current"), postgresql_where=text("is_current")),
    )


class CrlState(Base):
    """The newest CRL of one issuer, and its monotonically increasing number."""

    __tablename__ = "crls"

    issuer_key_id: Mapped[str] = mapped_column(ForeignKey("ca_keys.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, default=0)
    this_update: Mapped[datetime] = mapped_column(UTCDateTime())
    next_update: Mapped[datetime] = mapped_column(UTCDateTime())
    der: Mapped[bytes] = mapped_column(LargeBinary)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
