"""The revisits service alone on a real bus and a real database: events published as
real envelopes schedule revisits, duplicates change nothing, the reminders job reminds
once and files the complaint items the complaints service could not take."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session

from servicekit import errors, events, settings
from servicekit.database import make_engine
from servicekit.idempotency import handle_once_by_key
from servicekit.pages import encode_cursor
from services.revisits import scheduling
from services.revisits.models import KIT
from services.revisits.service import RevisitsService
from tests import support
from tests.support import wait_for

AGENT = {"id": 5, "username": "ana", "role": "agent", "department": None}


def publish(event_type: str, data: dict, event_id=None) -> dict:
    """Publish one event as its owner's outbox would: a real envelope on the real bus."""
    body = events.envelope(event_type, data, event_id=event_id)
    support.publish(body)
    return body


def check_out(reservation_id: int, guest_id: int, checked_in_at, checked_out_at, charges="0"):
    return {
        "reservation_id": reservation_id,
        "code": f"R{reservation_id:05d}",
        "guest_id": guest_id,
        "room_type": "DBL",
        "arrival": checked_in_at.date(),
        "nights": 2,
        "rooms": 1,
        "total_price": "240.00",
        "currency": "EUR",
        "checked_in_at": checked_in_at,
        "checked_out_at": checked_out_at,
        "departure": checked_out_at.date(),
        "charges": charges,
    }


def complaint(complaint_id: int, received_at, guest_id=None, contact=None) -> dict:
    return {
        "complaint_id": complaint_id,
        "tracking_code": f"TRK-{complaint_id}",
        "guest_id": guest_id,
        "contact": contact,
        "language": "en",
        "department": "housekeeping",
        "owner": {"kind": "role", "role": "manager", "department": "housekeeping"},
        "at": received_at,
        "channel": "phone",
        "category": "cleanliness",
        "summary": "the room was not cleaned",
        "received_at": received_at,
        "due_at": received_at + timedelta(hours=8),
    }


def guest(guest_id: int, phone: str, name="Ada Lovelace") -> dict:
    return {
        "guest_id": guest_id,
        "file_number": f"261123{guest_id:03d}",
        "category": "individual",
        "name": name,
        "phone": phone,
        "language": "en",
        "arrival_date": date(2026, 11, 20),
    }


def query(sql: str, **params):
    engine = create_engine(settings.database_url("revisits"))
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).mappings().all()
    engine.dispose()
    return rows


def revisits():
    return query("select * from revisits order by id")


def outbox(event_type: str):
    return [
        r["envelope"]["data"]
        for r in query("select envelope from outbox where type = :t order by id", t=event_type)
    ]


@pytest.fixture
def revisits_rpc(start_services):
    start_services(RevisitsService)
    with ServiceRpcClient("revisits") as client:
        yield client


def test_check_outs_and_complaints_schedule_one_revisit_each_however_often_delivered(
    revisits_rpc,
):
    publish("guest_registered", guest(1, "+34600000001"))
    wait_for(lambda: query("select id from guests"))
    out = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    checked_out = publish("guest_checked_out", check_out(10, 1, out - timedelta(days=2), out))
    # the same envelope again (a redelivery), and the same fact under a new event id
    publish("guest_checked_out", checked_out["data"], event_id=checked_out["event_id"])
    again = publish("guest_checked_out", check_out(10, 1, out - timedelta(days=2), out))
    received = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    filed = publish("complaint_filed", complaint(20, received, guest_id=1))
    publish("complaint_filed", filed["data"], event_id=filed["event_id"])
    # a complaint from a caller without a guest file, whose phone is on file after all
    on_file = publish(
        "complaint_filed", complaint(21, received, contact={"name": "Ada", "phone": "+34600000001"})
    )
    # and one from someone unknown: called back on the contact's phone
    unknown_caller = publish(
        "complaint_filed", complaint(22, received, contact={"name": "Bo", "phone": "+34699999999"})
    )
    no_phone = publish("complaint_filed", complaint(23, received, contact={"name": "Cy"}))

    # every event handled, the duplicates included: only then does the count mean anything
    sent = {e["event_id"] for e in (checked_out, again, filed, on_file, unknown_caller, no_phone)}
    wait_for(
        lambda: sent <= {str(r["event_id"]) for r in query("select event_id from handled_events")}
    )
    rows = revisits()
    assert len(rows) == 5
    by_ref = {(r["kind"], r["reservation_id"] or r["complaint_id"]): r for r in rows}
    post_stay = by_ref[("post_stay", 10)]
    assert (post_stay["guest_id"], post_stay["due_date"]) == (1, date(2026, 11, 24))
    assert (post_stay["status"], post_stay["attempts"]) == ("due", 0)
    assert by_ref[("complaint", 20)]["due_date"] == date(2026, 11, 26)
    assert by_ref[("complaint", 21)]["guest_id"] == 1
    unknown = by_ref[("complaint", 22)]
    assert unknown["guest_id"] is None and unknown["contact"]["phone"] == "+34699999999"
    # one who left no phone is planned too: every complainant counts in the coverage, and
    # the agent records whether they could be reached
    unreachable = by_ref[("complaint", 23)]
    assert (unreachable["guest_id"], unreachable["contact"]["name"]) == (None, "Cy")

    scheduled = outbox("revisit_scheduled")
    assert sorted((e["kind"], e["due_date"]) for e in scheduled) == [
        ("complaint", "2026-11-26"),
        ("complaint", "2026-11-26"),
        ("post_stay", "2026-11-24"),
    ]

    worklist = revisits_rpc.list_revisits({"guest_id": 1}, 50, None)["items"]
    assert [r["kind"] for r in worklist] == ["post_stay", "complaint", "complaint"]
    assert worklist[0]["guest"]["name"] == "Ada Lovelace"
    assert worklist[0]["also_due"] == [r["id"] for r in worklist[1:]]
    # page by page, the same worklist: due date, then guest, the contact-only call first
    everything, cursor = [], None
    while True:
        page = revisits_rpc.list_revisits({}, 1, cursor)
        everything += [r["id"] for r in page["items"]]
        if not (cursor := page["next"]):
            break
    assert everything == [post_stay["id"], unknown["id"], unreachable["id"]] + [
        r["id"] for r in worklist[1:]
    ]
    # the complaint resolved before the call: the agent sees it on the revisit
    resolved = {
        k: filed["data"][k]
        for k in ("complaint_id", "tracking_code", "guest_id", "department", "owner", "at")
    }
    publish("complaint_resolved", {**resolved, "result": "room cleaned again"})
    wait_for(
        lambda: revisits_rpc.get_revisit(by_ref[("complaint", 20)]["id"])["complaint_resolved"]
    )
    assert len(revisits()) == 5


