"""The courier: sends queued notifications outside the transactions that wrote them.

It wakes at once when this process commits a new notification, and polls every second
for the rest (retries coming due, rows written by other replicas). Replicas share the
work through `FOR UPDATE SKIP LOCKED`: a row is sent by one of them only. A failed
attempt is retried with exponential backoff (`NOTIFY_RETRY_SECONDS`, default 5, doubling);
after `NOTIFY_MAX_ATTEMPTS` (default 5) the notification is `failed`. Each final outcome
is announced (`notification_sent` / `notification_failed`) and counted.

Settings: NOTIFY_MAX_ATTEMPTS, NOTIFY_RETRY_SECONDS, NOTIFY_BATCH (default 10).
"""

import logging
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from servicekit import outbox, settings
from servicekit.background import WakeableLoop
from servicekit.database import make_engine
from services.notifications import channels
from services.notifications.domain import retry_delay
from services.notifications.models import KIT, Notification
from services.notifications.notices import QUEUED_FLAG

log = logging.getLogger(__name__)

NOTIFICATIONS = Counter(
    "hotelcs_notifications_total",
    "Delivery attempts of notifications by kind, channel and outcome: sent, retried, failed.",
    ["kind", "channel", "outcome"],
)


def max_attempts() -> int:
    return settings.int_setting("NOTIFY_MAX_ATTEMPTS", 5)


def deliver_due(session: Session, now: datetime | None = None) -> int:
    """Try every notification due now (a batch of them); how many were tried."""
    now = now or datetime.now(UTC)
    due = session.scalars(
        select(Notification)
        .where(
            Notification.status == "queued",
            Notification.next_attempt_at.is_not(None),
            Notification.next_attempt_at <= now,
        )
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(settings.int_setting("NOTIFY_BATCH", 10))
        .with_for_update(skip_locked=True)
    ).all()
    for notification in due:
        attempt(session, notification)
    session.commit()
    return len(due)


def attempt(session: Session, notification: Notification) -> None:
    """One try at sending, and its consequence: sent, another try later, or failed."""
    notification.attempts += 1
    try:
        channels.deliver(notification)
    except Exception as exc:
        reason = exc.reason if isinstance(exc, channels.DeliveryFailed) else exc.__class__.__name__
        notification.last_error = reason[:500]
        if notification.attempts >= max_attempts():
            notification.status = "failed"
            notification.next_attempt_at = None
            announce(session, notification, "notification_failed")
            outcome = "failed"
        else:
            base = settings.float_setting("NOTIFY_RETRY_SECONDS", 5.0)
            notification.next_attempt_at = datetime.now(UTC) + retry_delay(
                notification.attempts, base
            )
            outcome = "retried"
        log.warning(
            "notification not delivered",
            extra={
                "notification_id": notification.id,
                "channel": notification.channel,
                "attempt": notification.attempts,
                "outcome": outcome,
                "reason": reason,
            },
        )
    else:
        mark_sent(session, notification)
        outcome = "sent"
    NOTIFICATIONS.labels(notification.kind, notification.channel, outcome).inc()


def mark_sent(session: Session, notification: Notification) -> None:
    notification.status = "sent"
    notification.sent_at = datetime.now(UTC)
    notification.next_attempt_at = None
    notification.last_error = None
    announce(session, notification, "notification_sent")


def announce(session: Session, notification: Notification, event_type: str) -> None:
    outbox.record(
        session,
        KIT,
        event_type,
        {
            "notification_id": notification.id,
            "kind": notification.kind,
            "channel": notification.channel,
            "guest_id": notification.guest_id,
            "ref": notification.ref,
            "subject": notification.subject,
            "at": datetime.now(UTC),
        },
    )


class Courier(WakeableLoop):
    """Runs the courier in the service's container. Declare it on the service class::

    class NotificationsService:
        courier = Courier("notifications")
    """

    wake_flag = QUEUED_FLAG

    def setup(self):
        self.engine = make_engine(settings.database_url(self.owner), pool_size=2)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def work_round(self) -> bool:
        with self.sessions() as session:
            return bool(deliver_due(session))

    def round_failed(self) -> None:
        log.warning("courier round failed; will retry", exc_info=True)
