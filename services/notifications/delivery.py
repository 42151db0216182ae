"""The courier: sends queued notifications outside the transactions that wrote them.

It wakes when this process commits a new notification, and polls every second
for the rest (retries coming due, rows written by other replicas). Replicas share the
work through `FOR UPDATE SKIP LOCKED`: a row is sent by one of them only. A failed
attempt is retried with exponential backoff (`NOTIFY_RETRY_SECONDS`, default 5, doubling);
after `NOTIFY_MAX_ATTEMPTS` (default 5) the notification is `failed`. Each final outcome
is announced (`notification_sent` / `notification_failed`) and counted.

Settings: NOTIFY_MAX_ATTEMPTS, NOTIFY_RETRY_SECONDS, NOTIFY_BATCH (default 10),
NOTIFY_GATHER_SECONDS (how long the courier, woken by a commit, waits for the commits of
that moment to join its round; default 0.05).
"""

import logging
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from servicekit import outbox, settings
from servicekit.background import WakeableLoop
from servicekit.database import make_engine, with_commit
from services.notifications import channels
from services.notifications.domain import retry_delay
from services.notifications.models import KIT
from services.notifications.notices import NOTIFICATIONS, QUEUED_FLAG

log = logging.getLogger(__name__)

DELIVERY_ATTEMPTS = Counter(
    "hotelcs_notifications_total",
    "Delivery attempts of notifications by kind, channel and outcome: sent, retried, failed.",
    ["kind", "channel", "outcome"],
)


def batch_size() -> int:
    return settings.int_setting("NOTIFY_BATCH", 10, minimum=1)


def max_attempts() -> int:
    return settings.int_setting("NOTIFY_MAX_ATTEMPTS", 5, minimum=1)


# A batch of due notifications, claimed as it is read: locked against the other replicas'
# couriers (SKIP LOCKED) and its attempt counted, in one statement.
_CLAIM = (
    update(NOTIFICATIONS)
    .where(
        NOTIFICATIONS.c.id.in_(
            select(NOTIFICATIONS.c.id)
            .where(
                NOTIFICATIONS.c.status == "queued",
                NOTIFICATIONS.c.next_attempt_at.is_not(None),
                NOTIFICATIONS.c.next_attempt_at <= bindparam("now"),
            )
            .order_by(NOTIFICATIONS.c.next_attempt_at, NOTIFICATIONS.c.id)
            .limit(bindparam("batch"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(attempts=NOTIFICATIONS.c.attempts + 1)
    .returning(*NOTIFICATIONS.c)
)
# the batch's sent notifications, written with the transaction's COMMIT
_SENT = (
    "update notifications set status = 'sent', sent_at = %s, next_attempt_at = null, "
    "last_error = null where id = any(%s)"
)


def deliver_due(session: Session, now: datetime | None = None) -> int:
    """Try every notification due now (a batch of them); how many were tried."""
    now = now or datetime.now(UTC)
    due = session.execute(_CLAIM, {"now": now, "batch": batch_size()}).all()
    due.sort(key=lambda notification: (notification.next_attempt_at, notification.id))
    sent = [notification for notification in due if attempt(session, notification)]
    if sent:
        mark_sent(session, sent)
        for notification in sent:
            DELIVERY_ATTEMPTS.labels(notification.kind, notification.channel, "sent").inc()
    session.commit()
    return len(due)


def attempt(session: Session, notification) -> bool:
    """One try at sending a claimed notification (a row of `_CLAIM`, its attempt counted);
    whether it was sent. If not, it is tried again later, or failed after the last try."""
    try:
        channels.deliver(notification)
    except Exception as exc:
        reason = exc.reason if isinstance(exc, channels.DeliveryFailed) else exc.__class__.__name__
        if notification.attempts >= max_attempts():
            outcome, status, next_attempt_at = "failed", "failed", None
            announce(session, notification, "notification_failed")
        else:
            base = settings.float_setting("NOTIFY_RETRY_SECONDS", 5.0, minimum=0)
            outcome, status = "retried", "queued"
            next_attempt_at = datetime.now(UTC) + retry_delay(notification.attempts, base)
        session.execute(
            update(NOTIFICATIONS)
            .where(NOTIFICATIONS.c.id == notification.id)
            .values(status=status, next_attempt_at=next_attempt_at, last_error=reason[:500])
        )
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
        DELIVERY_ATTEMPTS.labels(notification.kind, notification.channel, outcome).inc()
        return False
    return True


def mark_sent(session: Session, notifications: list) -> None:
    """Notifications sent (claimed rows of the courier's, or a call task an agent made):
    one UPDATE, with the transaction's COMMIT, and each announced."""
    with_commit(session, _SENT, (datetime.now(UTC), [n.id for n in notifications]))
    for notification in notifications:
        announce(session, notification, "notification_sent")


def announce(session: Session, notification, event_type: str) -> None:
    """The outcome as an event; `notification` is a `Notification` or a claimed row."""
    outbox.record(
        session,
        KIT,
        event_type,
        {
            "notification_id": notification.id,
            "kind": notification.kind,
            "channel": notification.channel,
            "guest_id": notification.guest_id,
            # whom the caller screen shows it to when there is no guest file
            "contact": {"phone": notification.contact_phone}
            if notification.contact_phone
            else None,
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
        # Under load a round per commit sent one or two notifications, each round a
        # transaction and a publish of its own; a moment's wait lets a round take them all.
        self.gather_seconds = settings.float_setting("NOTIFY_GATHER_SECONDS", 0.05, minimum=0)
        self.engine = make_engine(settings.database_url(self.owner), pool_size=2)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def work_round(self) -> bool:
        with self.sessions() as session:
            # a full batch: more may be due right away
            return deliver_due(session) == batch_size()

    def round_failed(self) -> None:
        log.warning("courier round failed; will retry", exc_info=True)
