"""The kit's database engine on real PostgreSQL: transactions in fewer round trips,
prepared statements, reading outside a transaction."""

import psycopg2.extensions
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from servicekit import settings
from servicekit.database import (
    insert_with_commit,
    make_engine,
    prepared,
    with_commit,
    without_transaction,
)
from tests.support import wait_for


class _Scratch(DeclarativeBase):
    pass


class Note(_Scratch):
    """A row of a temporary table of the test's connection."""

    __tablename__ = "kit_notes"
    __table_args__ = {"prefixes": ["TEMPORARY"]}
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


ADD_NOTE = "insert into kit_notes (text) values (%s)"
NOTES = text("select text from kit_notes order by id")


@pytest.fixture
def engine(clean_databases):
    """The kit's engine on one connection, which has its own `kit_notes` table."""
    engine = make_engine(settings.database_url("gateway"), pool_size=1)
    with engine.connect() as conn:
        _Scratch.metadata.create_all(conn)
        conn.commit()
    yield engine
    engine.dispose()


def _last_query_of(backend: int) -> str:
    """What the server last received from `backend` in one message, seen from elsewhere."""
    observer = create_engine(settings.database_url("gateway"))
    with observer.connect() as conn:
        query = conn.scalar(
            text("select query from pg_stat_activity where pid = :pid"), {"pid": backend}
        )
    observer.dispose()
    return query


def test_a_transaction_opens_with_its_first_statement_and_commits_with_its_last(engine):
    with Session(engine) as session:
        # the server received BEGIN and the statement as one message: one clock for both
        backend, same_message = session.execute(
            text("select pg_backend_pid(), now() = statement_timestamp()")
        ).one()
        assert same_message
        assert _last_query_of(backend).startswith("BEGIN; select pg_backend_pid()")

        # a statement given many rows: one message
        session.execute(text("insert into kit_notes (text) values (:t)"), [{"t": "a"}, {"t": "b"}])
        assert _last_query_of(backend) == (
            "insert into kit_notes (text) values ('a');insert into kit_notes (text) values ('b')"
        )

        session.add(Note(text="flushed at the commit"))
        with_commit(session, ADD_NOTE, ["sent with the commit"])
        session.commit()
        assert _last_query_of(backend) == (
            "insert into kit_notes (text) values ('sent with the commit'); COMMIT"
        )
        status = session.connection().connection.dbapi_connection.info.transaction_status
        assert status == psycopg2.extensions.TRANSACTION_STATUS_IDLE

        # a transaction that sent nothing ends without a round trip
        session.commit()
        assert _last_query_of(backend).endswith("'sent with the commit'); COMMIT")
    with engine.connect() as conn:
        assert conn.scalars(NOTES).all() == [
            "a",
            "b",
            "flushed at the commit",
            "sent with the commit",
        ]


def test_a_rollback_or_a_failed_last_statement_leaves_nothing_and_the_connection_works(engine):
    with Session(engine) as session:
        session.add(Note(text="rolled back"))
        session.flush()
        with_commit(session, ADD_NOTE, ["never sent"])
        session.rollback()

        session.add(Note(text="lost with the failed commit"))
        with_commit(session, "insert into kit_notes (text) values (null)", [])
        with pytest.raises(DBAPIError, match="null value"):
            session.commit()
        session.rollback()

        # a failing first statement, sent with its BEGIN
        with pytest.raises(DBAPIError, match="division by zero"):
            session.execute(text("select 1 / 0"))
        session.rollback()

        # a savepoint, and a statement run once per row (its BEGIN goes on its own)
        with session.begin_nested():
            session.add(Note(text="in a savepoint"))
        session.execute(text("insert into kit_notes (text) values (:t)"), [{"t": "a"}, {"t": "b"}])
        insert_with_commit(session, Note.__table__, [{"text": "c"}, {"text": "d"}])
        session.commit()
    with engine.connect() as conn:
        assert conn.scalars(NOTES).all() == ["in a savepoint", "a", "b", "c", "d"]


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


def _in_a_transaction(session: Session) -> bool:
    """Whether the server says a transaction is open after a statement of `session`."""
    session.execute(text("select 1"))
    status = session.connection().connection.dbapi_connection.info.transaction_status
    return status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS


def test_a_session_reads_without_a_transaction_and_its_connection_gets_them_back(engine):
    with Session(engine) as session:
        assert _in_a_transaction(session)
    with Session(engine) as session:
        assert not _in_a_transaction(without_transaction(session))
        assert not _in_a_transaction(session)
    # the same pooled connection, transactions as before
    with Session(engine) as session:
        assert _in_a_transaction(session)
    # statements kept for the commit commit by themselves, with no COMMIT after them
    with Session(engine) as session:
        backend = without_transaction(session).scalar(text("select pg_backend_pid()"))
        insert_with_commit(session, Note.__table__, [{"text": "on its own"}])
        session.commit()
        assert not _last_query_of(backend).endswith("COMMIT")
    with engine.connect() as conn:
        assert conn.scalars(NOTES).all() == ["on its own"]


def test_a_name_stands_for_one_prepared_statement():
    again = prepared(text(str(ECHO)), "kit_test_echo")  # the same statement: no harm
    assert again.get_execution_options()["prepared_as"] == "kit_test_echo"
    with pytest.raises(ValueError, match="kit_test_echo"):
        prepared(text("select 1"), "kit_test_echo")


def test_a_failed_statement_s_error_names_none_of_its_values(engine):
    """Its text goes to the logs, and values are guests' names, birthdays, notes."""
    with Session(engine) as session, pytest.raises(DBAPIError) as failed:
        session.execute(
            text("insert into kit_notes (id, text) values (1, :a), (1, :b)"),
            {"a": "Lucía Márquez, born 1980-05-17", "b": "the same id again"},
        )
    assert "duplicate key" in str(failed.value)
    assert "Lucía" not in str(failed.value) and "1980-05-17" not in str(failed.value)
