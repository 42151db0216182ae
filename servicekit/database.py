"""Database sessions for nameko workers, and the tables every service's database carries.

psycopg2 is a C library that eventlet cannot patch by itself; psycogreen makes its waits
cooperative, so one slow query does not stall every other worker of the service.

Every engine of the kit talks to PostgreSQL through `TransactionsInFewerTrips`, psycopg2's
dialect with a transaction's BEGIN sent with its first statement and, where a service asks
for it (`with_commit`), its last statement sent with its COMMIT.
"""

import functools
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import psycopg2.extensions
from nameko.extensions import DependencyProvider
from psycogreen.eventlet import patch_psycopg
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    inspect,
    make_url,
    text,
)
from sqlalchemy.dialects import postgresql, registry
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.base import Executable

from servicekit import errors
from servicekit.connections import closed_by_peer

patch_psycopg()

# One naming convention for every service, so alembic names constraints predictably.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


@dataclass(frozen=True)
class KitTables:
    """The outbox, the inbox of handled events and the log of idempotent commands."""

    outbox: Table
    handled_events: Table
    commands: Table


def kit_tables(metadata: MetaData) -> KitTables:
    """Add the kit's tables to a service's metadata (its models and migrations own them)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("type", String(64), nullable=False),
        Column("envelope", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
    )
    # The relay reads only what is still to publish; a partial index keeps that cheap.
    Index(
        "ix_outbox_unpublished",
        outbox.c.id,
        postgresql_where=outbox.c.published_at.is_(None),
    )
    handled_events = Table(
        "handled_events",
        metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("type", String(64), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    commands = Table(
        "idempotent_commands",
        metadata,
        Column("key", String(200), primary_key=True),
        Column("command", String(64), nullable=False),
        Column("result", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return KitTables(outbox=outbox, handled_events=handled_events, commands=commands)


class _Connection(psycopg2.extensions.connection):
    """psycopg2's connection, always in its autocommit mode: the dialect below, not
    psycopg2, opens and ends its transactions."""

    # what opens a transaction on this connection; None while it is in AUTOCOMMIT
    begin: str | None = "BEGIN"
    # the BEGIN still to send, with the transaction's first statement
    opening: str | None = None
    # statements to send with the transaction's COMMIT
    before_commit: list[bytes]


class TransactionsInFewerTrips(PGDialect_psycopg2):
    """psycopg2's dialect, minus two round trips a transaction.

    psycopg2 opens a transaction with a BEGIN of its own, a round trip before the first
    statement; and a transaction's last statement and its COMMIT are two more. Here
    psycopg2 stays in autocommit mode and the dialect sends `BEGIN; <first statement>` as
    one query, and `<statements given to with_commit>; COMMIT` as one: a transaction of
    three statements costs three round trips instead of five. Under load each round trip
    is a wait for both processes to be scheduled again, which made up most of an event's
    latency, and a little CPU on both ends. PostgreSQL runs the statements of one query in
    order and stops at the first that fails, so what each transaction does is unchanged.
    A statement given many rows that SQLAlchemy cannot write as one multi-row INSERT (an
    UPDATE of flushed objects, an upsert without RETURNING) is sent as one query of many
    statements (psycopg2's `execute_batch`) rather than a round trip a row.
    """

    supports_statement_cache = True

    def __init__(self, **kwargs):
        kwargs.setdefault("executemany_mode", "values_plus_batch")
        super().__init__(**kwargs)

    def on_connect(self):
        configure = super().on_connect()

        def on_connect(dbapi_connection):
            if configure is not None:
                configure(dbapi_connection)
            dbapi_connection.autocommit = True
            dbapi_connection.before_commit = []

        return on_connect

    # SQLAlchemy hands the methods below its proxy of the connection (`_raw` unwraps it),
    # except the cursors' methods.

    def set_isolation_level(self, dbapi_connection, level):
        if level == "AUTOCOMMIT":
            begin = None
        elif level == self.default_isolation_level:
            begin = "BEGIN"
        else:
            begin = f"BEGIN ISOLATION LEVEL {level}"
        _raw(dbapi_connection).begin = begin

    def get_isolation_level(self, dbapi_connection):
        if _raw(dbapi_connection).begin is None:
            return "AUTOCOMMIT"
        return super().get_isolation_level(dbapi_connection)

    def detect_autocommit_setting(self, dbapi_connection):
        return _raw(dbapi_connection).begin is None

    def do_begin(self, dbapi_connection):
        connection = _raw(dbapi_connection)
        connection.opening = connection.begin

    def do_execute(self, cursor, statement, parameters, context=None):
        opening = _take_opening(cursor.connection)
        if opening is not None:
            statement = f"{opening}; {statement}"
        cursor.execute(statement, parameters)

    def do_execute_no_params(self, cursor, statement, context=None):
        self.do_execute(cursor, statement, None, context)

    def do_executemany(self, cursor, statement, parameters, context=None):
        # the statement is repeated for every row: the BEGIN goes before them, on its own
        opening = _take_opening(cursor.connection)
        if opening is not None:
            cursor.execute(opening)
        super().do_executemany(cursor, statement, parameters, context)

    def do_commit(self, dbapi_connection):
        self._end(dbapi_connection, "COMMIT", _raw(dbapi_connection).before_commit)

    def do_rollback(self, dbapi_connection):
        self._end(dbapi_connection, "ROLLBACK", [])

    def _end(self, dbapi_connection, end: str, last: list[bytes]) -> None:
        dbapi_connection = _raw(dbapi_connection)
        opening = _take_opening(dbapi_connection)
        dbapi_connection.before_commit = []
        if not last and (opening is not None or dbapi_connection.info.transaction_status == _IDLE):
            return  # no transaction was opened on the server, or it has already ended
        opened = [opening.encode()] if opening is not None else []
        # in AUTOCOMMIT the last statements commit by themselves
        ended = [end.encode()] if dbapi_connection.begin is not None else []
        with dbapi_connection.cursor() as cursor:
            cursor.execute(b"; ".join([*opened, *last, *ended]))


_IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE


def _raw(connection) -> _Connection:
    return getattr(connection, "dbapi_connection", connection)


def _take_opening(dbapi_connection) -> str | None:
    opening, dbapi_connection.opening = dbapi_connection.opening, None
    return opening


registry.register("postgresql.hotelcs", __name__, "TransactionsInFewerTrips")


def with_commit(session: Session, sql: str, parameters: Any) -> None:
    """Run `sql` (psycopg2's placeholders) as the last statement of `session`'s transaction,
    sent with its COMMIT in one round trip. It runs after anything the session still has
    to flush, and not at all if the transaction rolls back; if it fails, the transaction
    does not commit (`Session.commit` raises). On an engine not made by `make_engine` it
    runs at once, a round trip of its own."""
    dbapi_connection = session.connection().connection.dbapi_connection
    with dbapi_connection.cursor() as cursor:
        if isinstance(dbapi_connection, _Connection):
            dbapi_connection.before_commit.append(cursor.mogrify(sql, parameters))
        else:
            cursor.execute(sql, parameters)


def insert_with_commit(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    skip_existing: bool = False,
    **expressions: str,
) -> None:
    """Insert `rows` (all with the same keys) into `table` in one INSERT sent with the
    transaction's COMMIT (`with_commit`); `expressions` are columns given as SQL, the same
    for every row (`created_at="clock_timestamp()"`). Values go as psycopg2 adapts them,
    not through the columns' SQLAlchemy types: JSON as `psycopg2.extras.Json`. With
    `skip_existing`, a row whose key the table already holds is left out (`ON CONFLICT DO
    NOTHING`) rather than failing the commit.

    Example, a batch's lines of the caller history::

        insert_with_commit(session, HistoryLine.__table__, lines)
    """
    if not rows:
        return
    columns = tuple(rows[0])
    head, row = _insert_parts(table, columns, tuple(expressions.items()))
    with_commit(
        session,
        head + ", ".join([row] * len(rows)) + (" ON CONFLICT DO NOTHING" if skip_existing else ""),
        [values[column] for values in rows for column in columns],
    )


@functools.cache
def _insert_parts(table: Table, columns: tuple, expressions: tuple) -> tuple[str, str]:
    quote = postgresql.dialect().identifier_preparer.quote
    names = ", ".join(quote(name) for name in (*columns, *(name for name, _ in expressions)))
    row = ", ".join(["%s"] * len(columns) + [sql for _, sql in expressions])
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ", f"({row})"


def make_engine(url: str, pool_size: int = 10) -> Engine:
    engine = create_engine(
        make_url(url).set(drivername="postgresql+hotelcs"),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        # a failed statement's error names no values: they are guests' names, birthdays,
        # notes, and its text goes to the logs (the redaction masks phones and emails only)
        hide_parameters=True,
        connect_args={
            "connect_timeout": 3,
            "application_name": "hotelcs",
            "connection_factory": _Connection,
        },
    )
    event.listen(engine, "checkout", _refuse_closed_connection)
    event.listen(engine, "before_cursor_execute", _execute_prepared, retval=True)
    return engine


def _refuse_closed_connection(dbapi_connection, connection_record, connection_proxy) -> None:
    """Instead of `pool_pre_ping`, a round trip to the server for every transaction: a pooled
    connection the server ended (a restart, `pg_terminate_backend`) is replaced before
    anything is sent on it, so a restarted PostgreSQL is as transparent as with the ping."""
    if dbapi_connection.closed or closed_by_peer(dbapi_connection):
        raise DisconnectionError("the server has closed this pooled connection")


def prepared(statement: Executable, name: str) -> Executable:
    """`statement`, planned once on each database connection rather than at every run.

    For a hot statement whose plan costs more than running it (the caller screen's plan takes
    three times as long as its execution): the first run on a connection sends `PREPARE name
    AS ...`, every run sends `EXECUTE name(...)`. PostgreSQL plans again by itself when a
    table it reads changes. Needs session-level connections (a transaction-mode pooler such
    as PgBouncer's does not keep prepared statements), which is how the services connect.
    A name stands for one statement: a connection would run the first one prepared under it.
    """
    sql = str(statement.compile(dialect=postgresql.dialect()))
    if _PREPARED.setdefault(name, sql) != sql:
        raise ValueError(f"another statement is already prepared as {name!r}")
    return statement.execution_options(prepared_as=name)


_PREPARED: dict[str, str] = {}


# psycopg2's placeholders, and its escaped percent sign
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def _execute_prepared(conn, cursor, statement, parameters, context, executemany):
    name = context.execution_options.get("prepared_as") if context is not None else None
    if name is None or executemany:
        return statement, parameters
    body, arguments = _numbered(statement)
    # kept with the DBAPI connection: a replaced connection prepares again
    on_this_connection = conn.info.setdefault("prepared", set())
    if name not in on_this_connection:
        cursor.execute(f"PREPARE {name} AS {body}")
        on_this_connection.add(name)
    return f"EXECUTE {name}({arguments})", parameters


@functools.cache
def _numbered(statement: str) -> tuple[str, str]:
    """psycopg2's named placeholders as PostgreSQL's numbered ones, and the EXECUTE's
    arguments in that order."""
    order: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) is None:
            return "%"
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    body = _PLACEHOLDER.sub(number, statement)
    return body, ", ".join(f"%({key})s" for key in order)


def without_transaction(session: Session) -> Session:
    """`session` with each statement committed on its own, for a worker whose reading is one
    statement (which sees one snapshot anyway): no BEGIN and ROLLBACK round trips around it.
    Call it before the session's first statement; the connection goes back to the pool with
    transactions as usual."""
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return session


def values_set(new_object) -> dict:
    """The column values set on a new mapped object, by column name: to write it through its
    table, where the ORM's unit of work would cost more than the statement."""
    given = inspect(new_object).dict
    return {c.key: given[c.key] for c in new_object.__table__.c if c.key in given}


def unstorable(text: str) -> bool:
    """Text that no database can hold: a NUL character, or half of a surrogate pair (a
    JSON `\\ud800` escape decodes to one; no UTF-8 text can carry it)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def is_unavailable(exc: BaseException) -> bool:
    """A database that cannot be reached (down, restarting), as opposed to a bad query."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class Database(DependencyProvider):
    """One SQLAlchemy session per worker, closed when the worker ends.

    Example::

        class GuestsService:
            name = "guests"
            db = Database("guests")

            @rpc
            def get(self, guest_id):
                return self.db.get(models.Guest, guest_id)
    """

    def __init__(self, owner: str, url: str | None = None):
        self.owner = owner
        self.url = url
        self.engine: Engine | None = None
        self.sessions: sessionmaker | None = None
        # keyed by worker, not kept in worker_ctx.data: that travels on as RPC headers
        self.open_sessions: WeakKeyDictionary = WeakKeyDictionary()

    def setup(self):
        from servicekit import settings

        self.engine = make_engine(self.url or settings.database_url(self.owner))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def stop(self):
        if self.engine is not None:
            self.engine.dispose()

    def get_dependency(self, worker_ctx) -> Session:
        session = self.sessions()
        self.open_sessions[worker_ctx] = session
        return session

    def worker_teardown(self, worker_ctx):
        session = self.open_sessions.pop(worker_ctx, None)
        if session is not None:
            session.close()

    @contextmanager
    def session(self):
        """A session for work outside an entrypoint's worker (relays, timers' helpers)."""
        with self.sessions() as session:
            yield session

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
            return True
        except DBAPIError:
            return False


def translate_unavailable(exc: BaseException) -> BaseException:
    """Map a lost database to the contract's 503, keeping every other error as it is."""
    if is_unavailable(exc):
        return errors.Unavailable("the database cannot be reached")
    return exc
