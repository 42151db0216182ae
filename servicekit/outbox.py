"""The transactional outbox: an event commits with the change it announces.

`record()` adds the event's envelope to the `outbox` table in the caller's transaction.
The `OutboxRelay` extension then publishes committed events in commit order, with
publisher confirms, and marks them published. It wakes at once when this process commits
an event and polls for the rest (other replicas, rows left while the broker was away).
Replicas take turns through a PostgreSQL advisory lock, so order holds across them.
Delivery is at least once; consumers are idempotent on `event_id`.
"""

import logging
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from nameko import config
from nameko.amqp.publish import Publisher
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from servicekit import bus, events, settings
from servicekit.background import WakeableLoop, request_wakeup
from servicekit.database import KitTables, make_engine
from servicekit.metrics import OUTBOX_FAILURES, OUTBOX_LAG, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)

_WAKE_FLAG = "outbox"


def record(session: Session, kit: KitTables, event_type: str, data: dict[str, Any]) -> dict:
    """Add an event to the outbox in `session`'s transaction; returns its envelope."""
    body = events.envelope(event_type, data)
    session.execute(
        kit.outbox.insert().values(event_id=body["event_id"], type=event_type, envelope=body)
    )
    request_wakeup(session, _WAKE_FLAG)
    return body


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
        self.publisher = Publisher(config["AMQP_URI"], retry=False)

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
            # Marking rows published need not wait for the disk: were it lost in a crash,
            # the rows would be published again, and consumers are idempotent anyway.
            if not conn.execute(
                text(
                    "select pg_try_advisory_xact_lock(:k), "
                    "set_config('synchronous_commit', 'off', true)"
                ),
                {"k": self.lock_key},
            ).scalar():
                return 0
            rows = conn.execute(
                select(outbox.c.id, outbox.c.envelope, outbox.c.created_at)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(self.batch)
            ).all()
            if not rows:
                return 0
            for row in rows:
                self.publisher.publish(
                    row.envelope,
                    exchange=bus.source_exchange(row.envelope["source"]),
                    routing_key=row.envelope["type"],
                    message_id=row.envelope["event_id"],
                    serializer="json",
                    delivery_mode=2,
                )
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