class StandInComplaints:
    """The complaints service's agreed RPC, `file_complaint(data, actor, idempotency_key)`,
    honouring the key as the real one does, to show that a retry never files twice."""

    name = "complaints"
    filed: dict = {}

    @rpc
    def file_complaint(self, data, actor, idempotency_key=None):
        complaint_id = self.filed.setdefault(idempotency_key, {"id": 100 + len(self.filed)})
        complaint_id["data"] = data
        return {"id": complaint_id["id"], "status": "open"}


def test_a_complaint_item_waits_for_the_complaints_service_and_is_filed_once(
    revisits_rpc, start_services
):
    publish("guest_registered", guest(1, "+34600000001"))
    now = datetime.now(UTC)
    publish("guest_checked_out", check_out(10, 1, now - timedelta(days=2), now))
    revisit = wait_for(lambda: revisits())[0]

    # nobody serves `complaints` yet: the item is kept, to be filed later
    done = revisits_rpc.record_outcome(
        revisit["id"],
        {
            "reached": True,
            "satisfaction": 2,
            "items": [
                {
                    "kind": "complaint",
                    "text": "cold shower",
                    "department": "engineering",
                    "category": "maintenance",
                }
            ],
            "pending_question": {
                "text": "can we have the same room next time?",
                "respond_by": (now + timedelta(minutes=30)).isoformat(),
                "department": "front_office",
            },
        },
        AGENT,
    )
    item = done["items"][0]
    assert done["status"] == "done" and item["complaint_filing"] == "pending"
    assert item["owner"] == {
        "kind": "role",
        "id": None,
        "username": None,
        "role": "manager",
        "department": "engineering",
    }
    assert [e["reminder"] for e in outbox("response_promised")] == [False]

    StandInComplaints.filed = {}
    start_services(StandInComplaints)
    first = revisits_rpc.run_job("revisit-reminders", {})
    assert first == {"job": "revisit-reminders", "reminded": 1, "filed": 1, "pending": 0}
    second = revisits_rpc.run_job("revisit-reminders", {})
    assert second == {"job": "revisit-reminders", "reminded": 0, "filed": 0, "pending": 0}

    [(key, filed)] = StandInComplaints.filed.items()
    assert key == f"revisit-item:{item['id']}"
    assert filed["data"] == {
        "channel": "revisit",
        "category": "maintenance",
        "description": "cold shower",
        "department": "engineering",
        "received_at": filed["data"]["received_at"],
        "guest_id": 1,
    }
    # received when the guest said it on the call, not when it could be filed
    assert datetime.fromisoformat(filed["data"]["received_at"]) == datetime.fromisoformat(
        item["routed_at"]
    )
    after = revisits_rpc.get_revisit(revisit["id"])
    assert after["items"][0]["complaint_id"] == filed["id"]
    assert after["items"][0]["complaint_filing"] == "filed"
    # the department is reminded once, shortly before the promised time
    reminders = [e for e in outbox("response_promised") if e["reminder"]]
    assert [(e["department"], e["guest_id"]) for e in reminders] == [("front_office", 1)]


