"""The caller screen's projection, fed real envelopes over the real bus (as the
reservations, complaints, revisits and notifications services publish them), read back
through the gateway; and the guests service's own events leaving through its outbox."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kombu import Connection, Queue
from nameko import config

from servicekit import bus, events
from tests.support import Api, publish, wait_for

NOW = datetime.now(UTC).replace(microsecond=0)
GUEST_PHONE = "+34600112233"
STRANGER_PHONE = "+34699000000"


@pytest.fixture
def api(start_services, suite_config):
    from gateway.service import GatewayService
    from services.guests.service import GuestsService

    start_services(GatewayService, GuestsService)
    return Api(f"http://127.0.0.1:{suite_config['port']}").as_role("agent")


def reservation_held(guest_id: int, reservation_id: int = 7) -> dict:
    return events.envelope(
        "reservation_held",
        {
            "reservation_id": reservation_id,
            "code": "RSV-7",
            "guest_id": guest_id,
            "room_type": "DLX",
            "room_type_name": "Deluxe",
            "arrival": "2026-12-01",
            "nights": 2,
            "rooms": 1,
            "total_price": "240.00",
            "currency": "EUR",
            "payment_method": "cash",
            "hold_until": NOW + timedelta(days=7),
            "contact": {"phone": GUEST_PHONE},
            "language": "es",
            "readback": "...",
        },
    )


def complaint(event_type: str, complaint_id: int, phone: str, at: datetime, **extra) -> dict:
    data = {
        "complaint_id": complaint_id,
        "tracking_code": f"TRK-{complaint_id}",
        "guest_id": None,  # taken from a contact: only the phone says who it is
        "contact": {"name": "Caller", "phone": phone},
        "department": "housekeeping",
        "owner": {"kind": "role", "role": "manager", "department": "housekeeping"},
        "at": at,
        **extra,
    }
    if event_type == "complaint_filed":
        data |= {
            "channel": "phone",
            "category": "cleanliness",
            "summary": "Towels not changed",
            "received_at": at,
            "due_at": at + timedelta(hours=8),
        }
    return events.envelope(event_type, data)


def screen(api: Api, phone: str) -> dict:
    answer = api.get(f"/callers/{phone}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_caller_screen_shows_what_the_other_services_publish(api):
    guest = api.post(
        "/guests", {"name": "Lucía Pérez", "phone": "600 11 22 33", "category": "vip"}
    ).json()

    held = reservation_held(guest["id"])
    filed = complaint("complaint_filed", 1, "600 112 233", NOW - timedelta(hours=1))
    # delivered twice, as at-least-once delivery may do: still one line
    publish(held, held, filed)
    shown = wait_for(lambda: (s := screen(api, GUEST_PHONE)) and len(s["history"]) >= 2 and s)
    assert shown["guest"]["id"] == guest["id"] and shown["vip"] is True
    assert [(h["kind"], h["ref"]) for h in shown["history"]] == [
        ("reservation", "reservations/7"),  # newest first
        ("complaint", "complaints/1"),
    ]
    assert "RSV-7" in shown["history"][0]["summary"]
    [open_complaint] = shown["open"]["complaints"]
    assert open_complaint["tracking_code"] == "TRK-1" and open_complaint["status"] == "open"

    # the complaint goes its way; a promise is made in a revisit, then kept
    promised = events.envelope(
        "response_promised",
        {
            "revisit_id": 3,
            "guest_id": guest["id"],
            "department": "engineering",
            "text": "When will the heating be fixed?",
            "respond_by": NOW + timedelta(days=1),
            "at": NOW,
        },
    )
    publish(complaint("complaint_dispatched", 1, GUEST_PHONE, NOW, dispatch_order_id=5), promised)
    shown = wait_for(
        lambda: (
            (s := screen(api, GUEST_PHONE))["open"]["promised_responses"]
            and s["open"]["complaints"][0]["status"] == "dispatched"
            and s
        )
    )
    assert shown["open"]["promised_responses"][0]["department"] == "engineering"
    assert shown["open"]["promised_responses"][0]["overdue"] is False

    signed = events.envelope(
        "item_signed_off",
        {
            "revisit_id": 3,
            "item_id": 9,
            "guest_id": guest["id"],
            "department": "engineering",
            "result": "Fixed on Monday",
            "signed_by": {"id": 4, "username": "eng-manager"},
            "at": NOW + timedelta(minutes=5),
        },
    )
    resolved = complaint(
        "complaint_resolved", 1, GUEST_PHONE, NOW + timedelta(minutes=1), result="Changed"
    )
    late_dispatch = complaint(  # published after the resolution, but older: ignored
        "complaint_dispatched", 1, GUEST_PHONE, NOW + timedelta(seconds=30), dispatch_order_id=6
    )
    publish(signed, resolved, late_dispatch)
    shown = wait_for(
        lambda: (s := screen(api, GUEST_PHONE)) and len(s["history"]) == 7 and s, timeout=15
    )
    assert shown["open"] == {"complaints": [], "promised_responses": []}
    assert shown["history"][0]["summary"] == "Answer from engineering: Fixed on Monday"


def test_a_backlog_of_complaint_news_is_kept_as_each_complaint_last_stood(
    start_services, suite_config
):
    """Waiting when the service starts, each queue's events come as one batch, whose
    complaints are kept by one statement: the newest news of each still wins."""
    from gateway.service import GatewayService
    from services.guests.service import GuestsService

    bus.declare_topology(config["AMQP_URI"])
    callers = {n: f"+3469900010{n}" for n in (1, 2, 3)}
    publish(*(complaint("complaint_filed", n, callers[n], NOW) for n in (1, 2, 3)))
    publish(
        complaint("complaint_dispatched", 1, callers[1], NOW + timedelta(minutes=2),
                  department="engineering", dispatch_order_id=1),
        complaint("complaint_dispatched", 2, callers[2], NOW + timedelta(minutes=1),
                  department="reception", dispatch_order_id=2),
        # older news of complaint 1, told last: it changes nothing
        complaint("complaint_dispatched", 1, callers[1], NOW + timedelta(minutes=1),
                  department="laundry", dispatch_order_id=3),
    )  # fmt: skip
    start_services(GatewayService, GuestsService)
    api = Api(f"http://127.0.0.1:{suite_config['port']}").as_role("agent")

    lines = {1: 3, 2: 2, 3: 1}  # a line for each piece of news: all of it handled
    shown = wait_for(lambda: _screens_once_told(api, callers, lines))
    [first], [second], [third] = (shown[n]["open"]["complaints"] for n in (1, 2, 3))
    assert (first["status"], first["department"]) == ("dispatched", "engineering")
    assert (second["status"], second["department"]) == ("dispatched", "reception")
    assert (third["status"], third["department"]) == ("open", "housekeeping")


def _screens_once_told(api: Api, callers: dict[int, str], lines: dict[int, int]):
    """Each caller's screen once it shows `lines[caller]` history lines; else None."""
    screens = {n: screen(api, phone) for n, phone in callers.items()}
    return screens if all(len(screens[n]["history"]) == lines[n] for n in callers) else None


