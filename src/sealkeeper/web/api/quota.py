"""Routes: quota balance, orders, and the operator's credits."""

from __future__ import annotations

from fastapi import APIRouter

from sealkeeper.web.api.schemas import CreditIn, CreditOrderIn, OrderOut, QuotaOut, UnitsIn
from sealkeeper.web.deps import CurrentActor, UoW

router = APIRouter(tags=["quota"])


@router.get("/organizations/{org_id}/quota", response_model=QuotaOut)
def quota(org_id: str, actor: CurrentActor, uow: UoW) -> QuotaOut:
    return QuotaOut(balance=uow.quota.balance(actor, org_id),
                    orders=[OrderOut.from_row(o) for o in uow.quota.orders(actor, org_id)])


@router.post("/organizations/{org_id}/quota/orders", status_code=201, response_model=OrderOut)
def order(org_id: str, body: UnitsIn, actor: CurrentActor, uow: UoW) -> OrderOut:
    """An administrator orders more signatures; pending until the operator credits it."""
    return OrderOut.from_row(uow.quota.place_order(actor, org_id, body.units))


@router.post("/organizations/{org_id}/quota/credit", status_code=201, response_model=OrderOut)
def credit(org_id: str, body: CreditIn, actor: CurrentActor, uow: UoW) -> OrderOut:
    """Operator: credit quota directly (recorded as a credited order)."""
    return OrderOut.from_row(uow.quota.credit(actor, org_id, body.units, body.reference))


@router.post("/quota/orders/{order_id}/credit", response_model=OrderOut)
def credit_order(order_id: str, body: CreditOrderIn, actor: CurrentActor,
                 uow: UoW) -> OrderOut:
    """Operator: credit a pending order."""
    return OrderOut.from_row(uow.quota.credit_order(actor, order_id, body.reference))
