"""Every fault test also checks its own log records for secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fault_helpers import assert_no_secrets


@pytest.fixture(autouse=True)
def _no_secret_in_log_records(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    for rec in caplog.get_records("call"):
        text = rec.getMessage()
        if rec.exc_info:
            text += "\n" + logging.Formatter().formatException(rec.exc_info)
        assert_no_secrets(text, f"log record of {rec.name}")
