"""Revisits end to end: the whole suite running, staff through the gateway, check-outs and
complaints announced on the real bus, every agent and manager step over HTTP."""

from datetime import UTC, date, datetime, timedelta

import eventlet
from nameko.standalone.rpc import ServiceRpcClient

from servicekit import settings
from tests.integration.test_revisits_service import (
    check_out,
    complaint,
    guest,
    publish,
    query,
    revisits,
)
from tests.support import wait_for


def hotel_today() -> date:
    return datetime.now(settings.hotel_tz()).date()


def test_revisits_from_check_out_to_sign_off_report_and_commission(suite):
    admin = suite.as_admin()
    agent = suite.as_role("agent")
    other_agent = suite.as_role("agent")
    housekeeping = suite.as_role("manager", "housekeeping")
    engineering = suite.as_role("manager", "engineering")
    manager_ids = {housekeeping.staff["id"], engineering.staff["id"]}
    wait_for(lambda: manager_ids <= {r["id"] for r in query("select id from staff")})

    # a guest leaves on 10 June, and complained that morning: both calls are planned
    publish("guest_registered", guest(1, "+34600000001", name="Ada Lovelace"))
    left = datetime(2026, 6, 10, 11, 0, tzinfo=UTC)
    publish("guest_checked_out", check_out(10, 1, left - timedelta(days=2), left, "150.00"))
    publish("complaint_filed", complaint(900, left - timedelta(hours=2), guest_id=1))
    wait_for(lambda: len(revisits()) == 2)

    worklist = agent.get("/revisits?guest_id=1&status=due")
    assert worklist.status_code == 200, worklist.text
    post_stay, complaint_call = worklist.json()["items"]
    assert (post_stay["kind"], post_stay["due_date"]) == ("post_stay", "2026-06-11")
    assert (complaint_call["kind"], complaint_call["complaint_id"]) == ("complaint", 900)
    assert complaint_call["due_date"] == "2026-06-13"
    assert post_stay["overdue"] is True and post_stay["guest"]["name"] == "Ada Lovelace"
    overdue = agent.get("/revisits?overdue=true&due_before=2026-06-11").json()["items"]
    assert [r["id"] for r in overdue] == [post_stay["id"]]
    assert agent.get("/revisits?status=finished").status_code == 400
    assert agent.get("/revisits/999").status_code == 404

    # the agent takes the call; another agent cannot take it from them
    taken = agent.post(f"/revisits/{post_stay['id']}/take")
    assert taken.status_code == 200, taken.text
    assert taken.json()["agent"]["username"] == agent.staff["username"]
    assert other_agent.post(f"/revisits/{post_stay['id']}/take").status_code == 409
    mine = agent.get("/revisits?agent=me").json()["items"]
    assert [r["id"] for r in mine] == [post_stay["id"]]

    outcome = {
        "reached": True,
        "notes": "Loved the breakfast; the shower was cold",
        "satisfaction": 4,
        "items": [
            {"kind": "opinion", "text": "The breakfast was excellent"},
            {"kind": "request", "text": "Extra pillows next time", "department": "housekeeping"},
            {"kind": "suggestion", "text": "Vegan menu", "department": "food_beverage"},
            {
                "kind": "complaint",
                "text": "The shower was cold",
                "department": "engineering",
                "category": "maintenance",
            },
        ],
        "pending_question": {
            "text": "Is there parking for a coach in July?",
            "respond_by": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
            "department": "front_office",
        },
    }
    bad = agent.post(
        f"/revisits/{post_stay['id']}/outcome",
        {
            **outcome,
            "satisfaction": 7,
            "items": [{"kind": "praise", "text": "x"}],
            "notes": "nul \x00 inside",
            "mood": 1,
        },
    )
    assert bad.status_code == 400
    assert {"satisfaction", "items", "notes", "mood"} <= set(bad.json()["fields"])
    # the service's rules, while the agent is still on the call: a complaint the complaints
    # service would refuse to file later, an answer promised for a date no one means
    far_off = {**outcome["pending_question"], "respond_by": "9999-12-31T23:59:59-05:00"}
    for change, field in (
        (
            {"items": [{"kind": "complaint", "text": "Lift", "category": "lift"}]},
            "items.0.category",
        ),
        ({"pending_question": far_off}, "pending_question.respond_by"),
    ):
        refused = agent.post(f"/revisits/{post_stay['id']}/outcome", {**outcome, **change})
        assert refused.status_code == 400 and field in refused.json()["fields"], refused.text
    # the call is the taking agent's to record
    assert other_agent.post(f"/revisits/{post_stay['id']}/outcome", outcome).status_code == 409

    answer = agent.post(f"/revisits/{post_stay['id']}/outcome", outcome)
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["status"], done["reached"], done["attempts"]) == ("done", True, 1)
    # the pending question is the front office's to answer: an item of theirs to sign off
    asked = [i for i in done["items"] if i["department"] == "front_office"]
    assert [(i["kind"], i["text"]) for i in asked] == [
        ("request", "Is there parking for a coach in July?")
    ]
    items = {i["kind"]: i for i in done["items"] if i not in asked}
    assert all(i["id"] and i["routed"] for i in done["items"])
    assert items["opinion"]["department"] == "customer_service"
    assert items["opinion"]["owner"]["kind"] == "role"
    assert items["suggestion"]["owner"]["kind"] == "role"
    assert items["request"]["owner"]["id"] == housekeeping.staff["id"]
    assert items["complaint"]["owner"]["username"] == engineering.staff["username"]
    assert done["pending_questions"][0]["department"] == "front_office"
    assert agent.post(f"/revisits/{post_stay['id']}/outcome", outcome).json()["error"] == (
        "INVALID_STATE"
    )

    # food and beverage gets its manager: the item they could not own yet is theirs now
    food = suite.as_role("manager", "food_beverage")

    def suggestion_owner():
        shown = agent.get(f"/revisits/{post_stay['id']}").json()
        owner = next(i for i in shown["items"] if i["kind"] == "suggestion")["owner"]
        return owner if owner["kind"] == "staff" else None

    assert wait_for(suggestion_owner)["username"] == food.staff["username"]

    # the complaint item became a complaint in the complaints service, channel `revisit`
    complaint_id = items["complaint"]["complaint_id"]
    assert complaint_id and items["complaint"]["complaint_filing"] == "filed"
    with ServiceRpcClient("complaints") as complaints:
        filed = complaints.get_complaint(complaint_id)
    assert (filed["channel"], filed["department"]) == ("revisit", "engineering")
    # ... and, like every complaint, it plans a call to its complainant
    [follow_up] = wait_for(
        lambda: query("select id from revisits where complaint_id = :c", c=complaint_id)
    )

    # agents recording the same call at once: one outcome counts, the others are told
    def record(n, written_as=str(follow_up["id"])):
        return agent.post(
            f"/revisits/{written_as}/outcome",
            {"reached": True, "satisfaction": 5},
            headers={"Idempotency-Key": f"call-{n}"},
        )

    answers = list(eventlet.GreenPool(8).imap(record, range(8)))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    winner = next(n for n, a in enumerate(answers) if a.status_code == 200)
    # a retry of the one that counted answers as it did, instead of INVALID_STATE
    again = record(winner)
    assert again.status_code == 200 and again.json()["id"] == follow_up["id"]
    assert again.json()["attempts"] == 1
    # the same revisit however its id is written, however long the path
    padded = record(winner, written_as="0" * 300 + str(follow_up["id"]))
    assert padded.status_code == 200 and padded.json() == again.json()

    # sign-off: only a manager of the item's department
    request_item = items["request"]["id"]
    path = f"/revisits/{post_stay['id']}/items/{request_item}/sign-off"
    result = {"result": "Extra pillows are noted on the guest's file"}
    assert engineering.post(path, result).json()["error"] == "FORBIDDEN"
    assert agent.post(path, result).status_code == 403
    assert housekeeping.post(path, {}).status_code == 400
    signed = housekeeping.post(path, result)
    assert signed.status_code == 200, signed.text
    item = next(i for i in signed.json()["items"] if i["id"] == request_item)
    assert item["signed_by"]["username"] == housekeeping.staff["username"]
    assert item["signed_at"] and item["result"] == result["result"]
    assert housekeeping.post(path, result).status_code == 409

    # a guest not reached is tried the next day, until the last attempt
    missed = agent.post(f"/revisits/{complaint_call['id']}/outcome", {"reached": False})
    assert missed.status_code == 200, missed.text
    tomorrow = (hotel_today() + timedelta(days=1)).isoformat()
    assert (missed.json()["status"], missed.json()["attempts"]) == ("due", 1)
    assert missed.json()["due_date"] == tomorrow
    assert (
        agent.post(
            f"/revisits/{complaint_call['id']}/outcome", {"reached": False, "satisfaction": 3}
        ).status_code
        == 400
    )
    agent.post(f"/revisits/{complaint_call['id']}/outcome", {"reached": False})
    last = agent.post(f"/revisits/{complaint_call['id']}/outcome", {"reached": False}).json()
    assert (last["status"], last["attempts"]) == ("unreached", 3)
    assert (
        agent.post(f"/revisits/{complaint_call['id']}/outcome", {"reached": False}).status_code
        == 409
    )

    # the department is reminded of the promised answer once
    job = admin.post("/admin/jobs/revisit-reminders")
    assert job.status_code == 200, job.text
    assert job.json()["reminded"] == 1
    assert admin.post("/admin/jobs/revisit-reminders").json()["reminded"] == 0

    # June's evaluation: both calls planned, one reached, the complainant missed
    assert agent.get("/revisits/report?year=2026&month=6").status_code == 403
    assert housekeeping.get("/revisits/report?year=2026&month=13").status_code == 400
    report = housekeeping.get("/revisits/report?year=2026&month=6")
    assert report.status_code == 200, report.text
    report = report.json()
    assert (report["planned"], report["done"], report["reached"], report["overdue"]) == (
        2,
        2,
        1,
        0,
    )
    assert report["coverage_post_stay"] == 100.0 and report["coverage_complaints"] == 0.0
    assert report["by_item_kind"] == {"opinion": 1, "request": 2, "suggestion": 1, "complaint": 1}
    assert report["by_agent"] == [
        {
            "agent": agent.staff["username"],
            "agent_id": agent.staff["id"],
            "done": 2,
            "reached": 1,
            "items": 5,
        }
    ]
    assert report["satisfaction"]["average"] == "4.00"

    # the guest comes back: the stay's charges are the agent's sales
    back_in = datetime.now(UTC) + timedelta(seconds=1)
    back_out = back_in + timedelta(days=2)
    publish("guest_checked_out", check_out(11, 1, back_in, back_out, "400.00"))
    wait_for(lambda: query("select id from revisits where reservation_id = 11"))
    month = back_out.astimezone(settings.hotel_tz()).strftime("%Y-%m")
    assert housekeeping.get("/commissions?month=2026-6").status_code == 400
    assert agent.get(f"/commissions?month={month}").status_code == 403
    commissions = housekeeping.get(f"/commissions?month={month}")
    assert commissions.status_code == 200, commissions.text
    assert commissions.json()["next"] is None
    assert commissions.json()["items"] == [
        {
            "agent": agent.staff["username"],
            "agent_id": agent.staff["id"],
            "guests": 1,
            "stays": 1,
            "consumption": "400.00",
            "commission": "20.00",
            "currency": "EUR",
        }
    ]


