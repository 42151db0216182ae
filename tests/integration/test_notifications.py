"""The notifications service on the real bus and database, sending to real providers
started by the tests: an SMTP server (aiosmtpd) and an HTTP SMS/fax provider."""

import email
import json
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import eventlet
import pytest
from aiosmtpd.controller import Controller
from nameko.standalone.rpc import ClusterRpcClient
from nameko.testing.services import entrypoint_hook
from nameko.testing.utils import get_container
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session

from servicekit import errors, settings
from servicekit.events import envelope
from services.notifications import notices
from services.notifications.delivery import DELIVERY_ATTEMPTS
from services.notifications.domain import Channels, Draft, Recipient
from services.notifications.service import NotificationsService
from tests import support
from tests.support import wait_for

HOLD_UNTIL = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """What the test SMTP server received, as parsed messages."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope_):
        self.messages.append(email.message_from_bytes(envelope_.content, policy=policy.default))
        return "250 OK"

    def to(self, address):
        return [m for m in self.messages if m["To"] == address]


class Provider:
    """The test SMS/fax provider: records each POST; fails for some numbers on purpose."""

    def __init__(self):
        self.received = []
        self.failures_left = {}  # number -> how many times to refuse it (-1: always)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                left = provider.failures_left.get(payload["to"], 0)
                if left:
                    provider.failures_left[payload["to"]] = left - 1
                    self.send_response(503)
                else:
                    provider.received.append((self.path, payload))
                    self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path, number):
        return [p for (where, p) in self.received if where == path and p["to"] == number]


@pytest.fixture
def mailbox(monkeypatch):
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_FROM", "guestservices@hotel.test")
    yield box
    controller.stop()


@pytest.fixture
def provider(monkeypatch):
    server = Provider()
    monkeypatch.setenv("SMS_WEBHOOK_URL", server.url + "/sms")
    monkeypatch.setenv("FAX_WEBHOOK_URL", server.url + "/fax")
    yield server
    server.server.shutdown()


@pytest.fixture
def notifications(start_services, monkeypatch):
    monkeypatch.setenv("NOTIFY_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("NOTIFY_RETRY_SECONDS", "0.1")
    monkeypatch.setenv("HOTEL_LANGUAGE", "es")
    start_services(NotificationsService)
    with ClusterRpcClient() as rpc:
        yield rpc.notifications


def publish(event_type, data, event_id=None) -> dict:
    """Put one event on the real bus, as its publishing service's outbox would."""
    body = envelope(event_type, data, event_id=event_id)
    support.publish(body)
    return body


def redeliver(body: dict) -> None:
    """The same event delivered once more (same event_id)."""
    publish(body["type"], body["data"], event_id=uuid.UUID(body["event_id"]))


def query(sql: str, **params) -> list:
    engine = create_engine(settings.database_url("notifications"))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def notifications_of(rpc, **filters) -> list[dict]:
    return rpc.list_notifications(**filters)["items"]


def guest(guest_id, name, phone, email=None, language="es", birthday=None) -> dict:
    return {
        "guest_id": guest_id,
        "file_number": f"261124{guest_id:03d}",
        "category": "individual",
        "name": name,
        "phone": phone,
        "email": email,
        "birthday": birthday,
        "language": language,
        "arrival_date": "2026-11-24",
    }


def complaint(complaint_id, guest_id=None, contact=None, channel="phone", **extra) -> dict:
    return {
        "complaint_id": complaint_id,
        "tracking_code": f"TRK-{complaint_id:04d}",
        "guest_id": guest_id,
        "contact": contact,
        "language": extra.pop("language", None),
        "department": "housekeeping",
        "owner": {"kind": "role", "role": "manager", "department": "housekeeping"},
        "at": datetime.now(UTC),
        "channel": channel,
        "category": "room",
        "summary": "towels",
        "received_at": datetime.now(UTC),
        "due_at": datetime(2026, 11, 24, 23, 59, tzinfo=UTC),
        **extra,
    }


