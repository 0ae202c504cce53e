"""Fixtures of the verify tests: the local test PKI and its root as a PEM file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from verify_pki import LocalPki, serve_pki


@pytest.fixture(scope="module")
def pki() -> Iterator[LocalPki]:
    with serve_pki() as p:
        yield p


@pytest.fixture(scope="module")
def root_pem(pki: LocalPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("roots") / "root.pem"
    path.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    return path