def test_a_manager_hands_out_a_call_and_records_it_for_the_agent_who_keeps_its_credit(suite):
    agent = suite.as_role("agent")
    other_agent = suite.as_role("agent")
    manager = suite.as_role("manager", "customer_service")
    staff_ids = {agent.staff["id"], other_agent.staff["id"], manager.staff["id"]}
    wait_for(lambda: staff_ids <= {r["id"] for r in query("select id from staff")})
    publish("guest_registered", guest(7, "+34600000777", name="Returning Guest"))
    left = datetime.now(UTC) - timedelta(days=2)
    publish("guest_checked_out", check_out(70, 7, left - timedelta(days=2), left, "100.00"))
    [revisit] = wait_for(lambda: revisits())
    take = f"/revisits/{revisit['id']}/take"

    # an agent takes calls for themselves only; a manager hands them out
    assert other_agent.post(take, {"agent_id": agent.staff["id"]}).status_code == 403
    assert manager.post(take, {"agent_id": 2**31 - 1}).json()["fields"] == {
        "agent_id": ["no active staff member has this id"]
    }
    handed = manager.post(take, {"agent_id": agent.staff["id"]})
    assert handed.status_code == 200, handed.text
    assert handed.json()["agent"]["username"] == agent.staff["username"]
    assert other_agent.post(take).status_code == 409

    # the manager records the agent's call for them: it stays the agent's call
    recorded = manager.post(f"/revisits/{revisit['id']}/outcome", {"reached": True})
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["agent"]["username"] == agent.staff["username"]

    # and the guest's return is the agent's sale, not the manager's
    back_in = datetime.now(UTC) + timedelta(seconds=1)
    back_out = back_in + timedelta(hours=1)
    publish("guest_checked_out", check_out(71, 7, back_in, back_out, "200.00"))
    wait_for(lambda: query("select id from revisits where reservation_id = 71"))
    month = back_out.astimezone(settings.hotel_tz()).strftime("%Y-%m")
    credited = manager.get(f"/commissions?month={month}").json()["items"]
    assert [(c["agent"], c["consumption"]) for c in credited] == [
        (agent.staff["username"], "200.00")
    ]


