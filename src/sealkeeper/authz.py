"""Who is acting, and the authorization checks every service uses.

Objects of another organization are reported as *not found* so that nothing
about them leaks; a member without the right role gets *forbidden*.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealkeeper.errors import NotFound, PermissionDenied


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    email: str
    organization_id: str | None = None
    is_operator: bool = False
    is_account_admin: bool = False
    is_eseal_admin: bool = False
    is_employee: bool = False
    # Set when the request came with an API token limited to some SealIDs.
    token_seal_ids: frozenset[str] | None = None
    token_id: str | None = None

    @property
    def roles(self) -> list[str]:
        out = []
        if self.is_operator:
            out.append("operator")
        if self.is_account_admin:
            out.append("account_admin")
        if self.is_eseal_admin:
            out.append("eseal_admin")
        if self.is_employee:
            out.append("employee")
        return out

    def member_of(self, organization_id: str) -> bool:
        return self.organization_id is not None and self.organization_id == organization_id


def require_member(actor: Actor, organization_id: str, what: str = "organization") -> None:
    """The actor belongs to the organization (or the object is reported missing)."""
    if not actor.member_of(organization_id):
        raise NotFound(f"{what} not found")


def require_operator(actor: Actor) -> None:
    if not actor.is_operator:
        raise PermissionDenied("only the operator may do this")


def require_account_admin(actor: Actor, organization_id: str, what: str = "organization") -> None:
    require_member(actor, organization_id, what)
    if not actor.is_account_admin:
        raise PermissionDenied("only the organization's account administrator may do this")


def require_eseal_admin(actor: Actor, organization_id: str, what: str = "seal") -> None:
    require_member(actor, organization_id, what)
    if not actor.is_eseal_admin:
        raise PermissionDenied("only the organization's e-seal administrator may do this")


def require_admin(actor: Actor, organization_id: str, what: str = "organization") -> None:
    """Either management position of the organization."""
    require_member(actor, organization_id, what)
    if not (actor.is_account_admin or actor.is_eseal_admin):
        raise PermissionDenied("only the organization's administrators may do this")


def require_member_or_operator(actor: Actor, organization_id: str,
                               what: str = "organization") -> None:
    if actor.is_operator:
        return
    require_member(actor, organization_id, what)
