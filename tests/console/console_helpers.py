"""Helpers of the console tests: CSRF tokens from pages, signing in, posting forms."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from factories import PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def signin(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/console/signin")
    r = client.post("/console/signin", data={"csrf_token": csrf_of(page.text), "email": email,
                                              "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def token_for(client: TestClient, page: str = "/console/account") -> str:
    r = client.get(page)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


def post(client: TestClient, url: str, data: dict[str, object] | None = None, *,
         files: object = None, page: str = "/console/account", **kw: object):
    """POST a console form with this browser's CSRF token (taken from ``page``)."""
    body = {"csrf_token": token_for(client, page), **(data or {})}
    return client.post(url, data=body, files=files, follow_redirects=False, **kw)