def test_messages_reach_guests_and_staff_by_email_sms_and_fax_in_their_language_once(
    notifications, mailbox, provider
):
    publish("guest_registered", guest(1, "Ana Ruiz", "+34600111222", "ana@example.es"))
    publish("guest_registered", guest(2, "John Smith", "+447700900123", language="en"))
    publish(
        "staff_registered",
        {
            "staff_id": 7,
            "username": "dolores",
            "name": "Dolores Vidal",
            "role": "director",
            "department": "housekeeping",
            "email": "dolores@hotel.test",
            "phone": None,
        },
    )
    publish(
        "staff_registered",
        {
            "staff_id": 3,
            "username": "marco",
            "name": "Marco Leal",
            "role": "manager",
            "department": "food_beverage",
            "email": "marco@hotel.test",
            "phone": None,
        },
    )
    wait_for(lambda: len(query("select 1 from guests")) == 2)
    wait_for(lambda: len(query("select 1 from staff_members")) == 2)

    # the reservation's read-back, by email, in Spanish; delivered twice, sent once
    held = publish(
        "reservation_held",
        {
            "reservation_id": 31,
            "code": "R31X",
            "guest_id": 1,
            "room_type": "DBL",
            "room_type_name": "Doble superior",
            "arrival": "2026-11-24",
            "nights": 2,
            "rooms": 1,
            "total_price": "240.00",
            "currency": "EUR",
            "payment_method": "cash",
            "hold_until": HOLD_UNTIL,
            "contact": {"email": "ana@example.es"},
            "language": "es",
            "readback": "Ana Ruiz, Doble superior, llegada 2026-11-24, 2 noches, 240.00 EUR",
        },
    )
    redeliver(held)
    letter = wait_for(lambda: mailbox.to("ana@example.es"))[0]
    assert letter["Subject"] == "Su reserva R31X está confirmada"
    assert letter["From"] == "guestservices@hotel.test"
    assert "llegada 2026-11-24, 2 noches" in letter.get_content()
    # the read-back says until when the room is held; the letter does not say it twice
    assert "Así se la leímos por teléfono" in letter.get_content()
    assert "Le guardamos" not in letter.get_content()
    # cancelled: told where and in the language the booking said, not as the file says
    booking_ended = {
        key: held["data"][key]
        for key in ("reservation_id", "code", "guest_id", "room_type", "arrival", "nights")
    }
    publish(
        "reservation_cancelled",
        {
            **booking_ended,
            "rooms": 1,
            "total_price": "240.00",
            "currency": "EUR",
            "hold_until": HOLD_UNTIL,
            "at": datetime.now(UTC),
            "contact": {"name": "Ana Ruiz", "phone": None, "email": "ana.office@example.com"},
            "language": "en",
        },
    )
    cancelled = wait_for(lambda: mailbox.to("ana.office@example.com"))[0]
    assert "R31X" in cancelled["Subject"] and "cancel" in cancelled["Subject"].lower()

    # a complaint by instant message: the receipt with its tracking code by SMS, in English
    publish("complaint_filed", complaint(5, guest_id=2, channel="im"))
    sms = wait_for(lambda: provider.to("/sms", "+447700900123"))[0]
    assert sms["subject"] == "We have received your complaint (TRK-0005)"
    assert "TRK-0005" in sms["text"] and "housekeeping department" in sms["text"]

    # a complaint by fax from someone who is not a guest: answered by fax
    contact = {"name": "Marta Gil", "phone": "+34911222333", "email": None}
    filed = publish("complaint_filed", complaint(6, contact=contact, channel="fax", language="es"))
    redeliver(filed)  # its receipt is still sent once
    fax = wait_for(lambda: provider.to("/fax", "+34911222333"))[0]
    assert fax["subject"] == "Hemos recibido su queja (TRK-0006)"
    assert fax["text"].startswith("Estimado/a Marta Gil:")
    # ...and its resolution goes the same way
    publish("complaint_resolved", complaint(6, contact=contact, result="Toallas cambiadas."))
    wait_for(lambda: len(provider.to("/fax", "+34911222333")) == 2)

    # not resolved in time: the department's director hears, in the hotel's language
    escalated = publish(
        "complaint_escalated",
        complaint(
            5,
            guest_id=2,
            owner={"kind": "staff", "id": 7, "role": "director", "department": "housekeeping"},
            reason="sin resolver al final del día",
        ),
    )
    redeliver(escalated)
    notice = wait_for(lambda: mailbox.to("dolores@hotel.test"))[0]
    assert notice["Subject"] == "Queja TRK-0005 escalada a usted (pisos)"

    # a response promised on a revisit: the department's manager is reminded when it is due
    promise = {
        "revisit_id": 9,
        "guest_id": 1,
        "department": "food_beverage",
        "text": "¿Tienen menú sin gluten?",
        "respond_by": datetime.now(UTC) + timedelta(hours=2),
        "at": datetime.now(UTC),
    }
    publish("response_promised", promise)  # the promise itself: the guest heard it on the call
    publish("response_promised", {**promise, "reminder": True})
    reminder = wait_for(lambda: mailbox.to("marco@hotel.test"))[0]
    assert reminder["Subject"].startswith("Respuesta prometida a un huésped")
    assert "¿Tienen menú sin gluten?" in reminder.get_content()
    [due] = notifications_of(notifications, kind="response_due")
    assert (due["ref"], due["staff_id"], due["guest_id"]) == ("revisit:9", 3, None)

    wait_for(lambda: len(notifications_of(notifications, status="sent")) == 7)
    assert len(notifications_of(notifications, kind="reservation_held")) == 1
    assert len(notifications_of(notifications, kind="complaint_escalated")) == 1
    [receipt] = notifications_of(notifications, guest_id=2, kind="complaint_received")
    assert receipt["channel"] == "sms" and receipt["to"] == "+447700900123"
    assert receipt["ref"] == "complaint:5" and receipt["attempts"] == 1
    assert receipt["sent_at"] and receipt["created_at"] <= receipt["sent_at"]
    # the guests service hears of each message sent
    announced = query("select envelope from outbox where type = 'notification_sent'")
    assert len(announced) == 7
    # a message to a complaint's contact names them by phone (the caller screen's key)
    to_contacts = [e["data"]["contact"] for (e,) in announced if e["data"]["contact"]]
    assert to_contacts == [{"phone": "+34911222333"}] * 2
    assert len(mailbox.to("ana@example.es")) == 1
    assert len(mailbox.to("dolores@hotel.test")) == 1
    assert len(provider.to("/fax", "+34911222333")) == 2  # the receipt and the resolution