def test_a_returning_guests_stay_is_credited_to_the_agent_who_last_reached_them(
    revisits_rpc,
):
    publish(
        "staff_registered",
        {"staff_id": 5, "username": "ana", "name": "Ana", "role": "agent", "department": None},
    )
    now = datetime.now(UTC)
    publish(
        "guest_checked_out",
        check_out(10, 1, now - timedelta(days=3), now - timedelta(days=1), charges="80.00"),
    )
    first = wait_for(lambda: revisits())[0]
    revisits_rpc.record_outcome(first["id"], {"reached": True, "satisfaction": 5}, AGENT)

    # the guest comes back after the call: the stay is Ana's
    back_in, back_out = now + timedelta(seconds=1), now + timedelta(days=2)
    publish("guest_checked_out", check_out(11, 1, back_in, back_out, charges="333.33"))
    # another guest, never revisited: nobody's
    publish("guest_checked_out", check_out(12, 2, back_in, back_out, charges="500.00"))
    wait_for(lambda: len(revisits()) == 3)

    month = back_out.astimezone(settings.hotel_tz()).strftime("%Y-%m")
    assert revisits_rpc.commissions(month)["items"] == [
        {
            "agent": "ana",
            "agent_id": 5,
            "guests": 1,
            "stays": 1,
            "consumption": "333.33",
            "commission": "16.67",
            "currency": "EUR",
        }
    ]


def test_a_batch_of_complaints_is_planned_in_one_statement_before_its_commit(clean_databases):
    engine = make_engine(settings.database_url("revisits"))
    sent = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    received = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    batch = [
        events.parse(json.loads(json.dumps(events.envelope(kind, data), default=str)))
        for kind, data in [
            ("complaint_filed", complaint(30 + n, received, n + 1)) for n in range(3)
        ]
    ]

    def plan(session, fresh):
        scheduling.schedule_complaint_calls(session, [e.data for e in fresh])

    with Session(engine) as session:
        # one of them delivered twice within the batch
        handle_once_by_key(session, KIT, [*batch, batch[0]], plan)
        # the revisits in one statement; the batch's marks and events go with the COMMIT
        assert len(sent) == 1, sent
        # delivered again, in a batch of its own: nothing new, and no failing commit
        handle_once_by_key(session, KIT, batch[1:], plan)
    engine.dispose()

    assert sorted(r["complaint_id"] for r in revisits()) == [30, 31, 32]
    assert sorted(e["complaint_id"] for e in outbox("revisit_scheduled")) == [30, 31, 32]
    handled = query("select event_id::text as id from handled_events")
    assert sorted(r["id"] for r in handled) == sorted(str(e.event_id) for e in batch)


def test_commissions_are_listed_a_page_of_agents_at_a_time(clean_databases, monkeypatch):
    from services.revisits import evaluation
    from services.revisits.models import CommissionCredit, Revisit

    engine = create_engine(settings.database_url("revisits"))
    day = date(2026, 11, 20)
    with Session(engine) as session:
        for n, agent in enumerate(["carla", "ana", "bea"], start=1):
            revisit = Revisit(kind="post_stay", guest_id=n, due_date=day, planned_date=day)
            session.add(revisit)
            session.flush()
            session.add(
                CommissionCredit(
                    reservation_id=100 + n,
                    guest_id=n,
                    revisit_id=revisit.id,
                    agent_id=n,
                    agent_username=agent,
                    charges=Decimal("100.00"),
                    currency="EUR",
                    # the rate when credited; carla's stay was credited at an earlier one
                    rate=Decimal("0.04") if agent == "carla" else Decimal("0.05"),
                    checked_out_at=datetime(2026, 11, 21, 11, tzinfo=UTC),
                    checked_out_on=date(2026, 11, 21),
                )
            )
        session.commit()

        first = evaluation.commissions(session, "2026-11", limit=2)
        rest = evaluation.commissions(session, "2026-11", limit=2, cursor=first["next"])
        assert [c["agent"] for c in first["items"] + rest["items"]] == ["ana", "bea", "carla"]
        assert rest["next"] is None and first["rate"] == rest["rate"] is None  # two rates
        # what each earned stays as it was credited, whatever the rate is set to now
        monkeypatch.setenv("HOTEL_COMMISSION_RATE", "0.08")
        again = evaluation.commissions(session, "2026-11")["items"]
        assert [(c["agent"], c["commission"]) for c in again] == [
            ("ana", "5.00"),
            ("bea", "5.00"),
            ("carla", "4.00"),
        ]
        assert evaluation.commissions(session, "2026-10")["rate"] == "0.08"  # none credited
        with pytest.raises(errors.ValidationFailed):
            evaluation.commissions(session, "2026-11", cursor=encode_cursor([1, "x", 2]))
    engine.dispose()