def test_a_stranger_is_null_until_they_register_and_then_keeps_their_history(api):
    assert screen(api, "+34 611 222 333") == {
        "phone": "+34611222333",
        "guest": None,
        "vip": False,
        "history": [],
        "open": {"complaints": [], "promised_responses": []},
    }
    publish(complaint("complaint_filed", 2, STRANGER_PHONE, NOW))
    # ...and its receipt, sent to the contact (no guest file: the phone says whose it is)
    receipt = {
        "notification_id": 41,
        "kind": "complaint_received",
        "channel": "sms",
        "guest_id": None,
        "contact": {"phone": STRANGER_PHONE},
        "ref": "complaint:2",
        "subject": "We have received your complaint (TRK-2)",
        "at": NOW + timedelta(seconds=1),
    }
    publish(events.envelope("notification_sent", receipt))
    shown = wait_for(lambda: (s := screen(api, STRANGER_PHONE))["history"][1:] and s)
    assert shown["guest"] is None
    assert shown["open"]["complaints"][0]["tracking_code"] == "TRK-2"

    registered = api.post("/guests", {"name": "New Guest", "phone": STRANGER_PHONE}).json()
    shown = screen(api, STRANGER_PHONE)
    assert shown["guest"]["id"] == registered["id"]
    assert [h["ref"] for h in shown["history"]] == ["notifications/41", "complaints/2"]
    assert shown["open"]["complaints"][0]["tracking_code"] == "TRK-2"