@pytest.fixture
def gathering_two_seconds(monkeypatch):
    # wide enough for the three bookings below (published about 0.15 s apart, each on a
    # fresh connection) to meet in one batch however slow the machine
    monkeypatch.setenv("EVENT_GATHER_SECONDS", "2")


def test_a_bookings_messages_are_written_together_a_complaints_each_at_once(
    gathering_two_seconds, notifications
):
    for guest_id in (1, 2, 3):
        publish("guest_registered", guest(guest_id, f"Guest {guest_id}", f"+3460011122{guest_id}"))
    wait_for(lambda: len(query("select 1 from guests")) == 3)

    for guest_id in (1, 2, 3):
        publish(
            "reservation_held",
            {
                "reservation_id": 40 + guest_id,
                "code": f"R{40 + guest_id}X",
                "guest_id": guest_id,
                "room_type": "DBL",
                "room_type_name": "Doble superior",
                "arrival": "2026-11-24",
                "nights": 1,
                "rooms": 1,
                "total_price": "120.00",
                "currency": "EUR",
                "payment_method": "cash",
                "hold_until": HOLD_UNTIL,
                "contact": {"phone": f"+3460011122{guest_id}"},
                "language": "es",
                "readback": "...",
            },
        )
        publish("complaint_filed", complaint(40 + guest_id, guest_id=guest_id))
        eventlet.sleep(0.1)

    def written_at(kind: str) -> set:
        return {n["created_at"] for n in notifications_of(notifications, kind=kind)}

    wait_for(lambda: len(notifications_of(notifications)) == 6)
    # one transaction (its clock is the rows' created_at) for the three bookings' messages,
    # one for each complaint's receipt
    assert len(written_at("reservation_held")) == 1
    assert len(written_at("complaint_received")) == 3


