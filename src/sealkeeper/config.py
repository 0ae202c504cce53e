"""Settings, read from the environment (prefix ``SEALKEEPER_``) by a factory.

Nothing here runs at import time: call :func:`load_settings`. Development mode
(the default) allows the embedded, insecure-by-design defaults and says so
loudly; production mode refuses them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from sealkeeper.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEALKEEPER_", extra="ignore")

    mode: Literal["development", "production"] = "development"
    data_dir: Path = Path("./sealkeeper-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data directory"
    )
    public_base_url: str = DEFAULT_BASE_URL
    db_pool_size: int = Field(default=20, ge=1, le=500,
                              description="connections per process (PostgreSQL)")
    db_max_overflow: int = Field(default=20, ge=0, le=500)

    keystore: Literal["software", "pkcs11"] = "software"
    master_key: SecretStr | None = Field(default=None, description="base64 of 32 bytes")
    master_key_file: Path | None = None
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "sealkeeper"
    pkcs11_pin: SecretStr | None = None
    seal_key_algorithm: Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072"] = "ec-p256"

    ca_key_algorithm: Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072"] = "ec-p256"
    ca_organization: str = "sealkeeper"
    ca_country: str | None = None
    ca_root_name: str = "sealkeeper Root CA"
    ca_issuing_name: str = "sealkeeper Issuing CA"
    ca_root_years: int = Field(default=20, ge=1, le=50)
    ca_issuing_years: int = Field(default=10, ge=1, le=50)
    seal_certificate_years: int = Field(default=3, ge=1, le=10)
    crl_validity_hours: int = Field(default=24, ge=1)
    ocsp_validity_seconds: int = Field(default=3600, ge=0)
    # A UUID-derived OID (2.25.x needs no registration); set your own policy.
    tsa_policy_oid: str = "2.25.197620417950215632489632981212843712523"
    tsa_accuracy_seconds: int = Field(default=1, ge=0)

    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    max_body_bytes: int = 1 << 20
    max_upload_bytes: int = 10 << 20
    sign_batch_limit: int = 100
    approval_ttl_seconds: int = 300

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "sealkeeper@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None

    # The web console.
    console_session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_session_max_hours: int = Field(default=12, ge=1, le=24 * 30)
    # None: Secure cookies exactly when public_base_url is https.
    console_secure_cookies: bool | None = None
    signin_max_failures: int = Field(default=5, ge=1, description="per account and window")
    signin_max_failures_per_address: int = Field(default=50, ge=1)
    signin_window_minutes: int = Field(default=15, ge=1)
    signin_lockout_minutes: int = Field(default=15, ge=1)
    # Domain validation by DNS TXT record: resolver addresses (comma-separated;
    # default: the system's resolvers) and port.
    dns_resolver: str | None = None
    dns_resolver_port: int = Field(default=53, ge=1, le=65535)
    dns_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    domain_code_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sealkeeper.db').resolve()}"

    @property
    def base_url(self) -> str:
        return self.public_base_url.rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        if self.console_secure_cookies is not None:
            return self.console_secure_cookies
        return urlparse(self.public_base_url).scheme == "https"

    def insecure_defaults(self) -> list[str]:
        """What in these settings is fine for a laptop and wrong for production."""
        problems = []
        parsed = urlparse(self.public_base_url)
        if parsed.scheme != "https":
            problems.append("SEALKEEPER_PUBLIC_BASE_URL is not https")
        if self.keystore == "software" and self.master_key is None and self.master_key_file is None:
            problems.append(
                "the master key would be generated into the data directory "
                "(set SEALKEEPER_MASTER_KEY or SEALKEEPER_MASTER_KEY_FILE, or use an HSM)"
            )
        if self.keystore == "pkcs11" and self.pkcs11_pin is None:
            problems.append("SEALKEEPER_PKCS11_PIN is not set")
        if self.smtp_host is None:
            problems.append("SEALKEEPER_SMTP_HOST is not set (mail is written to files)")
        return problems


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment plus explicit overrides."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        raise ConfigurationError(f"invalid settings: {e}") from e
    problems = settings.insecure_defaults()
    if settings.mode == "production" and problems:
        raise ConfigurationError(
            "refusing insecure defaults in production mode: " + "; ".join(problems)
        )
    for problem in problems:
        log.warning("DEVELOPMENT MODE: %s", problem)
    return settings
