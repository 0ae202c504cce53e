"""Garbage in, 4xx out: every route gets malformed input and must answer a
4xx with {"error", "message"}, never a 500, and change nothing."""

from __future__ import annotations

import pytest
from test_authorization import CASES, PUBLIC, Case, extras, tokens

from factories import auth

OPTIONAL = {"reference", "display_name", "seal_ids"}
BAD_BODIES = [b"not json", b"[]", b"null", b'{"a": ', b"\xff\xfe\x00", b"1e999999"]
WRONG_TYPES = [123, -1, 1.5, True, None, [], {}, "x" * 5000, "\u0000"]


def _allowed_token(case: Case, toks: dict[str, str]) -> str:
    role = sorted(case.allowed)[0]
    return toks[role]


def _assert_4xx(r, what: str) -> None:
    assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    body = r.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_garbage_to_every_route(case: Case, client, world, runtime):
    ids = extras(runtime, world, case)
    token = _allowed_token(case, tokens(world))
    headers = {**auth(token), "content-type": "application/json"}

    # Unknown ids in every path position.
    if "{" in case.path:
        for junk in ("doesnotexist", "0" * 32, "%00", "a" * 300, "SEAL-0000-0000-0000-0000"):
            bad = dict.fromkeys(ids, junk)
            path = case.path.format(**{**ids, **{k: v for k, v in bad.items()
                                                 if "{" + k + "}" in case.path}})
            r = client.request(case.method, path, headers=headers,
                               content=b"{}" if case.method != "GET" else None)
            _assert_4xx(r, f"unknown id {junk!r}")

    path = case.path.format(**ids)
    if case.method == "GET":
        r = client.get(path + "?status=bogus&include_withdrawn=maybe", headers=auth(token))
        assert r.status_code < 500
        return

    # A body over 1 MiB, declared and streamed.
    big = b'{"name": "' + b"x" * (1 << 20) + b'"}'
    r = client.request(case.method, path, headers=headers, content=big)
    assert r.status_code == 413, r.text[:200]
    _assert_4xx(r, "huge body")

    if case.multipart:
        for files in ({}, {"letter": ("l.exe", b"MZ\x90\x00", "application/pdf")},
                      {"letter": ("l.pdf", b"", "application/pdf")},
                      {"letter": ("l.pdf", b"%PDF-" + b"x" * (11 << 20), "application/pdf")}):
            r = client.request(case.method, path, headers=auth(token), files=files or None,
                               data={"eseal_admin_email": "not an email", "legal_name": ""})
            _assert_4xx(r, f"multipart {list(files)}")
        return

    for raw in BAD_BODIES:
        r = client.request(case.method, path, headers=headers, content=raw)
        if case.body is None and r.status_code < 400:
            continue  # routes without a body ignore it
        _assert_4xx(r, f"body {raw!r}")

    if case.body:
        r = client.request(case.method, path, headers=headers,
                           json={**case.body, "unexpected_field": 1})
        _assert_4xx(r, "unknown field")
        for key in case.body:
            for wrong in WRONG_TYPES:
                if type(wrong) is type(case.body[key]) and not isinstance(wrong, str):
                    continue  # same type as the good value: not garbage
                if wrong is None and key in OPTIONAL:
                    continue
                body = {k: (v.format(**ids) if isinstance(v, str) else v)
                        for k, v in case.body.items()}
                body[key] = wrong
                r = client.request(case.method, path, headers=headers, json=body)
                _assert_4xx(r, f"{key}={wrong!r}")


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@", "@b.example", "a@b@c.example",
                                   "carol@other.example", "carol@alpha.example.evil",
                                   "x" * 400 + "@alpha.example", "carol@ALPHA-.example"])
def test_employee_emails_must_be_valid_and_in_a_validated_domain(email, client, world):
    r = client.post(f"/api/v1/organizations/{world.a.id}/employees",
                    headers=auth(world.a.tokens["account_admin"]),
                    json={"email": email, "display_name": "Carol"})
    _assert_4xx(r, email)
    assert r.json()["field"] == "email"
    listed = client.get(f"/api/v1/organizations/{world.a.id}/employees",
                        headers=auth(world.a.tokens["account_admin"])).json()
    assert len(listed) == 4  # nothing was added


def test_pending_domain_is_not_enough(client, world):
    admin = auth(world.a.tokens["account_admin"])
    r = client.post(f"/api/v1/organizations/{world.a.id}/domains", headers=admin,
                    json={"name": "pending.example"})
    assert r.status_code == 201 and r.json()["status"] == "pending"
    r = client.post(f"/api/v1/organizations/{world.a.id}/employees", headers=admin,
                    json={"email": "eve@pending.example", "display_name": "Eve"})
    assert r.status_code == 400 and "validated domain" in r.json()["message"]


@pytest.mark.parametrize("method,path", sorted(PUBLIC))
def test_public_routes_refuse_garbage(method, path, client):
    for raw in BAD_BODIES:
        r = client.request(method, path, content=raw, headers={"content-type": "application/json"})
        _assert_4xx(r, repr(raw))
    for wrong in WRONG_TYPES:
        r = client.request(method, path, json={"email": wrong, "password": wrong,
                                               "token": wrong, "display_name": wrong})
        _assert_4xx(r, repr(wrong))
