"""Build the configured key store from plain settings values.

Scope: choose ``"software"`` (default; master key from env / file / data
directory) or ``"pkcs11"`` (module, token label, PIN) and check that the
values a kind needs are present. Nothing here runs at import time.
"""

from __future__ import annotations

from pathlib import Path

from sealkeeper.crypto.keystore.base import KeyStore
from sealkeeper.errors import ConfigurationError

__all__ = ["KEYSTORE_KINDS", "build_keystore"]

KEYSTORE_KINDS = ("software", "pkcs11")


def build_keystore(
    kind: str,
    *,
    data_dir: Path,
    master_key_env: str | None = None,
    master_key_file: Path | None = None,
    pkcs11_module: str | Path | None = None,
    pkcs11_token_label: str | None = None,
    pkcs11_pin: str | None = None,
    create_master_key: bool = True,
) -> KeyStore:
    """Return the key store of ``kind``.

    ``software``: the master key comes from ``master_key_env`` (base64 content),
    else ``master_key_file``, else ``<data_dir>/master.key`` (generated when
    missing if ``create_master_key``). ``pkcs11``: all three ``pkcs11_*`` values
    are required; the token is contacted lazily on first use.
    Raises :class:`ConfigurationError`.
    """
    normalized = (kind or "").strip().lower()
    if normalized == "software":
        from sealkeeper.crypto.keystore.software import SoftwareKeyStore, load_master_key

        master_key = load_master_key(Path(data_dir), env_value=master_key_env,
                                     file=Path(master_key_file) if master_key_file else None,
                                     create=create_master_key)
        return SoftwareKeyStore(master_key)
    if normalized == "pkcs11":
        missing = [name for name, value in (("pkcs11_module", pkcs11_module),
                                            ("pkcs11_token_label", pkcs11_token_label),
                                            ("pkcs11_pin", pkcs11_pin)) if not value]
        if missing:
            raise ConfigurationError(f"the pkcs11 key store needs {', '.join(missing)}",
                                     field=missing[0])
        assert pkcs11_module and pkcs11_token_label and pkcs11_pin  # narrowed above
        from sealkeeper.crypto.keystore.pkcs11 import Pkcs11KeyStore

        return Pkcs11KeyStore(pkcs11_module, pkcs11_token_label, pkcs11_pin)
    raise ConfigurationError(
        f"unknown key store kind {kind!r}; expected one of {', '.join(KEYSTORE_KINDS)}",
        field="keystore")
