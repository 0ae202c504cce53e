"""Helpers of the encryption tests: export a private key from a software
key_ref (as an operator holding the master key could), run openssl, read the
security and usage logs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from sealkeeper.audit.models import LogEntry, SecurityEvent
from sealkeeper.crypto.keystore.software import load_master_key
from sealkeeper.encryption.models import EncryptionKey
from sealkeeper.runtime import Runtime

APPROVAL = "1234"


def export_software_key(master_key: bytes, key_ref: bytes) -> PrivateKeyTypes:
    """Open a software key_ref by its documented layout: magic (4) | version |
    len(algorithm) | algorithm | nonce (12) | AES-256-GCM(PKCS#8), header as AAD,
    key = HKDF-SHA256(master key, info "sealkeeper key wrap v1")."""
    end = 6 + key_ref[5]
    header, nonce, sealed = key_ref[:end], key_ref[end:end + 12], key_ref[end + 12:]
    wrap_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"sealkeeper key wrap v1").derive(master_key)
    der = AESGCM(wrap_key).decrypt(nonce, sealed, header)
    return serialization.load_der_private_key(der, password=None)


def key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def runtime_master_key(rt: Runtime) -> bytes:
    return load_master_key(rt.settings.data_dir, env_value=None, file=None, create=False)


def current_key_row(rt: Runtime, user_id: str) -> EncryptionKey:
    with rt.session_factory() as s:
        row = s.scalar(select(EncryptionKey).where(EncryptionKey.user_id == user_id,
                                                   EncryptionKey.is_current.is_(True)))
        assert row is not None
        s.expunge(row)
        return row


def export_user_key(rt: Runtime, user_id: str, directory: Path) -> tuple[Path, Path]:
    """recipient.key and recipient.pem of the user's current encryption key."""
    row = current_key_row(rt, user_id)
    key = export_software_key(runtime_master_key(rt), row.key_ref)
    key_path, cert_path = directory / "recipient.key", directory / "recipient.pem"
    key_path.write_bytes(key_pem(key))
    from cryptography import x509

    cert_path.write_bytes(x509.load_der_x509_certificate(row.certificate_der)
                          .public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def openssl(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *map(str, args)], input=stdin, capture_output=True,
                          timeout=60)


def security_events(rt: Runtime, **where: str) -> list[SecurityEvent]:
    with rt.session_factory() as s:
        q = select(SecurityEvent).order_by(SecurityEvent.created_at)
        for name, value in where.items():
            q = q.where(getattr(SecurityEvent, name) == value)
        rows = list(s.scalars(q))
        s.expunge_all()
        return rows


def decryption_entries(rt: Runtime, org_id: str) -> list[LogEntry]:
    with rt.session_factory() as s:
        rows = list(s.scalars(select(LogEntry).where(
            LogEntry.organization_id == org_id, LogEntry.kind == "decryption")
            .order_by(LogEntry.seq)))
        s.expunge_all()
        return rows
