"""console: server-side sessions, sign-in throttling, TOTP credentials and
mailed domain-validation codes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 05:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sealkeeper.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('signin_throttle',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sealkeeper.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_signin_throttle'))
    )
    op.create_table('console_sessions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('csrf_secret', sa.String(length=64), nullable=False),
    sa.Column('stage', sa.Enum('totp', 'active', name='sessionstage', native_enum=False, length=16), nullable=False),
    sa.Column('totp_failures', sa.Integer(), nullable=False),
    sa.Column('created_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.Column('flash', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_console_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_console_sessions_token_hash'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('totp_credentials',
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.Column('created_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('enabled_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_counter', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_totp_credentials_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_totp_credentials'))
    )
    op.create_table('domain_mail_codes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('domain_id', sa.String(length=32), nullable=False),
    sa.Column('mailbox', sa.String(length=320), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', sealkeeper.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_domain_mail_codes_domain_id_domains')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domain_mail_codes'))
    )
    with op.batch_alter_table('domain_mail_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_domain_mail_codes_domain_id'), ['domain_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('domain_mail_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_domain_mail_codes_domain_id'))

    op.drop_table('domain_mail_codes')
    op.drop_table('totp_credentials')
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_user_id'))

    op.drop_table('console_sessions')
    op.drop_table('signin_throttle')