def test_a_failing_provider_is_retried_until_it_recovers_or_the_last_attempt(
    notifications, provider
):
    publish("guest_registered", guest(1, "Ana Ruiz", "+34600111222"))
    publish("guest_registered", guest(2, "Luis Mora", "+34600333444"))
    wait_for(lambda: len(query("select 1 from guests")) == 2)
    provider.failures_left = {"+34600111222": 2, "+34600333444": -1}
    failed_before = DELIVERY_ATTEMPTS.labels("complaint_received", "sms", "failed")._value.get()

    publish("complaint_filed", complaint(1, guest_id=1, channel="ivr"))
    publish("complaint_filed", complaint(2, guest_id=2, channel="ivr"))

    [recovered] = wait_for(lambda: notifications_of(notifications, guest_id=1, status="sent"))
    assert recovered["attempts"] == 3 and recovered["channel"] == "sms"
    assert len(provider.to("/sms", "+34600111222")) == 1

    [lost] = wait_for(lambda: notifications_of(notifications, guest_id=2, status="failed"))
    assert lost["attempts"] == 3 and lost["last_error"] == "provider answered 503"
    assert provider.to("/sms", "+34600333444") == []
    after = DELIVERY_ATTEMPTS.labels("complaint_received", "sms", "failed")._value.get()
    assert after == failed_before + 1
    [failure] = query("select envelope from outbox where type = 'notification_failed'")
    assert failure.envelope["data"]["notification_id"] == lost["id"]
    assert failure.envelope["data"]["guest_id"] == 2


def test_birthdays_are_greeted_once_a_year_in_the_guests_language(notifications, mailbox):
    publish(
        "guest_registered",
        guest(1, "Ana Ruiz", "+34600111222", "ana@example.es", "es", "1990-05-17"),
    )
    publish(
        "guest_registered",
        guest(2, "John Smith", "+447700900123", "john@example.com", "en", "1985-05-17"),
    )
    publish("guest_registered", guest(3, "Leap Day", "+34600555666", None, "es", "2000-02-29"))
    publish(
        "guest_registered",
        guest(4, "Not Today", "+34600777888", "no@example.es", "es", "1990-05-18"),
    )
    wait_for(lambda: len(query("select 1 from guests")) == 4)

    first = notifications.run_job("birthday-greetings", {"date": "2026-05-17"})
    again = notifications.run_job("birthday-greetings", {"date": "2026-05-17"})
    assert first == {"job": "birthday-greetings", "date": "2026-05-17", "greeted": 2}
    assert again["greeted"] == 0

    wait_for(lambda: mailbox.to("ana@example.es") and mailbox.to("john@example.com"))
    assert mailbox.to("ana@example.es")[0]["Subject"] == "¡Feliz cumpleaños, Ana Ruiz!"
    assert mailbox.to("john@example.com")[0]["Subject"] == "Happy birthday, John Smith!"
    assert mailbox.to("no@example.es") == []

    # 29 February is celebrated on the 28th in a common year; without email, in the log
    leap = notifications.run_job("birthday-greetings", {"date": "2026-02-28"})
    assert leap["greeted"] == 1
    [greeting] = notifications_of(notifications, guest_id=3)
    assert (greeting["channel"], greeting["to"]) == ("log", "guest 3")
    wait_for(lambda: notifications_of(notifications, guest_id=3, status="sent"))

    # next year is another greeting
    assert notifications.run_job("birthday-greetings", {"date": "2027-05-17"})["greeted"] == 2
    assert len(notifications_of(notifications, kind="birthday")) == 5

    with pytest.raises(errors.ValidationFailed) as bad:
        notifications.run_job("birthday-greetings", {"date": "17/05/2026"})
    assert "date" in bad.value.details


