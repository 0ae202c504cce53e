"""encryption: encryption keys with their certificates, grants for organization keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 05:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sealkeeper.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("encryption_keys",
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("organization_id", sa.String(length=32), nullable=False),
    sa.Column("owner", sa.Enum("user", "organization", name="keyowner", native_enum=False, length=16), nullable=False),
    sa.Column("user_id", sa.String(length=32), nullable=True),
    sa.Column("key_algorithm", sa.String(length=16), nullable=False),
    sa.Column("key_ref", sa.LargeBinary(), nullable=False),
    sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
    sa.Column("issuer_key_id", sa.String(length=32), nullable=False),
    sa.Column("serial", sa.String(length=64), nullable=False),
    sa.Column("key_identifier", sa.String(length=128), nullable=False),
    sa.Column("not_before", sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("not_after", sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Enum("active", "revoked", name="encryptionkeystatus", native_enum=False, length=16), nullable=False),
    sa.Column("revoked_at", sealkeeper.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("revocation_reason", sa.String(length=32), nullable=True),
    sa.Column("is_current", sa.Boolean(), nullable=False),
    sa.Column("created_at", sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["issuer_key_id"], ["ca_keys.id"], name=op.f("fk_encryption_keys_issuer_key_id_ca_keys")),
    sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_encryption_keys_organization_id_organizations")),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_encryption_keys_user_id_users")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_encryption_keys"))
    )
    with op.batch_alter_table("encryption_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_encryption_keys_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_encryption_keys_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_encryption_keys_key_identifier"), ["key_identifier"], unique=False)
        batch_op.create_index("uq_encryption_keys_serial", ["issuer_key_id", "serial"], unique=True)
        batch_op.create_index("uq_encryption_keys_current_user", ["user_id"], unique=True, sqlite_where=sa.text("is_current AND user_id IS NOT NULL"), postgresql_where=sa.text("is_current AND user_id IS NOT NULL"))
        batch_op.create_index("uq_encryption_keys_current_org", ["organization_id"], unique=True, sqlite_where=sa.text("is_current AND user_id IS NULL"), postgresql_where=sa.text("is_current AND user_id IS NULL"))

    op.create_table("encryption_grants",
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("organization_id", sa.String(length=32), nullable=False),
    sa.Column("user_id", sa.String(length=32), nullable=False),
    sa.Column("granted_by", sa.String(length=32), nullable=False),
    sa.Column("granted_at", sealkeeper.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("withdrawn_by", sa.String(length=32), nullable=True),
    sa.Column("withdrawn_at", sealkeeper.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(["granted_by"], ["users.id"], name=op.f("fk_encryption_grants_granted_by_users")),
    sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name=op.f("fk_encryption_grants_organization_id_organizations")),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_encryption_grants_user_id_users")),
    sa.ForeignKeyConstraint(["withdrawn_by"], ["users.id"], name=op.f("fk_encryption_grants_withdrawn_by_users")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_encryption_grants"))
    )
    with op.batch_alter_table("encryption_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_encryption_grants_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_encryption_grants_user_id"), ["user_id"], unique=False)
        batch_op.create_index("uq_encryption_grants_active", ["organization_id", "user_id"], unique=True, sqlite_where=sa.text("withdrawn_at IS NULL"), postgresql_where=sa.text("withdrawn_at IS NULL"))


def downgrade() -> None:
    with op.batch_alter_table("encryption_grants", schema=None) as batch_op:
        batch_op.drop_index("uq_encryption_grants_active")
        batch_op.drop_index(batch_op.f("ix_encryption_grants_user_id"))
        batch_op.drop_index(batch_op.f("ix_encryption_grants_organization_id"))
    op.drop_table("encryption_grants")
    with op.batch_alter_table("encryption_keys", schema=None) as batch_op:
        batch_op.drop_index("uq_encryption_keys_current_org")
        batch_op.drop_index("uq_encryption_keys_current_user")
        batch_op.drop_index("uq_encryption_keys_serial")
        batch_op.drop_index(batch_op.f("ix_encryption_keys_key_identifier"))
        batch_op.drop_index(batch_op.f("ix_encryption_keys_user_id"))
        batch_op.drop_index(batch_op.f("ix_encryption_keys_organization_id"))
    op.drop_table("encryption_keys")
