"""Console routes: E-sign API management: the API document (OpenAPI JSON
download and a readable guide), the quota balance and its history, and
ordering more quota (pending until the operator credits it)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from fastapi.responses import Response
from markdown_it import MarkdownIt

from sealkeeper.errors import InvalidInput
from sealkeeper.web.console.context import ConsoleDep, Errors, console_router
from sealkeeper.web.console.errors import form_errors

router = console_router()

_GUIDE_CANDIDATES = (
    Path(__file__).resolve().parents[4] / "docs" / "api.md",   # a source checkout
    Path(__file__).resolve().parent / "static" / "api.md",     # shipped with the package
)


@lru_cache(maxsize=4)
def _render_markdown(path: str, mtime: float) -> str:
    # Raw HTML in the document is escaped, not passed through ("html": False).
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    return str(md.render(Path(path).read_text(encoding="utf-8")))


def guide_html() -> str | None:
    for path in _GUIDE_CANDIDATES:
        if path.is_file():
            return _render_markdown(str(path), path.stat().st_mtime)
    return None


def _operations(openapi: dict[str, object]) -> list[tuple[str, str, str, str]]:
    """(tag, METHOD, path, summary) of every documented operation."""
    out = []
    paths = openapi.get("paths")
    if isinstance(paths, dict):
        for path, ops in paths.items():
            if not isinstance(ops, dict):
                continue
            for method, op in ops.items():
                if not isinstance(op, dict):
                    continue
                tags = op.get("tags") or ["other"]
                summary = str(op.get("summary") or "")
                out.append((str(tags[0]), method.upper(), str(path), summary))
    return sorted(out)


def api_page(c: ConsoleDep, errors: Errors | None = None, status: int = 200) -> Response:
    actor = c.require()
    org_id = c.org_id()
    can_quota = actor.is_account_admin or actor.is_eseal_admin
    return c.render("api.html", status=status, errors=errors, can_quota=can_quota,
                    balance=c.uow.quota.balance(actor, org_id) if can_quota else None,
                    orders=c.uow.quota.orders(actor, org_id) if can_quota else [],
                    base_url=c.uow.rt.settings.base_url)


@router.get("/console/api")
def api(c: ConsoleDep) -> Response:
    return api_page(c)


@router.post("/console/api/quota/orders")
@form_errors(api_page)
def order(c: ConsoleDep) -> Response:
    try:
        units = int(c.text("units").strip())
    except ValueError:
        raise InvalidInput("enter a whole number of signatures", field="units") from None
    row = c.uow.quota.place_order(c.require(), c.org_id(), units)
    return c.redirect("/console/api#quota", f"Your order of {row.units} signatures is "
                      "pending until the operator credits it.")


@router.get("/console/api/openapi.json")
def openapi_download(c: ConsoleDep) -> Response:
    body = json.dumps(c.request.app.openapi(), indent=2, ensure_ascii=False)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="sealkeeper-openapi.json"'})


@router.get("/console/api/guide")
def guide(c: ConsoleDep) -> Response:
    return c.render("api_guide.html", guide=guide_html(),
                    operations=_operations(c.request.app.openapi()),
                    base_url=c.uow.rt.settings.base_url)
