"""Tables of the console: sessions, sign-in throttling, TOTP credentials."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sealkeeper.db import Base, UTCDateTime, new_id, str_enum


class SessionStage(StrEnum):
    TOTP = "totp"          # the password was right; the TOTP code is still due
    ACTIVE = "active"


class ConsoleSession(Base):
    """A signed-in browser. The cookie holds 256 random bits; only their
    SHA-256 is stored, so a database leak gives no usable session."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_secret: Mapped[str] = mapped_column(String(64))
    stage: Mapped[SessionStage] = mapped_column(str_enum(SessionStage, 16))
    totp_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    remote_addr: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(200), default=None)
    flash: Mapped[str | None] = mapped_column(Text, default=None)


class SignInThrottle(Base):
    """Failed sign-ins per key (an account's email hash, or a client address)."""

    __tablename__ = "signin_throttle"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class TotpCredential(Base):
    """A user's TOTP second factor. The secret itself is not stored: it is
    derived from ``salt`` with the pepper MAC of the key store."""

    __tablename__ = "totp_credentials"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_counter: Mapped[int | None] = mapped_column(BigInteger, default=None)


class DomainMailCode(Base):
    """A code mailed to admin@ or postmaster@ a domain to prove control of it;
    stored as a keyed hash, usable once, for a limited time and few attempts."""

    __tablename__ = "domain_mail_codes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id"), index=True)
    mailbox: Mapped[str] = mapped_column(String(320))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
