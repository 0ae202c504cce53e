"""Reading CSC request bodies: the v1 and v2 name of every parameter, strict
types, and refusals worded as in the CSC specification.

Both versions of a field are accepted at both paths (pyHanko, a v1.0.4.0
client, sends ``hash``/``hashAlgo`` even to ``/csc/v2/``). The name a client
actually used is remembered, so a refusal names that parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from fastapi import Request

from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.errors import InvalidInput
from sealkeeper.web.csc.errors import CscError, invalid

_CREDENTIAL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SIZES = {alg.size: alg for alg in DigestAlgorithm}
MAX_STRING = 10_000
MAX_HASHES = 10_000


def _type_name(value: object) -> str:
    return "array" if isinstance(value, list) else type(value).__name__


class Params:
    """A CSC request body (a JSON object)."""

    def __init__(self, request: Request, body: Any, version: str) -> None:
        self.version = version
        if isinstance(body, bytes | bytearray):
            try:
                body = json.loads(body) if body.strip() else None
            except (ValueError, UnicodeDecodeError):
                raise invalid("The request body is not valid JSON") from None
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object")
        self.body: dict[str, Any] = body
        self.names: dict[str, str] = {}
        request.state.csc_names = self.names

    # -- raw access ------------------------------------------------------------

    def _pick(self, *names: str) -> tuple[str, Any]:
        """The first of ``names`` (v1 name, v2 name) present and not null; remembers
        which was used. Absent: the name of this path's version, for messages."""
        for name in names:
            if self.body.get(name) is not None:
                self.names[names[0]] = name
                return name, self.body[name]
        return names[-1] if self.version == "v2" else names[0], None

    def has(self, *names: str) -> bool:
        return any(self.body.get(n) is not None for n in names)

    # -- typed getters ---------------------------------------------------------

    def string(self, *names: str, required: bool = False, max_length: int = MAX_STRING,
               default: str | None = None) -> str | None:
        name, value = self._pick(*names)
        if value is None:
            if required:
                raise invalid(f"Missing (or invalid type) string parameter {name}")
            return default
        if not isinstance(value, str):
            raise invalid(f"Missing (or invalid type) string parameter {name}")
        if len(value) > max_length or "\x00" in value:
            raise invalid(f"Invalid parameter {name}")
        return value

    def required_string(self, *names: str, max_length: int = MAX_STRING) -> str:
        value = self.string(*names, required=True, max_length=max_length)
        assert value is not None
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.body.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise invalid(f"Invalid parameter {name}: expected true or false")
        return value

    def integer(self, name: str) -> int:
        value = self.body.get(name)
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"Missing (or invalid type) integer parameter {name}")
        return value

    def credential_id(self) -> str:
        value = self.required_string("credentialID", max_length=200)
        if not _CREDENTIAL_ID.match(value):
            raise invalid("Invalid parameter credentialID")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.string(name, default=default)
        assert value is not None
        if value not in allowed:
            raise invalid(f"Invalid parameter {name}: use one of {', '.join(allowed)}")
        return value

    def hash_algorithm(self, *, required: bool = False) -> DigestAlgorithm | None:
        """``hashAlgo`` (v1) or ``hashAlgorithmOID`` (v2), as an OID (names accepted)."""
        value = self.string("hashAlgo", "hashAlgorithmOID", required=required,
                            max_length=100)
        if value is None:
            return None
        try:
            return DigestAlgorithm.parse(value)
        except InvalidInput as e:
            raise invalid(f"Invalid parameter {self.names.get('hashAlgo', 'hashAlgo')}: "
                          f"{e.message}") from None

    def hashes(self, algorithm: DigestAlgorithm | None, *, required: bool = True,
               single: bool = False) -> list[Hashed] | None:
        """``hash`` (v1) or ``hashes`` (v2): base64 digests. Without an explicit
        algorithm it follows from the length (32, 48, 64 bytes: SHA-256/384/512);
        all hashes of one request use one algorithm. ``single``: one string
        (signatures/timestamp), a one-element list is accepted too."""
        name, value = self._pick("hash", "hashes")
        if value is None:
            if required:
                kind = "string" if single else "array"
                raise invalid(f"Missing (or invalid type) {kind} parameter {name}")
            return None
        if single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or (single and len(value) != 1):
            kind = "string" if single else "array"
            raise invalid(f"Missing (or invalid type) {kind} parameter {name}")
        if not value:
            raise invalid(f"Empty {name} array")
        if len(value) > MAX_HASHES:
            raise invalid(f"Invalid parameter {name}: too many hashes")
        out: list[Hashed] = []
        for i, item in enumerate(value):
            where = name if single else f"{name}[{i}]"
            if not isinstance(item, str) or len(item) > 200:
                raise invalid(f"Invalid Base64 {name} string parameter ({where})")
            try:
                raw = base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError):
                raise invalid(f"Invalid Base64 {name} string parameter ({where})") from None
            alg = algorithm or (out[0].algorithm if out else _SIZES.get(len(raw)))
            if alg is None or len(raw) != alg.size:
                expected = f"{alg.size} bytes for {alg.value}" if alg \
                    else "32, 48 or 64 bytes (SHA-256, SHA-384, SHA-512)"
                raise invalid(f"Invalid digest value length: {where} has {len(raw)} bytes, "
                              f"expected {expected}")
            out.append(Hashed(alg, raw))
        return out

    def pin(self) -> str:
        """``PIN`` (v1) or ``authData: [{"id": "PIN", "value": ...}]`` (v2)."""
        if self.body.get("PIN") is not None:
            return self.required_string("PIN", max_length=100)
        auth = self.body.get("authData")
        if auth is None:
            raise invalid("Missing (or invalid type) string parameter PIN "
                          "(or authData with an object of id \"PIN\")")
        self.names["PIN"] = "authData PIN"
        if not isinstance(auth, list) or len(auth) > 10:
            raise invalid("Invalid parameter authData: expected an array of "
                          "authentication objects")
        for obj in auth:
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                raise invalid("Invalid parameter authData: every object needs a string id")
            if obj["id"] == "PIN":
                value = obj.get("value")
                if not isinstance(value, str) or len(value) > 100 or "\x00" in value:
                    raise invalid("Invalid parameter authData: the PIN value must be a string")
                return value
        raise invalid("Invalid parameter authData: no authentication object with id \"PIN\"")


def check_no_user_id(params: Params) -> None:
    if params.body.get("userID") is not None:
        raise CscError("userID parameter MUST be null")
