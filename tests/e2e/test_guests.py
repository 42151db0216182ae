"""Guest files through the gateway over HTTP: registration and its file numbers under
concurrency, look-ups, changes, groups, the arrivals list, every bad input."""

import eventlet
import pytest
from sqlalchemy import create_engine, text

from servicekit import settings
from tests.support import Api, wait_for

DAY = "2026-11-24"


@pytest.fixture
def api(start_services, suite_config):
    """The gateway and the guests service only: these tests need nothing else."""
    from gateway.service import GatewayService
    from services.guests.service import GuestsService

    start_services(GatewayService, GuestsService)
    return Api(f"http://127.0.0.1:{suite_config['port']}").as_role("agent")


def guest(n: int, **extra) -> dict:
    return {"name": f"Guest {n}", "phone": f"+34 600 {n:06d}", "arrival_date": DAY, **extra}


def test_concurrent_registrations_get_gapless_distinct_file_numbers(api, container_factory):
    from services.guests.service import GuestsService

    # a second replica of the guests service takes its share of the calls
    container_factory(GuestsService).start()
    pool = eventlet.GreenPool(40)
    answers = list(pool.imap(lambda n: api.post("/guests", guest(n)), range(1, 36)))
    assert [a.status_code for a in answers] == [201] * 35, [a.text for a in answers]
    numbers = sorted(a.json()["file_number"] for a in answers)
    assert numbers == [f"261124{n:03d}" for n in range(1, 36)]
    assert all(a.json()["card_number"] == a.json()["file_number"] for a in answers)

    # the same phone at once: one file, the others told which; the same key: one answer
    same_phone = list(pool.imap(lambda n: api.post("/guests", guest(99)), range(5)))
    assert sorted(a.status_code for a in same_phone) == [201, 409, 409, 409, 409]
    first = next(a.json() for a in same_phone if a.status_code == 201)
    assert {a.json().get("existing_id", first["id"]) for a in same_phone} == {first["id"]}
    retried = list(
        pool.imap(
            lambda n: api.post("/guests", guest(98), headers={"Idempotency-Key": "once"}),
            range(5),
        )
    )
    assert [a.status_code for a in retried] == [201] * 5, [a.text for a in retried]
    assert len({a.json()["id"] for a in retried}) == 1

    # a group draws from the same serial; the clerk's list interleaves them in order
    group = api.post("/groups", {"name": "Coro de Bilbao", "arrival_date": DAY})
    assert group.status_code == 201, group.text
    assert group.json()["file_number"] == "261124038"
    listed = api.get(f"/guests/arrivals?date={DAY}").json()["items"]
    assert [i["file_number"] for i in listed] == [f"261124{n:03d}" for n in range(1, 39)]
    assert listed[-1]["kind"] == "group" and listed[0]["kind"] == "guest"
    # a page at a time, as every list, and empty query values are as good as none
    first_page = api.get(f"/guests/arrivals?date={DAY}&limit=30&cursor=").json()
    rest = api.get(f"/guests/arrivals?date={DAY}&cursor={first_page['next']}").json()
    assert first_page["items"] + rest["items"] == listed and rest["next"] is None


