"""The kit's database engine on real PostgreSQL: prepared statements, reading outside a
transaction."""

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from servicekit import settings
from servicekit.database import make_engine, prepared, without_transaction
from tests.support import wait_for

# a placeholder used twice, and a literal percent sign, which psycopg2 escapes
ECHO = prepared(
    text("select cast(:word as text) || '%' || cast(:word as text), cast(:n as int) * 2"),
    "kit_test_echo",
)
PREPARED_HERE = text(
    "select generic_plans + custom_plans from pg_prepared_statements where name = 'kit_test_echo'"
)


def test_a_prepared_statement_is_planned_once_per_connection_and_again_on_a_new_one(
    clean_databases,
):
    engine = make_engine(settings.database_url("gateway"), pool_size=1)
    try:
        with engine.connect() as conn:
            first_server = conn.scalar(text("select pg_backend_pid()"))
            assert conn.execute(ECHO, {"word": "a", "n": 2}).one() == ("a%a", 4)
            assert conn.execute(ECHO, {"word": "b", "n": 5}).one() == ("b%b", 10)
            # one statement on this connection, run twice
            assert conn.execute(PREPARED_HERE).scalars().all() == [2]

        # the server ends the pooled connection (a restart would): the pool replaces it,
        # and the statement is prepared again on the new one
        other = create_engine(settings.database_url("gateway"), isolation_level="AUTOCOMMIT")
        with other.connect() as conn:
            assert conn.scalar(text("select pg_terminate_backend(:pid)"), {"pid": first_server})
            # the server process ends a moment after it was told to
            wait_for(
                lambda: (
                    not conn.scalar(
                        text("select count(*) from pg_stat_activity where pid = :pid"),
                        {"pid": first_server},
                    )
                )
            )
        other.dispose()
        with engine.connect() as conn:
            assert conn.scalar(text("select pg_backend_pid()")) != first_server
            assert conn.execute(ECHO, {"word": "c", "n": 1}).one() == ("c%c", 2)
            assert conn.execute(PREPARED_HERE).scalars().all() == [1]
    finally:
        engine.dispose()


# true when the statement runs in a transaction a BEGIN opened before it
IN_A_TRANSACTION = text("select now() < statement_timestamp()")


def test_a_session_reads_without_a_transaction_and_its_connection_gets_them_back(
    clean_databases,
):
    engine = make_engine(settings.database_url("gateway"), pool_size=1)
    try:
        with Session(engine) as session:
            assert session.scalar(IN_A_TRANSACTION)
        with Session(engine) as session:
            assert not without_transaction(session).scalar(IN_A_TRANSACTION)
            assert not session.scalar(IN_A_TRANSACTION)
        # the same pooled connection, transactions as before
        with Session(engine) as session:
            assert session.scalar(IN_A_TRANSACTION)
    finally:
        engine.dispose()


def test_a_name_stands_for_one_prepared_statement():
    again = prepared(text(str(ECHO)), "kit_test_echo")  # the same statement: no harm
    assert again.get_execution_options()["prepared_as"] == "kit_test_echo"
    with pytest.raises(ValueError, match="kit_test_echo"):
        prepared(text("select 1"), "kit_test_echo")
