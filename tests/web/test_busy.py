"""Overload is a 503 with Retry-After, never a 500: a SQLite database locked by
another writer longer than the busy timeout."""

from __future__ import annotations

import sqlite3

from fastapi.testclient import TestClient

from factories import auth, build_world
from sealkeeper.config import Settings
from sealkeeper.db import make_engine
from sealkeeper.migrations import upgrade
from sealkeeper.runtime import Runtime
from sealkeeper.web.app import create_app


def test_locked_sqlite_answers_503(tmp_path):
    db = tmp_path / "busy.db"
    engine = make_engine(f"sqlite:///{db}", sqlite_busy_ms=200)
    upgrade(engine)
    rt = Runtime.build(Settings(data_dir=tmp_path / "data", public_base_url="http://testserver",
                                argon2_time_cost=1, argon2_memory_kib=64,
                                argon2_parallelism=1), engine=engine)
    world = build_world(rt)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            r = client.get("/api/v1/me", headers=auth(world.a.tokens["employee"]))
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"] == "busy"
    finally:
        other.execute("ROLLBACK")
        other.close()
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        assert client.get("/api/v1/me",
                          headers=auth(world.a.tokens["employee"])).status_code == 200
    engine.dispose()


def test_more_requests_than_threads_and_connections_all_succeed(tmp_path):
    """A worker with 2 database connections and 40 threads, hit by 120 requests at
    once: every one is answered 200. (Requests wait for a database slot on the
    event loop; before, requests holding a connection could wait for a thread
    while every thread waited for a connection, until the 30 s pool timeout.)"""
    import json
    import threading

    import httpx

    from server import Server

    data = tmp_path / "data"
    env = {"SEALKEEPER_DB_POOL_SIZE": "2", "SEALKEEPER_DB_MAX_OVERFLOW": "0"}
    with Server(data, args=("--demo",), env=env) as srv:
        token = json.loads((data / "demo.json").read_text())["users"][0]["token"]
        statuses: list[int] = []
        barrier = threading.Barrier(120)

        def one() -> None:
            with httpx.Client(timeout=60) as c:
                barrier.wait()
                statuses.append(c.get(srv.url + "/api/v1/me", headers=auth(token)).status_code)

        threads = [threading.Thread(target=one) for _ in range(120)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 120, sorted(set(statuses))
        assert "database busy" not in srv.log.read_text()