def test_a_complainant_with_no_file_is_answered_and_their_promise_reminded(suite):
    """A caller who complained as a contact is called back like a guest: the department is
    reminded of what the agent promised them, and the sign-off result goes to them."""
    admin = suite.as_admin()
    agent = suite.as_role("agent")
    housekeeping = suite.as_role("manager", "housekeeping")
    front_office = suite.as_role("manager", "front_office")
    wait_for(
        lambda: (
            {housekeeping.staff["id"], front_office.staff["id"]}
            <= {r["id"] for r in query("select id from staff")}
        )
    )
    contact = {"name": "Bo Caller", "phone": "+34699999102", "email": "bo@example.com"}
    filed = agent.post(
        "/complaints",
        {"contact": contact, "channel": "phone", "category": "cleanliness", "description": "Dust"},
    )
    assert filed.status_code == 201, filed.text
    [revisit] = wait_for(lambda: revisits())
    assert (revisit["guest_id"], revisit["complaint_id"]) == (None, filed.json()["id"])

    soon = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    done = agent.post(
        f"/revisits/{revisit['id']}/outcome",
        {
            "reached": True,
            "items": [{"kind": "request", "text": "Recheck", "department": "housekeeping"}],
            "pending_question": {"text": "Deep clean?", "respond_by": soon},
        },
    )
    assert done.status_code == 200, done.text
    assert admin.post("/admin/jobs/revisit-reminders").json()["reminded"] == 1
    item = done.json()["items"][0]
    signed = housekeeping.post(
        f"/revisits/{revisit['id']}/items/{item['id']}/sign-off", {"result": "Cleaned twice"}
    )
    assert signed.status_code == 200, signed.text

    def sent(kind: str, ref: str) -> list:
        listed = admin.get(f"/notifications?kind={kind}").json()["items"]
        return [n for n in listed if n["ref"] == ref]

    assert wait_for(lambda: sent("response_due", f"revisit:{revisit['id']}"))
    [result] = wait_for(
        lambda: sent("item_signed_off", f"revisit:{revisit['id']}/item:{item['id']}")
    )
    assert "Cleaned twice" in result["body"]
    # and the caller's screen, by their phone, lists the promise
    wait_for(
        lambda: any(
            "Deep clean?" in h["summary"]
            for h in agent.get("/callers/+34699999102").json()["history"]
        )
    )


