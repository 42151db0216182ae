"""The transactional outbox: an event commits with the change it announces.

`record()` adds the event's envelope to the `outbox` table in the caller's transaction
(written as the transaction commits). The moment it has committed, the worker that
committed it sends it to the broker, persistent, on the `OutboxRelay`'s confirmed channel,
without waiting: the event leaves in the same turn of the process instead of waiting for a
background loop to be scheduled among the process's busy workers (under load that wait was
most of an event's latency), and the worker's answer does not wait for the broker's disk.
The relay then collects the broker's confirms and marks confirmed events published; it
also publishes, oldest first, whatever the workers could not (the broker away, a refused
or unconfirmed event, a process that died between commit and send, rows written by a
process without a relay) once a row has waited `settle` for its worker.
Replicas take turns through a PostgreSQL advisory lock.
Delivery is at least once; consumers are idempotent on `event_id`.
"""

import logging
import time
import zlib
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import eventlet
from eventlet.semaphore import Semaphore
from kombu import Connection, Producer
from nameko import config
from psycopg2.extras import Json
from sqlalchemy import BigInteger, Table, delete, event, func, literal, select, update
from sqlalchemy.orm import Session

from servicekit import bus, events, settings
from servicekit.background import WakeableLoop
from servicekit.connections import close_quietly
from servicekit.database import KitTables, insert_with_commit, make_engine
from servicekit.metrics import OUTBOX_FAILURES, OUTBOX_LAG, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)

_PENDING = "outbox_pending"
_COMMITTING = "outbox_committing"
# the relay of each outbox table in this process: its workers send through it
_relays: dict[Table, "OutboxRelay"] = {}


def record(session: Session, kit: KitTables, event_type: str, data: dict[str, Any]) -> dict:
    """Add an event to the outbox in `session`'s transaction; returns its envelope.

    The rows are written just before the transaction commits, every event of the
    transaction in one INSERT: a handler applying a batch of events, or a command that
    announces several, pays one round trip for all its announcements.
    """
    if session.in_nested_transaction():
        # a savepoint's rollback would have to take its events back out: record them in the
        # transaction itself, outside `begin_nested()`
        raise RuntimeError(f"{event_type}: an event cannot be recorded inside a savepoint")
    body = events.envelope(event_type, data)
    # begins the transaction if nothing has yet, so that its end, whatever it is, ends
    # these events too (they are kept with the session until then)
    session.connection()
    pending = session.info.setdefault(_PENDING, {})
    pending.setdefault(kit.outbox, []).append(
        {"event_id": body["event_id"], "type": event_type, "envelope": body}
    )
    return body


# SQLAlchemy calls `before_commit` and `after_commit` when a savepoint is released too: the
# events are the outer transaction's, written and sent at its COMMIT only.


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, {})
    for table, rows in pending.items():
        # Sent with the COMMIT: its clock is the event's commit (`now()` would be when the
        # transaction began), and the rows cost no round trip of their own.
        insert_with_commit(
            session,
            table,
            [
                {
                    "event_id": row["event_id"],
                    "type": row["type"],
                    "envelope": Json(row["envelope"]),
                }
                for row in rows
            ],
            created_at="clock_timestamp()",
        )
    if pending:
        session.info[_COMMITTING] = (pending, time.monotonic())


@event.listens_for(Session, "after_commit")
def _send_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return
    committing = session.info.pop(_COMMITTING, None)
    if committing is not None:
        pending, committed_at = committing
        for table, rows in pending.items():
            relay = _relays.get(table)
            if relay is not None:
                relay.send_committed(rows, committed_at)


@event.listens_for(Session, "after_transaction_end")
def _forget_pending(session: Session, transaction) -> None:
    # a rolled-back or closed transaction's events go with it (a savepoint's end is not it)
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_COMMITTING, None)


