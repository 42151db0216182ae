"""GET /notifications through the gateway over HTTP, with the notifications service
behind it consuming real events (staff created through the gateway, the rest published
on the bus as their services would)."""

from datetime import datetime

import pytest

from gateway.service import GatewayService
from servicekit.settings import hotel_tz
from services.notifications.service import NotificationsService
from tests.integration.test_notifications import complaint, guest, publish, query
from tests.support import Api, wait_for

FIELDS = {
    "id",
    "kind",
    "channel",
    "to",
    "status",
    "attempts",
    "subject",
    "body",
    "created_at",
    "sent_at",
    "ref",
}


@pytest.fixture
def api(start_services, suite_config, monkeypatch):
    # no provider configured: messages go to the log, call tasks to the agents
    for name in ("SMTP_HOST", "SMS_WEBHOOK_URL", "FAX_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    start_services(GatewayService, NotificationsService)
    return Api(f"http://127.0.0.1:{suite_config['port']}")


def test_staff_see_every_notification_and_close_call_tasks(api):
    director = api.as_role("director", "housekeeping", email="dolores@hotel.test")
    agent = api.as_role("agent")
    wait_for(lambda: len(query("select 1 from staff_members where role = 'director'")) == 1)
    publish("guest_registered", guest(1, "John Smith", "+447700900123", language="en"))
    publish("guest_registered", guest(2, "Ana Ruiz", "+34600111222", birthday="1990-05-17"))
    wait_for(lambda: len(query("select 1 from guests")) == 2)

    # a complaint by phone: the receipt is a call task for an agent
    publish("complaint_filed", complaint(5, guest_id=1, channel="phone"))
    owner = {"kind": "staff", "id": director.staff["id"], "role": "director"}
    publish("complaint_escalated", complaint(5, guest_id=1, owner=owner, reason="overdue"))

    def listed(path):
        answer = agent.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    # the two events travel on queues of their own: either may be written first
    wait_for(lambda: len(listed("/notifications")) == 2)
    assert (
        api.as_admin()
        .post("/admin/jobs/birthday-greetings", {"date": "2026-05-17"})
        .json()["greeted"]
        == 1
    )

    wait_for(lambda: len(listed("/notifications?status=sent")) == 2)
    everything = listed("/notifications")
    # newest first
    assert everything[0]["kind"] == "birthday"
    assert {n["kind"] for n in everything[1:]} == {"complaint_escalated", "complaint_received"}
    assert all(set(n) >= FIELDS for n in everything)

    [escalation] = listed("/notifications?kind=complaint_escalated")
    assert escalation["channel"] == "log" and escalation["ref"] == "complaint:5"
    assert escalation["to"] == f"staff {director.staff['id']}"
    assert escalation["subject"] == "Queja TRK-0005 escalada a usted (pisos)"

    [task] = listed("/notifications?channel=phone&status=queued")
    assert task["to"] == "+447700900123" and task["sent_at"] is None
    assert task["subject"] == "We have received your complaint (TRK-0005)"
    done = agent.post(f"/notifications/{task['id']}/call-done")
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["attempts"]) == ("sent", 1)
    assert agent.post(f"/notifications/{task['id']}/call-done").json()["error"] == "INVALID_STATE"
    assert agent.post("/notifications/999/call-done").status_code == 404
    # by guest: what the guest was sent (the director's notice is not theirs)
    assert [n["id"] for n in listed("/notifications?guest_id=1&status=sent")] == [task["id"]]

    # keyset pages: every item once
    first = agent.get("/notifications?limit=2").json()
    second = agent.get(f"/notifications?limit=2&cursor={first['next']}").json()
    assert [n["id"] for n in first["items"] + second["items"]] == [n["id"] for n in everything]
    assert second["next"] is None

    check_bad_input_is_refused_naming_the_field(api)


BAD_FILTERS = [
    ("kind=postcard", "kind"),
    ("status=lost", "status"),
    ("channel=pigeon", "channel"),
    ("guest_id=abc", "guest_id"),
    ("limit=0", "limit"),
    ("cursor=not-a-cursor", "cursor"),
    ("colour=red", "colour"),
]


def check_bad_input_is_refused_naming_the_field(api):
    assert api.get("/notifications").status_code == 401
    admin = api.as_admin()
    for query_string, field in BAD_FILTERS:
        answer = admin.get(f"/notifications?{query_string}")
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "VALIDATION_ERROR"
        assert field in answer.json()["fields"], query_string

    bad = admin.post("/admin/jobs/birthday-greetings", {"date": "17/05/2026"})
    assert bad.status_code == 400 and "date" in bad.json()["fields"]
    for job, body, field in (
        ("birthday-greetings", {"day": "2026-05-17"}, "day"),
        ("hold-release", {"date": "2026-05-17"}, "date"),
        ("birthday-greetings", "[" * 100_000 + "]" * 100_000, "_body"),
    ):
        sent = {"data": body} if isinstance(body, str) else {"json": body}
        refused = admin.request("POST", f"/admin/jobs/{job}", **sent)
        assert refused.status_code == 400 and field in refused.json()["fields"], refused.text
    today = datetime.now(hotel_tz()).date().isoformat()
    ran = admin.post("/admin/jobs/birthday-greetings", {})
    assert ran.status_code == 200 and ran.json()["date"] == today