def test_a_promise_to_a_department_nothing_was_routed_to_is_answered_by_signing_it_off(suite):
    agent = suite.as_role("agent")
    front_office = suite.as_role("manager", "front_office")
    wait_for(lambda: front_office.staff["id"] in {r["id"] for r in query("select id from staff")})
    grace = agent.post("/guests", {"name": "Grace Hopper", "phone": "+34600000555"}).json()
    left = datetime.now(UTC) - timedelta(days=1)
    publish(
        "guest_checked_out", check_out(50, grace["id"], left - timedelta(days=2), left, "90.00")
    )
    [revisit] = wait_for(lambda: revisits())
    question = {
        "text": "Can we bring a dog next time?",
        "respond_by": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "department": "front_office",
    }
    done = agent.post(
        f"/revisits/{revisit['id']}/outcome", {"reached": True, "pending_question": question}
    )
    assert done.status_code == 200, done.text
    [asked] = done.json()["items"]
    assert (asked["kind"], asked["department"], asked["owner"]["username"]) == (
        "request",
        "front_office",
        front_office.staff["username"],
    )

    def promised() -> list:
        return agent.get("/callers/+34600000555").json()["open"]["promised_responses"]

    assert [p["text"] for p in wait_for(promised)] == [question["text"]]
    signed = front_office.post(
        f"/revisits/{revisit['id']}/items/{asked['id']}/sign-off", {"result": "Dogs welcome"}
    )
    assert signed.status_code == 200, signed.text
    wait_for(lambda: promised() == [])
