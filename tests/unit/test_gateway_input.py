"""The gateway's input step, on real werkzeug requests: text no database can store is a
400 naming its field (with whatever else is wrong), and an Idempotency-Key is kept apart
per resource."""

import json

import pytest
from marshmallow import Schema, ValidationError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import http
from gateway.auth import Principal
from gateway.schemas.common import Money
from gateway.schemas.complaints import ComplaintCreate, ComplaintQuery

COMPLAINT = {"guest_id": 7, "channel": "phone", "category": "noise", "description": "Loud."}


def request(method: str, path: str, body: dict | None = None, **headers) -> Request:
    data = None if body is None else json.dumps(body)  # escapes a lone surrogate as \ud800
    return Request(
        EnvironBuilder(method=method, path=path, data=data, headers=headers).get_environ()
    )


def spec(**options) -> http.RouteSpec:
    return http.RouteSpec(method="POST", path="/x", roles=http.STAFF, summary="", tag="", **options)


@pytest.mark.parametrize("bad", ["Loud\x00music", "Loud \ud800 music"])
def test_text_no_database_can_store_is_refused_naming_its_field(bad):
    with pytest.raises(ValidationError) as refused:
        http.parse_body(
            spec(body=ComplaintCreate),
            request("POST", "/complaints", {**COMPLAINT, "description": bad}),
        )
    assert list(refused.value.messages) == ["description"]


def test_nested_text_is_named_by_its_dotted_path_beside_the_schema_s_own_refusals():
    body = {**COMPLAINT, "guest_id": None, "contact": {"name": "Ana\x00"}, "channel": "pigeon"}
    with pytest.raises(ValidationError) as refused:
        http.parse_body(spec(body=ComplaintCreate), request("POST", "/complaints", body))
    assert {"contact.name", "channel"} <= set(refused.value.messages)


def test_a_query_s_text_is_checked_too():
    with pytest.raises(ValidationError) as refused:
        http.parse_query(spec(query=ComplaintQuery), request("GET", "/complaints?department=a%00b"))
    assert "department" in refused.value.messages
    assert (
        http.parse_query(spec(query=ComplaintQuery), request("GET", "/complaints?limit=5"))["limit"]
        == 5
    )


def test_good_text_of_any_script_passes():
    body = {**COMPLAINT, "description": "El aire no enfría 🥵, 空调坏了"}
    loaded = http.parse_body(spec(body=ComplaintCreate), request("POST", "/complaints", body))
    assert loaded["description"] == body["description"]


def test_an_idempotency_key_is_kept_apart_per_resource_and_caller():
    outcome = spec(idempotent=True)
    outcome.path = "/revisits/<int:revisit_id>/outcome"
    agent = Principal(3, "marta", "agent", None)

    def key(path, revisit_id, who=agent, value="call-1"):
        return http._idempotency_key(
            outcome,
            request("POST", path, {}, **{"Idempotency-Key": value}),
            who,
            {"revisit_id": revisit_id},
        )

    assert key("/revisits/1/outcome", 1) == key("/revisits/1/outcome", 1)
    assert key("/revisits/1/outcome", 1) != key("/revisits/2/outcome", 2)
    assert key("/revisits/1/outcome", 1) != key(
        "/revisits/1/outcome", 1, Principal(4, "jon", "agent", None)
    )
    # the resource as read: however its id is written, however long the path and key
    padded = "/revisits/" + "0" * 300 + "1/outcome"
    assert key(padded, 1) == key("/revisits/1/outcome", 1)
    assert len(key(padded, 1, value="k" * 128)) <= 64
    with pytest.raises(ValidationError):
        key("/revisits/1/outcome", 1, value="call\x00")


def test_an_id_past_postgresql_s_integers_is_the_caller_s_400():
    complaint = spec(body=ComplaintCreate)
    largest = {**COMPLAINT, "guest_id": 2**31 - 1}
    assert (
        http.parse_body(complaint, request("POST", "/complaints", largest))["guest_id"] == 2**31 - 1
    )
    with pytest.raises(ValidationError) as refused:
        http.parse_body(complaint, request("POST", "/complaints", {**COMPLAINT, "guest_id": 2**31}))
    assert list(refused.value.messages) == ["guest_id"]


def test_json_nested_past_what_python_parses_is_a_400_not_a_500():
    deep = Request(
        EnvironBuilder(method="POST", path="/auth/token", data="[" * 50_000).get_environ()
    )
    with pytest.raises(http.HttpError) as refused:
        http.parse_body(spec(body=ComplaintCreate), deep)
    assert refused.value.fields == {"_body": ["nested too deeply"]}


def test_text_is_found_at_any_depth_json_parsing_allows():
    description = "Ana\x00"
    for _ in range(900):
        description = [description]
    body = {**COMPLAINT, "description": description}
    with pytest.raises(ValidationError) as refused:
        http.parse_body(spec(body=ComplaintCreate), request("POST", "/complaints", body))
    assert any(field.startswith("description.0.0.0") for field in refused.value.messages)


def test_an_email_address_longer_than_any_table_holds_is_refused_where_it_is_given():
    from gateway.schemas.staff import StaffCreate

    long_address = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".es"
    assert len(long_address) > 254
    contact = {**COMPLAINT, "guest_id": None, "contact": {"name": "Ana", "email": long_address}}
    with pytest.raises(ValidationError) as refused:
        http.parse_body(spec(body=ComplaintCreate), request("POST", "/complaints", contact))
    assert refused.value.messages == {"contact": {"email": ["Longer than maximum length 254."]}}
    member = {"username": "ana", "password": "long enough", "name": "Ana", "role": "agent"}
    with pytest.raises(ValidationError) as refused:
        StaffCreate().load({**member, "email": long_address})
    assert list(refused.value.messages) == ["email"]


def test_an_empty_query_value_asks_for_nothing():
    query = http.parse_query(
        spec(query=ComplaintQuery), request("GET", "/complaints?status=&limit=5")
    )
    assert "status" not in query and query["limit"] == 5


def test_money_is_taken_only_as_the_document_writes_it():
    class Priced(Schema):
        price = Money()

    assert [str(Priced().load({"price": p})["price"]) for p in ("120", "120.5", "0.00")] == [
        "120.00",
        "120.50",
        "0.00",
    ]
    for unsaid in ("-0", "10.005", "1e2", " 10", "NaN", "Infinity", "1_000", 10.0, 10):
        with pytest.raises(ValidationError) as refused:
            Priced().load({"price": unsaid})
        assert list(refused.value.messages) == ["price"], unsaid