def test_a_guest_file_from_registration_to_change(api):
    created = api.post(
        "/guests",
        {
            "name": "José Muñoz",
            "phone": "600 11 22 33",
            "email": "jose@example.com",
            "birthday": "1980-02-29",
            "category": "vip",
            "language": "en",
            "notes": "Allergic to nuts",
        },
        headers={"Idempotency-Key": "reg-1"},
    )
    assert created.status_code == 201, created.text
    file = created.json()
    assert file["phone"] == "+34600112233"
    assert file["vip"] is True and file["category"] == "vip"
    assert file["card_number"] == file["file_number"]
    # a retry with the same key answers the same file and numbers nothing new
    again = api.post(
        "/guests",
        {"name": "José Muñoz", "phone": "600 11 22 33", "category": "vip"},
        headers={"Idempotency-Key": "reg-1"},
    )
    assert again.status_code == 201 and again.json()["id"] == file["id"]

    # the same phone written another way is the same guest
    taken = api.post("/guests", {"name": "Someone Else", "phone": "+34 600-112-233"})
    assert taken.status_code == 409, taken.text
    assert taken.json()["error"] == "CONFLICT"
    assert taken.json()["existing_id"] == file["id"]

    assert api.get(f"/guests/{file['id']}").json() == file
    for query in ("name=munoz", "name=JOSÉ", "name=jose%20mu", "phone=%2B34600112233"):
        found = api.get(f"/guests?{query}").json()
        assert [g["id"] for g in found["items"]] == [file["id"]], query
    assert (
        api.get(f"/guests?file_number={file['file_number']}").json()["items"][0]["id"]
        == (file["id"])
    )
    assert api.get("/guests?name=nobody").json() == {"items": [], "next": None}

    changed = api.patch(
        f"/guests/{file['id']}", {"category": "individual", "phone": "+34 611 000 000"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["vip"] is False and changed.json()["phone"] == "+34611000000"
    assert changed.json()["file_number"] == file["file_number"]

    other = api.post("/guests", {"name": "Ana", "phone": "+34 622 000 000"}).json()
    clash = api.patch(f"/guests/{other['id']}", {"phone": "611000000"})
    assert clash.status_code == 409 and clash.json()["existing_id"] == file["id"]


def test_groups_with_their_members_and_lists_paged_by_keyset(api):
    leader = api.post("/guests", guest(1)).json()
    group = api.post(
        "/groups", {"name": "Choir", "arrival_date": DAY, "leader_guest_id": leader["id"]}
    )
    assert group.status_code == 201, group.text
    group_id = group.json()["id"]
    member = api.post("/guests", guest(2, group_id=group_id)).json()
    assert member["category"] == "group"
    shown = api.get(f"/groups/{group_id}").json()
    assert shown["file_number"] == "261124002"
    assert [m["id"] for m in shown["members"]] == [leader["id"], member["id"]]
    # however a guest joined, the arrivals list flags them as the group's; a VIP stays one
    later = api.post("/guests", guest(8)).json()
    vip = api.post("/guests", guest(9, category="vip")).json()
    for joining in (later, vip):
        assert api.patch(f"/guests/{joining['id']}", {"group_id": group_id}).status_code == 200
    listed = api.get(f"/guests/arrivals?date={DAY}").json()["items"]
    flags = {i["id"]: i["category"] for i in listed if i["kind"] == "guest"}
    assert [flags[g["id"]] for g in (leader, member, later, vip)] == ["group"] * 3 + ["vip"]
    left = api.patch(f"/guests/{later['id']}", {"group_id": None}).json()
    assert (left["group_id"], left["category"]) == (None, "individual")

    for n in range(3, 8):
        assert api.post("/guests", guest(n, name=f"Pérez {n}")).status_code == 201
    first = api.get("/guests?name=perez&limit=2").json()
    second = api.get(f"/guests?name=perez&limit=2&cursor={first['next']}").json()
    third = api.get(f"/guests?name=perez&limit=2&cursor={second['next']}").json()
    names = [g["name"] for page in (first, second, third) for g in page["items"]]
    assert names == [f"Pérez {n}" for n in range(3, 8)]
    assert third["next"] is None


def test_the_thousandth_file_of_a_day_is_refused_not_duplicated(api):
    engine = create_engine(settings.database_url("guests"))
    with engine.begin() as conn:
        conn.execute(text("insert into daily_serials (day, last) values (:d, 998)"), {"d": DAY})
    engine.dispose()
    last = api.post("/guests", guest(1))
    assert last.status_code == 201 and last.json()["file_number"] == "261124999"
    full = api.post("/guests", guest(2))
    assert full.status_code == 409 and full.json()["error"] == "CONFLICT", full.text
    assert "999" in full.json()["message"]
    assert api.post("/groups", {"name": "Late group", "arrival_date": DAY}).status_code == 409
    # the next day starts again from 001
    assert api.post("/guests", guest(3, arrival_date="2026-11-25")).json()["file_number"] == (
        "261125001"
    )


BAD_REGISTRATIONS = [
    ({"phone": "+34600000001"}, "name"),
    ({"name": "   ", "phone": "+34600000001"}, "name"),
    ({"name": "A", "phone": "+34600000001", "birthday": "1990-02-30"}, "birthday"),
    ({"name": "A", "phone": "+34600000001", "birthday": "2999-01-01"}, "birthday"),
    ({"name": "A", "phone": "not a phone"}, "phone"),
    ({"name": "A", "phone": "12"}, "phone"),
    ({"name": "A"}, "phone"),
    ({"name": "A", "phone": "+34600000001", "category": "royal"}, "category"),
    ({"name": "A", "phone": "+34600000001", "language": "fr"}, "language"),
    ({"name": "A", "phone": "+34600000001", "arrival_date": "24/11/2026"}, "arrival_date"),
    ({"name": "A", "phone": "+34600000001", "arrival_date": "2026-13-01"}, "arrival_date"),
    ({"name": "A", "phone": "+34600000001", "arrival_date": "1926-11-24"}, "arrival_date"),
    ({"name": "A", "phone": "+34600000001", "group_id": 12345}, "group_id"),
    ({"name": "A", "phone": "+34600000001", "email": "nope"}, "email"),
    ({"name": "A", "phone": "+34600000001", "colour": "red"}, "colour"),
]


def test_bad_input_is_a_400_naming_the_field_and_unknown_ids_a_404(api):
    for body, field in BAD_REGISTRATIONS:
        answer = api.post("/guests", body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"] == "VALIDATION_ERROR"
        assert field in answer.json()["fields"], (body, answer.text)
    assert api.get("/guests?limit=2").json() == {"items": [], "next": None}

    file = api.post("/guests", guest(1)).json()
    for changes, field in [
        ({"birthday": "2001-02-29"}, "birthday"),
        ({"phone": "call me"}, "phone"),
        ({"name": ""}, "name"),
        ({"category": "royal"}, "category"),
        ({"file_number": "261124999"}, "file_number"),
        ({"arrival_date": "2026-12-01"}, "arrival_date"),
    ]:
        answer = api.patch(f"/guests/{file['id']}", changes)
        assert answer.status_code == 400 and field in answer.json()["fields"], answer.text
    for path, field in [
        ("/guests/arrivals?date=tomorrow", "date"),
        ("/guests?cursor=garbage", "cursor"),
        ("/guests?limit=0", "limit"),
        ("/callers/not-a-phone", "phone"),
    ]:
        answer = api.get(path)
        assert answer.status_code == 400 and field in answer.json()["fields"], answer.text
    for bad in (
        api.post("/groups", {"arrival_date": DAY}),
        api.post("/groups", {"name": "G", "leader_guest_id": 999}),
        api.post("/groups", {"name": "G", "leader_guest_id": 99999999999}),
        api.post("/groups", {"name": "G", "arrival_date": "2126-11-24"}),
    ):
        assert bad.status_code == 400, bad.text
    assert api.get(f"/guests/{file['id']}").json() == file  # nothing above changed it
    assert api.get("/guests/999").status_code == 404
    assert api.get("/guests/99999999999").status_code == 404
    assert api.patch("/guests/999", {"notes": "x"}).status_code == 404
    assert api.get("/groups/999").json()["error"] == "NOT_FOUND"


def test_complaints_from_a_contact_reach_the_callers_screen_by_phone(suite):
    """With every service running: complaints filed with a contact's phone only are on
    the screen of the guest with that phone, and of a caller not on file yet."""
    agent = suite.as_role("agent")
    guest = agent.post("/guests", {"name": "Marta Gil", "phone": "+34 633 444 555"}).json()

    def file_complaint(phone: str) -> dict:
        answer = agent.post(
            "/complaints",
            {
                "contact": {"name": "Caller", "phone": phone},
                "channel": "phone",
                "category": "noise",
                "description": "Music until 3 a.m.",
            },
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    theirs = file_complaint("633 44 45 55")
    strangers = file_complaint("+34 644 000 111")

    def open_complaints(phone: str) -> list[int]:
        screen = agent.get(f"/callers/{phone}").json()
        return [c["complaint_id"] for c in screen["open"]["complaints"]]

    wait_for(lambda: open_complaints("+34633444555") == [theirs["id"]])
    wait_for(lambda: open_complaints("+34644000111") == [strangers["id"]])
    assert agent.get("/callers/+34644000111").json()["guest"] is None
    screen = agent.get("/callers/+34633444555").json()
    assert screen["guest"]["id"] == guest["id"]
    assert f"complaints/{theirs['id']}" in [h["ref"] for h in screen["history"]]
    # the call back it plans is theirs too (the number was typed another way)
    wait_for(
        lambda: any(
            h["kind"] == "revisit" for h in agent.get("/callers/+34633444555").json()["history"]
        )
    )

    resolved = agent.post(
        f"/complaints/{theirs['id']}/actions", {"action": "resolve", "result": "Spoke to them"}
    )
    assert resolved.status_code == 200, resolved.text
    wait_for(lambda: open_complaints("+34633444555") == [])
    summaries = [h["summary"] for h in agent.get("/callers/+34633444555").json()["history"]]
    assert any("resolved: Spoke to them" in s for s in summaries), summaries
