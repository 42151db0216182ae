"""Complaints through the gateway over HTTP, with the whole suite on real RabbitMQ and
PostgreSQL: a complaint's whole life, the escalation job and timer, public tracking,
and every wrong transition and bad input."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from servicekit import settings
from tests.support import wait_for

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{5}$")
ACTIONS = ("investigate", "verify", "dispatch", "escalate", "resolve", "note")


def _complaints_db(sql: str, **params) -> list:
    engine = create_engine(settings.database_url("complaints"))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def _known_staff(*clients) -> None:
    """Wait until the complaints service has heard of these staff members (it learns
    of them from the gateway's `staff_registered` events)."""
    ids = [c.staff["id"] for c in clients]
    wait_for(
        lambda: (
            _complaints_db("select count(*) from staff_members where id = any(:ids)", ids=ids)[0][0]
            == len(ids)
        )
    )


def _party(client) -> dict:
    s = client.staff
    return {
        "kind": "staff",
        "id": s["id"],
        "username": s["username"],
        "role": s["role"],
        "department": s["department"],
    }


def _act(client, complaint_id, action, **body):
    return client.post(f"/complaints/{complaint_id}/actions", {"action": action, **body})


def test_the_whole_life_of_a_complaint(suite):
    agent = suite.as_role("agent", "front_office")
    manager = suite.as_role("manager", "engineering")
    other_manager = suite.as_role("manager", "housekeeping")
    suite.as_role("director", "engineering")
    _known_staff(manager, other_manager)

    body = {
        "contact": {"name": "Marta Quintana", "phone": "+34600111222"},
        "channel": "phone",
        "category": "maintenance",
        "description": "The air conditioning in 304 rattles all night",
    }
    filed = agent.post("/complaints", body, headers={"Idempotency-Key": "call-1"})
    assert filed.status_code == 201, filed.text
    complaint = filed.json()
    cid, code = complaint["id"], complaint["tracking_code"]
    assert CODE.match(code), code
    assert complaint["status"] == "open"
    assert complaint["department"] == "engineering"
    assert complaint["owner"] == _party(agent)
    received = datetime.fromisoformat(complaint["received_at"])
    assert abs(received - datetime.now(UTC)) < timedelta(minutes=1)
    due = datetime.fromisoformat(complaint["due_at"])
    assert (
        due.astimezone(settings.hotel_tz()).date()
        == received.astimezone(settings.hotel_tz()).date()
    )
    assert (due.hour, due.minute, due.second) == (23, 59, 59)

    # the answer to the filing is what the complaint reads as afterwards, its form too
    assert agent.get(f"/complaints/{cid}").json() == complaint

    again = agent.post("/complaints", body, headers={"Idempotency-Key": "call-1"})
    assert again.status_code == 201 and again.json()["id"] == cid

    investigated = _act(agent, cid, "investigate", note="Night porter confirms the rattle")
    assert investigated.status_code == 200, investigated.text
    assert investigated.json()["status"] == "investigating"
    assert investigated.json()["line"]["by"] == _party(agent)
    verified = _act(agent, cid, "verify", note="Heard it in the room myself")
    assert verified.json()["status"] == "verified"

    dispatched = _act(agent, cid, "dispatch", department="engineering", note="Check the fan")
    assert dispatched.status_code == 200, dispatched.text
    dispatched = dispatched.json()
    assert dispatched["status"] == "dispatched"
    assert dispatched["owner"] == _party(manager)
    assert dispatched["line"]["recipient"] == _party(manager)
    order_id = dispatched["line"]["dispatch_order_id"]
    assert _act(agent, cid, "dispatch").status_code == 409  # one open order at a time

    queue = manager.get("/dispatch-orders?department=engineering&status=open").json()
    assert [o["id"] for o in queue["items"]] == [order_id]
    assert queue["items"][0]["assignee"] == _party(manager)
    assert queue["items"][0]["instructions"] == "Check the fan"
    assert manager.get("/dispatch-orders?department=housekeeping").json()["items"] == []

    stranger = other_manager.post(f"/dispatch-orders/{order_id}/report", {"result": "Done"})
    assert stranger.status_code == 403, stranger.text
    reported = manager.post(
        f"/dispatch-orders/{order_id}/report", {"result": "Replaced the fan bearing"}
    )
    assert reported.status_code == 200, reported.text
    assert reported.json()["status"] == "reported"
    assert reported.json()["reported_by"] == _party(manager)
    twice = manager.post(f"/dispatch-orders/{order_id}/report", {"result": "Again"})
    assert twice.status_code == 409 and twice.json()["error"] == "INVALID_STATE"

    seen = agent.get(f"/complaints/{cid}").json()
    assert seen["status"] == "reported"
    assert seen["dispatch_orders"][0]["result"] == "Replaced the fan bearing"
    # the call centre answers the caller once the department reports back, and the
    # caller screen shows where their complaint stands
    admin = suite.as_admin()
    [answer] = wait_for(lambda: admin.get("/notifications?kind=complaint_reported").json()["items"])
    assert answer["ref"] == f"complaint:{cid}"
    assert "Replaced the fan bearing" in answer["body"]
    wait_for(
        lambda: (
            [c["status"] for c in agent.get("/callers/+34600111222").json()["open"]["complaints"]]
            == ["reported"]
        )
    )

    noted = _act(manager, cid, "note", note="Offered a late check-out as an apology")
    assert noted.json()["status"] == "reported"
    no_result = _act(manager, cid, "resolve")
    assert no_result.status_code == 409 and no_result.json()["error"] == "INVALID_STATE"
    resolved = _act(manager, cid, "resolve", result="Fan repaired; guest thanked us")
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["owner"] == _party(manager)

    for action in ACTIONS:
        late = _act(manager, cid, action, note="too late", result="again")
        assert late.status_code == 409, (action, late.text)
        assert late.json()["error"] == "INVALID_STATE"

    form = agent.get(f"/complaints/{cid}/form")
    assert form.status_code == 200
    lines = form.json()["lines"]
    assert [(ln["action"], ln["by"]["id"], ln["recipient"]["id"]) for ln in lines] == [
        ("receive", agent.staff["id"], agent.staff["id"]),
        ("investigate", agent.staff["id"], agent.staff["id"]),
        ("verify", agent.staff["id"], agent.staff["id"]),
        ("dispatch", agent.staff["id"], manager.staff["id"]),
        ("report", manager.staff["id"], manager.staff["id"]),
        ("note", manager.staff["id"], manager.staff["id"]),
        ("resolve", manager.staff["id"], manager.staff["id"]),
    ]
    assert lines[0]["reason"] == body["description"]
    assert lines[3]["reason"] == "Check the fan"
    assert lines[4]["result"] == "Replaced the fan bearing"
    assert lines[6]["result"] == "Fan repaired; guest thanked us"
    assert all(set(ln) >= {"at", "action", "by", "recipient", "reason", "result"} for ln in lines)
    assert agent.get(f"/complaints/{cid}").json()["form"] == lines

    # the guest follows it with the code alone, and sees nothing personal or internal
    public = suite.anonymous()
    tracked = public.get(f"/track/{code}")
    assert tracked.status_code == 200, tracked.text
    answer = tracked.json()
    assert answer["status"] == "resolved" and answer["department"] == "engineering"
    assert [s["status"] for s in answer["steps"]] == [
        "open",
        "investigating",
        "verified",
        "dispatched",
        "reported",
        "resolved",
    ]
    assert set(answer) >= {"status", "department", "received_at", "updated_at", "steps"}
    for secret in (
        "Marta",
        "Quintana",
        "600111222",
        "air conditioning",
        "Night porter",
        "late check-out",
        "fan",
        agent.staff["username"],
        manager.staff["username"],
    ):
        assert secret not in tracked.text, secret
    assert public.get(f"/track/{code.lower().replace('-', '')}").json() == answer
    assert public.get("/track/0000-0000-00000").status_code == 404
    assert public.get("/track/not-a-code").status_code == 404

    # lists, by each filter
    other = agent.post(
        "/complaints",
        {"guest_id": 42, "channel": "web", "category": "cleanliness", "description": "Dusty"},
    ).json()
    assert other["department"] == "housekeeping"

    def ids(query):
        answer = agent.get(f"/complaints?{query}")
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["items"]]

    assert ids("") == [cid, other["id"]]
    assert ids("status=resolved") == [cid]
    assert ids("department=housekeeping") == [other["id"]]
    assert ids("guest_id=42") == [other["id"]]
    assert ids("channel=phone") == [cid]
    assert ids("overdue=true") == []
    assert ids("overdue=false") == [cid, other["id"]]
    assert ids(f"tracking_code={code.lower().replace('-', '')}") == [cid]
    assert agent.get("/complaints?tracking_code=nope").status_code == 400
    first = agent.get("/complaints?limit=1").json()
    assert (
        agent.get(f"/complaints?limit=1&cursor={first['next']}").json()["items"][0]["id"]
        == (other["id"])
    )

    published = wait_for(
        lambda: (
            (
                rows := _complaints_db(
                    "select type from outbox where published_at is not null order by id"
                )
            )
            and len(rows) == 5
            and rows
        )
    )
    assert [r.type for r in published] == [
        "complaint_filed",
        "complaint_dispatched",
        "complaint_reported",
        "complaint_resolved",
        "complaint_filed",
    ]


