"""Accounts: sign-up, password sign-in, personal API tokens, and turning a
bearer token into an :class:`~sealkeeper.authz.Actor`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sealkeeper.accounts.models import ApiToken, OneTimePurpose, OneTimeToken, User, UserStatus
from sealkeeper.authz import Actor
from sealkeeper.clock import Clock
from sealkeeper.crypto.secrets import (
    ONE_TIME_PREFIX,
    PasswordHashing,
    new_token,
    token_hash,
)
from sealkeeper.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from sealkeeper.orgs.models import Organization, OrgStatus
from sealkeeper.validation import normalize_email, require_password, require_text

MAX_TOKENS_PER_USER = 50
_DUMMY_HASH_INPUT = "not-a-real-password-000"


class AccountService:
    def __init__(self, session: Session, clock: Clock, passwords: PasswordHashing) -> None:
        self.s = session
        self.clock = clock
        self.passwords = passwords

    # -- users -------------------------------------------------------------

    def signup(self, email: str, password: str, display_name: str,
               *, is_operator: bool = False) -> User:
        email = normalize_email(email)
        require_password(password)
        name = require_text(display_name, "display_name", max_len=200)
        if self.find_by_email(email) is not None:
            raise Conflict("an account with this email already exists", field="email")
        user = User(
            email=email, display_name=name, password_hash=self.passwords.hash(password),
            is_operator=is_operator, status=UserStatus.ACTIVE, created_at=self.clock(),
            validated_at=self.clock(),
        )
        self.s.add(user)
        self.s.flush()
        return user

    def find_by_email(self, email: str) -> User | None:
        return self.s.scalar(select(User).where(User.email == email.lower()))

    def authenticate_password(self, email: str, password: str) -> User:
        """Check an email and password; one generic error for every failure."""
        try:
            email = normalize_email(email)
        except InvalidInput:
            email = ""
        user = self.find_by_email(email) if email else None
        if user is None or user.password_hash is None or user.status != UserStatus.ACTIVE:
            # Spend the same time as a real check so that timing does not
            # reveal which accounts exist.
            self.passwords.verify(self.passwords.hash(_DUMMY_HASH_INPUT), password)
            raise Unauthenticated("wrong email or password")
        if not self.passwords.verify(user.password_hash, password):
            raise Unauthenticated("wrong email or password")
        user.last_login_at = self.clock()
        return user

    def set_password(self, user: User, password: str) -> None:
        require_password(password)
        user.password_hash = self.passwords.hash(password)

    # -- one-time tokens (mailed links) -----------------------------------

    def issue_one_time(self, user: User, purpose: OneTimePurpose,
                       ttl: timedelta = timedelta(days=7)) -> str:
        token = new_token(ONE_TIME_PREFIX)
        now = self.clock()
        self.s.add(OneTimeToken(user_id=user.id, purpose=purpose, token_hash=token_hash(token),
                                created_at=now, expires_at=now + ttl))
        self.s.flush()
        return token

    def consume_one_time(self, token: str, purpose: OneTimePurpose) -> User:
        """Use a one-time token exactly once (atomically), returning its user."""
        now = self.clock()
        row = self.s.execute(
            update(OneTimeToken)
            .where(OneTimeToken.token_hash == token_hash(token),
                   OneTimeToken.purpose == purpose,
                   OneTimeToken.used_at.is_(None),
                   OneTimeToken.expires_at > now)
            .values(used_at=now)
            .returning(OneTimeToken.user_id)
        ).first()
        if row is None:
            raise InvalidInput("this link is invalid, expired or already used", field="token")
        user = self.s.get(User, row[0])
        if user is None or user.status == UserStatus.DELETED:
            raise InvalidInput("this link is invalid, expired or already used", field="token")
        return user

    # -- API tokens --------------------------------------------------------

    def create_token(self, actor: Actor, name: str,
                     seal_ids: list[str] | None = None) -> tuple[ApiToken, str]:
        """Create a personal API token; the plaintext is returned only here."""
        name = require_text(name, "name", max_len=100)
        active = self.list_tokens(actor)
        if len(active) >= MAX_TOKENS_PER_USER:
            raise Conflict(f"at most {MAX_TOKENS_PER_USER} active tokens per user")
        if seal_ids is not None:
            if not seal_ids:
                raise InvalidInput("seal_ids, when given, must name at least one seal",
                                   field="seal_ids")
            seal_ids = sorted(set(seal_ids))
        plaintext = new_token()
        tok = ApiToken(user_id=actor.user_id, name=name, token_hash=token_hash(plaintext),
                       prefix=plaintext[:10], seal_ids=seal_ids, created_at=self.clock())
        self.s.add(tok)
        self.s.flush()
        return tok, plaintext

    def list_tokens(self, actor: Actor) -> list[ApiToken]:
        return list(self.s.scalars(
            select(ApiToken).where(ApiToken.user_id == actor.user_id,
                                   ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.created_at)))

    def revoke_token(self, actor: Actor, token_id: str) -> ApiToken:
        tok = self.s.get(ApiToken, token_id)
        if tok is None or tok.user_id != actor.user_id:
            raise NotFound("token not found")
        if tok.revoked_at is None:
            tok.revoked_at = self.clock()
        return tok

    def revoke_all_tokens(self, user_id: str) -> int:
        result = self.s.execute(
            update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=self.clock()))
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- authentication ----------------------------------------------------

    def actor_from_token(self, plaintext: str) -> Actor:
        # The token, its user and their organization in one query: every API
        # request starts here.
        row = self.s.execute(
            select(ApiToken, User, Organization)
            .join(User, User.id == ApiToken.user_id)
            .outerjoin(Organization, Organization.id == User.organization_id)
            .where(ApiToken.token_hash == token_hash(plaintext))).first()
        if row is None:
            raise Unauthenticated("invalid or revoked API token")
        tok, user, org = row[0], row[1], row[2]
        if tok.revoked_at is not None or user.status != UserStatus.ACTIVE:
            raise Unauthenticated("invalid or revoked API token")
        seal_ids = frozenset(tok.seal_ids) if tok.seal_ids is not None else None
        return replace(self._actor(user, org), token_seal_ids=seal_ids, token_id=tok.id)

    def refused_token_owner(self, plaintext: str) -> User | None:
        """The user of a revoked token, or of a token whose account is no longer
        active (deleted, disabled): whom a refused token speaks for. None for a
        token that never existed."""
        tok = self.s.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(plaintext)))
        return self.s.get(User, tok.user_id) if tok is not None else None

    def actor_for(self, user: User) -> Actor:
        org = self.s.get(Organization, user.organization_id) if user.organization_id else None
        return self._actor(user, org)

    @staticmethod
    def _actor(user: User, org: Organization | None) -> Actor:
        validated = org is not None and org.status == OrgStatus.VALIDATED
        return Actor(
            user_id=user.id,
            email=user.email,
            organization_id=user.organization_id,
            is_operator=user.is_operator,
            is_account_admin=org is not None and org.account_admin_id == user.id,
            is_eseal_admin=validated and org is not None and org.eseal_admin_id == user.id,
            is_employee=validated and user.status == UserStatus.ACTIVE
            and user.validated_at is not None,
        )