def test_guest_events_leave_through_the_outbox(api):
    with Connection(config["AMQP_URI"]) as conn:
        listener = Queue(
            f"test.{uuid.uuid4().hex}",
            exchange=bus.source_exchange("guests"),
            routing_key="#",
            auto_delete=True,
        )
        listener(conn.default_channel).declare()
        guest = api.post("/guests", {"name": "Ana", "phone": "622000000"}).json()
        api.patch(f"/guests/{guest['id']}", {"language": "en"})
        group = api.post("/groups", {"name": "Choir"}).json()

        def received():
            seen = []
            while (message := listener(conn.default_channel).get(no_ack=True)) is not None:
                seen.append(events.parse(message.payload))
            return seen

        got = []
        wait_for(lambda: got.extend(received()) or len(got) >= 3)
    by_type = {e.type: e.data for e in got}
    assert set(by_type) == {"guest_registered", "guest_updated", "group_registered"}
    assert by_type["guest_registered"]["phone"] == "+34622000000"
    assert by_type["guest_updated"]["language"] == "en"
    assert by_type["group_registered"]["file_number"] == group["file_number"]


def test_a_contact_s_complaint_projected_while_its_phone_is_registered_stays_on_screen(
    clean_databases, monkeypatch
):
    """The projection looks the phone up (no guest yet); the clerk registers that phone and
    hands the guest what is under it, before the projection commits what it wrote under
    the phone: the guest's screen must still show that complaint."""
    from sqlalchemy.orm import sessionmaker

    from servicekit import settings
    from servicekit.database import make_engine
    from servicekit.idempotency import handle_once
    from services.guests import caller_screen, files
    from services.guests.models import KIT

    engine = make_engine(settings.database_url("guests"))
    sessions = sessionmaker(engine, expire_on_commit=False)
    looked_up = caller_screen._whose

    def whose_then_the_clerk_registers(session, data):
        found = looked_up(session, data)
        with sessions() as clerk:
            files.register_guest(clerk, {"name": "Lucía", "phone": "+34600112233"})
            clerk.commit()
        return found

    monkeypatch.setattr(caller_screen, "_whose", whose_then_the_clerk_registers)
    now = datetime.now(UTC)
    filed = events.envelope(
        "complaint_filed",
        {
            "complaint_id": 1,
            "tracking_code": "TRK-1",
            "guest_id": None,
            "contact": {"name": "Caller", "phone": "+34600112233"},
            "department": "housekeeping",
            "owner": {"kind": "role", "role": "manager", "department": "housekeeping"},
            "at": now,
            "channel": "phone",
            "category": "cleanliness",
            "summary": "Towels not changed",
            "received_at": now,
            "due_at": now + timedelta(hours=8),
        },
    )
    with sessions() as consumer:
        handle_once(consumer, KIT, [events.parse(filed)], caller_screen.project)
    with sessions() as reader:
        shown = caller_screen.screen(reader, "+34600112233", now)
    engine.dispose()
    assert shown["guest"]["name"] == "Lucía"
    assert [c["tracking_code"] for c in shown["open"]["complaints"]] == ["TRK-1"]
    assert [h["kind"] for h in shown["history"]] == ["complaint"]