@pytest.fixture
def quick_timer_suite(monkeypatch, request):
    """The suite with the escalation timer looking every second, not every 15."""
    monkeypatch.setenv("COMPLAINTS_ESCALATION_SECONDS", "1")
    return request.getfixturevalue("suite")


@pytest.fixture
def job_only_suite(monkeypatch, request):
    """The suite with the escalation timer out of the way: what escalates is the job."""
    monkeypatch.setenv("COMPLAINTS_ESCALATION_SECONDS", "3600")
    return request.getfixturevalue("suite")


def test_the_escalation_job_run_by_hand_escalates_what_is_overdue_once(job_only_suite):
    admin, agent = job_only_suite.as_admin(), job_only_suite.as_role("agent", "front_office")
    yesterday = (datetime.now(settings.hotel_tz()) - timedelta(days=1)).replace(hour=10)
    body = {"guest_id": 7, "channel": "phone", "category": "food", "description": "Cold soup"}
    overdue = agent.post("/complaints", {**body, "received_at": yesterday.isoformat()}).json()
    due_today = agent.post("/complaints", body).json()

    assert agent.post("/admin/jobs/escalations").status_code == 403
    assert admin.post("/admin/jobs/escalations").json() == {"job": "escalations", "escalated": 1}
    assert agent.get(f"/complaints/{overdue['id']}").json()["status"] == "escalated"
    assert agent.get(f"/complaints/{due_today['id']}").json()["status"] == "open"
    assert admin.post("/admin/jobs/escalations").json() == {"job": "escalations", "escalated": 0}


