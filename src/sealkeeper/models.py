"""Imports every table so that the metadata is complete (Alembic, tests)."""

from sealkeeper.accounts.models import ApiToken, OneTimeToken, User
from sealkeeper.audit.models import LogCheckpoint, LogEntry, LogHead, LogNode, SecurityEvent
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
    "CrlState",
    "Domain",
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
    "User",
]
