"""Tables of the quota area."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sealkeeper.db import Base, UTCDateTime, new_id, str_enum


class OrderStatus(StrEnum):
    PENDING = "pending"
    CREDITED = "credited"
    CANCELLED = "cancelled"


class QuotaOrder(Base):
    __tablename__ = "quota_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    units: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus, 16),
                                                default=OrderStatus.PENDING)
    requested_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    credited_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), default=None)
    credited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
