"""The notifications service's entrypoints: it listens to the suite's events and writes
the messages they call for; the courier sends them; a daily timer greets birthdays.

Settings: HOTEL_LANGUAGE (staff notices, default es), HOTEL_BIRTHDAY_TIME (default 09:00,
in HOTEL_TZ), and the channels' (see `channels.py`) and the courier's (see `delivery.py`).
"""

from datetime import UTC, date, datetime

from nameko.timer import timer
from sqlalchemy import select

from servicekit import errors, pages, settings
from servicekit.bus import subscribe
from servicekit.checked_settings import CheckedSettings
from servicekit.cpu_share import CpuShare
from servicekit.database import Database
from servicekit.events import Event
from servicekit.heap import SteadyHeap
from servicekit.idempotency import handle_each_once, handle_once, handle_once_by_key
from servicekit.metrics import JOB_RUNS, HealthRpc, Metrics, TurnLag
from servicekit.outbox import OutboxRelay
from servicekit.rpc import rpc
from services.notifications import channels, delivery, notices
from services.notifications.delivery import Courier, mark_sent
from services.notifications.domain import CHANNELS, KINDS, STATUSES, greeting_day
from services.notifications.models import KIT, Notification

JOBS = ("birthday-greetings",)


class NotificationsService(HealthRpc):
    name = "notifications"

    db = Database("notifications")
    relay = OutboxRelay("notifications", KIT)
    heap = SteadyHeap()
    turn_lag = TurnLag()
    cpu_share = CpuShare()
    settings_checked = CheckedSettings(
        delivery.batch_size, delivery.max_attempts, channels.send_timeout
    )
    courier = Courier("notifications")
    metrics = Metrics("notifications")

    # --- projections ----------------------------------------------------------------

    @subscribe("staff_registered")
    def staff_registered(self, events: list[Event]):
        """`{"staff_id": 4, "username": "lucia", "role": "director",
        "department": "housekeeping", "email": "lucia@hotel.es", ...}`"""
        self._handle(events, notices.project_staff)

    @subscribe("staff_updated")
    def staff_updated(self, events: list[Event]):
        self._handle(events, notices.project_staff)

    @subscribe("guest_registered")
    def guest_registered(self, events: list[Event]):
        """`{"guest_id": 12, "name": "Ana Ruiz", "phone": "+34600111222",
        "email": "ana@example.es", "birthday": "1990-05-17", "language": "es", ...}`"""
        self._handle(events, notices.project_guest)

    @subscribe("guest_updated")
    def guest_updated(self, events: list[Event]):
        self._handle(events, notices.project_guest)

    # --- events that call for a message ---------------------------------------------

    # A booking's messages gather: the agent has read the booking back on the phone, and
    # the written copy that follows is the same a few hundredths of a second later. A
    # complaint's messages do not: the receipt is what tells the guest it was taken.
    @subscribe("reservation_held", gather=True)
    def reservation_held(self, events: list[Event]):
        """The read-back to the guest: `{"reservation_id": 7, "code": "R7K2", "guest_id": 12,
        "readback": "...", "hold_until": "...", "contact": {"email": ...}, "language": "es"}`"""
        self._notify(events, to_the_guest_named=True)

    @subscribe("reservation_released", gather=True)
    def reservation_released(self, events: list[Event]):
        self._notify(events, to_the_guest_named=True)

    @subscribe("reservation_cancelled", gather=True)
    def reservation_cancelled(self, events: list[Event]):
        self._notify(events, to_the_guest_named=True)

    @subscribe("complaint_filed")
    def complaint_filed(self, events: list[Event]):
        """The receipt with the tracking code, to the guest or the complaint's contact."""
        self._notify(events, to_the_guest_named=True)

    @subscribe("complaint_dispatched")
    def complaint_dispatched(self, events: list[Event]):
        self._notify(events)

    @subscribe("complaint_escalated")
    def complaint_escalated(self, events: list[Event]):
        """To the department's director: `{"complaint_id": 5, "department": "housekeeping",
        "owner": {"kind": "staff", "id": 4, "role": "director", ...}, "reason": "..."}`"""
        self._notify(events)

    @subscribe("complaint_reported")
    def complaint_reported(self, events: list[Event]):
        """The department's answer, to the guest or contact, as the dispatch notice said."""
        self._notify(events)

    @subscribe("complaint_resolved")
    def complaint_resolved(self, events: list[Event]):
        self._notify(events)

    @subscribe("response_promised")
    def response_promised(self, events: list[Event]):
        """With `"reminder": true`, a reminder to the department's manager."""
        self._notify(events)

    @subscribe("item_signed_off")
    def item_signed_off(self, events: list[Event]):
        self._notify(events)

    def _handle(self, events: list[Event], effect) -> None:
        handle_each_once(self.db, KIT, events, effect)

    def _notify(self, events: list[Event], to_the_guest_named: bool = False) -> None:
        """Write the notifications `events` call for. A notification is unique per event and
        recipient (`dedupe_key`); where the recipient is the guest or contact the event
        itself names (`to_the_guest_named`), a repeated event finds its notification
        written and writes nothing, so the batch is marked handled with its COMMIT
        (`handle_once_by_key`, a round trip fewer). Others (a department's director, read
        from the staff list) could be someone else by the second delivery: `handle_once`
        ignores a repeat whole."""

        def write(session, fresh):
            # the batch's guests in one read: each draft then finds its guest in the session,
            # which holds them only while something else does
            on_file = notices.guests_of(session, fresh)
            notices.issue_all(
                session,
                [
                    (str(event.event_id), event.event_id, notices.drafts_for(session, event))
                    for event in fresh
                ],
                channels.configured(),
                datetime.now(UTC),
            )
            del on_file

        (handle_once_by_key if to_the_guest_named else handle_once)(self.db, KIT, events, write)

    # --- birthdays ------------------------------------------------------------------

    @timer(interval=60)
    def birthday_greetings_due(self):
        """Once the day's HOTEL_BIRTHDAY_TIME has passed, greet today's birthdays. It runs
        every minute in every replica; a greeting is written once per guest and year."""
        day = greeting_day(datetime.now(settings.hotel_tz()), settings.birthday_time())
        if day is not None:
            self.greet_birthdays(day)

    def greet_birthdays(self, day: date) -> int:
        with self.db.begin():
            written = notices.issue(
                self.db,
                notices.birthday_drafts(self.db, day),
                notices.birthday_cause(day.year),
                channels.configured(),
                datetime.now(UTC),
            )
        JOB_RUNS.labels(self.name, "birthday-greetings").inc(len(written))
        return len(written)

    @rpc(expected_exceptions=errors.EXPECTED)
    def run_job(self, job: str, options: dict | None = None) -> dict:
        """`run_job("birthday-greetings", {"date": "2026-05-17"})` ->
        `{"job": "birthday-greetings", "date": "2026-05-17", "greeted": 3}`"""
        if job not in JOBS:
            raise errors.NotFound(f"no job called {job} here")
        options = options or {}
        unknown = set(options) - {"date"}
        if unknown:
            raise errors.ValidationFailed.on(sorted(unknown)[0], "unknown field")
        day = _date_option(options.get("date"))
        return {"job": job, "date": day.isoformat(), "greeted": self.greet_birthdays(day)}

    # --- reading and acting ---------------------------------------------------------

    @rpc(expected_exceptions=errors.EXPECTED)
    def list_notifications(
        self,
        guest_id: int | None = None,
        kind: str | None = None,
        status: str | None = None,
        channel: str | None = None,
        limit: int = pages.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> dict:
        """Newest first: `{"items": [{"id": 9, "kind": "complaint_received", "channel":
        "email", "to": "ana@example.es", "status": "sent", "attempts": 1, ...}], "next": null}`"""
        for field, value, allowed in (
            ("kind", kind, KINDS),
            ("status", status, STATUSES),
            ("channel", channel, CHANNELS),
        ):
            if value is not None and value not in allowed:
                raise errors.ValidationFailed.on(field, f"must be one of {', '.join(allowed)}")
        if not 1 <= limit <= pages.MAX_LIMIT:
            raise errors.ValidationFailed.on("limit", f"must be 1 to {pages.MAX_LIMIT}")
        after = pages.decode_cursor(cursor, int)
        query = select(Notification).order_by(Notification.id.desc()).limit(limit + 1)
        for column, value in (
            (Notification.guest_id, guest_id),
            (Notification.kind, kind),
            (Notification.status, status),
            (Notification.channel, channel),
        ):
            if value is not None:
                query = query.where(column == value)
        if after is not None:
            query = query.where(Notification.id < after)
        rows = self.db.scalars(query).all()
        return pages.page(rows, limit, key=lambda n: n.id, dump=dump)

    @rpc(expected_exceptions=errors.EXPECTED)
    def complete_call(self, notification_id: int, actor: dict | None = None) -> dict:
        """An agent made the call a `phone` notification asked for: it is now `sent`."""
        with self.db.begin():
            notification = self.db.get(Notification, notification_id, with_for_update=True)
            if notification is None:
                raise errors.NotFound(f"no notification {notification_id}")
            if notification.channel != "phone" or notification.status != "queued":
                raise errors.InvalidState("only a queued call task can be completed")
            notification.attempts += 1
            mark_sent(self.db, [notification])
        self.db.refresh(notification)  # as the UPDATE sent with the COMMIT left it
        return dump(notification)


def dump(n: Notification) -> dict:
    return {
        "id": n.id,
        "kind": n.kind,
        "channel": n.channel,
        "to": n.to,
        "status": n.status,
        "attempts": n.attempts,
        "subject": n.subject,
        "body": n.body,
        "language": n.language,
        "guest_id": n.guest_id,
        "staff_id": n.staff_id,
        "ref": n.ref,
        "last_error": n.last_error,
        "next_attempt_at": n.next_attempt_at.isoformat() if n.next_attempt_at else None,
        "created_at": n.created_at.isoformat(),
        "sent_at": n.sent_at.isoformat() if n.sent_at else None,
    }


def _date_option(value) -> date:
    if value is None:
        return datetime.now(settings.hotel_tz()).date()
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise errors.ValidationFailed.on("date", "must be a date, YYYY-MM-DD") from None
