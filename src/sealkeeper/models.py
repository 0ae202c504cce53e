"""Imports every table so that the metadata is complete (Alembic, tests)."""

from sealkeeper.accounts.models import ApiToken, OneTimeToken, User
from sealkeeper.orgs.models import AuthorizationLetter, Domain, Organization
from sealkeeper.pki.models import CaKey, CrlState, SealCertificate
from sealkeeper.quota.models import QuotaOrder
from sealkeeper.seals.models import Grant, Seal

__all__ = ["ApiToken", "AuthorizationLetter", "CaKey", "CrlState", "Domain", "Grant",
           "OneTimeToken", "Organization", "QuotaOrder", "Seal", "SealCertificate", "User"]
