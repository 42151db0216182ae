"""A guest's whole journey through the suite, over HTTP, every service running.

This is the path the procedures describe, and it crosses every service boundary: the
gateway's RPCs, each service's outbox, the bus, and the projections other services keep.
"""

from datetime import date, timedelta
from decimal import Decimal

from servicekit import settings
from tests.support import wait_for


def today() -> date:
    from datetime import datetime

    return datetime.now(settings.hotel_tz()).date()


def test_from_first_call_to_commission(suite):
    admin = suite.as_admin()
    agent = suite.as_role("agent")
    manager = suite.as_role("manager", "housekeeping")
    suite.as_role("director", "housekeeping")

    # The room types the agent offers, highest price first.
    for code, name, price, rooms in (
        ("dbl", "Double", "120.00", 10),
        ("ste", "Suite", "300.00", 2),
    ):
        created = admin.post(
            "/room-types",
            {"code": code, "name": name, "price": price, "currency": "EUR", "rooms": rooms},
        )
        assert created.status_code == 201, created.text
    assert [t["code"] for t in agent.get("/room-types").json()["items"]] == ["ste", "dbl"]

    # A new caller: nobody on file for that number yet.
    phone = "+34 612 345 678"
    unknown = agent.get("/callers/+34612345678")
    assert unknown.status_code == 200 and unknown.json()["guest"] is None

    guest = agent.post(
        "/guests",
        {"name": "Lucía Fernández", "phone": phone, "category": "individual", "language": "es"},
    )
    assert guest.status_code == 201, guest.text
    guest = guest.json()
    assert guest["phone"] == "+34612345678"
    assert guest["card_number"] == guest["file_number"]
    assert guest["file_number"] == today().strftime("%y%m%d") + "001"

    # The phone booking: availability, hold, read-back in the guest's language.
    arrival = today()
    options = agent.get(f"/availability?arrival={arrival}&nights=2&rooms=1").json()["options"]
    assert [o["room_type"] for o in options] == ["ste", "dbl"]
    assert Decimal(options[1]["total_price"]) == Decimal("240.00")
    booking = agent.post(
        "/reservations",
        {
            "guest_id": guest["id"],
            "room_type": "dbl",
            "arrival": str(arrival),
            "nights": 2,
            "rooms": 1,
            "payment_method": "credit_card",
            "contact": {"phone": phone},
        },
    )
    assert booking.status_code == 201, booking.text
    booking = booking.json()
    assert booking["status"] == "held"
    assert "Lucía Fernández" in booking["readback"]
    assert "tarjeta" in booking["readback"].lower()

    # The caller screen and the notifications learn of it from the bus.
    def caller_screen_shows(kind_part: str):
        screen = agent.get("/callers/+34612345678").json()
        return screen if any(kind_part in h["kind"] for h in screen["history"]) else None

    screen = wait_for(lambda: caller_screen_shows("reservation"))
    assert screen["guest"]["id"] == guest["id"]
    wait_for(
        lambda: agent.get(f"/notifications?guest_id={guest['id']}").json()["items"], timeout=15
    )

    # The stay: check-in, check-out with what the guest spent.
    checked_in = agent.post(f"/reservations/{booking['id']}/check-in", {})
    assert checked_in.json()["status"] == "in_house", checked_in.text
    checked_out = agent.post(f"/reservations/{booking['id']}/check-out", {"charges": "80.00"})
    assert checked_out.json()["status"] == "checked_out", checked_out.text

    # A follow-up call is scheduled by itself for the day after check-out.
    post_stay = wait_for(
        lambda: [
            r
            for r in agent.get(f"/revisits?guest_id={guest['id']}").json()["items"]
            if r["kind"] == "post_stay"
        ]
    )[0]
    assert post_stay["due_date"] == str(today() + timedelta(days=1))

    # A complaint: recorded at once, an owner, due today, public tracking, a revisit.
    complaint = agent.post(
        "/complaints",
        {
            "guest_id": guest["id"],
            "channel": "phone",
            "category": "cleanliness",
            "description": "The bathroom was not cleaned.",
        },
    )
    assert complaint.status_code == 201, complaint.text
    complaint = complaint.json()
    assert complaint["department"] == "housekeeping"
    assert complaint["owner"]["role"]
    tracking = suite.anonymous().get(f"/track/{complaint['tracking_code']}")
    assert tracking.status_code == 200
    assert "Lucía" not in tracking.text and "bathroom" not in tracking.text
    wait_for(
        lambda: any(
            r["kind"] == "complaint" and r["complaint_id"] == complaint["id"]
            for r in agent.get(f"/revisits?guest_id={guest['id']}").json()["items"]
        )
    )
    screen = wait_for(lambda: caller_screen_shows("complaint"))
    assert complaint["id"] in [c["complaint_id"] for c in screen["open"]["complaints"]]

    # The follow-up call: the agent reaches the guest, who raises a new complaint.
    outcome = agent.post(
        f"/revisits/{post_stay['id']}/outcome",
        {
            "reached": True,
            "satisfaction": 4,
            "items": [
                {"kind": "opinion", "text": "Lovely staff"},
                {
                    "kind": "complaint",
                    "text": "Noisy corridor at night",
                    "department": "housekeeping",
                },
            ],
        },
    )
    assert outcome.status_code == 200, outcome.text
    assert outcome.json()["status"] == "done"
    assert all(item["owner"] for item in outcome.json()["items"])
    wait_for(
        lambda: agent.get(f"/complaints?guest_id={guest['id']}&channel=revisit").json()["items"]
    )

    # The department's manager signs off an item; the result goes to the guest.
    item = next(i for i in outcome.json()["items"] if i["department"] == "housekeeping")
    signed = manager.post(
        f"/revisits/{post_stay['id']}/items/{item['id']}/sign-off", {"result": "Fixed."}
    )
    assert signed.status_code == 200, signed.text

    # The guest comes back: that stay counts for the agent who revisited them.
    second = agent.post(
        "/reservations",
        {
            "guest_id": guest["id"],
            "room_type": "ste",
            "arrival": str(today()),
            "nights": 1,
            "rooms": 1,
            "payment_method": "cash",
            "contact": {"phone": phone},
        },
    ).json()
    agent.post(f"/reservations/{second['id']}/check-in", {})
    agent.post(f"/reservations/{second['id']}/check-out", {"charges": "450.00"})
    month = today().strftime("%Y-%m")

    def commission_of_agent():
        items = manager.get(f"/commissions?month={month}").json()["items"]
        return next((i for i in items if i["agent"] == agent.staff["username"]), None)

    credited = wait_for(commission_of_agent)
    assert credited["stays"] == 1
    assert Decimal(credited["consumption"]) == Decimal("450.00")
    assert Decimal(credited["commission"]) > 0
