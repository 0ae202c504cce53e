"""Console route: the overview page, different for each role."""

from __future__ import annotations

from fastapi.responses import Response

from sealkeeper.orgs.models import OrgStatus
from sealkeeper.web.console.context import ConsoleDep, console_router

router = console_router()


@router.get("/console/")
def overview(c: ConsoleDep) -> Response:
    actor = c.require()
    org = c.uow.orgs.get(actor, actor.organization_id) if actor.organization_id else None
    pending_orgs = len(c.uow.orgs.search(actor, OrgStatus.PENDING)) if actor.is_operator \
        else 0
    my_seals = c.uow.seals.my_seals(actor) if actor.is_employee else []
    approval = c.uow.approvals.status(actor) if actor.is_employee else None
    return c.render("home.html", org=org, pending_orgs=pending_orgs, my_seals=my_seals,
                    approval=approval)


fallback = console_router()


@fallback.get("/console/{rest:path}")
def not_found(c: ConsoleDep, rest: str) -> Response:
    from sealkeeper.errors import NotFound

    raise NotFound("there is no such page")