class OutboxRelay(WakeableLoop):
    """Publishes a service's outbox. Declare it on the service class::

    class ComplaintsService:
        name = "complaints"
        relay = OutboxRelay("complaints", models.KIT)
    """

    batch = 200
    keep_published = timedelta(days=7)
    # How long a committed row is left to the worker that committed it (or to another
    # replica's) before the relay publishes it itself: a worker sends within milliseconds
    # of its commit, so a row this old was not sent, or its confirm was lost.
    settle = timedelta(seconds=2)
    send_within = 1.0  # seconds a worker may spend sending its events

    def __init__(self, owner: str, kit: KitTables):
        super().__init__(owner)
        self.kit = kit
        self.lock_key = zlib.crc32(f"outbox:{owner}".encode())
        self.last_purge = datetime.min.replace(tzinfo=UTC)
        # Workers send once the relay has declared the bus (an event sent before its
        # queues exist would be confirmed and lost) and while the broker takes events:
        # after a failure the relay alone publishes until it reaches the broker again,
        # so a broker away never holds up an answer.
        self.workers_send = False

    def setup(self):
        self.engine = make_engine(settings.database_url(self.owner), pool_size=2)
        self.publisher = ConfirmedPublisher(config["AMQP_URI"])

    def start(self):
        _relays[self.kit.outbox] = self
        super().start()

    def stop(self):
        if _relays.get(self.kit.outbox) is self:
            del _relays[self.kit.outbox]
        super().stop()
        self.publisher.close()

    def send_committed(self, rows: list[dict], committed_at: float) -> None:
        """Send a transaction's events from the worker that has just committed them.

        The relay collects their confirms on its next round, at most `poll_seconds` later:
        marking rows published is bookkeeping, done best in bulk, well within `settle`.
        """
        if not (self.running and self.workers_send):
            return
        # A broker that stops reading (a memory or disk alarm blocks publishers) must not
        # hold up the worker's answer: past this, the relay publishes the events instead.
        too_long = eventlet.Timeout(self.send_within)
        try:
            self.publisher.send([row["envelope"] for row in rows])
        except (Exception, eventlet.Timeout) as exc:
            if isinstance(exc, eventlet.Timeout) and exc is not too_long:
                raise
            self.workers_send = False
            self.round_failed()
            return
        finally:
            too_long.cancel()
        OUTBOX_LAG.labels(self.owner).observe(time.monotonic() - committed_at)

    def work_round(self) -> bool:
        if not self.workers_send:
            bus.declare_topology(config["AMQP_URI"])
            self.publisher.connect()
            self.workers_send = True
        self.mark_sent_by_workers()
        if self.publish_batch() == self.batch:
            return True
        if datetime.now(UTC) - self.last_purge > timedelta(hours=1):
            self.purge_published()
            self.last_purge = datetime.now(UTC)
        return False

    def round_failed(self) -> None:
        OUTBOX_FAILURES.labels(self.owner).inc()
        log.warning("outbox relay could not publish; will retry", exc_info=True)

    def mark_sent_by_workers(self) -> None:
        confirmed, refused = self.publisher.collect_confirmed()
        if confirmed:
            with self.engine.begin() as conn:
                self._mark_published(conn, confirmed)
        if refused:
            raise PublishRefused(f"the broker refused {refused} events")

    def publish_batch(self) -> int:
        """Publish the oldest unpublished events its workers have had time to send; how
        many it published."""
        outbox = self.kit.outbox
        with self.engine.begin() as conn:
            # One statement takes the turn (evaluated once, before any row) and reads the
            # batch: each round trip here waits behind every busy worker of the service.
            rows = conn.execute(
                select(outbox.c.envelope, outbox.c.created_at, func.clock_timestamp())
                .where(
                    select(
                        func.pg_try_advisory_xact_lock(literal(self.lock_key, BigInteger))
                    ).scalar_subquery(),
                    outbox.c.published_at.is_(None),
                    outbox.c.created_at < func.clock_timestamp() - self.settle,
                )
                .order_by(outbox.c.id)
                .limit(self.batch)
            ).all()
            if not rows:
                return 0
            self.publisher.send([row.envelope for row in rows])
            for row in rows:
                lag = (row.clock_timestamp - row.created_at).total_seconds()
                OUTBOX_LAG.labels(self.owner).observe(lag)
            confirmed, refused = self.publisher.collect_confirmed()
            self._mark_published(conn, confirmed)
        if refused:
            raise PublishRefused(f"the broker refused {refused} events")
        return len(rows)

    def _mark_published(self, conn, confirmed: list[dict]) -> None:
        """Mark the `confirmed` events published."""
        outbox = self.kit.outbox
        conn.execute(
            update(outbox)
            .where(
                _without_waiting_for_the_disk(),
                outbox.c.event_id.in_([envelope["event_id"] for envelope in confirmed]),
            )
            .values(published_at=func.now())
        )
        OUTBOX_PUBLISHED.labels(self.owner).inc(len(confirmed))

    def purge_published(self) -> None:
        outbox = self.kit.outbox
        with self.engine.begin() as conn:
            conn.execute(
                delete(outbox).where(
                    outbox.c.published_at < datetime.now(UTC) - self.keep_published
                )
            )


def _without_waiting_for_the_disk():
    """A condition, evaluated once per statement, that lets its transaction commit without
    waiting for the disk: marking rows published need not (were the mark lost in a crash,
    the rows would be published again, and consumers are idempotent anyway), and saying so
    in the statement saves a round trip."""
    return select(func.set_config("synchronous_commit", "off", True).is_not(None)).scalar_subquery()


