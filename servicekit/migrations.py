"""Alembic for every database of the suite, one history per owner.

Each owner (a service, or the gateway) keeps its migrations beside its models, in
`<package>/migrations`; `alembic.ini` has a section per owner for the CLI
(`alembic -n guests revision --autogenerate -m "..."`), and this module drives the same
from code for set-up and tests.
"""

import importlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool, text
from sqlalchemy.engine import make_url

from servicekit import settings

ROOT = Path(__file__).resolve().parent.parent

# owner -> the package that holds its models and migrations
OWNERS = {
    "gateway": "gateway",
    "guests": "services.guests",
    "reservations": "services.reservations",
    "complaints": "services.complaints",
    "revisits": "services.revisits",
    "notifications": "services.notifications",
}


def config_for(owner: str, url: str | None = None) -> Config:
    package_dir = ROOT.joinpath(*OWNERS[owner].split("."))
    cfg = Config()
    cfg.set_main_option("script_location", str(package_dir / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url or settings.database_url(owner))
    cfg.attributes["owner"] = owner
    return cfg


def metadata_of(owner: str) -> MetaData:
    return importlib.import_module(f"{OWNERS[owner]}.models").Base.metadata


def run_env(owner: str) -> None:
    """The body of every `migrations/env.py`: migrate `owner`'s database online."""
    cfg = context.config
    url = cfg.get_main_option("sqlalchemy.url") or settings.database_url(owner)
    if url.startswith("driver://"):  # the placeholder of a bare alembic.ini section
        url = settings.database_url(owner)
    engine = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata_of(owner),
            compare_type=True,
            compare_server_default=True,
        )
        with context.begin_transaction():
            context.run_migrations()


def create_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", hide_parameters=True
    )
    with admin.connect() as conn:
        exists = conn.execute(
            text("select 1 from pg_database where datname = :n"), {"n": target.database}
        ).scalar()
        if not exists:
            conn.execute(text(f'create database "{target.database}"'))
    admin.dispose()


def upgrade(owner: str, url: str | None = None) -> None:
    url = url or settings.database_url(owner)
    create_database(url)
    command.upgrade(config_for(owner, url), "head")


def check(owner: str, url: str | None = None) -> None:
    """Raise if the models and the migrations disagree (alembic's `check`)."""
    command.check(config_for(owner, url))


def create_kit_tables_v1() -> None:
    """The kit's tables as first released, for every owner's first migration.

    Frozen like any migration: a later change to `kit_tables` gets a migration of its own.
    """
    op.create_table(
        "handled_events",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column(
            "handled_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_handled_events")),
    )
    op.create_table(
        "idempotent_commands",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("command", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotent_commands")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )


def drop_kit_tables_v1() -> None:
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox")
    op.drop_table("idempotent_commands")
    op.drop_table("handled_events")
