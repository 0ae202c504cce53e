"""``create_app``: the ASGI application with every transport mounted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI

from sealkeeper import __version__
from sealkeeper.runtime import Runtime
from sealkeeper.web import console as web_console
from sealkeeper.web import csc, pki
from sealkeeper.web.api import accounts, log, orgs, quota, seals, signing, verify
from sealkeeper.web.api import crypt as crypt_api
from sealkeeper.web.errors import install_error_handlers
from sealkeeper.web.limits import BodyLimit

API_PREFIX = "/api/v1"


def create_app(runtime: Runtime) -> FastAPI:
    slots = runtime.db_concurrency

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Every request holding a database slot can get a worker thread.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, slots + 8)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="sealkeeper API", version=__version__,
        description="E-seal management and cloud hash signing. Authenticate with "
                    "'Authorization: Bearer <personal API token>'.",
        openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.db_slots = asyncio.Semaphore(slots)
    api = APIRouter(prefix=API_PREFIX)
    for module in (accounts, orgs, seals, quota, signing, log, verify):
        api.include_router(module.router)
    api.include_router(crypt_api.router)
    app.include_router(api)
    app.include_router(pki.router)
    app.include_router(csc.build_router())
    app.include_router(web_console.router)
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.add_middleware(BodyLimit, max_body=runtime.settings.max_body_bytes,
                       max_upload=runtime.settings.max_upload_bytes)
    return app
