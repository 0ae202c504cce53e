"""Process-wide collaborators built once from the settings: the engine and
session factory, the clock, the password hasher and the mailer."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sealkeeper.clock import Clock, utcnow
from sealkeeper.config import Settings
from sealkeeper.crypto.keystore.base import KeyStore
from sealkeeper.crypto.keystore.factory import build_keystore
from sealkeeper.crypto.secrets import Argon2Params, PasswordHashing
from sealkeeper.db import make_engine, make_session_factory
from sealkeeper.mail import Mailer
from sealkeeper.pki.service import PkiCache
from sealkeeper.signing.templates import TemplateCache


def build_keystore_from(settings: Settings) -> KeyStore:
    return build_keystore(
        settings.keystore, data_dir=settings.data_dir,
        master_key_env=settings.master_key.get_secret_value() if settings.master_key else None,
        master_key_file=settings.master_key_file, pkcs11_module=settings.pkcs11_module,
        pkcs11_token_label=settings.pkcs11_token_label,
        pkcs11_pin=settings.pkcs11_pin.get_secret_value() if settings.pkcs11_pin else None,
        create_master_key=settings.mode == "development")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    passwords: PasswordHashing
    mailer: Mailer
    keystore: KeyStore
    pki_cache: PkiCache
    templates: TemplateCache
    clock: Clock = field(default=utcnow)

    @classmethod
    def build(cls, settings: Settings, *, engine: Engine | None = None,
              clock: Clock = utcnow, keystore: KeyStore | None = None) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.effective_database_url
        # Enough connections for the worker's thread pool (40 threads by default).
        pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
        engine = engine if engine is not None else make_engine(url, **pool)
        return cls(settings=settings, engine=engine,
                   session_factory=make_session_factory(engine),
                   passwords=PasswordHashing(Argon2Params(
                       time_cost=settings.argon2_time_cost,
                       memory_kib=settings.argon2_memory_kib,
                       parallelism=settings.argon2_parallelism)),
                   mailer=Mailer(settings), keystore=keystore or build_keystore_from(settings),
                   pki_cache=PkiCache(), templates=TemplateCache(), clock=clock)

    @property
    def db_concurrency(self) -> int:
        """How many requests may hold a database connection at once."""
        return self.settings.db_pool_size + self.settings.db_max_overflow

    def dispose(self) -> None:
        self.engine.dispose()
