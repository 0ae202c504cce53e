"""Process-wide collaborators built once from the settings: the engine and
session factory, the clock, the password hasher and the mailer."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sealkeeper.clock import Clock, utcnow
from sealkeeper.config import Settings
from sealkeeper.crypto.secrets import Argon2Params, PasswordHashing
from sealkeeper.db import make_engine, make_session_factory
from sealkeeper.mail import Mailer


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    passwords: PasswordHashing
    mailer: Mailer
    clock: Clock = field(default=utcnow)

    @classmethod
    def build(cls, settings: Settings, *, engine: Engine | None = None,
              clock: Clock = utcnow) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = engine if engine is not None else make_engine(
            settings.effective_database_url)
        return cls(settings=settings, engine=engine,
                   session_factory=make_session_factory(engine),
                   passwords=PasswordHashing(Argon2Params(
                       time_cost=settings.argon2_time_cost,
                       memory_kib=settings.argon2_memory_kib,
                       parallelism=settings.argon2_parallelism)),
                   mailer=Mailer(settings), clock=clock)

    def dispose(self) -> None:
        self.engine.dispose()
