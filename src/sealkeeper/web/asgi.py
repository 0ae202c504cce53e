"""ASGI entry point for uvicorn workers: builds the app from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from sealkeeper.config import load_settings
from sealkeeper.runtime import Runtime
from sealkeeper.web.app import create_app


def app_from_env() -> FastAPI:
    return create_app(Runtime.build(load_settings()))
