"""Console route: the stylesheet and script (no build step; served from the package)."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sealkeeper.errors import NotFound
from sealkeeper.web.console.errors import ConsoleRoute
from sealkeeper.web.console.templating import STATIC

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
_NAME = re.compile(r"^[a-z0-9-]{1,40}\.(css|js|svg|png|ico)$")
_TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
          "svg": "image/svg+xml", "png": "image/png", "ico": "image/x-icon"}


@lru_cache(maxsize=32)
def _load(name: str, mtime: float) -> tuple[bytes, str]:
    data = (STATIC / name).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


@router.get("/console/static/{name}")
def static(name: str, request: Request) -> Response:
    path = STATIC / name
    if not _NAME.match(name) or not path.is_file():
        raise NotFound("no such file")
    data, etag = _load(name, path.stat().st_mtime)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=_TYPES[name.rsplit(".", 1)[1]], headers=headers)
