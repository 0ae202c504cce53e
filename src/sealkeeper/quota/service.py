"""API quota: the balance of each organization, orders, operator credits, and
the conditional, atomic consumption the signing path calls."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sealkeeper.authz import Actor, require_admin, require_member_or_operator, require_operator
from sealkeeper.clock import Clock
from sealkeeper.errors import Conflict, InvalidInput, NotFound
from sealkeeper.orgs.models import Organization, OrgStatus
from sealkeeper.quota.models import OrderStatus, QuotaOrder

MAX_UNITS = 10_000_000


def _units(units: int) -> int:
    if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= MAX_UNITS:
        raise InvalidInput(f"units must be an integer from 1 to {MAX_UNITS}", field="units")
    return units


class QuotaService:
    def __init__(self, session: Session, clock: Clock) -> None:
        self.s = session
        self.clock = clock

    def _org(self, actor: Actor, org_id: str) -> Organization:
        org = self.s.get(Organization, org_id) if isinstance(org_id, str) else None
        if org is None:
            raise NotFound("organization not found")
        require_member_or_operator(actor, org.id)
        if not actor.is_operator:
            require_admin(actor, org.id)
        return org

    def balance(self, actor: Actor, org_id: str) -> int:
        org = self._org(actor, org_id)
        self.s.refresh(org, ["quota_balance"])
        return org.quota_balance

    def orders(self, actor: Actor, org_id: str) -> list[QuotaOrder]:
        org = self._org(actor, org_id)
        return list(self.s.scalars(select(QuotaOrder).where(QuotaOrder.organization_id == org.id)
                                   .order_by(QuotaOrder.created_at.desc())))

    def place_order(self, actor: Actor, org_id: str, units: int) -> QuotaOrder:
        """An administrator asks for more quota; pending until the operator (or
        a payment provider) credits it."""
        org = self._org(actor, org_id)
        if actor.is_operator and not actor.member_of(org.id):
            raise Conflict("the operator credits quota; orders come from the organization")
        if org.status != OrgStatus.VALIDATED:
            raise Conflict("the organization is not validated")
        order = QuotaOrder(organization_id=org.id, units=_units(units),
                           status=OrderStatus.PENDING, requested_by=actor.user_id,
                           created_at=self.clock())
        self.s.add(order)
        self.s.flush()
        return order

    def credit(self, actor: Actor, org_id: str, units: int,
               reference: str | None = None) -> QuotaOrder:
        """The operator credits quota directly (recorded as a credited order)."""
        require_operator(actor)
        org = self._org(actor, org_id)
        if org.status != OrgStatus.VALIDATED:
            raise Conflict("the organization is not validated")
        now = self.clock()
        order = QuotaOrder(organization_id=org.id, units=_units(units),
                           reference=_reference(reference), status=OrderStatus.CREDITED,
                           requested_by=actor.user_id, created_at=now,
                           credited_by=actor.user_id, credited_at=now)
        self.s.add(order)
        self._add(org.id, order.units)
        self.s.flush()
        return order

    def credit_order(self, actor: Actor, order_id: str,
                     reference: str | None = None) -> QuotaOrder:
        require_operator(actor)
        order = self.s.get(QuotaOrder, order_id) if isinstance(order_id, str) else None
        if order is None:
            raise NotFound("order not found")
        # Flip the status atomically so that two operators cannot credit twice.
        done = self.s.execute(
            update(QuotaOrder).where(QuotaOrder.id == order.id,
                                     QuotaOrder.status == OrderStatus.PENDING)
            .values(status=OrderStatus.CREDITED, credited_by=actor.user_id,
                    credited_at=self.clock(), reference=_reference(reference)))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("the order is not pending")
        self._add(order.organization_id, order.units)
        self.s.refresh(order)
        return order

    def _add(self, org_id: str, units: int) -> None:
        self.s.execute(update(Organization).where(Organization.id == org_id)
                       .values(quota_balance=Organization.quota_balance + units))

    def try_consume(self, org_id: str, units: int = 1) -> bool:
        """Take ``units`` from the balance if, and only if, that many remain.

        One conditional UPDATE: atomic on SQLite and PostgreSQL, so concurrent
        signers can never take the balance below zero."""
        result = self.s.execute(
            update(Organization)
            .where(Organization.id == org_id, Organization.quota_balance >= units)
            .values(quota_balance=Organization.quota_balance - units))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _reference(reference: str | None) -> str | None:
    if reference is None:
        return None
    ref = reference.strip()
    if len(ref) > 200 or any(ord(c) < 32 for c in ref):
        raise InvalidInput("reference must be at most 200 printable characters",
                           field="reference")
    return ref or None
