"""Shared fixtures: a real database on SQLite *and* PostgreSQL, the app, and
a standard world of two organizations.

PostgreSQL comes from ``SEALKEEPER_TEST_PG_URL`` (a server URL; each pytest
worker gets its own database). Without it the PostgreSQL half is skipped,
unless ``SEALKEEPER_TEST_REQUIRE_PG=1`` (as in CI), where it is an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from sealkeeper.config import Settings
from sealkeeper.db import Base, make_engine
from sealkeeper.migrations import upgrade
from sealkeeper.runtime import Runtime
from sealkeeper.web.app import create_app

BACKENDS = ["sqlite", "postgresql"]
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _pg_engine() -> Engine:
    base = os.environ.get("SEALKEEPER_TEST_PG_URL")
    if not base:
        if os.environ.get("SEALKEEPER_TEST_REQUIRE_PG") == "1":
            pytest.fail("SEALKEEPER_TEST_PG_URL is not set but PostgreSQL is required")
        pytest.skip("PostgreSQL not configured (set SEALKEEPER_TEST_PG_URL)")
    # One database per test process: parallel workers (and parallel runs on one
    # server) never share one.
    name = f"sktest_{_worker()}_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = base.rsplit("/", 1)[0] + "/" + name
    return make_engine(url, pool_size=20, max_overflow=40)


class Databases:
    """One migrated engine per backend for the whole session."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.engines: dict[str, Engine] = {}
        self.dirty: set[str] = set()

    def get(self, backend: str) -> Engine:
        if backend not in self.engines:
            if backend == "sqlite":
                engine = make_engine(f"sqlite:///{self.tmp / 'test.db'}")
            else:
                engine = _pg_engine()
            upgrade(engine)
            self.engines[backend] = engine
        self.dirty.add(backend)
        return self.engines[backend]

    def clean(self, backend: str) -> None:
        self.dirty.discard(backend)
        engine = self.engines[backend]
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        with engine.begin() as c:
            if backend == "postgresql":
                c.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
            else:
                c.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
                for t in tables:
                    c.exec_driver_sql(f'DELETE FROM "{t}"')

    def dispose(self) -> None:
        for backend, e in self.engines.items():
            name = e.url.database
            e.dispose()
            if backend == "postgresql" and name:
                admin = create_engine(os.environ["SEALKEEPER_TEST_PG_URL"],
                                      isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.dispose()


@pytest.fixture(autouse=True)
def _clean_databases(databases: Databases) -> Iterator[None]:
    """Whatever a test wrote, also when it failed, is gone before the next one."""
    yield
    for backend in sorted(databases.dirty):
        databases.clean(backend)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Engine]:
    """A real, migrated, empty database; every test using it runs on both backends."""
    backend = request.param
    eng = databases.get(backend)
    yield eng
    databases.clean(backend)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", public_base_url="http://testserver",
                    **FAST_ARGON2)  # type: ignore[arg-type]


@pytest.fixture
def runtime(settings: Settings, engine: Engine) -> Runtime:
    return Runtime.build(settings, engine=engine)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def world(runtime: Runtime) -> World:
    from factories import build_world

    return build_world(runtime)


from factories import World  # noqa: E402


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    from smtpbox import Mailbox as _Mailbox

    box = _Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def smtp_settings(tmp_path: Path, mailbox) -> Settings:
    return Settings(data_dir=tmp_path / "data", public_base_url="http://testserver",
                    smtp_host="127.0.0.1", smtp_port=mailbox.port,
                    **FAST_ARGON2)  # type: ignore[arg-type]


@pytest.fixture
def smtp_client(smtp_settings: Settings, engine: Engine) -> Iterator[TestClient]:
    rt = Runtime.build(smtp_settings, engine=engine)
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c


from smtpbox import Mailbox  # noqa: E402
