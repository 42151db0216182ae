"""notifications.contact_phone: whom a contact's message is for on the caller screen

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("contact_phone", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("notifications", "contact_phone")
