"""guest files, groups, daily serials, caller screen

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 00:03:57.445343
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # trigram indexes make "part of a name" searches indexed at a million guests
    op.execute("create extension if not exists pg_trgm")
    op.create_table(
        "caller_complaints",
        sa.Column("complaint_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("guest_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("tracking_code", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("complaint_id", name=op.f("pk_caller_complaints")),
    )
    op.create_index(
        "ix_caller_complaints_guest",
        "caller_complaints",
        ["guest_id"],
        unique=False,
        postgresql_where="resolved_at is null",
    )
    op.create_index(
        "ix_caller_complaints_phone",
        "caller_complaints",
        ["phone"],
        unique=False,
        postgresql_where="guest_id is null and resolved_at is null",
    )
    op.create_table(
        "caller_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guest_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_history")),
    )
    op.create_index(
        "ix_caller_history_guest_at", "caller_history", ["guest_id", "at"], unique=False
    )
    op.create_index(
        "ix_caller_history_phone_at",
        "caller_history",
        ["phone", "at"],
        unique=False,
        postgresql_where="guest_id is null",
    )
    op.create_table(
        "caller_promises",
        sa.Column("revisit_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("guest_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("promised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("revisit_id", "department", name=op.f("pk_caller_promises")),
    )
    op.create_index(
        "ix_caller_promises_guest",
        "caller_promises",
        ["guest_id"],
        unique=False,
        postgresql_where="answered_at is null",
    )
    op.create_table(
        "daily_serials",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.CheckConstraint("last between 1 and 999", name=op.f("ck_daily_serials_serial_range")),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_daily_serials")),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_number", sa.String(length=9), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("arrival_date", sa.Date(), nullable=False),
        sa.Column("leader_guest_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("file_number", name=op.f("uq_groups_file_number")),
    )
    op.create_index(op.f("ix_groups_arrival_date"), "groups", ["arrival_date"], unique=False)
    op.create_table(
        "guests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_number", sa.String(length=9), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("arrival_date", sa.Date(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "category in ('individual', 'group', 'vip')", name=op.f("ck_guests_category")
        ),
        sa.CheckConstraint("language in ('es', 'en')", name=op.f("ck_guests_language")),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_guests_group_id_groups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guests")),
        sa.UniqueConstraint("file_number", name=op.f("uq_guests_file_number")),
        sa.UniqueConstraint("phone", name=op.f("uq_guests_phone")),
    )
    op.create_index(op.f("ix_guests_arrival_date"), "guests", ["arrival_date"], unique=False)
    op.create_index(op.f("ix_guests_group_id"), "guests", ["group_id"], unique=False)
    op.create_index(
        "ix_guests_name_key_trgm",
        "guests",
        ["name_key"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name_key": "gin_trgm_ops"},
    )
    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_index(
        "ix_guests_name_key_trgm",
        table_name="guests",
        postgresql_using="gin",
        postgresql_ops={"name_key": "gin_trgm_ops"},
    )
    op.drop_index(op.f("ix_guests_group_id"), table_name="guests")
    op.drop_index(op.f("ix_guests_arrival_date"), table_name="guests")
    op.drop_table("guests")
    op.drop_index(op.f("ix_groups_arrival_date"), table_name="groups")
    op.drop_table("groups")
    op.drop_table("daily_serials")
    op.drop_index(
        "ix_caller_promises_guest",
        table_name="caller_promises",
        postgresql_where="answered_at is null",
    )
    op.drop_table("caller_promises")
    op.drop_index(
        "ix_caller_history_phone_at",
        table_name="caller_history",
        postgresql_where="guest_id is null",
    )
    op.drop_index("ix_caller_history_guest_at", table_name="caller_history")
    op.drop_table("caller_history")
    op.drop_index(
        "ix_caller_complaints_phone",
        table_name="caller_complaints",
        postgresql_where="guest_id is null and resolved_at is null",
    )
    op.drop_index(
        "ix_caller_complaints_guest",
        table_name="caller_complaints",
        postgresql_where="resolved_at is null",
    )
    op.drop_table("caller_complaints")
    # ### end Alembic commands ###