def test_the_daily_timer_greets_the_hotels_today_once_its_time_has_come(
    start_services, monkeypatch
):
    """The timer's own entrypoint, as nameko fires it every minute: nothing before
    HOTEL_BIRTHDAY_TIME, then today's birthdays (today in HOTEL_TZ) greeted once."""
    # a zone where it is now early morning, so a greeting time three hours ahead is still today
    utc_hour = datetime.now(UTC).hour
    behind = next(h for h in range(-14, 13) if 2 <= (utc_hour - h) % 24 <= 6)
    zone = ZoneInfo(f"Etc/GMT{behind:+d}")  # POSIX sign: GMT+5 is five hours behind
    monkeypatch.setenv("HOTEL_TZ", zone.key)
    local_now = datetime.now(zone)
    monkeypatch.setenv("HOTEL_BIRTHDAY_TIME", f"{local_now.hour + 3:02d}:00")
    container = get_container(start_services(NotificationsService), NotificationsService)
    today, tomorrow = local_now.date(), local_now.date() + timedelta(days=1)
    publish(
        "guest_registered", guest(1, "Born Today", "+34600111222", birthday=f"2000-{today:%m-%d}")
    )
    publish(
        "guest_registered",
        guest(2, "Born Tomorrow", "+34600333444", birthday=f"2000-{tomorrow:%m-%d}"),
    )
    wait_for(lambda: len(query("select 1 from guests")) == 2)

    def greetings() -> list:
        return query("select guest_id from notifications where kind = 'birthday'")

    with entrypoint_hook(container, "birthday_greetings_due") as tick:
        tick()
        assert greetings() == []
        monkeypatch.setenv("HOTEL_BIRTHDAY_TIME", f"{local_now.hour - 1:02d}:00")
        tick()
        tick()
    assert greetings() == [(1,)]


def test_one_notification_per_cause_and_recipient_even_past_the_inbox(clean_databases):
    """The unique dedupe key holds on its own, whatever the event inbox lets through."""
    ana = Recipient("guest:1", "guest 1", name="Ana", email="ana@example.es", guest_id=1)
    luis = Recipient("guest:2", "guest 2", name="Luis", guest_id=2)
    engine = create_engine(settings.database_url("notifications"))
    written = []
    for recipients in ([ana], [ana, luis], [luis]):
        with Session(engine) as session, session.begin():
            drafts = [Draft("birthday", r, {"name": r.name}) for r in recipients]
            written.append(
                notices.issue(session, drafts, "ev-1", Channels(email=True), datetime.now(UTC))
            )
    assert [len(ids) for ids in written] == [1, 1, 0]
    rows = query('select channel, "to" from notifications order by id')
    assert [tuple(r) for r in rows] == [("email", "ana@example.es"), ("log", "guest 2")]

    # a batch of causes: one statement, which skips a cause written before and a cause
    # repeated within the batch
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with Session(engine) as session, session.begin():
        batch = notices.issue_all(
            session,
            [
                ("ev-1", None, [Draft("birthday", luis, {"name": "Luis"})]),
                ("ev-2", None, [Draft("birthday", luis, {"name": "Luis"})]),
                ("ev-2", None, [Draft("birthday", luis, {"name": "Luis"})]),
                ("ev-3", None, [Draft("birthday", r, {"name": r.name}) for r in (ana, luis)]),
            ],
            Channels(email=True),
            datetime.now(UTC),
        )
    engine.dispose()
    assert len(batch) == 3
    assert len([s for s in statements if "INSERT INTO notifications" in s]) == 1
    rows = query("select dedupe_key from notifications where id in :ids", ids=tuple(batch))
    assert sorted(r.dedupe_key for r in rows) == ["ev-2/guest:2", "ev-3/guest:1", "ev-3/guest:2"]


