"""The one error hierarchy of sealkeeper.

Every error a service raises derives from :class:`SealkeeperError`. Each class
carries a stable machine ``code`` (used on the wire) and a human ``message``
that never contains secrets. Transports map classes to status codes / exit
codes in one place each (``web/errors.py``, ``cli/_errors.py``).
"""

from __future__ import annotations


class SealkeeperError(Exception):
    """Base of every sealkeeper error."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ConfigurationError(SealkeeperError):
    code = "configuration_error"


class InvalidInput(SealkeeperError):
    """The request is malformed or violates a rule about its content."""

    code = "invalid_request"


class NotFound(SealkeeperError):
    """The object does not exist, or the caller may not know that it exists."""

    code = "not_found"


class Unauthenticated(SealkeeperError):
    code = "unauthenticated"


class PermissionDenied(SealkeeperError):
    code = "forbidden"


class Conflict(SealkeeperError):
    """The object is not in a state that allows the action."""

    code = "conflict"


class QuotaExhausted(SealkeeperError):
    code = "quota_exhausted"


class ApprovalRefused(SealkeeperError):
    """Wrong approval password, invalid / expired / used approval."""

    code = "approval_refused"


class SigningLocked(SealkeeperError):
    """Too many wrong approval passwords: signing is locked until reset."""

    code = "signing_locked"


class CryptoError(SealkeeperError):
    """A cryptographic operation failed (bad key material, bad signature...)."""

    code = "crypto_error"


class KeyStoreUnavailable(SealkeeperError):
    """The key store (e.g. the HSM) cannot be reached right now."""

    code = "keystore_unavailable"


class PayloadTooLarge(SealkeeperError):
    code = "payload_too_large"
