"""The transactional outbox: an event commits with the change it announces.

`record()` adds the event's envelope to the `outbox` table in the caller's transaction
(written as the transaction commits).
The `OutboxRelay` extension then publishes committed events in commit order, with
publisher confirms, and marks them published. It wakes at once when this process commits
an event and polls for the rest (other replicas, rows left while the broker was away).
Replicas take turns through a PostgreSQL advisory lock, so order holds across them.
Delivery is at least once; consumers are idempotent on `event_id`.
"""

import logging
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from kombu import Connection, Producer
from nameko import config
from sqlalchemy import BigInteger, delete, event, func, literal, select, update
from sqlalchemy.orm import Session

from servicekit import bus, events, settings
from servicekit.background import WakeableLoop, request_wakeup
from servicekit.database import KitTables, make_engine
from servicekit.metrics import OUTBOX_FAILURES, OUTBOX_LAG, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)

_WAKE_FLAG = "outbox"
_PENDING = "outbox_pending"


def record(session: Session, kit: KitTables, event_type: str, data: dict[str, Any]) -> dict:
    """Add an event to the outbox in `session`'s transaction; returns its envelope.

    The rows are written just before the transaction commits, every event of the
    transaction in one INSERT: a handler applying a batch of events, or a command that
    announces several, pays one round trip for all its announcements.
    """
    body = events.envelope(event_type, data)
    # begins the transaction if nothing has yet, so that its end, whatever it is, ends
    # these events too (they are kept with the session until then)
    session.connection()
    pending = session.info.setdefault(_PENDING, {})
    pending.setdefault(kit.outbox, []).append(
        {"event_id": body["event_id"], "type": event_type, "envelope": body}
    )
    request_wakeup(session, _WAKE_FLAG)
    return body


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    for table, rows in session.info.pop(_PENDING, {}).items():
        # The last statement before COMMIT: its clock is the event's commit, give or take
        # a round trip (`now()` would be when the transaction began).
        created_at = func.clock_timestamp()
        session.execute(table.insert().values([{**row, "created_at": created_at} for row in rows]))


@event.listens_for(Session, "after_transaction_end")
def _forget_pending(session: Session, transaction) -> None:
    # a rolled-back or closed transaction's events go with it (a savepoint's end is not it)
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


class OutboxRelay(WakeableLoop):
    """Publishes a service's outbox. Declare it on the service class::

    class ComplaintsService:
        name = "complaints"
        relay = OutboxRelay("complaints", models.KIT)
    """

    wake_flag = _WAKE_FLAG
    batch = 200
    keep_published = timedelta(days=7)

    def __init__(self, owner: str, kit: KitTables):
        super().__init__(owner)
        self.kit = kit
        self.lock_key = zlib.crc32(f"outbox:{owner}".encode())
        self.declared = False
        self.last_purge = datetime.min.replace(tzinfo=UTC)

    def setup(self):
        self.engine = make_engine(settings.database_url(self.owner), pool_size=2)
        self.publisher = ConfirmedPublisher(config["AMQP_URI"])

    def stop(self):
        super().stop()
        self.publisher.close()

    def work_round(self) -> bool:
        if not self.declared:
            bus.declare_topology(config["AMQP_URI"])
            self.declared = True
        if self.publish_batch() == self.batch:
            return True
        if datetime.now(UTC) - self.last_purge > timedelta(hours=1):
            self.purge_published()
            self.last_purge = datetime.now(UTC)
        return False

    def round_failed(self) -> None:
        OUTBOX_FAILURES.labels(self.owner).inc()
        log.warning("outbox relay could not publish; will retry", exc_info=True)

    def publish_batch(self) -> int:
        """Publish the oldest unpublished events; how many it published."""
        outbox = self.kit.outbox
        with self.engine.begin() as conn:
            # One statement takes the turn (evaluated once, before any row) and reads the
            # batch: each round trip here waits behind every busy worker of the service.
            # Marking rows published need not wait for the disk: were it lost in a crash,
            # the rows would be published again, and consumers are idempotent anyway.
            rows = conn.execute(
                select(outbox.c.id, outbox.c.envelope, outbox.c.created_at)
                .where(
                    select(
                        func.pg_try_advisory_xact_lock(literal(self.lock_key, BigInteger))
                        & func.set_config("synchronous_commit", "off", True).is_not(None)
                    ).scalar_subquery(),
                    outbox.c.published_at.is_(None),
                )
                .order_by(outbox.c.id)
                .limit(self.batch)
            ).all()
            if not rows:
                return 0
            self.publisher.publish_all([row.envelope for row in rows])
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(published_at=func.now())
            )
        now = datetime.now(UTC)
        for row in rows:
            OUTBOX_LAG.labels(self.owner).observe((now - row.created_at).total_seconds())
        OUTBOX_PUBLISHED.labels(self.owner).inc(len(rows))
        return len(rows)

    def purge_published(self) -> None:
        outbox = self.kit.outbox
        with self.engine.begin() as conn:
            conn.execute(
                delete(outbox).where(
                    outbox.c.published_at < datetime.now(UTC) - self.keep_published
                )
            )


class PublishRefused(Exception):
    """The broker refused (nacked) or did not confirm an event in time."""


class ConfirmedPublisher:
    """Publishes a batch of events, persistent, then waits once until the broker has
    confirmed them all: one round trip per batch instead of one per event.

    It keeps its connection between batches; after any failure it drops it, and the next
    batch connects again (the relay retries the whole batch: consumers are idempotent).
    """

    def __init__(self, amqp_uri: str, confirm_timeout: float = 10.0):
        self.amqp_uri = amqp_uri
        self.confirm_timeout = confirm_timeout
        self.connection: Connection | None = None
        self.unconfirmed: set[int] = set()
        self.refused = False

    def publish_all(self, envelopes: list[dict]) -> None:
        try:
            producer = self._producer()
            for envelope in envelopes:
                self.sent += 1
                self.unconfirmed.add(self.sent)
                producer.publish(
                    envelope,
                    exchange=bus.source_exchange(envelope["source"]).name,
                    routing_key=envelope["type"],
                    message_id=envelope["event_id"],
                    serializer="json",
                    delivery_mode=2,
                )
            deadline = time.monotonic() + self.confirm_timeout
            while self.unconfirmed and not self.refused:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PublishRefused(f"{len(self.unconfirmed)} events not confirmed in time")
                self.connection.drain_events(timeout=left)
            if self.refused:
                raise PublishRefused("the broker refused an event")
        except BaseException:
            self.close()
            raise

    def _producer(self) -> Producer:
        if self.connection is None:
            connection = Connection(self.amqp_uri, transport_options={"max_retries": 1})
            connection.ensure_connection(max_retries=1)
            channel = connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._acked)
            channel.events["basic_nack"].add(self._nacked)
            self.connection, self.channel = connection, channel
            self.sent, self.unconfirmed, self.refused = 0, set(), False
        return Producer(self.channel)

    def _acked(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self.unconfirmed = {tag for tag in self.unconfirmed if tag > delivery_tag}
        else:
            self.unconfirmed.discard(delivery_tag)

    def _nacked(self, delivery_tag: int, multiple: bool) -> None:
        self.refused = True

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # already broken; nothing more to release
                log.debug("closing a broken broker connection", exc_info=True)
            self.connection = None