def test_many_notifications_at_once_are_written_in_parts(clean_databases, monkeypatch):
    """A day's birthdays come thousands at once: they are rendered and written a part at a
    time, so a process never holds them all."""
    monkeypatch.setattr(notices, "ISSUED_TOGETHER", 2)
    engine = create_engine(settings.database_url("notifications"))
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    guests = [Recipient(f"guest:{n}", f"guest {n}", name=f"G{n}", guest_id=n) for n in range(5)]
    with Session(engine) as session, session.begin():
        written = notices.issue(
            session,
            [Draft("birthday", g, {"name": g.name}) for g in guests],
            "birthday:2026",
            Channels(),
            datetime.now(UTC),
        )
    engine.dispose()
    assert len(written) == 5
    assert len([s for s in statements if "INSERT INTO notifications" in s]) == 3


def test_two_replicas_send_each_notification_once(notifications, provider, container_factory):
    container_factory(NotificationsService).start()
    publish("guest_registered", guest(1, "Ana Ruiz", "+34600111222"))
    wait_for(lambda: query("select 1 from guests"))
    for complaint_id in range(1, 31):
        publish("complaint_filed", complaint(complaint_id, guest_id=1, channel="im"))

    wait_for(lambda: len(notifications_of(notifications, status="sent")) == 30)
    sent_ids = sorted(p["id"] for p in provider.to("/sms", "+34600111222"))
    assert sent_ids == sorted({n["id"] for n in notifications_of(notifications)})
    assert len(sent_ids) == 30
    assert {n["attempts"] for n in notifications_of(notifications)} == {1}


def test_a_dispatch_a_sign_off_and_a_missed_hold_each_tell_the_guest_once(notifications, mailbox):
    publish("guest_registered", guest(1, "Ana Ruiz", "+34600111222", "ana@example.es"))
    wait_for(lambda: len(query("select 1 from guests")) == 1)

    dispatched = publish("complaint_dispatched", complaint(7, guest_id=1, dispatch_order_id=3))
    redeliver(dispatched)
    publish(
        "item_signed_off",
        {
            "revisit_id": 9,
            "item_id": 4,
            "guest_id": 1,
            "department": "housekeeping",
            "result": "Le esperan almohadas extra en su próxima visita.",
            "signed_by": {"id": 3, "username": "marco"},
            "at": datetime.now(UTC),
        },
    )
    # released as a no-show, told as the guest's file says (no booking contact in this one)
    publish(
        "reservation_released",
        {
            "reservation_id": 32,
            "code": "R32Y",
            "guest_id": 1,
            "room_type": "DBL",
            "arrival": "2026-11-24",
            "nights": 1,
            "rooms": 1,
            "total_price": "120.00",
            "currency": "EUR",
            "hold_until": HOLD_UNTIL,
            "at": HOLD_UNTIL,
        },
    )
    letters = wait_for(
        lambda: (found := mailbox.to("ana@example.es")) and len(found) >= 3 and found
    )
    subjects = sorted(letter["Subject"] for letter in letters)
    assert subjects == [
        "Respuesta a lo que nos comentó",
        "Su queja TRK-0007 está en manos de pisos",
        "Su reserva R32Y ha sido liberada",
    ]
    signed = next(m for m in letters if m["Subject"] == "Respuesta a lo que nos comentó")
    assert "almohadas extra" in signed.get_content()
    wait_for(lambda: len(notifications_of(notifications, status="sent")) == 3)
    assert len(mailbox.to("ana@example.es")) == 3  # the redelivered dispatch: still one letter
