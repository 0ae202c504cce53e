"""Fixtures of the console tests: browsers (TestClients with their own cookies)
on one app, over the standard world of two organizations."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from sealkeeper.runtime import Runtime
from sealkeeper.web.app import create_app


@pytest.fixture
def browser(runtime: Runtime) -> Iterator[Callable[[], TestClient]]:
    """Each call: a new browser (cookie jar) on the same app."""
    app = create_app(runtime)
    clients: list[TestClient] = []

    def make() -> TestClient:
        c = TestClient(app, raise_server_exceptions=False)
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)
