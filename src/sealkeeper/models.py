"""Imports every table so that the metadata is complete (Alembic, tests)."""

from sealkeeper.accounts.models import ApiToken, OneTimeToken, User
from sealkeeper.audit.models import LogCheckpoint, LogEntry, LogHead, LogNode, SecurityEvent
from sealkeeper.console.models import (
    ConsoleSession,
    DomainMailCode,
    SignInThrottle,
    TotpCredential,
)
from sealkeeper.encryption.models import EncryptionGrant, EncryptionKey
from sealkeeper.orgs.models import AuthorizationLetter, Domain, Organization
from sealkeeper.pki.models import CaKey, CrlState, SealCertificate
from sealkeeper.quota.models import QuotaOrder
from sealkeeper.seals.models import Grant, Seal
from sealkeeper.signing.models import Approval, ApprovalCredential

__all__ = [
    "ApiToken",
    "Approval",
    "ApprovalCredential",
    "AuthorizationLetter",
    "CaKey",
    "ConsoleSession",
    "CrlState",
    "Domain",
    "DomainMailCode",
    "EncryptionGrant",
    "EncryptionKey",
    "Grant",
    "LogCheckpoint",
    "LogEntry",
    "LogHead",
    "LogNode",
    "OneTimeToken",
    "Organization",
    "QuotaOrder",
    "Seal",
    "SealCertificate",
    "SecurityEvent",
    "SignInThrottle",
    "TotpCredential",
    "User",
]