class PublishRefused(Exception):
    """The broker refused (nacked) an event or did not confirm it in time."""


class ConfirmedPublisher:
    """Sends events, persistent, on one channel in confirm mode, and keeps account of which
    the broker has confirmed.

    Any green thread may `send` (one writes at a time; a send does not wait for the
    broker); one, the relay, reads the confirms with `collect_confirmed`.
    The connection is kept between sends; after any failure it is dropped with whatever
    it had not confirmed (those rows stay unpublished, so the relay publishes them again),
    and the next send connects again.
    """

    def __init__(self, amqp_uri: str, confirm_timeout: float = 10.0):
        self.amqp_uri = amqp_uri
        self.confirm_timeout = confirm_timeout
        self.connection: Connection | None = None
        self.writing = Semaphore()
        self.sent = 0  # delivery tags handed out on the current connection
        # by delivery tag, oldest first: the current connection's (each has its own, since
        # tags start again at 1 on a new one, and a dropped one may still answer for its own)
        self.unconfirmed: dict[int, dict] = {}
        self.confirmed: list[dict] = []
        self.refused = 0

    def send(self, envelopes: list[dict]) -> None:
        """Send `envelopes` without waiting for the broker."""
        with self._writing():
            producer = self._connected()
            for envelope in envelopes:
                self.sent += 1
                self.unconfirmed[self.sent] = envelope
                producer.publish(
                    envelope,
                    exchange=bus.source_exchange(envelope["source"]).name,
                    routing_key=envelope["type"],
                    message_id=envelope["event_id"],
                    serializer="json",
                    delivery_mode=2,
                )

    def connect(self) -> None:
        with self._writing():
            self._connected()

    @contextmanager
    def _writing(self):
        # one writer at a time; a failed write drops the connection
        with self.writing:
            try:
                yield
            except BaseException:
                self._close()
                raise

    def collect_confirmed(self) -> tuple[list[dict], int]:
        """Wait until the broker has answered for every event sent so far: the envelopes it
        confirmed, and how many it refused. Events workers send meanwhile are collected
        next time if not answered yet (waiting for them too could last as long as they
        keep coming).

        Raises `PublishRefused` if it has not answered in time, dropping the connection
        with every event not yet collected (their rows are published again).
        """
        connection, unconfirmed, sent_before = self.connection, self.unconfirmed, self.sent
        deadline = time.monotonic() + self.confirm_timeout
        try:
            # a worker whose send failed meanwhile dropped the connection: what it had not
            # confirmed stays unpublished, and the next round publishes it again
            while (
                connection is self.connection
                and next(iter(unconfirmed), sent_before + 1) <= sent_before
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PublishRefused(f"{len(unconfirmed)} events not confirmed in time")
                connection.drain_events(timeout=left)
        except BaseException:
            self.close()
            raise
        confirmed, self.confirmed = self.confirmed, []
        refused, self.refused = self.refused, 0
        return confirmed, refused

    def _connected(self) -> Producer:
        if self.connection is None:
            connection = Connection(self.amqp_uri, transport_options={"max_retries": 1})
            connection.ensure_connection(max_retries=1)
            channel = connection.channel()
            channel.confirm_select()
            unconfirmed: dict[int, dict] = {}
            channel.events["basic_ack"].add(partial(self._acked, unconfirmed))
            channel.events["basic_nack"].add(partial(self._nacked, unconfirmed))
            self.connection, self.producer = connection, Producer(channel)
            self.unconfirmed, self.sent = unconfirmed, 0
        return self.producer

    @staticmethod
    def _answered(unconfirmed: dict[int, dict], delivery_tag: int, multiple: bool) -> list[dict]:
        tags = [tag for tag in unconfirmed if tag <= delivery_tag] if multiple else [delivery_tag]
        return [unconfirmed.pop(tag) for tag in tags if tag in unconfirmed]

    def _acked(self, unconfirmed: dict[int, dict], delivery_tag: int, multiple: bool) -> None:
        # an answer of a dropped connection is still true of its own events
        self.confirmed.extend(self._answered(unconfirmed, delivery_tag, multiple))

    def _nacked(self, unconfirmed: dict[int, dict], delivery_tag: int, multiple: bool) -> None:
        self.refused += len(self._answered(unconfirmed, delivery_tag, multiple))

    def _close(self) -> None:
        self.unconfirmed = {}
        self.confirmed.clear()
        self.refused = 0
        if self.connection is not None:
            close_quietly(self.connection)
            self.connection = None

    def close(self) -> None:
        with self.writing:
            self._close()
