"""The web console: server-rendered pages (Jinja2) of the E-sign service menu,
onboarding, the operator's review and the public verification page.

Routes translate forms into service calls; every error becomes HTML in
:mod:`sealkeeper.web.console.errors`; who is signed in and the CSRF token of
every form come from :mod:`sealkeeper.web.console.context`.
"""

from __future__ import annotations

from fastapi import APIRouter

from sealkeeper.web.console import (
    api_docs,
    auth,
    employees,
    home,
    my,
    onboarding,
    seals,
    static,
    verify,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
for _module in (static, auth, home, onboarding, employees, seals, my, api_docs, verify):
    router.include_router(_module.router)
router.include_router(home.fallback)  # last: an HTML 404 for unknown console pages
