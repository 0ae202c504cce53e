"""Fuzzing the HTTP surface with schemathesis, in-process.

Every operation of the OpenAPI document at ``/api/v1/openapi.json`` (the JSON
API and the CSC API v1/v2, whose bodies are free JSON objects) gets generated
schema-valid requests (and, with SEALKEEPER_SOAK=1, schema-breaking ones), sent
with a real API token and, half of the time, with real ids in the path, so
that requests get past authentication and lookups. Each answer must not be a
5xx, a JSON answer must be JSON, and a documented (2xx) answer must match its
response schema. The CSC bodies also get structure-aware payloads
(hypothesis), since the schema says nothing about them.

Bounded: five examples per operation (well under a minute on two cores for
both backends); SEALKEEPER_SOAK=1 runs many more. tests/web/test_garbage.py
sends hand-made garbage to every route.
"""

from __future__ import annotations

import base64
import json
import string
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from fault_helpers import soak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from factories import auth
from sealkeeper.web.app import create_app

EXAMPLES = 40 if soak() else 5
CSC_EXAMPLES = 600 if soak() else 120
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def _known_ids(world) -> dict[str, list[str]]:
    a = world.a
    return {"org_id": [a.id, world.b.id], "seal_id": [a.seals["contract"], a.personal["employee"]],
            "user_id": [a.users["employee"], a.users["employee2"]], "name": [a.domain]}


def _json_answer_is_json(case, response) -> None:
    ctype = response.headers.get("content-type", "")
    if "json" in ctype:
        json.loads(response.text)  # raises if the body is not JSON


# Negative generation spends most of its time proving that an operation has
# nothing to break (hypothesis gives up after hundreds of filtered tries): soak only.
MODES = [GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] if soak() else [])]


@pytest.mark.parametrize("mode", MODES)
def test_schemathesis_api_and_csc(mode, runtime, world):
    app = create_app(runtime)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    known = _known_ids(world)
    # The account administrator reaches the most routes of its own organization.
    headers = auth(world.a.tokens["account_admin"])
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) > 50, len(operations)
    failures: list[str] = []
    calls: dict[str, int] = {}
    counter = [0]
    def fuzz(op):
        @FUZZ
        @given(case=op.as_strategy(generation_mode=mode), data=st.data())
        def run(case, data) -> None:
            if case.path_parameters and data.draw(st.booleans()):
                for name in list(case.path_parameters):
                    if name in known:
                        case.path_parameters[name] = data.draw(st.sampled_from(known[name]))
            response = case.call(headers=headers)
            counter[0] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error,
                                                         response_schema_conformance])
                _json_answer_is_json(case, response)
            except Exception as e:
                failures.append(f"{op.label}: {type(e).__name__}: {str(e)[:800]}")
                raise

        return run

    for op in operations:
        run = fuzz(op)
        before = len(failures)
        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, op.label  # nothing to break in it
        except Exception as e:
            if len(failures) == before:  # not a check failure: generation or transport
                failures.append(f"{op.label}: {type(e).__name__}: {str(e)[:800]}")
            if len(failures) >= 5:
                break
        calls[op.label] = counter[0] - sum(calls.values())
    assert not failures, "\n\n".join(failures[:5])
    # Every operation really got requests.
    if mode is GenerationMode.POSITIVE:
        assert min(calls.values()) >= 1, [k for k, v in calls.items() if not v]


# -- structure-aware CSC payloads ----------------------------------------------------

_B64 = st.one_of(
    st.binary(min_size=0, max_size=70).map(lambda b: base64.b64encode(b).decode()),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=-_ \x00", max_size=90))
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=10)


def _csc_body(seal_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    field = {
        "credentialID": st.sampled_from(seal_ids) | st.text(max_size=70) | _JSONISH,
        "numSignatures": st.integers(-3, 120) | _JSONISH,
        "hash": st.lists(_B64, max_size=4) | _B64 | _JSONISH,
        "hashes": st.lists(_B64, max_size=4) | _JSONISH,
        "hashAlgo": st.sampled_from(["2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.3",
                                     "1.3.14.3.2.26", "sha256", "SHA-384", "x"]) | _JSONISH,
        "hashAlgorithmOID": st.sampled_from(["2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.5"]),
        "signAlgo": st.sampled_from(["1.2.840.10045.4.3.2", "1.2.840.113549.1.1.11",
                                     "1.2.840.113549.1.1.10", "1.2.840.10045.2.1", "0.0"])
        | _JSONISH,
        "signAlgoParams": _B64 | _JSONISH,
        "SAD": st.sampled_from(["ska_" + "A" * 43, "ska_", ""]) | st.text(max_size=120),
        "PIN": st.text(alphabet="0123456789x", max_size=6) | _JSONISH,
        "authData": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["PIN", "OTP", 1]),
                                                    "value": st.text(max_size=6) | _JSONISH}),
                             max_size=3) | _JSONISH,
        "certificates": st.sampled_from(["none", "single", "chain", "all"]) | _JSONISH,
        "credentialInfo": _JSONISH, "onlyValid": _JSONISH, "maxResults": _JSONISH,
        "operationMode": st.sampled_from(["S", "A"]) | _JSONISH,
        "nonce": st.text(alphabet="0123456789abcdefxX", max_size=140) | _JSONISH,
        "userID": _JSONISH, "clientData": _JSONISH, "lang": _JSONISH,
    }
    return st.fixed_dictionaries({}, optional=field)


CSC_METHODS = ["info", "credentials/list", "credentials/info", "credentials/authorize",
               "credentials/extendTransaction", "signatures/signHash", "signatures/timestamp"]


def test_csc_structured_payloads(runtime, world):
    a = world.a
    token = a.tokens["employee"]
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        assert client.post("/api/v1/me/approval-password", headers=auth(token),
                           json={"approval_password": "1234"}).status_code == 201
        seal_ids = [a.seals["contract"], a.seals["official"], world.b.seals["contract"]]

        @settings(max_examples=CSC_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(version=st.sampled_from(["v1", "v2"]), method=st.sampled_from(CSC_METHODS),
               body=_csc_body(seal_ids))
        def run(version, method, body):
            r = client.post(f"/csc/{version}/{method}", headers=auth(token), json=body)
            assert r.status_code < 500, f"{method} {body!r}: {r.status_code} {r.text[:300]}"
            out = r.json()
            if r.status_code >= 400:
                assert set(out) == {"error", "error_description"}, out
            elif method == "signatures/signHash":
                assert len(out["signatures"]) >= 1

        run()