def test_a_complaint_left_unresolved_past_its_day_goes_to_the_director(quick_timer_suite):
    suite = quick_timer_suite
    admin = suite.as_admin()
    agent = suite.as_role("agent", "front_office")
    director = suite.as_role("director", "food_beverage")
    _known_staff(director)
    yesterday = (datetime.now(settings.hotel_tz()) - timedelta(days=1)).replace(hour=10)

    def file(category):
        answer = agent.post(
            "/complaints",
            {
                "guest_id": 7,
                "channel": "walk_in",
                "category": category,
                "description": "Cold soup at dinner",
                "received_at": yesterday.isoformat(),
            },
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    by_job = file("food")
    assert datetime.fromisoformat(by_job["received_at"]) == yesterday
    assert datetime.fromisoformat(by_job["due_at"]) < datetime.now(UTC)
    assert by_job["overdue"] is True

    run = admin.post("/admin/jobs/escalations")
    assert run.status_code == 200, run.text
    assert run.json()["job"] == "escalations"  # the timer may have been first

    def escalated(complaint_id):
        complaint = agent.get(f"/complaints/{complaint_id}").json()
        return complaint if complaint["status"] == "escalated" else None

    complaint = wait_for(lambda: escalated(by_job["id"]))
    assert complaint["owner"] == _party(director)
    escalations = [ln for ln in complaint["form"] if ln["action"] == "escalate"]
    assert len(escalations) == 1  # the job and the timer never both escalate one
    assert escalations[0]["by"]["kind"] == "system"
    assert escalations[0]["recipient"] == _party(director)

    # nobody holds finance's director yet: the role owns it, and the timer alone acts
    by_timer = file("billing")
    complaint = wait_for(lambda: escalated(by_timer["id"]))
    assert complaint["owner"] == {
        "kind": "role",
        "id": None,
        "username": None,
        "role": "director",
        "department": "finance",
    }
    overdue = agent.get("/complaints?overdue=true&status=escalated").json()["items"]
    assert [c["id"] for c in overdue] == [by_job["id"], by_timer["id"]]
    assert admin.post("/admin/jobs/escalations").json() == {"job": "escalations", "escalated": 0}

    # the director takes it from there, and may still close it
    handled = _act(director, by_job["id"], "investigate", note="Spoke with the chef")
    assert handled.json()["status"] == "investigating"
    assert handled.json()["owner"] == _party(director)
    assert _act(director, by_job["id"], "escalate").status_code == 200
    assert _act(director, by_job["id"], "escalate").status_code == 409
    done = _act(director, by_job["id"], "resolve", result="Dinner on the house")
    assert done.json()["status"] == "resolved"

    def escalations_published() -> int:
        return len(
            _complaints_db(
                "select 1 from outbox where type = 'complaint_escalated' "
                "and published_at is not null"
            )
        )

    # the job's, the timer's and the director's own: each published, however the relay
    # batches them
    wait_for(lambda: escalations_published() == 3)


def test_bad_input_and_wrong_transitions_are_refused(suite):
    agent = suite.as_role("agent", "front_office")
    good = {"guest_id": 7, "channel": "phone", "category": "noise", "description": "Loud"}

    def refused(change, field):
        answer = agent.post("/complaints", {**good, **change})
        assert answer.status_code == 400, (change, answer.text)
        assert answer.json()["error"] == "VALIDATION_ERROR"
        assert field in answer.json()["fields"], (change, answer.json())

    refused({"channel": "pigeon"}, "channel")
    refused({"category": "ghosts"}, "category")
    refused({"description": "   "}, "description")
    refused({"description": ""}, "description")
    refused({"guest_id": None}, "guest_id")
    refused({"guest_id": "seven"}, "guest_id")
    refused({"contact": {"phone": "+34600111222"}}, "contact")
    refused({"department": "spa"}, "department")
    refused({"received_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, "received_at")
    refused({"received_at": "yesterday"}, "received_at")
    refused({"colour": "red"}, "colour")
    missing = agent.post(
        "/complaints", {"channel": "phone", "category": "noise", "description": "x"}
    )
    assert missing.status_code == 400 and {"guest_id", "contact"} <= set(missing.json()["fields"])
    assert suite.anonymous().post("/complaints", good).status_code == 401

    for path in ("/complaints/999999", "/complaints/999999/form", "/dispatch-orders/999999"):
        assert agent.get(path).status_code == 404, path
    assert _act(agent, 999999, "note", note="x").status_code == 404
    gone = agent.post("/dispatch-orders/999999/report", {"result": "Done"})
    assert gone.status_code == 404
    assert agent.get("/complaints?status=lost").status_code == 400
    assert agent.get("/complaints?cursor=garbage").status_code == 400

    complaint = agent.post("/complaints", good).json()
    cid = complaint["id"]
    bad_action = _act(agent, cid, "shout")
    assert bad_action.status_code == 400 and "action" in bad_action.json()["fields"]
    assert "note" in _act(agent, cid, "note").json()["fields"]
    assert _act(agent, cid, "dispatch", department="spa").status_code == 400
    empty_report = agent.post("/dispatch-orders/1/report", {"result": " "})
    assert empty_report.status_code == 400

    def conflict(action, **body):
        answer = _act(agent, cid, action, **body)
        assert answer.status_code == 409, (action, answer.text)
        assert answer.json()["error"] == "INVALID_STATE"

    conflict("verify")  # nothing to verify before it is investigated
    assert _act(agent, cid, "escalate", note="Guest insists").status_code == 200
    conflict("escalate")
    conflict("verify")
    # nobody holds security's director: the role owns it
    owner = agent.get(f"/complaints/{cid}").json()["owner"]
    assert owner["kind"] == "role" and owner["role"] == "director"
    assert _act(agent, cid, "resolve", result="Moved the guest to a quiet room").status_code == 200
    conflict("note", note="after the end")
    conflict("resolve", result="again")


def test_a_contact_s_phone_as_typed_is_the_guest_s_on_file(suite):
    """Staff type a caller's number as they hear it: the complaint keeps it as the guests'
    files do, so the caller screen and the revisit both know whose complaint it is."""
    agent = suite.as_role("agent")
    ada = agent.post("/guests", {"name": "Ada Lovelace", "phone": "+34 600 11 22 33"}).json()
    contact = {"name": "Ada Lovelace", "phone": "600 11 22 33"}
    complaint = {"contact": contact, "channel": "phone", "category": "cleanliness"}
    refused = agent.post(
        "/complaints",
        {**complaint, "contact": {**contact, "phone": "call me"}, "description": "Dusty"},
    )
    assert refused.status_code == 400 and "contact.phone" in refused.json()["fields"]

    filed = agent.post("/complaints", {**complaint, "description": "Room not cleaned"})
    assert filed.status_code == 201, filed.text
    assert filed.json()["contact"]["phone"] == "+34600112233"
    complaint_id = filed.json()["id"]

    def on_screen():
        screen = agent.get("/callers/+34600112233").json()
        return [c for c in screen["open"]["complaints"] if c.get("complaint_id") == complaint_id]

    assert wait_for(on_screen)
    [revisit] = wait_for(lambda: agent.get(f"/revisits?guest_id={ada['id']}").json()["items"])
    assert revisit["complaint_id"] == complaint_id
